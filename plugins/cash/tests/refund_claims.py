"""The drawers, refunds and races of the refund claims tests, the same for every drawer storage (SQL, Django).

A refund the flow gave up is never paid out afterwards: of a give-up and the
payout it races, exactly one takes effect. :func:`storm` races many such pairs
on a storage and checks each refund's single outcome; :func:`while_held` holds
one of them on PostgreSQL in the window between its read and its write;
:data:`PAID_OUT` and its drawers are what a database stored before it had
refund claims.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Final

import anyio
import anyio.to_thread
import psycopg
import pytest

from paycore_cash.errors import RefundGivenUp
from paycore_cash.records import CashMovement, DrawerSession, MovementKind
from paycore_cash.storage import DrawerStorage

from .conftest import xof

__all__ = [
    "OPEN",
    "OPENED",
    "OTHER_TILL",
    "PAID_OUT",
    "PAIRS",
    "ROUNDS",
    "SALE",
    "Outcome",
    "a_refund",
    "a_session",
    "race",
    "storm",
    "while_held",
]

OPENED: Final = datetime(2026, 12, 7, 8, 0, 0, 250000, tzinfo=UTC)
"""When the tests' drawers open."""
PAIRS: Final = 12
"""Concurrent pairs (a give-up and a payout of one refund) per round of the storm."""
ROUNDS: Final = 3
"""Rounds of the storm, each with refund ids of its own."""

Outcome = tuple[str, int | None]
"""What a refund's claim says of it: ``("paid_out", None)``, or ``("given_up", through)`` a payment version."""


def a_session(session_id: str = "drw_1", till: str = "T1") -> DrawerSession:
    """An open session of ``till`` (default tenant), holding a float of 1,000,000 XOF."""
    return DrawerSession(
        id=session_id,
        tenant=None,
        till=till,
        currency="XOF",
        opening_float=xof(1_000_000),
        opened_by="Awa",
        opened_at=OPENED,
    )


def a_refund(
    session: DrawerSession, refund_id: str, *, movement_id: str | None = None, payment_id: str | None = "pay_1"
) -> CashMovement:
    """A REFUND movement of 500 XOF out of ``session``, paying out ``refund_id``."""
    return CashMovement(
        id=movement_id or f"mov_{refund_id}",
        session_id=session.id,
        kind=MovementKind.REFUND,
        amount=xof(500),
        at=OPENED + timedelta(minutes=10),
        actor="Awa",
        reason="cold soup",
        payment_id=payment_id,
        refund_id=refund_id,
    )


# -- drawers stored before refund claims existed ------------------------------------------------

OPEN: Final = a_session("drw_open", "T1")
"""A drawer open before refund claims existed, with a sale and refunds paid out."""
OTHER_TILL: Final = a_session("drw_t2", "T2")
"""Another till's drawer open before refund claims existed, with a refund paid out."""
PAID_OUT: Final = [
    a_refund(OPEN, "ref_1", payment_id="pay_1"),
    a_refund(OTHER_TILL, "ref_2", payment_id="pay_2"),
    a_refund(OPEN, "ref_3", payment_id=None),  # a refund movement that names no payment
]
"""The refunds paid out before refund claims existed, each under its refund id."""
SALE: Final = CashMovement(
    id="mov_sale",
    session_id=OPEN.id,
    kind=MovementKind.SALE,
    amount=xof(3_500),
    at=OPENED + timedelta(minutes=5),
    actor="Awa",
    reason="order 12",
    payment_id="pay_1",
    tendered=xof(5_000),
    change=xof(1_500),
)
"""A sale stored before refund claims existed: it has no claim."""


# -- give-ups and payouts racing -----------------------------------------------------------------


async def race(
    storage: DrawerStorage, refunds: Mapping[str, CashMovement], *, through: int, sent_at: int
) -> tuple[dict[str, CashMovement | None], dict[str, CashMovement | RefundGivenUp]]:
    """Start, together, a give-up (``through`` that payment version) and a payout (its call written down at
    ``sent_at``) of each of ``refunds`` (by refund id); what each returned (a payout: or raised)."""
    given_up: dict[str, CashMovement | None] = {}
    added: dict[str, CashMovement | RefundGivenUp] = {}
    start = anyio.Event()

    async def give_up(refund_id: str) -> None:
        await start.wait()
        payment_id = refunds[refund_id].payment_id or ""
        given_up[refund_id] = await storage.give_up_refund(refund_id, payment_id, through)

    async def pay_out(refund_id: str) -> None:
        await start.wait()
        try:
            added[refund_id] = await storage.add_movement(refunds[refund_id], payment_version=sent_at)
        except RefundGivenUp as refused:
            added[refund_id] = refused

    async with anyio.create_task_group() as group:
        for pair, refund_id in enumerate(refunds):
            first, then = (give_up, pay_out) if pair % 2 else (pay_out, give_up)
            group.start_soon(first, refund_id)
            group.start_soon(then, refund_id)
        await anyio.sleep(0.01)  # every task waits for the start
        start.set()
    return given_up, added


async def storm(storage: DrawerStorage, *, earlier: int | None, through: int, sent_at: int) -> dict[str, Outcome]:
    """Race, in a session opened here, :data:`ROUNDS` rounds of :data:`PAIRS` pairs (a give-up ``through`` a
    payment version and a payout by a call written down at ``sent_at`` of one refund, each pair its own refund
    id), each refund given up through ``earlier`` first unless that is ``None``; the outcome of each, by refund id.

    Checked here: each refund is paid out (and its give-up answers with the movement) or given up (and its payout
    refused, nothing stored), never both, never neither; asked again (for its payment or another), each answers
    as it did; the session holds the refunds paid out, its version counting them."""
    session = a_session()
    await storage.open_session(session)
    paid_out: list[CashMovement] = []
    outcomes: dict[str, Outcome] = {}
    for round_ in range(ROUNDS):
        refunds = {
            f"ref_{round_}_{pair}": a_refund(session, f"ref_{round_}_{pair}", payment_id=f"pay_{pair}")
            for pair in range(PAIRS)
        }
        if earlier is not None:
            for refund_id, refund in refunds.items():
                assert await storage.give_up_refund(refund_id, refund.payment_id or "", earlier) is None
        given_up, added = await race(storage, refunds, through=through, sent_at=sent_at)
        for refund_id, refund in refunds.items():
            stored = await storage.find_movement(kind=MovementKind.REFUND, refund_id=refund_id)
            if isinstance(added[refund_id], RefundGivenUp):
                assert (given_up[refund_id], stored) == (None, None), f"{refund_id}: refused, yet paid out"
                outcomes[refund_id] = ("given_up", through)
            else:
                assert added[refund_id] == refund
                assert (given_up[refund_id], stored) == (refund, refund), f"{refund_id}: paid out and given up"
                outcomes[refund_id] = ("paid_out", None)
                paid_out.append(refund)
            # Settled for good: asked again, each answers as it did.
            for payment_id in (refund.payment_id or "", "pay_x"):
                assert await storage.give_up_refund(refund_id, payment_id, through) == stored
            if stored is None:
                with pytest.raises(RefundGivenUp):
                    await storage.add_movement(refund, payment_version=sent_at)
            else:
                assert await storage.add_movement(refund, payment_version=sent_at) == stored

    movements = await storage.list_movements(session.id)
    assert sorted(m.id for m in movements) == sorted(m.id for m in paid_out)
    assert (await storage.get_session(session.id)).version == 1 + len(movements)
    return outcomes


# -- the window between a read and a write, held open on PostgreSQL ------------------------------


async def _lock_awaited(dsn: str) -> None:
    """Wait until a transaction of the PostgreSQL database at ``dsn`` waits for a lock."""
    query = "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    with psycopg.connect(dsn, autocommit=True) as connection, anyio.fail_after(10):
        while True:
            if await anyio.to_thread.run_sync(lambda: connection.execute(query).fetchone()):
                return
            await anyio.sleep(0.01)


async def while_held(commit: Callable[[], object], dsn: str, call: Callable[[], Awaitable[object]]) -> None:
    """Run ``call()`` until a transaction of the PostgreSQL database at ``dsn`` (a libpq connection string) waits
    for a lock, the one a transaction the test holds open took; then ``commit()`` that transaction (even if
    ``call`` never waited), and let ``call`` end."""
    async with anyio.create_task_group() as group:
        group.start_soon(call)
        try:
            await _lock_awaited(dsn)
        finally:  # the call waits for it: commit even if it never waited
            await anyio.to_thread.run_sync(commit)
