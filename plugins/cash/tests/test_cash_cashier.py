"""The cashier a cash sale names and the messages refusing a till or a cashier, as ``flow`` callers see them.

A sale's ``metadata["cashier"]`` follows the rule a refund's does: a non-blank printable name,
recorded whole as the SALE movement's actor, or the sale is refused before anything is stored.
An error quoting a bad till or cashier shows it shortened, however long it is.
"""

from __future__ import annotations

from typing import Any

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import InvalidCashRequest
from paycore_cash.records import MovementKind

pytestmark = pytest.mark.anyio

TENANT = "chez-awa"
HUGE = "x" * 60_000  # long, within the 64 KiB metadata a payment may hold
SHORT_MESSAGE = 300
"""Longer than any message refusing a till or a cashier, far shorter than the value quoted."""


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


async def sell(flow: PaymentFlow, **metadata: Any) -> str:
    """Sell 1 000 XOF at till ``T1`` with ``metadata``; the payment's id."""
    checkout = await flow.create_payment(
        amount=xof(1_000), provider="cash", order_id="o", tenant=TENANT, metadata={"till": "T1", **metadata}
    )
    return checkout.payment.id


@pytest.mark.parametrize("cashier", [5, ["Awa"], "", "   ", "N" * 201, HUGE])
async def test_a_sale_naming_a_cashier_that_is_not_a_name_is_refused_and_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers, cashier: object
) -> None:
    """It was taken with no one (a number, a list, a blank) or a name cut to 200 characters as its actor."""
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    with pytest.raises(InvalidCashRequest, match=r"metadata\['cashier'\] must name who took it") as refused:
        await sell(flow, cashier=cashier)
    assert len(str(refused.value)) < SHORT_MESSAGE
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session.id) == []


@pytest.mark.parametrize(
    ("metadata", "actor"), [({}, ""), ({"cashier": " Awa "}, "Awa"), ({"cashier": "N" * 200}, "N" * 200)]
)
async def test_a_sale_records_the_cashier_it_names_whole_or_no_one_when_it_names_none(
    flow: PaymentFlow, drawers: CashDrawers, metadata: dict[str, str], actor: str
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    payment_id = await sell(flow, **metadata)
    [sale] = await drawers.movements(session.id)
    assert (sale.kind, sale.payment_id, sale.actor) == (MovementKind.SALE, payment_id, actor)


@pytest.mark.parametrize("till", [HUGE, [HUGE], {"till": HUGE}])
async def test_a_sale_at_a_till_that_is_not_a_name_is_refused_quoting_it_shortened(
    flow: PaymentFlow, drawers: CashDrawers, till: object
) -> None:
    """The message quoted the whole value: 100 000 characters of it."""
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    with pytest.raises(
        InvalidCashRequest, match=r"needs metadata\['till'\] naming the till .*, not .*x\.\.\."
    ) as refused:
        await sell(flow, till=till)
    assert len(str(refused.value)) < SHORT_MESSAGE


@pytest.mark.parametrize(
    ("metadata", "refusal"),
    [
        ({"till": HUGE}, r"metadata\['till'\] must name the open till"),
        ({"cashier": [HUGE]}, r"metadata\['cashier'\] must name who pays it out"),
        ({"cashier": HUGE + "\x1b"}, r"metadata\['cashier'\] must name who pays it out"),
    ],
)
async def test_a_refund_naming_a_bad_till_or_cashier_is_refused_quoting_it_shortened(
    flow: PaymentFlow, drawers: CashDrawers, metadata: dict[str, object], refusal: str
) -> None:
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    payment_id = await sell(flow, cashier="Awa")
    with pytest.raises(InvalidCashRequest, match=rf"^refund .*: {refusal} .*, not .*x\.\.\.") as refused:
        await flow.refund(payment_id, amount=xof(100), metadata=metadata, tenant=TENANT)
    assert len(str(refused.value)) < SHORT_MESSAGE
    assert (await flow.get_payment(payment_id, tenant=TENANT)).refunds == ()


@pytest.mark.parametrize("cashier", ["N" * 201, HUGE])
async def test_a_refund_naming_a_cashier_longer_than_a_sale_may_is_refused_and_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers, cashier: str
) -> None:
    """It was paid out with the name cut to 200 characters, where a sale naming it is refused."""
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    payment_id = await sell(flow, cashier="Awa")
    with pytest.raises(InvalidCashRequest, match=r"metadata\['cashier'\] must name who pays it out") as refused:
        await flow.refund(payment_id, amount=xof(100), metadata={"cashier": cashier}, tenant=TENANT)
    assert len(str(refused.value)) < SHORT_MESSAGE
    assert (await flow.get_payment(payment_id, tenant=TENANT)).refunds == ()
    assert [m.kind for m in await drawers.movements(session.id)] == [MovementKind.SALE]


@pytest.mark.parametrize(("cashier", "actor"), [(" Moussa ", "Moussa"), ("M" * 200, "M" * 200)])
async def test_a_refund_records_the_cashier_it_names_whole(
    flow: PaymentFlow, drawers: CashDrawers, cashier: str, actor: str
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    payment_id = await sell(flow, cashier="Awa")
    await flow.refund(payment_id, amount=xof(100), metadata={"cashier": cashier}, tenant=TENANT)
    [_, refund] = await drawers.movements(session.id)
    assert (refund.kind, refund.actor) == (MovementKind.REFUND, actor)
