"""Helpers for providers' own tests: script how a test provider's next calls end.

:class:`ScriptedAnswers` queues the answers (or errors) a test provider gives per
operation; :func:`interrupt_next_call` makes a real provider's next call end
"not sent" or "unknown", which unlocks the conformance suite's tests of failed calls.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

from paycore.errors import (
    ProviderNotSent,
    ProviderOutcomeUnknown,
)
from paycore.providers import Provider

__all__ = ["OPERATIONS", "ScriptedAnswers", "interrupt_next_call"]

OPERATIONS = ("initiate", "capture", "cancel", "refund", "check_status")
"""The provider methods that talk to the payment service."""

T = TypeVar("T")


class ScriptedAnswers:
    """How a test provider's next calls end, operation by operation.

    A provider written for tests asks ``answers.answer("initiate", default)``
    in each operation and gets the next answer scripted for that operation, or
    ``default`` when none is queued. A scripted exception (an instance or a
    class: ``ProviderNotSent("refused")``, ``ProviderOutcomeUnknown``) is
    raised instead of returned. :meth:`script_next_call` scripts the next call
    whatever its operation. :attr:`calls` lists every operation asked, in order.
    """

    def __init__(self) -> None:
        self._by_operation: dict[str, deque[object]] = {}
        self._next_call: deque[object] = deque()
        self.calls: list[str] = []
        """Every operation answered (or refused), in order."""

    def __repr__(self) -> str:
        return f"<ScriptedAnswers calls={len(self.calls)} queued={self.remaining()}>"

    def script(self, operation: str, *answers: object) -> None:
        """Queue how the next calls of ``operation`` end, in order."""
        self._by_operation.setdefault(operation, deque()).extend(answers)

    def script_next_call(self, *answers: object) -> None:
        """Queue how the next calls end whatever their operation (before per-operation answers)."""
        self._next_call.extend(answers)

    def remaining(self, operation: str | None = None) -> int:
        """How many answers are still queued (for ``operation``, or in all)."""
        if operation is not None:
            return len(self._by_operation.get(operation, ()))
        return len(self._next_call) + sum(len(queue) for queue in self._by_operation.values())

    def answer(self, operation: str, default: T) -> T:
        """The next scripted answer of ``operation`` (or ``default``); raise it if it is an exception."""
        self.calls.append(operation)
        queue = self._by_operation.get(operation)
        if self._next_call:
            scripted: object = self._next_call.popleft()
        elif queue:
            scripted = queue.popleft()
        else:
            return default
        if isinstance(scripted, type) and issubclass(scripted, BaseException):
            raise scripted(f"scripted answer to {operation}")
        if isinstance(scripted, BaseException):
            raise scripted
        return cast(T, scripted)


def _wrap_operations(
    provider: Provider, wrap: Callable[[str, Callable[..., Awaitable[Any]]], Any]
) -> Callable[[], None]:
    """Shadow ``provider``'s operations with ``wrap(name, original)``; return what undoes it.

    Undoing puts back what was there before, except where another wrapper has
    been put on top meanwhile: that one keeps calling through this one.
    """
    saved = {name: provider.__dict__.get(name) for name in OPERATIONS}
    wrappers = {name: wrap(name, getattr(provider, name)) for name in OPERATIONS}
    for name, wrapper in wrappers.items():
        setattr(provider, name, wrapper)

    def restore() -> None:
        for name, previous in saved.items():
            if provider.__dict__.get(name) is not wrappers[name]:
                continue
            if previous is None:
                del provider.__dict__[name]
            else:
                setattr(provider, name, previous)

    return restore


def interrupt_next_call(provider: Provider, *, sent: bool) -> None:
    """Make the next call ``provider`` makes, whatever its operation, end without an answer.

    ``sent=False``: the call raises :class:`~paycore.errors.ProviderNotSent`
    before anything reaches the provider. ``sent=True``: the call reaches the
    provider and does its work there, then the answer is lost
    (:class:`~paycore.errors.ProviderOutcomeUnknown`). Later calls are untouched.
    """
    fired = False

    def wrap(name: str, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def interrupted(*args: Any, **kwargs: Any) -> Any:
            nonlocal fired
            if fired:
                return await original(*args, **kwargs)
            fired = True
            restore()
            if not sent:
                raise ProviderNotSent(f"{name}: connection refused (interrupted by the test)")
            await original(*args, **kwargs)
            raise ProviderOutcomeUnknown(
                f"{name}: connection reset after the request was sent (interrupted by the test)"
            )

        return interrupted

    restore = _wrap_operations(provider, wrap)


@contextlib.contextmanager
def _recorded_calls(provider: Provider) -> Iterator[list[tuple[str, object]]]:
    """Record ``(operation, answer or exception)`` of every call ``provider`` makes meanwhile."""
    calls: list[tuple[str, object]] = []

    def wrap(name: str, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await original(*args, **kwargs)
            except BaseException as error:
                calls.append((name, error))
                raise
            calls.append((name, result))
            return result

        return recorded

    restore = _wrap_operations(provider, wrap)
    try:
        yield calls
    finally:
        restore()
