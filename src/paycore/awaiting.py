"""Awaiting a request under a time limit whose deadline is set only once the request waits.

A provider call runs under a timeout. The deadline (a timer on the event loop)
costs about as much as a whole answer from an in-process provider: a cash
drawer, or a test double, answers without ever giving the event loop a turn,
and no deadline can end such a request early, since a cancellation reaches a
request only where it waits. So :func:`within` enters the request's cancel
scope without a deadline, runs the request up to its first wait, and sets the
deadline only if it gets there, counting the time the request has run so far.

The scope is entered before the request starts, so any scope the request opens
is nested inside it, as under ``anyio.fail_after``. From its first wait on, the
request goes on as if it had been awaited directly: what it hands the event
loop goes to the event loop, and what the event loop sends back or throws in
(a result, a cancellation) goes to the request, under asyncio and trio alike.
"""

from __future__ import annotations

import time
import types
from collections.abc import Awaitable, Generator
from typing import Any, TypeVar

import anyio

__all__ = ["within"]

T = TypeVar("T")


async def within(request: Awaitable[T], seconds: float) -> T:
    """``await request``; :class:`TimeoutError` if it is still waiting ``seconds`` after it started.

    What ``anyio.fail_after(seconds)`` around the await does, except that a
    request that answers without waiting never sets up a timer.
    """
    started = time.monotonic()
    with anyio.CancelScope() as scope:
        steps = request.__await__()
        try:
            waiting_on = steps.send(None)
        except StopIteration as answered:
            return answered.value  # type: ignore[no-any-return]  # the request's own result, of type T
        scope.deadline = anyio.current_time() + seconds - (time.monotonic() - started)
        return await _resumed(steps, waiting_on)
    raise TimeoutError(f"no answer within {seconds:g}s")  # only the deadline ends the scope early


@types.coroutine
def _resumed(steps: Generator[Any, Any, T], waiting_on: Any) -> Generator[Any, Any, T]:
    """The rest of a request that waits on ``waiting_on``: the event loop's answers go in, its waits go out."""
    try:
        while True:
            try:
                sent = yield waiting_on
            except GeneratorExit:
                raise
            except BaseException as thrown:  # a cancellation, or an error the event loop delivers
                waiting_on = steps.throw(thrown)
            else:
                waiting_on = steps.send(sent)
    except StopIteration as answered:
        return answered.value  # type: ignore[no-any-return]  # the request's own result, of type T
    finally:
        steps.close()  # nothing once the request has ended; a request abandoned midway is closed
