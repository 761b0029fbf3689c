"""``order_balance``: what an order still owes is its total minus what was paid and kept.

paid = captured - refunds that gave money back for the order; a refund marked
goodwill is a gesture and leaves the order paid.
"""

from __future__ import annotations

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore_cash.drawers import CashDrawers
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


async def test_other_orders_and_tenants_do_not_count(flow: PaymentFlow, till: str) -> None:
    await pay(flow, 5_000, order_id="T1-8")
    assert await due(flow, 5_000) == xof(5_000)
    assert await order_balance(flow, order_id="T1-8", total=xof(5_000), tenant="chez-binta") == xof(5_000)
