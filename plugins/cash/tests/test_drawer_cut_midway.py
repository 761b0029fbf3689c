"""A drawer opened for a caller cancelled while the storage writes it (asyncio's own ``Task.cancel()``).

A server cancelling its handler as the cashier's tablet drops: the cancellation goes through anyio's
shields while the storage's unit of work goes on (in its worker thread, on SQL). The open is made to
its end before the caller hears of its cancellation, so the retry under its key finds the drawer it
opened, instead of missing it and being refused as a second open of the till.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from paycore.money import Money
from paycore_cash.drawers import CashDrawers

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only: its own ``Task.cancel()`` is what anyio's shields do not keep out."""
    return "asyncio"


async def test_a_drawer_open_cut_midway_is_stored_when_its_caller_hears_so_and_its_retry_finds_it(
    drawers: CashDrawers,
) -> None:
    storage: Any = drawers.storage
    open_session = storage.open_session

    async def committed_after_the_caller_goes(session: Any) -> None:
        async def write() -> None:
            await asyncio.sleep(0.2)  # the unit of work, still running when the caller is cancelled
            await open_session(session)

        await asyncio.shield(asyncio.ensure_future(write()))

    storage.open_session = committed_after_the_caller_goes
    try:
        opening = asyncio.ensure_future(
            drawers.open(till="T1", opening_float=Money.of("20000", "XOF"), opened_by="awa", idempotency_key="open-1")
        )
        await asyncio.sleep(0.05)
        opening.cancel()
        await asyncio.wait([opening])
        assert opening.cancelled()
    finally:
        storage.open_session = open_session
    opened = await drawers.current("T1")
    assert opened is not None, "the caller heard of its cancellation before the drawer it opened was stored"
    again = await drawers.open(
        till="T1", opening_float=Money.of("20000", "XOF"), opened_by="awa", idempotency_key="open-1"
    )
    assert again.id == opened.id
