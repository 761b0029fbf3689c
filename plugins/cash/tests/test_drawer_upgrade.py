"""Drawer operations keyed under the release of November 2026, retried after an upgrade.

That release kept a drawer's keys in another key space and named its records
after the key alone (``paycore_cash.earlier_release``). The records below are
written as it wrote them; a retry of each request under its key must find what
its first attempt did, whatever the till has done since, and never record it
again in the drawer open now, nor close that drawer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest
from attrs import evolve

from paycore.errors import IdempotencyKeyReused
from paycore.flow import PaymentFlow
from paycore.keys import fingerprint, scope_of
from paycore.money import Money
from paycore_cash.drawers import CashDrawers
from paycore_cash.earlier_release import earlier_movement_id, earlier_session_id
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind

from .conftest import TENANT, xof

pytestmark = pytest.mark.anyio


async def _the_earlier_release_s_shift(flow: PaymentFlow, drawers: CashDrawers) -> DrawerSession:
    """Awa's shift as the earlier release stored it: opened under ``open-a``, 5000 paid out under ``po-1``,
    closed under ``close-a`` with 15000 counted. Returns her closed session."""
    now = flow.now() - timedelta(minutes=30)
    session = DrawerSession(
        id=earlier_session_id(TENANT, "open-a"),
        tenant=TENANT,
        till="T1",
        currency="XOF",
        opening_float=xof(20000),
        opened_by="Awa",
        opened_at=now,
    )
    await drawers.storage.open_session(session)
    drop = CashMovement(
        id=earlier_movement_id(TENANT, "po-1"),
        session_id=session.id,
        kind=MovementKind.PAY_OUT,
        amount=xof(5000),
        at=now,
        actor="Awa",
        reason="drop",
    )
    await drawers.storage.add_movement(drop)
    session = await drawers.get(session.id)
    closed = evolve(
        session,
        status=DrawerStatus.CLOSED,
        closed_by="Awa",
        closed_at=now,
        counted=xof(15000),
        expected=xof(15000),
        variance=xof(0),
        version=session.version + 1,
    )
    await drawers.storage.close_session(closed)
    store, scope = flow.idempotency_store, f"{scope_of(TENANT)}|cash-drawer"
    request = {"till": "T1", "session_id": None, "counted": str(xof(15000)), "closed_by": "Awa"}
    claim = await store.claim(
        scope=scope, key="close-a", fingerprint=fingerprint("cash.close", request), lease_seconds=60
    )
    assert claim.token is not None
    await store.complete(
        scope=scope, key="close-a", token=claim.token, result={"session_id": closed.id}, ttl_seconds=600
    )
    return closed


async def test_retries_of_an_earlier_release_s_shift_find_what_it_did_and_leave_the_next_drawer_alone(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    awa = await _the_earlier_release_s_shift(flow, drawers)
    bo = await drawers.open(till="T1", opening_float=xof(10000), opened_by="Bo")

    opened = await drawers.open(till="T1", opening_float=xof(20000), opened_by="Awa", idempotency_key="open-a")
    drop = await drawers.pay_out(till="T1", amount=xof(5000), reason="drop", actor="Awa", idempotency_key="po-1")
    closed = await drawers.close(till="T1", counted=xof(15000), closed_by="Awa", idempotency_key="close-a")

    assert opened.id == drop.session_id == closed.id == awa.id
    assert (closed.counted, closed.closed_by) == (xof(15000), "Awa")
    now = await drawers.require_open("T1")
    assert (now.id, now.status) == (bo.id, DrawerStatus.OPEN)
    assert await drawers.movements(bo.id) == []
    assert (await drawers.totals(bo.id)).expected == xof(10000)


async def test_another_close_under_an_earlier_release_s_key_is_refused_and_closes_nothing(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    await _the_earlier_release_s_shift(flow, drawers)
    bo = await drawers.open(till="T1", opening_float=xof(10000), opened_by="Bo")
    with pytest.raises(IdempotencyKeyReused):
        await drawers.close(till="T1", counted=Money.of("9000", "XOF"), closed_by="Bo", idempotency_key="close-a")
    assert (await drawers.require_open("T1")).id == bo.id


async def test_a_keyed_close_cancelled_while_it_asks_the_earlier_key_space_leaves_its_retry_free(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    """Looking for an earlier release's close takes its key there for a moment: a caller cancelled then (a client
    gone) must not leave that key held for its lease, refusing every retry of the close meanwhile."""
    await drawers.open(till="T1", opening_float=xof(20000), opened_by="Awa")
    store = drawers.idempotency.store
    release = store.release

    async def over_the_network(**asked: Any) -> None:
        await anyio.sleep(0.05)
        await release(**asked)

    store.release = over_the_network  # type: ignore[method-assign]
    with anyio.move_on_after(0.02) as scope:
        await drawers.close(till="T1", counted=xof(20000), closed_by="Awa", idempotency_key="close-a")
    assert scope.cancelled_caught
    store.release = release  # type: ignore[method-assign]
    closed = await drawers.close(till="T1", counted=xof(20000), closed_by="Awa", idempotency_key="close-a")
    assert (closed.status, closed.counted) == (DrawerStatus.CLOSED, xof(20000))


async def test_a_probe_left_behind_by_a_killed_process_does_not_refuse_the_retry_of_the_close_made(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    """A close under a key, then another request under it (another count) in a process killed while it looked
    for an earlier release's close: its claim of the earlier key space stayed behind, and every retry of the
    close the key made was refused as another request, for good on SQL. The close made is found first."""
    await drawers.open(till="T1", opening_float=xof(20000), opened_by="Awa")
    closed = await drawers.close(till="T1", counted=xof(20000), closed_by="Awa", idempotency_key="close-a")
    other = {"till": "T1", "session_id": None, "counted": str(xof(0)), "closed_by": "Awa"}
    await drawers.idempotency.store.claim(  # what the killed process left: claimed, never let go
        scope=f"{scope_of(TENANT)}|cash-drawer",
        key="close-a",
        fingerprint=fingerprint("cash.close", other),
        lease_seconds=0.001,
    )
    await anyio.sleep(0.01)
    again = await drawers.close(till="T1", counted=xof(20000), closed_by="Awa", idempotency_key="close-a")
    assert again == closed
    with pytest.raises(IdempotencyKeyReused):
        await drawers.close(till="T1", counted=xof(0), closed_by="Awa", idempotency_key="close-a")
