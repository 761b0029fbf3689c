"""Units of work run on worker threads under a limit of their own, whatever else holds anyio's default threads."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio


async def test_a_unit_of_work_gets_a_thread_while_receivers_hold_every_default_one() -> None:
    """Receivers of calls made outside a transaction run on anyio's default threads; 40 of them waiting for a row
    a caller's transaction held left that caller's next unit of work no thread, and its call never ended."""
    import anyio.to_thread

    from paycore_django.units import run_unit

    limiter = anyio.to_thread.current_default_thread_limiter()
    receivers = [object() for _ in range(int(limiter.total_tokens))]
    for receiver in receivers:
        await limiter.acquire_on_behalf_of(receiver)
    try:
        with anyio.fail_after(10):
            assert await run_unit("default", lambda: "done", atomic=False) == "done"
    finally:
        for receiver in receivers:
            limiter.release_on_behalf_of(receiver)
