"""Cancelling a caller the way asyncio's own servers and timeouts do, for tests of what a cut caller leaves.

A server cancels its handler's task when the client goes, and ``asyncio.wait_for`` cancels the task it
waits for: both with ``Task.cancel()``, which anyio's shielded scopes do not keep out. What a caller cut
so leaves behind (a key held, a provider call written down, a write still running in a worker thread) is
what the tests using :func:`cancelled_by_the_event_loop` check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

__all__ = ["cancelled_by_the_event_loop"]


async def cancelled_by_the_event_loop(act: Callable[[], Awaitable[object]], *, after: float) -> None:
    """Run ``act()`` in a task of its own and cancel that task with asyncio's ``Task.cancel()`` ``after``
    seconds; return once it has ended, which must be as cancelled (asyncio only)."""
    import asyncio

    async def calling() -> object:
        return await act()

    caller = asyncio.ensure_future(calling())
    await asyncio.sleep(after)
    caller.cancel()
    await asyncio.wait([caller])
    assert caller.cancelled(), f"the caller was not cancelled: it ended with {caller.exception() or caller.result()!r}"
