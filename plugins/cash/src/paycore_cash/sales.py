"""Taking cash at a till through a :class:`~paycore.flow.PaymentFlow`.

:func:`take_cash` turns "the bill is 3 500 XOF, the customer hands over
5 000" into a cash payment with its tender and change recorded in the till's
drawer. With ``split_tender=True`` a customer may hand over less than is due:
the cash pays part of the order and :attr:`CashSale.balance_due` says what is
left, to be paid by more payments (cash or another provider) for the same
``order_id``; :func:`order_balance` tells what remains of an order's total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore_cash.errors import InsufficientTender
from paycore_cash.validation import check_amount, check_name

if TYPE_CHECKING:
    from paycore.flow import PaymentFlow

__all__ = ["CashSale", "order_balance", "take_cash"]

_PAID = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


@frozen
class CashSale:
    """A cash payment taken at a till, with the cash that changed hands."""

    payment: Payment
    tendered: Money
    """The cash the customer handed over."""
    change: Money
    """The cash to hand back (never negative)."""
    balance_due: Money
    """What the order still owes after this payment (zero unless split tender)."""


async def take_cash(
    flow: PaymentFlow,
    *,
    amount: Money,
    tendered: Money,
    till: str,
    order_id: str,
    tenant: str | None = None,
    provider: str = "cash",
    cashier: str = "",
    split_tender: bool = False,
    description: str = "",
    idempotency_key: str | None = None,
) -> CashSale:
    """Take ``tendered`` cash for ``amount`` due on ``order_id`` at ``till``.

    Tendering less than ``amount`` is refused with :class:`InsufficientTender`
    unless ``split_tender`` is true; then the payment is for the tendered cash
    and the rest of ``amount`` stays due. Refused, with nothing stored, if the
    till's drawer is not open. ``provider`` is the code the tenant enabled
    the cash provider under.
    """
    amount = check_amount(amount, "amount due", currency=None)
    tendered = check_amount(tendered, "tendered cash", currency=amount.currency)
    till = check_name(till, "till")
    if tendered >= amount:
        paid = amount
    elif split_tender:
        paid = tendered
    else:
        raise InsufficientTender(
            f"{tendered} tendered is less than the {amount} due; take more cash, "
            "or pay the rest another way (split_tender=True)"
        )
    metadata: dict[str, Any] = {"till": till, "tendered": f"{tendered.amount:f}"}
    if cashier:
        metadata["cashier"] = check_name(cashier, "cashier")
    if split_tender:
        metadata["split_tender"] = True
        metadata["amount_due"] = f"{amount.amount:f}"
    checkout = await flow.create_payment(
        amount=paid,
        provider=provider,
        order_id=order_id,
        tenant=tenant,
        description=description,
        metadata=metadata,
        idempotency_key=idempotency_key,
    )
    return CashSale(
        payment=checkout.payment,
        tendered=tendered,
        change=tendered - paid,
        balance_due=amount - paid,
    )


async def order_balance(flow: PaymentFlow, *, order_id: str, total: Money, tenant: str | None = None) -> Money:
    """What remains to pay of ``order_id``'s ``total``: total minus every paid payment's net amount.

    Payments of any provider count (a bill split between cash and mobile
    money); refunded amounts are owed again. Never below zero.
    """
    check_amount(total, "order total", currency=None)
    paid = Money.zero(total.currency)
    for payment in await flow.list_payments(order_id=order_id, tenant=tenant):
        if payment.tenant != tenant:
            continue
        if payment.status in _PAID and payment.currency == total.currency and payment.captured_amount:
            paid = paid + payment.captured_amount - payment.refunded_amount
    remaining = total - paid
    return remaining if remaining.is_positive() else Money.zero(total.currency)
