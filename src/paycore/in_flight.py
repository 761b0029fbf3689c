"""``InFlight``: the operations under way on a flow, so that closing it lets them finish first.

A flow's operations that send or store (:func:`flow_operation`: create, capture, cancel,
refund, refresh, a webhook, the reaper, the operator's actions) count themselves in while
they run. Closing the flow refuses new ones at once (:class:`~paycore.errors.FlowClosed`)
and waits for those under way, up to a bound, before it closes the providers and the
stores: a provider that answered has its answer written, instead of losing it to a store
closed under it.

Importing this module loads neither anyio nor attrs: the flow's module imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from paycore.errors import FlowClosed
from paycore.observability import observed_operation

if TYPE_CHECKING:
    import anyio

__all__ = ["InFlight", "flow_operation"]

P = ParamSpec("P")
R = TypeVar("R")


class InFlight:
    """The operations under way on one flow, counted in and out by ``with in_flight:``; once the flow is closed
    (:attr:`closed`), entering refuses with :class:`~paycore.errors.FlowClosed`. :meth:`wait_idle` waits until
    none is under way. A plugin's operation on the flow's stores (a cash drawer's) enters it too."""

    __slots__ = ("_idle", "closed", "count")

    def __init__(self) -> None:
        self.count = 0
        """The operations under way."""
        self.closed = False
        """Set once the flow is closing: no operation starts any more."""
        self._idle: anyio.Event | None = None

    def __enter__(self) -> None:
        if self.closed:
            raise FlowClosed
        self.count += 1

    def __exit__(self, *exc_info: object) -> None:
        self.count -= 1
        idle = self._idle
        if self.count == 0 and idle is not None:
            self._idle = None
            idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until no operation is under way; ``False`` if some still were. Any number of
        callers may wait at once: the last operation to end wakes them all."""
        import anyio

        if self.count:
            if self._idle is None:
                self._idle = anyio.Event()
            idle = self._idle
            with anyio.move_on_after(seconds):
                await idle.wait()
        return self.count == 0


class _Flow(Protocol):
    """What :func:`flow_operation` needs of the flow whose method it wraps."""

    @property
    def in_flight(self) -> InFlight: ...


S = TypeVar("S", bound=_Flow)


def flow_operation(
    operation: str,
) -> Callable[
    [Callable[Concatenate[S, P], Coroutine[Any, Any, R]]], Callable[Concatenate[S, P], Coroutine[Any, Any, R]]
]:
    """Decorate a flow's method that sends or stores: observed as ``operation``
    (:func:`~paycore.observability.observed_operation`) and counted in the flow's :class:`InFlight` while it runs."""

    def decorate(
        method: Callable[Concatenate[S, P], Coroutine[Any, Any, R]],
    ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
        return observed_operation(operation, within=attrgetter("in_flight"))(method)

    return decorate
