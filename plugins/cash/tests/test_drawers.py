"""Opening, filling, emptying and closing drawers through ``CashDrawers``; bad input changes nothing."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from paycore.errors import FlowClosed, IdempotencyInProgress, IdempotencyKeyReused
from paycore.flow import PaymentFlow
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.status import PaymentStatus
from paycore_cash import take_cash
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import (
    DrawerAlreadyOpen,
    DrawerClosed,
    DrawerNotFound,
    ForeignCurrency,
    InsufficientDrawerCash,
    InvalidCashRequest,
    NoOpenDrawer,
)
from paycore_cash.records import DrawerStatus, MovementKind

from .conftest import cash_config

pytestmark = pytest.mark.anyio


def xof(amount: str | int) -> Money:
    return Money.of(str(amount), "XOF")


async def test_an_opened_drawer_is_the_tills_current_session(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    assert await drawers.current("T1") == session
    assert session.status is DrawerStatus.OPEN
    assert (session.tenant, session.till, session.opening_float, session.opened_by) == (
        "chez-awa",
        "T1",
        xof(10_000),
        "Awa",
    )


async def test_a_second_open_of_a_till_is_refused(drawers: CashDrawers) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    with pytest.raises(DrawerAlreadyOpen, match="T1"):
        await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Binta")
    assert await drawers.sessions() == [first]


async def test_a_negative_float_is_refused_and_opens_nothing(drawers: CashDrawers) -> None:
    with pytest.raises(InvalidCashRequest, match="-500 XOF"):
        await drawers.open(till="T1", opening_float=xof(-500), opened_by="Awa")
    assert await drawers.sessions() == []


async def test_a_float_in_a_foreign_currency_is_refused_and_opens_nothing(drawers: CashDrawers) -> None:
    with pytest.raises(ForeignCurrency, match=r"EUR.*XOF"):
        await drawers.open(till="T1", opening_float=Money.of("100", "EUR"), opened_by="Awa")
    assert await drawers.sessions() == []


async def test_a_float_given_as_a_number_is_refused(drawers: CashDrawers) -> None:
    with pytest.raises(InvalidCashRequest, match="Money"):
        await drawers.open(till="T1", opening_float=10_000, opened_by="Awa")  # type: ignore[arg-type]
    assert await drawers.sessions() == []


async def test_a_blank_cashier_name_is_refused(drawers: CashDrawers) -> None:
    with pytest.raises(InvalidCashRequest, match="opened_by"):
        await drawers.open(till="T1", opening_float=xof(0), opened_by="  ")
    assert await drawers.sessions() == []


async def test_drawers_without_a_configured_currency_take_the_floats(cash_config: object) -> None:
    async with PaymentFlow.from_config(cash_config()) as flow:  # type: ignore[operator]
        drawers = CashDrawers(flow, tenant="chez-awa")
        session = await drawers.open(till="T1", opening_float=Money.of("150.50", "EUR"), opened_by="Awa")
        await drawers.pay_in(till="T1", amount=Money.of("20.25", "EUR"), reason="coins", actor="Awa")
        with pytest.raises(ForeignCurrency):
            await drawers.pay_in(till="T1", amount=xof(500), reason="coins", actor="Awa")
        totals = await drawers.totals(session.id)
    assert totals.expected == Money.of("170.75", "EUR")


@pytest.mark.parametrize("currency", [["XOF"], {"XOF": 1}, 5, "xof", "ZZZ"])
async def test_a_currency_that_is_not_a_currency_code_is_refused(flow: PaymentFlow, currency: object) -> None:
    with pytest.raises(InvalidCashRequest, match="currency must be an ISO 4217 currency code"):
        CashDrawers(flow, tenant="chez-awa", currency=currency)  # type: ignore[arg-type]


async def test_pay_ins_and_pay_outs_change_what_the_drawer_should_hold(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.pay_in(till="T1", amount=xof(5_000), reason="float top-up", actor="Moussa")
    await drawers.pay_out(till="T1", amount=xof(12_000), reason="drop to the safe", actor="Awa")
    totals = await drawers.totals(session.id)
    assert (totals.pay_ins, totals.pay_outs, totals.expected) == (xof(5_000), xof(12_000), xof(3_000))
    kinds = [m.kind for m in await drawers.movements(session.id)]
    assert kinds == [MovementKind.PAY_IN, MovementKind.PAY_OUT]


async def test_a_pay_out_needs_a_reason(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    with pytest.raises(InvalidCashRequest, match="reason"):
        await drawers.pay_out(till="T1", amount=xof(1_000), reason="", actor="Awa")
    assert await drawers.movements(session.id) == []


async def test_a_pay_out_above_the_cash_in_the_drawer_is_refused(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    with pytest.raises(InsufficientDrawerCash, match="10000 XOF"):
        await drawers.pay_out(till="T1", amount=xof(10_001), reason="drop", actor="Awa")
    assert await drawers.movements(session.id) == []


async def test_a_pay_in_with_the_drawer_closed_is_refused(drawers: CashDrawers) -> None:
    with pytest.raises(NoOpenDrawer, match="T1"):
        await drawers.pay_in(till="T1", amount=xof(1_000), reason="top-up", actor="Awa")


async def test_closing_stores_expected_and_variance(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.pay_in(till="T1", amount=xof(2_500), reason="top-up", actor="Awa")
    await drawers.pay_out(till="T1", amount=xof(4_000), reason="drop", actor="Awa")
    closed = await drawers.close(till="T1", counted=xof(8_000), closed_by="Awa")
    assert closed.id == session.id
    assert closed.status is DrawerStatus.CLOSED
    assert (closed.expected, closed.counted, closed.variance) == (xof(8_500), xof(8_000), xof(-500))
    assert await drawers.current("T1") is None
    assert await drawers.get(session.id) == closed


async def test_closing_twice_is_refused_and_changes_nothing(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    closed = await drawers.close(session_id=session.id, counted=xof(10_000), closed_by="Awa")
    with pytest.raises(DrawerClosed, match="closed already"):
        await drawers.close(session_id=session.id, counted=xof(9_000), closed_by="Binta")
    assert await drawers.get(session.id) == closed


async def test_closing_a_till_with_no_open_drawer_is_refused(drawers: CashDrawers) -> None:
    with pytest.raises(NoOpenDrawer):
        await drawers.close(till="T1", counted=xof(0), closed_by="Awa")


async def test_a_closed_session_takes_no_more_cash(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa")
    with pytest.raises(NoOpenDrawer):
        await drawers.pay_in(till="T1", amount=xof(500), reason="late top-up", actor="Awa")
    assert await drawers.movements(session.id) == []


async def test_a_close_counts_a_movement_that_lands_while_it_runs(drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    storage = drawers.storage
    real_list = storage.list_movements
    sneaked = False

    async def list_then_pay_in(session_id: str) -> list:  # type: ignore[type-arg]
        nonlocal sneaked
        found = await real_list(session_id)
        if not sneaked:
            sneaked = True
            await drawers.pay_in(till="T1", amount=xof(1_000), reason="top-up", actor="Moussa")
        return found

    storage.list_movements = list_then_pay_in  # type: ignore[method-assign]
    try:
        closed = await drawers.close(till="T1", counted=xof(11_000), closed_by="Awa")
    finally:
        del storage.list_movements  # type: ignore[attr-defined]
    assert (closed.expected, closed.variance) == (xof(11_000), xof(0))


async def test_a_repeated_open_with_its_key_returns_the_same_session(drawers: CashDrawers) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="open-1")
    again = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="open-1")
    assert again == first
    assert await drawers.sessions() == [first]


async def test_an_open_key_reused_for_another_float_is_refused(drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="open-1")
    with pytest.raises(IdempotencyKeyReused):
        await drawers.open(till="T1", opening_float=xof(20_000), opened_by="Awa", idempotency_key="open-1")


async def test_concurrent_opens_with_one_key_open_one_session(drawers: CashDrawers) -> None:
    results = []
    busy = 0

    async def open_it() -> None:
        nonlocal busy
        try:
            opened = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="open-1")
        except IdempotencyInProgress:
            busy += 1  # the first request under the key was still running: refused, never run twice
        else:
            results.append(opened)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(open_it)
    await open_it()
    assert len(results) + busy == 11
    assert len(await drawers.sessions()) == 1
    assert results == [await drawers.current("T1")] * len(results) != []


async def test_a_repeated_pay_out_with_its_key_is_recorded_once(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    first = await drawers.pay_out(till="T1", amount=xof(6_000), reason="drop", actor="Awa", idempotency_key="d1")
    again = await drawers.pay_out(till="T1", amount=xof(6_000), reason="drop", actor="Awa", idempotency_key="d1")
    assert again == first
    assert (await drawers.totals(session.id)).pay_outs == xof(6_000)


async def test_a_pay_out_retried_after_closing_replays_instead_of_failing(drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    first = await drawers.pay_out(till="T1", amount=xof(6_000), reason="drop", actor="Awa", idempotency_key="d1")
    await drawers.close(till="T1", counted=xof(4_000), closed_by="Awa")
    again = await drawers.pay_out(till="T1", amount=xof(6_000), reason="drop", actor="Awa", idempotency_key="d1")
    assert again == first


async def test_a_pay_out_key_reused_for_another_amount_is_refused(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.pay_out(till="T1", amount=xof(6_000), reason="drop", actor="Awa", idempotency_key="d1")
    with pytest.raises(IdempotencyKeyReused):
        await drawers.pay_out(till="T1", amount=xof(1_000), reason="drop", actor="Awa", idempotency_key="d1")
    assert (await drawers.totals(session.id)).pay_outs == xof(6_000)


async def test_a_repeated_close_with_its_key_returns_the_closed_session(drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    first = await drawers.close(till="T1", counted=xof(9_500), closed_by="Awa", idempotency_key="close-1")
    again = await drawers.close(till="T1", counted=xof(9_500), closed_by="Awa", idempotency_key="close-1")
    assert again == first


async def test_a_repeated_close_never_closes_the_next_session(drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    first = await drawers.close(till="T1", counted=xof(9_500), closed_by="Awa", idempotency_key="close-1")
    second = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Binta")
    await drawers.close(till="T1", counted=xof(9_500), closed_by="Awa", idempotency_key="close-1")
    assert await drawers.current("T1") == second
    assert (await drawers.get(first.id)).status is DrawerStatus.CLOSED


async def test_the_same_till_in_two_tenants_is_two_drawers(flow: PaymentFlow) -> None:
    awa = CashDrawers(flow, tenant="chez-awa")
    binta = CashDrawers(flow, tenant="chez-binta")
    mine = await awa.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    theirs = await binta.open(till="T1", opening_float=xof(3_000), opened_by="Binta")
    await binta.pay_out(till="T1", amount=xof(3_000), reason="drop", actor="Binta")
    assert (await awa.totals(mine.id)).expected == xof(10_000)
    assert await awa.sessions() == [mine]
    with pytest.raises(DrawerNotFound):
        await awa.get(theirs.id)


async def test_a_keyed_close_refused_for_its_count_may_be_retried_with_the_key(drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    with pytest.raises(ForeignCurrency):
        await drawers.close(till="T1", counted=Money.of("10", "EUR"), closed_by="Awa", idempotency_key="c1")
    with pytest.raises(NoOpenDrawer):
        await drawers.close(till="T2", counted=xof(10_000), closed_by="Awa", idempotency_key="c2")
    closed = await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa", idempotency_key="c2")
    assert closed.variance == xof(0)


async def test_a_pay_in_key_reused_for_a_pay_out_is_refused(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.pay_in(till="T1", amount=xof(1_000), reason="coins", actor="Awa", idempotency_key="m1")
    with pytest.raises(IdempotencyKeyReused):
        await drawers.pay_out(till="T1", amount=xof(1_000), reason="coins", actor="Awa", idempotency_key="m1")
    assert (await drawers.totals(session.id)).expected == xof(11_000)


# -- found by test_drawer_fuzz.py ----------------------------------------------------------------


async def test_amounts_past_a_bigint_are_refused_and_change_nothing(drawers: CashDrawers) -> None:
    """A float, pay-in or count of more than 2**63 - 1 minor units was taken (the SQL storage then raised
    a bare OverflowError); now refused like any bad amount."""
    too_much = Money.minor(MAX_MINOR_UNITS + 1, "XOF")
    with pytest.raises(InvalidCashRequest, match="at most"):
        await drawers.open(till="T1", opening_float=too_much, opened_by="Awa")
    assert await drawers.sessions() == []
    session = await drawers.open(till="T1", opening_float=xof(100), opened_by="Awa")
    with pytest.raises(InvalidCashRequest, match="at most"):
        await drawers.pay_in(till="T1", amount=too_much, reason="coins", actor="Awa")
    with pytest.raises(InvalidCashRequest, match="at most"):
        await drawers.close(till="T1", counted=too_much, closed_by="Awa")
    assert await drawers.movements(session.id) == []
    assert await drawers.get(session.id) == session


async def test_a_drawer_that_should_hold_more_than_a_bigint_pays_the_excess_out_before_it_closes(
    drawers: CashDrawers,
) -> None:
    """No storage can record such an ``expected``: the close is refused (it was stored on memory, and raised
    OverflowError on SQL every time, so the drawer never closed), naming what to pay out."""
    session = await drawers.open(till="T1", opening_float=Money.minor(MAX_MINOR_UNITS, "XOF"), opened_by="Awa")
    await drawers.pay_in(till="T1", amount=xof(5), reason="coins", actor="Awa")
    with pytest.raises(InvalidCashRequest, match="pay out at least 5 XOF"):
        await drawers.close(till="T1", counted=xof(0), closed_by="Awa")
    assert (await drawers.get(session.id)).is_open
    await drawers.pay_out(till="T1", amount=xof(5), reason="drop to the safe", actor="Awa")
    closed = await drawers.close(till="T1", counted=Money.minor(MAX_MINOR_UNITS, "XOF"), closed_by="Awa")
    assert (closed.expected, closed.variance) == (Money.minor(MAX_MINOR_UNITS, "XOF"), xof(0))


async def test_a_till_name_longer_than_storage_keeps_is_refused(drawers: CashDrawers) -> None:
    """Tills are stored in 64 characters; a longer name (up to 200 was taken) failed on PostgreSQL."""
    with pytest.raises(InvalidCashRequest, match="64 characters"):
        await drawers.open(till="T" * 65, opening_float=xof(0), opened_by="Awa")
    assert await drawers.sessions() == []
    assert (await drawers.open(till="T" * 64, opening_float=xof(0), opened_by="Awa")).till == "T" * 64


@pytest.mark.parametrize("session_id", [["drw"], {"id": 1}, b"drw", "", "drw_\ud800", "drw_\x00", "d" * 65])
async def test_a_session_id_that_cannot_name_a_session_is_not_found(drawers: CashDrawers, session_id: object) -> None:
    """A list or dict raised TypeError (memory) or a database error (SQL); text no database keeps, too."""
    for read in (drawers.get, drawers.movements, drawers.totals, drawers.report):
        with pytest.raises(DrawerNotFound):
            await read(session_id)  # type: ignore[arg-type]
    with pytest.raises(DrawerNotFound):
        await drawers.close(session_id=session_id, counted=xof(0), closed_by="Awa", idempotency_key="c1")  # type: ignore[arg-type]


@pytest.mark.parametrize("till", ["", "T\u202e", ["T1"], "T" * 65])
async def test_listing_the_sessions_of_a_till_that_cannot_be_named_is_refused(
    drawers: CashDrawers, till: object
) -> None:
    """``sessions(till)`` listed nothing for a bad till (and raised a database error for a list on SQL)."""
    with pytest.raises(InvalidCashRequest, match="till"):
        await drawers.sessions(till)  # type: ignore[arg-type]


async def test_a_closed_flow_changes_no_drawer(flow: PaymentFlow, drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await flow.aclose()
    with pytest.raises(FlowClosed):
        await drawers.pay_in(till="T1", amount=xof(1_000), reason="top-up", actor="Awa", idempotency_key="p1")
    with pytest.raises(FlowClosed):
        await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa")
    assert (await drawers.get(session.id)).status is DrawerStatus.OPEN


async def test_a_drawer_opened_while_a_sale_is_checked_takes_the_sale(flow: PaymentFlow, drawers: CashDrawers) -> None:
    provider = flow.provider("cash", tenant=drawers.tenant)
    check_payment = provider.check_payment

    async def open_then_check(payment: Any) -> None:  # the manager opens the till as the cashier rings up
        await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
        await check_payment(payment)

    provider.check_payment = open_then_check  # type: ignore[method-assign]
    sale = await take_cash(
        flow, amount=xof(2_500), tendered=xof(5_000), till="T1", order_id="o1", tenant=drawers.tenant
    )
    assert sale.payment.status is PaymentStatus.SUCCEEDED
    provider.check_payment = check_payment  # type: ignore[method-assign]


async def test_closing_the_flow_lets_a_drawer_change_under_way_finish(sqlite_url: str) -> None:
    config = {**cash_config(currency="XOF"), "repository": sqlite_url}  # a store that refuses all once closed
    flow = PaymentFlow.from_config(config)
    async with flow:
        drawers = CashDrawers(flow, tenant="chez-awa")
        session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
        storage = drawers.storage
        add_movement, adding = storage.add_movement, anyio.Event()

        async def slow_add(*args: Any, **kwargs: Any) -> Any:
            adding.set()
            await anyio.sleep(0.2)
            return await add_movement(*args, **kwargs)

        storage.add_movement = slow_add  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: drawers.pay_in(till="T1", amount=xof(1_000), reason="top-up", actor="Awa"))
            await adding.wait()
            await flow.aclose()  # waits for the pay-in before it closes the stores
    async with PaymentFlow.from_config(config) as reopened:
        movements = await CashDrawers(reopened, tenant="chez-awa").movements(session.id)
    assert [movement.amount for movement in movements] == [xof(1_000)]
