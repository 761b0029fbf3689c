"""Cancelling a caller midway, as a server or a timeout does, for tests of what a cut caller leaves.

Under asyncio a server cancels its handler's task when the client goes, and ``asyncio.wait_for``
cancels the task it waits for: both with ``Task.cancel()``, which anyio's shielded scopes do not keep
out. Under trio a caller is cut by a cancel scope's deadline. What a caller cut so leaves behind (a key
held, a provider call written down, a write still running in a worker thread) is what the tests using
:func:`cancelled_midway` check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

__all__ = ["cancelled_midway"]


async def cancelled_midway(act: Callable[[], Awaitable[object]], *, after: float) -> None:
    """Run ``act()`` and cancel it ``after`` seconds: under asyncio with its task's own ``Task.cancel()`` (the task
    is one of its own), which it must end by; under trio with a cancel scope's deadline, which lands at its next
    wait (if it has none left, it ends as it would have). Return once it has ended."""
    import asyncio  # loaded with anyio's asyncio backend already

    if anyio.get_cancelled_exc_class() is not asyncio.CancelledError:
        with anyio.move_on_after(after):
            await act()
        return

    async def calling() -> object:
        return await act()

    caller = asyncio.ensure_future(calling())
    await asyncio.sleep(after)
    caller.cancel()
    await asyncio.wait([caller])
    assert caller.cancelled(), f"the caller was not cancelled: it ended with {caller.exception() or caller.result()!r}"
