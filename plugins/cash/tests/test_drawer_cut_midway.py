"""A drawer opened or closed for a caller cancelled while the storage writes it.

A server cancelling its handler as the cashier's tablet drops (asyncio's own ``Task.cancel()``): the
cancellation goes through anyio's shields while the storage's unit of work goes on (in its worker
thread, on SQL); under trio a cancel scope's deadline waits for the unit, as anyio's worker threads
do. The open or close is made to its end before the caller hears of its cancellation, so the retry
under its key finds what it did, instead of missing it and being refused (a second open of the
till, a close of no open drawer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from paycore.money import Money
from paycore.testing.cancelling import cancelled_midway
from paycore_cash.drawers import CashDrawers
from paycore_cash.records import DrawerSession

pytestmark = pytest.mark.anyio


async def _cancelled_while_stored(storage: Any, method: str, act: Callable[[], Awaitable[object]]) -> None:
    """Run ``act``, cancelling it while ``storage.<method>`` (its write) runs on; the write commits 0.2 s in."""
    write = getattr(storage, method)

    async def committed_after_the_caller_goes(*args: Any) -> None:
        async def unit() -> None:
            await anyio.sleep(0.2)  # the unit of work, still running when the caller is cancelled
            await write(*args)

        if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
            await asyncio.shield(asyncio.ensure_future(unit()))  # as a worker thread: Task.cancel does not stop it
        else:
            with anyio.CancelScope(shield=True):  # as anyio's worker threads are
                await unit()

    setattr(storage, method, committed_after_the_caller_goes)
    try:
        await cancelled_midway(act, after=0.05)
    finally:
        setattr(storage, method, write)


async def test_a_drawer_open_cut_midway_is_stored_when_its_caller_hears_so_and_its_retry_finds_it(
    drawers: CashDrawers,
) -> None:
    def opening() -> Awaitable[object]:
        return drawers.open(
            till="T1", opening_float=Money.of("20000", "XOF"), opened_by="awa", idempotency_key="open-1"
        )

    await _cancelled_while_stored(drawers.storage, "open_session", opening)
    opened = await drawers.current("T1")
    assert opened is not None, "the caller heard of its cancellation before the drawer it opened was stored"
    again = await drawers.open(
        till="T1", opening_float=Money.of("20000", "XOF"), opened_by="awa", idempotency_key="open-1"
    )
    assert again.id == opened.id


async def test_a_drawer_close_cut_midway_is_stored_when_its_caller_hears_so_and_its_retry_finds_it(
    drawers: CashDrawers,
) -> None:
    opened = await drawers.open(till="T1", opening_float=Money.of("20000", "XOF"), opened_by="awa")

    def closing() -> Awaitable[DrawerSession]:
        return drawers.close(till="T1", counted=Money.of("20000", "XOF"), closed_by="awa", idempotency_key="close-1")

    await _cancelled_while_stored(drawers.storage, "close_session", closing)
    assert await drawers.current("T1") is None, "the caller heard of its cancellation before its close was stored"
    again = await closing()
    assert (again.id, again.closed_at is not None) == (opened.id, True)
