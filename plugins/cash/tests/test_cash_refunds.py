"""Cash refunds: out of the sale's till by default, or out of another open till the caller names,
paid by the cashier who hands the cash back; never more than the drawer holds, however they race."""

from __future__ import annotations

import anyio
import pytest

from paycore.errors import PaycoreError, ValidationError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import RefundStatus
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import InsufficientDrawerCash, InvalidCashRequest, NoOpenDrawer
from paycore_cash.records import MovementKind
from paycore_cash.sales import CashSale, refund_cash, take_cash
from paycore_cash.testing import pay_out_concurrently

pytestmark = pytest.mark.anyio

TENANT = "chez-awa"


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


async def sell_at(flow: PaymentFlow, till: str, amount: int = 4_000, order_id: str = "T1-1") -> CashSale:
    return await take_cash(
        flow, amount=xof(amount), tendered=xof(amount), till=till, order_id=order_id, tenant=TENANT, cashier="Awa"
    )


async def test_a_refund_is_paid_by_the_sales_cashier_out_of_the_sales_till_by_default(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.open(till="T2", opening_float=xof(10_000), opened_by="Moussa")
    sale = await sell_at(flow, "T1")
    refund = await flow.refund(sale.payment.id, amount=xof(1_000), tenant=TENANT)
    [_, paid] = await drawers.movements(session.id)
    assert (paid.kind, paid.amount, paid.refund_id, paid.actor) == (MovementKind.REFUND, xof(1_000), refund.id, "Awa")


async def test_a_refund_naming_another_open_till_is_paid_there_by_the_cashier_it_names(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    t1 = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    sale = await sell_at(flow, "T1")
    await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa")
    t2 = await drawers.open(till="T2", opening_float=xof(5_000), opened_by="Moussa")

    refund = await flow.refund(
        sale.payment.id,
        amount=xof(1_500),
        metadata={"till": "T2", "cashier": "Moussa"},
        tenant=TENANT,
        idempotency_key="refund-T1-1",
    )

    assert refund.status is RefundStatus.SUCCEEDED
    [paid] = await drawers.movements(t2.id)
    assert (paid.kind, paid.amount, paid.refund_id, paid.payment_id) == (
        MovementKind.REFUND,
        xof(1_500),
        refund.id,
        sale.payment.id,
    )
    assert paid.actor == "Moussa"
    assert "sold at till T1" in paid.reason
    assert (await drawers.totals(t2.id)).expected == xof(3_500)
    assert [m.kind for m in await drawers.movements(t1.id)] == [MovementKind.SALE], "the closed session never changes"
    again = await flow.refund(
        sale.payment.id,
        amount=xof(1_500),
        metadata={"till": "T2", "cashier": "Moussa"},
        tenant=TENANT,
        idempotency_key="refund-T1-1",
    )
    assert again == refund
    assert len(await drawers.movements(t2.id)) == 1


async def test_a_refund_without_a_till_whose_sales_till_is_closed_is_refused_naming_the_open_tills(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    sale = await sell_at(flow, "T1")
    await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa")
    await drawers.open(till="T3", opening_float=xof(5_000), opened_by="Moussa")
    await drawers.open(till="T2", opening_float=xof(5_000), opened_by="Binta")
    before = await flow.get_payment(sale.payment.id)
    with pytest.raises(NoOpenDrawer, match=r"till 'T1'.*is closed.*open tills: T2, T3"):
        await flow.refund(sale.payment.id, amount=xof(1_000), tenant=TENANT)
    assert await flow.get_payment(sale.payment.id) == before, "a refused refund stores nothing"


async def test_a_refund_naming_a_till_without_an_open_drawer_is_refused_and_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    sale = await sell_at(flow, "T1")
    before = await flow.get_payment(sale.payment.id)
    with pytest.raises(NoOpenDrawer, match=r"till 'T9'.*open tills: T1"):
        await flow.refund(sale.payment.id, amount=xof(1_000), metadata={"till": "T9"}, tenant=TENANT)
    assert await flow.get_payment(sale.payment.id) == before


async def test_the_pre_check_counts_the_cash_of_the_till_the_refund_names(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    t1 = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.open(till="T2", opening_float=xof(500), opened_by="Moussa")
    sale = await sell_at(flow, "T1")
    before = await flow.get_payment(sale.payment.id)
    with pytest.raises(InsufficientDrawerCash, match=r"more than the 500 XOF drawer 'T2' should hold"):
        await flow.refund(sale.payment.id, amount=xof(1_000), metadata={"till": "T2"}, tenant=TENANT)
    assert await flow.get_payment(sale.payment.id) == before
    assert [m.kind for m in await drawers.movements(t1.id)] == [MovementKind.SALE]


async def test_a_refund_naming_a_till_that_is_not_a_name_is_refused(flow: PaymentFlow, drawers: CashDrawers) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    sale = await sell_at(flow, "T1")
    with pytest.raises(InvalidCashRequest, match=r"metadata\['till'\] must name the open till.*not 42"):
        await flow.refund(sale.payment.id, amount=xof(1_000), metadata={"till": 42}, tenant=TENANT)


async def test_refund_cash_pays_out_of_the_till_it_names_by_the_cashier_it_names(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    t2 = await drawers.open(till="T2", opening_float=xof(5_000), opened_by="Moussa")
    sale = await sell_at(flow, "T1")
    refund = await refund_cash(
        flow, sale.payment.id, amount=xof(2_000), till="T2", cashier="Moussa", reason="wrong dish", tenant=TENANT
    )
    assert dict(refund.metadata) == {"till": "T2", "cashier": "Moussa"}
    [paid] = await drawers.movements(t2.id)
    assert (paid.amount, paid.actor, paid.reason) == (xof(2_000), "Moussa", "wrong dish (sold at till T1)")


async def test_refunds_racing_for_one_drawer_never_pay_out_more_than_it_holds(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(0), opened_by="Awa")
    sales = [await sell_at(flow, "T1", 1_000, order_id=f"T1-{n}") for n in range(10)]
    await drawers.pay_out(till="T1", amount=xof(7_000), reason="drop to the safe", actor="Awa")
    outcomes: list[str] = []

    async def refund(sale: CashSale) -> None:
        try:
            await flow.refund(sale.payment.id, amount=xof(1_000), tenant=TENANT)
        except PaycoreError as error:
            outcomes.append(type(error).__name__)
        else:
            outcomes.append("paid")

    async with anyio.create_task_group() as group:
        for sale in sales:
            group.start_soon(refund, sale)

    movements = await drawers.movements(session.id)
    assert outcomes.count("paid") == 3
    assert [m.kind for m in movements].count(MovementKind.REFUND) == 3
    balance = xof(0)
    for movement in movements:
        balance = balance + movement.signed_amount
        assert not balance.is_negative(), "the drawer never goes below zero"
    assert (await drawers.totals(session.id)).expected == xof(0)


async def test_twenty_pay_outs_racing_for_a_drawer_that_holds_five_store_exactly_five(drawers: CashDrawers) -> None:
    session = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    outcomes = await pay_out_concurrently(drawers, till="T1", amount=xof(1_000), times=20)
    assert outcomes == ["paid"] * 5 + ["refused"] * 15
    assert len(await drawers.movements(session.id)) == 5
    assert (await drawers.totals(session.id)).expected == xof(0)


# -- found by test_drawer_fuzz.py ----------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [{"cashier": "Moussa\ud800"}, {"cashier": "Moussa\x07"}, {"till": "T1\ud800"}, {"till": "T" * 65}],
)
async def test_a_refund_naming_a_till_or_cashier_no_storage_can_keep_is_refused_and_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers, metadata: dict[str, str]
) -> None:
    """On SQL a lone surrogate raised UnicodeEncodeError: from the check (a till), or from the REFUND movement
    after the refund was stored (a cashier), leaving it pending with its outcome unknown. The cash provider
    refuses them (InvalidCashRequest), if the core has not refused the metadata first."""
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    sale = await sell_at(flow, "T1")
    with pytest.raises(ValidationError):
        await flow.refund(sale.payment.id, amount=xof(1_000), metadata=metadata, tenant=TENANT)
    assert (await flow.get_payment(sale.payment.id)).refunds == ()
    assert [m.kind for m in await drawers.movements(session.id)] == [MovementKind.SALE]


async def test_a_keyed_refund_whose_till_app_died_before_paying_out_is_paid_out_once_by_its_retry() -> None:
    from datetime import UTC, datetime, timedelta

    from paycore_memory import MemoryIdempotencyStore

    now = [datetime(2026, 3, 2, 12, 0, tzinfo=UTC)]
    leases = [1000.0]
    config = {"tenants": {"chez-awa": {"providers": {"cash": {"type": "cash", "currency": "XOF"}}}}}
    async with PaymentFlow.from_config(config, clock=lambda: now[0], environ={}) as flow:
        flow.idempotency_store = MemoryIdempotencyStore(clock=lambda: leases[0])
        drawers = CashDrawers(flow, tenant="chez-awa")
        session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
        sale = await take_cash(flow, amount=xof(3_000), tendered=xof(3_000), till="T1", order_id="A", tenant="chez-awa")
        cash = flow.provider("cash", tenant="chez-awa")
        paying_out = anyio.Event()

        async def dies_before_paying_out(*_: object) -> None:
            paying_out.set()
            await anyio.sleep_forever()

        pays_out = cash.refund
        cash.refund = dies_before_paying_out  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                lambda: refund_cash(flow, sale.payment.id, amount=xof(1_000), tenant="chez-awa", idempotency_key="r-1")
            )
            await paying_out.wait()
            tasks.cancel_scope.cancel()  # the till app dies before the drawer's movement is written
        cash.refund = pays_out  # type: ignore[method-assign]
        waited = flow.config.idempotency_lease + flow.config.provider_timeout + 1
        leases[0] += waited
        now[0] += timedelta(seconds=waited)
        retried = await refund_cash(flow, sale.payment.id, amount=xof(1_000), tenant="chez-awa", idempotency_key="r-1")
        again = await refund_cash(flow, sale.payment.id, amount=xof(1_000), tenant="chez-awa", idempotency_key="r-1")
        paid_out = [m for m in await drawers.movements(session.id) if m.kind is MovementKind.REFUND]
    assert retried.status is RefundStatus.SUCCEEDED, "it never reached the drawer: the retry pays it out"
    assert again == retried
    assert [m.amount for m in paid_out] == [xof(1_000)]


async def test_a_poll_asked_before_a_refund_was_sent_again_does_not_fail_it() -> None:
    """A refund's till app dies while paying out; past the call's lease one refresh asks the drawer (no movement:
    never arrived) and answers late. Meanwhile another refresh fails the refund and its keyed retry sends it
    again, the drawer paying it out with the answer lost. The late answer, about the attempt before, failed the
    refund the drawer had just paid: the rest of the sale was then refunded on top, 4 000 XOF of a 3 000 sale."""
    from datetime import UTC, datetime, timedelta

    from paycore.errors import StorageError
    from paycore_memory import MemoryIdempotencyStore

    now = [datetime(2026, 3, 2, 12, 0, tzinfo=UTC)]
    leases = [1000.0]
    config = {"tenants": {TENANT: {"providers": {"cash": {"type": "cash", "currency": "XOF"}}}}}
    async with PaymentFlow.from_config(config, clock=lambda: now[0], environ={}) as flow:
        flow.idempotency_store = MemoryIdempotencyStore(clock=lambda: leases[0])
        drawers = CashDrawers(flow, tenant=TENANT)
        session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
        sale = await sell_at(flow, "T1", amount=3_000)
        pid = sale.payment.id
        cash = flow.provider("cash", tenant=TENANT)
        paying_out = anyio.Event()

        async def dies_while_paying_out(*_: object) -> None:
            paying_out.set()
            await anyio.sleep_forever()

        pays_out, asks, adds = cash.refund, cash.check_status, cash.storage.add_movement
        cash.refund = dies_while_paying_out  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: refund_cash(flow, pid, amount=xof(1_000), tenant=TENANT, idempotency_key="r-1"))
            await paying_out.wait()
            tasks.cancel_scope.cancel()
        cash.refund = pays_out  # type: ignore[method-assign]
        waited = flow.config.idempotency_lease + flow.config.provider_timeout + 1
        leases[0] += waited
        now[0] += timedelta(seconds=waited)
        asked, answer_now = anyio.Event(), anyio.Event()

        async def answers_late(payment: object) -> object:
            cash.check_status = asks  # type: ignore[method-assign]
            answer = await asks(payment)  # type: ignore[arg-type]
            asked.set()
            await answer_now.wait()
            return answer

        async def answer_lost(movement: object, **kwargs: object) -> object:
            await adds(movement, **kwargs)  # type: ignore[arg-type]
            raise StorageError("the drawer's database went away after its commit")

        cash.check_status = answers_late  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: flow.refresh(pid, tenant=TENANT))
            await asked.wait()
            await flow.refresh(pid, tenant=TENANT)
            cash.storage.add_movement = answer_lost  # type: ignore[method-assign]
            retried = await refund_cash(flow, pid, amount=xof(1_000), tenant=TENANT, idempotency_key="r-1")
            cash.storage.add_movement = adds  # type: ignore[method-assign]
            answer_now.set()
        late = await flow.get_payment(pid, tenant=TENANT)
        rest = await refund_cash(flow, pid, tenant=TENANT, idempotency_key="r-2")
        paid_out = [m.amount for m in await drawers.movements(session.id) if m.kind is MovementKind.REFUND]
    assert retried.status is RefundStatus.PENDING  # the drawer paid it out; its answer was lost
    assert [r.status for r in late.refunds] == [RefundStatus.PENDING], "the late answer failed the refund paid out"
    assert (rest.amount, paid_out) == (xof(2_000), [xof(1_000), xof(2_000)])
