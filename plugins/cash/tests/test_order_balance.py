"""``order_balance``: what an order still owes is its total minus what was paid and kept.

paid = captured - refunds that gave money back for the order; a refund marked
goodwill is a gesture and leaves the order paid. ``order_id`` names one order
of the tenant; when order numbers restart, ``since`` counts only the payments
made since they restarted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import InvalidCashRequest
from paycore_cash.sales import order_balance, refund_cash, take_cash

pytestmark = pytest.mark.anyio

TENANT = "chez-awa"


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


@pytest.fixture
async def till(drawers: CashDrawers) -> str:
    await drawers.open(till="T1", opening_float=xof(20_000), opened_by="Awa")
    return "T1"


async def due(flow: PaymentFlow, total: int, order_id: str = "T1-9") -> Money:
    return await order_balance(flow, order_id=order_id, total=xof(total), tenant=TENANT)


async def pay(flow: PaymentFlow, amount: int, *, total: int | None = None, order_id: str = "T1-9") -> str:
    sale = await take_cash(
        flow,
        amount=xof(total if total is not None else amount),
        tendered=xof(amount),
        till="T1",
        order_id=order_id,
        tenant=TENANT,
        split_tender=total is not None,
    )
    return sale.payment.id


async def test_a_split_bill_is_due_until_its_last_part_is_paid(flow: PaymentFlow, till: str) -> None:
    assert await due(flow, 12_000) == xof(12_000)
    await pay(flow, 5_000, total=12_000)
    assert await due(flow, 12_000) == xof(7_000)
    await pay(flow, 7_000, total=7_000)
    assert await due(flow, 12_000) == xof(0)


async def test_a_fully_refunded_order_is_due_again(flow: PaymentFlow, till: str) -> None:
    payment_id = await pay(flow, 5_000)
    assert await due(flow, 5_000) == xof(0)
    await refund_cash(flow, payment_id, tenant=TENANT)
    assert await due(flow, 5_000) == xof(5_000)


async def test_a_partial_goodwill_refund_leaves_the_order_paid(flow: PaymentFlow, till: str) -> None:
    payment_id = await pay(flow, 5_000)
    await refund_cash(flow, payment_id, amount=xof(1_000), reason="the soup was cold", goodwill=True, tenant=TENANT)
    assert await due(flow, 5_000) == xof(0)


async def test_a_refund_marked_goodwill_through_the_flow_leaves_the_order_paid(flow: PaymentFlow, till: str) -> None:
    payment_id = await pay(flow, 5_000)
    await flow.refund(payment_id, amount=xof(1_000), metadata={"goodwill": True}, tenant=TENANT)
    assert await due(flow, 5_000) == xof(0)


async def test_a_partial_refund_not_marked_goodwill_is_owed_again(flow: PaymentFlow, till: str) -> None:
    payment_id = await pay(flow, 5_000)
    await refund_cash(flow, payment_id, amount=xof(1_000), reason="paid with the wrong note", tenant=TENANT)
    await refund_cash(flow, payment_id, amount=xof(500), goodwill=True, tenant=TENANT)
    assert await due(flow, 5_000) == xof(1_000)


@pytest.mark.parametrize("goodwill", ["False", "no", 1, None])
async def test_a_goodwill_that_is_not_true_or_false_is_refused_and_refunds_nothing(
    flow: PaymentFlow, till: str, goodwill: Any
) -> None:
    payment_id = await pay(flow, 5_000)
    with pytest.raises(InvalidCashRequest, match="goodwill must be True or False"):
        await refund_cash(flow, payment_id, amount=xof(1_000), goodwill=goodwill, tenant=TENANT)
    assert (await flow.get_payment(payment_id, tenant=TENANT)).refunds == ()
    assert await due(flow, 5_000) == xof(0)


@pytest.mark.parametrize("goodwill", ["False", "true", 1])
async def test_a_goodwill_mark_through_the_flow_that_is_not_true_or_false_is_refused(
    flow: PaymentFlow, till: str, goodwill: Any
) -> None:
    payment_id = await pay(flow, 5_000)
    with pytest.raises(InvalidCashRequest, match=r"metadata\['goodwill'\] must be True or False"):
        await flow.refund(payment_id, amount=xof(1_000), metadata={"goodwill": goodwill}, tenant=TENANT)
    assert (await flow.get_payment(payment_id, tenant=TENANT)).refunds == ()


async def test_other_orders_and_tenants_do_not_count(flow: PaymentFlow, till: str) -> None:
    await pay(flow, 5_000, order_id="T1-8")
    assert await due(flow, 5_000) == xof(5_000)
    assert await order_balance(flow, order_id="T1-8", total=xof(5_000), tenant="chez-binta") == xof(5_000)


# -- order numbers that restart: ``since`` -------------------------------------------------------


class Clock:
    """The flow's clock, moved by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 12, 4, 19, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


async def test_an_order_number_used_again_the_next_day_is_owed_in_full_since_the_new_day(
    database_url: str, cash_config: Any
) -> None:
    clock = Clock()
    config = cash_config(currency="XOF") | {"repository": database_url}
    async with PaymentFlow.from_config(config, clock=clock.now) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        await drawers.open(till="T1", opening_float=xof(0), opened_by="Awa")
        await take_cash(flow, amount=xof(9_000), tendered=xof(9_000), till="T1", order_id="T1-0005", tenant=TENANT)
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa")
        clock.at += timedelta(hours=14)  # the next morning: order numbers start again from T1-0001
        today = await drawers.open(till="T1", opening_float=xof(0), opened_by="Awa")
        since = today.opened_at

        async def owed() -> Money:
            return await order_balance(flow, order_id="T1-0005", total=xof(9_000), tenant=TENANT, since=since)

        assert await owed() == xof(9_000)
        await take_cash(
            flow,
            amount=xof(9_000),
            tendered=xof(5_000),
            till="T1",
            order_id="T1-0005",
            tenant=TENANT,
            split_tender=True,
        )
        assert await owed() == xof(4_000)
        # without since, order_id names one order whatever its day: yesterday's T1-0005 counts too
        assert await due(flow, 9_000, order_id="T1-0005") == xof(0)
        # since may be in any time zone
        midnight_utc_minus_one = datetime(2026, 12, 5, tzinfo=timezone(timedelta(hours=-1)))
        assert await order_balance(
            flow, order_id="T1-0005", total=xof(9_000), tenant=TENANT, since=midnight_utc_minus_one
        ) == xof(4_000)


@pytest.mark.parametrize("since", [datetime(2026, 12, 5), "2026-12-05", 1_764_892_800, date(2026, 12, 5)])
async def test_a_since_that_is_not_a_timezone_aware_datetime_is_refused(flow: PaymentFlow, since: Any) -> None:
    with pytest.raises(InvalidCashRequest, match="since must be a timezone-aware datetime"):
        await order_balance(flow, order_id="T1-9", total=xof(5_000), tenant=TENANT, since=since)
