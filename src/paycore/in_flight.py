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

import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from paycore.observability import observed_operation

if TYPE_CHECKING:
    import anyio

__all__ = ["InFlight", "flow_operation"]

P = ParamSpec("P")
R = TypeVar("R")


class InFlight:
    """How many operations are under way on one flow; :meth:`wait_idle` waits until none is."""

    __slots__ = ("_idle", "count")

    def __init__(self) -> None:
        self.count = 0
        """The operations under way."""
        self._idle: anyio.Event | None = None

    def leave(self) -> None:
        """One operation ended."""
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` until no operation is under way; ``False`` if some still were."""
        import anyio

        with anyio.move_on_after(seconds):
            while self.count:
                self._idle = anyio.Event()
                await self._idle.wait()
        self._idle = None
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
        observed = observed_operation(operation)(method)

        @functools.wraps(method)
        async def counted(flow: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            in_flight = flow.in_flight
            in_flight.count += 1
            try:
                return await observed(flow, *args, **kwargs)
            finally:
                in_flight.leave()

        return counted

    return decorate
