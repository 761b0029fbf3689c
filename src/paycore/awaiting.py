"""Awaiting a request under a time limit whose deadline is set only once the request waits; running work that
must end whatever befalls its caller.

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
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

if TYPE_CHECKING:
    import asyncio

__all__ = ["WorkCancelled", "run_shielded", "run_to_end", "to_the_end", "within"]

T = TypeVar("T")


class WorkCancelled(Exception):
    """Raised by :func:`run_to_end` under asyncio when the work was cancelled by something other than its caller
    (it awaited a future someone else cancelled): a failure of the work, which its caller handles as any other."""


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


async def run_to_end(work: Callable[[], Awaitable[T]]) -> T:
    """``await work()`` to its end even if the caller is cancelled meanwhile; the cancellation is raised once it
    has ended, whether it returned or failed (its failure is then the cancellation's cause).

    For what must not stop half-way once begun: the record of an answer the provider gave, a key's
    completion or release. anyio's shielded cancel scope keeps out anyio's and trio's cancellations, but
    not asyncio's own ``Task.cancel()`` (``asyncio.wait_for``, ``asyncio.timeout``, a server cancelling its
    handler): under asyncio the work runs in a task of its own, which the caller waits for to its end.
    """
    import asyncio  # loaded with anyio's asyncio backend already

    with anyio.CancelScope(shield=True):
        if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
            result = await _waited_for(asyncio.ensure_future(work()))
        else:  # trio: its shield holds
            result = await work()
    return result


async def to_the_end(work: Callable[[], Awaitable[T]]) -> tuple[T, BaseException | None]:
    """``await work()`` to its end whatever befalls its caller meanwhile: its result, and the caller's cancellation
    that came meanwhile (``None``: none came), which the caller raises once it has dealt with the result.

    For work whose result the caller must have even when cancelled: the claim of an idempotency key, which
    hands its holder the token to let the key go with (and may write the operation's first record). A
    cancellation of anyio's or trio's is kept out by a shielded scope, and lands at the caller's next wait;
    asyncio's own ``Task.cancel()`` gets through a shield, so under asyncio the work runs in a task of its own,
    which the caller waits for to its end (:func:`run_to_end`). If the work fails, its failure is raised
    (as the cancellation's cause, when one came).
    """
    import asyncio  # loaded with anyio's asyncio backend already

    cut: BaseException | None = None
    with anyio.CancelScope(shield=True):
        if anyio.get_cancelled_exc_class() is not asyncio.CancelledError:  # trio: its shield holds
            result = await work()
        else:
            task = asyncio.ensure_future(work())
            try:
                result = await _waited_for(task)
            except asyncio.CancelledError as cancelled:
                if not task.done() or task.cancelled() or task.exception() is not None:
                    raise  # the work failed (as its cause) or was cut: nothing to hand back
                result, cut = task.result(), cancelled
    return result, cut


async def run_shielded(work: Callable[[], Awaitable[T]], *, ended: Callable[[T], object] | None = None) -> T:
    """``await work()`` in a shielded cancel scope; should asyncio's own ``Task.cancel()`` get through the shield
    and stop it midway, ``work()`` runs again to its end (:func:`run_to_end`) before the cancellation is raised.

    For work that may run twice and must end: a write that reads what it changes afresh (a provider's
    answer recorded, a key released or completed). It costs what a shielded scope costs until a cancellation
    comes; what the second run raises gives way to the cancellation (the first run's outcome stands, or a
    lease settles it). ``ended`` is told the second run's result before the cancellation is raised.
    """
    try:
        with anyio.CancelScope(shield=True):
            result = await work()
    except anyio.get_cancelled_exc_class():
        try:
            again = await run_to_end(work)
        except Exception:  # the first run's write stands (a key completed already), or a lease settles it
            pass
        else:
            if ended is not None:
                ended(again)
        raise
    return result


async def _waited_for(task: asyncio.Future[T]) -> T:
    """``task``'s result, once it has ended however often the caller is cancelled meanwhile (then raised after:
    the caller's own cancellation, with its message)."""
    import asyncio

    cut: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError as cancelled:
            if not task.done():
                cut = cut or cancelled  # the caller's: wait for the work, then raise it
                continue
            if task.cancelled() and not (cut is not None or _cancelling()):
                # The work cancelled itself (it awaited what something else cancelled): its failure, not the caller's.
                raise WorkCancelled("the work was cancelled by something other than its caller") from None
            # The caller's, landing as the work ended: the work has ended, so it is raised now.
            failure = None if task.cancelled() else task.exception()
            if failure is not None:
                raise (cut or cancelled) from failure
            if cut is not None:
                raise cut from None  # the caller's first, with its message
            raise
        except BaseException as failure:
            if cut is not None:  # the work failed once its caller was cancelled: the cancellation is still the caller's
                raise cut from failure
            raise
    if cut is not None:
        raise cut
    return result


def _cancelling() -> bool:
    """Whether the running task was asked to cancel (Python 3.11+; on 3.10 a cut is told only by its exception)."""
    import asyncio

    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return cancelling is not None and cancelling() > 0
