"""Taking cash at a till through a :class:`~paycore.flow.PaymentFlow`.

:func:`take_cash` turns "the bill is 3 500 XOF, the customer hands over
5 000" into a cash payment with its tender and change recorded in the till's
drawer. With ``split_tender=True`` a customer may hand over less than is due:
the cash pays part of the order and :attr:`CashSale.balance_due` says what is
left, to be paid by more payments (cash or another provider) for the same
``order_id``; :func:`order_balance` tells what remains of an order's total
(of the orders made ``since`` a moment, for order numbers that restart daily).

:func:`refund_cash` gives cash back: out of the sale's till by default, or
out of another open till the caller names, by the cashier who hands it over.
A refund marked ``goodwill`` (a gesture: the soup was cold) leaves the order
paid; any other refund gives money back for the order, which is then owed again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from attrs import frozen

from paycore.errors import CurrencyMismatch, StorageError
from paycore.money import Money
from paycore.records import Payment, Refund
from paycore.status import PaymentStatus, RefundStatus
from paycore.wire import shown
from paycore_cash.errors import CashSaleFailed, CashSaleUnsettled, InsufficientTender, InvalidCashRequest
from paycore_cash.validation import check_amount, check_flag, check_name, check_till

if TYPE_CHECKING:
    from paycore.flow import PaymentFlow

__all__ = ["GOODWILL", "CashSale", "is_goodwill", "order_balance", "refund_cash", "take_cash"]

_PAID = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)

GOODWILL = "goodwill"
"""The refund metadata key that marks a goodwill refund (``metadata={"goodwill": True}``)."""


def drawer_closed_before_the_sale(till: str) -> str:
    """What a cash payment that failed because its till's drawer closed before its sale was recorded says."""
    return f"the drawer of till {shown(till)} was closed before the sale was recorded"


def is_goodwill(refund: Refund) -> bool:
    """True for a refund marked goodwill: a gesture that leaves its order paid."""
    return refund.metadata.get(GOODWILL) is True


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
    and the rest of ``amount`` stays due. Refused with
    :class:`~paycore_cash.errors.NoOpenDrawer`, with nothing stored, if the
    till's drawer is not open. ``provider`` is the code the tenant enabled
    the cash provider under. ``split_tender`` must be ``True`` or ``False``
    (anything else is refused with :class:`InvalidCashRequest`).

    The sale is returned only once its payment succeeded, so the change it names
    is due. If the drawer closed after the payment was stored but before the
    sale was recorded in it, the payment fails (no cash recorded, nothing
    left pending) and :class:`~paycore_cash.errors.CashSaleFailed` names it
    and says the drawer closed: open the drawer and take the cash again,
    under a new key. When recording it in the drawer gave no answer (the
    store failed mid-sale), :class:`~paycore_cash.errors.CashSaleUnsettled` (a
    :class:`~paycore.errors.ProviderOutcomeUnknown`) names the payment:
    ``flow.refresh`` settles it, and the same call with the same
    ``idempotency_key`` then returns the sale or raises
    :class:`~paycore_cash.errors.CashSaleFailed` (take the cash again, under a new key).
    """
    split_tender = check_flag(split_tender, "split_tender")
    amount = check_amount(amount, "amount due", currency=None)
    tendered = check_amount(tendered, "tendered cash", currency=amount.currency)
    till = check_till(till)
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
    payment = checkout.payment
    if payment.status is not PaymentStatus.SUCCEEDED:  # a replayed sale may have been settled since: as it is now
        payment = await flow.get_payment(payment.id, tenant=tenant)
    if payment.status not in _PAID:
        if payment.pending_call is not None:
            raise CashSaleUnsettled(
                f"the cash sale of payment {payment.id} was not confirmed by the drawer "
                f"({payment.pending_call.reason or 'no answer'}); give no change yet: flow.refresh "
                "settles it",
                payment_id=payment.id,
            )
        raise CashSaleFailed(await _not_recorded(flow, payment, till), payment_id=payment.id)
    return CashSale(
        payment=checkout.payment if checkout.payment is payment else payment,
        tendered=tendered,
        change=tendered - paid,
        balance_due=amount - paid,
    )


async def _not_recorded(flow: PaymentFlow, payment: Payment, till: str) -> str:
    """Why the cash sale of ``payment`` (ended unpaid) was not recorded, and what the cashier does now."""
    try:
        events = await flow.list_events(payment.id, tenant=payment.tenant)
    except StorageError:  # the payment's history cannot be read now: the sale failed all the same
        events = []
    reason = next((e.message for e in reversed(events) if e.to_status == payment.status.value and e.message), "")
    if reason == drawer_closed_before_the_sale(till):
        return (
            f"the cash sale of payment {payment.id} was not recorded (payment {payment.status.value}): {reason}; "
            f"open the drawer of till {shown(till)} and take the cash again under a new idempotency key"
        )
    because = f": {reason}" if reason else ""
    return (
        f"the cash sale of payment {payment.id} was not recorded (payment {payment.status.value}{because}); "
        "take the cash again under a new idempotency key"
    )


async def refund_cash(
    flow: PaymentFlow,
    payment_id: str,
    *,
    amount: Money | None = None,
    till: str | None = None,
    cashier: str = "",
    reason: str = "",
    goodwill: bool = False,
    tenant: str | None = None,
    idempotency_key: str | None = None,
) -> Refund:
    """Give back ``amount`` (default: all that remains) of the cash payment ``payment_id``.

    The cash comes out of the open drawer of ``till`` (default: the till the
    sale was taken at), handed over by ``cashier`` (default: the sale's
    cashier); the REFUND movement is recorded in that till's session. If the
    sale's till is closed and no ``till`` is named, it is refused with
    :class:`~paycore_cash.errors.NoOpenDrawer` naming the open tills; a drawer
    holding less than ``amount`` refuses it with
    :class:`~paycore_cash.errors.InsufficientDrawerCash`. Nothing is stored
    when it is refused. ``goodwill=True`` marks a gesture that leaves the
    order paid (:func:`order_balance`); ``goodwill`` must be ``True`` or
    ``False`` (anything else is refused with :class:`InvalidCashRequest`). The
    same as ``flow.refund(..., metadata={"till": ..., "cashier": ..., "goodwill": True})``.
    """
    goodwill = check_flag(goodwill, "goodwill")
    metadata: dict[str, Any] = {}
    if till is not None:
        metadata["till"] = check_till(till)
    if cashier:
        metadata["cashier"] = check_name(cashier, "cashier")
    if goodwill:
        metadata[GOODWILL] = True
    return await flow.refund(
        payment_id,
        amount=amount,
        reason=reason,
        metadata=metadata,
        tenant=tenant,
        idempotency_key=idempotency_key,
    )


async def order_balance(
    flow: PaymentFlow,
    *,
    order_id: str,
    total: Money,
    tenant: str | None = None,
    since: datetime | None = None,
) -> Money:
    """What remains to pay of ``order_id``'s ``total``: ``total - paid``, never below zero.

    ``paid`` sums, over the order's payments of any provider (a bill split
    between cash and mobile money), what was captured
    minus the succeeded refunds that gave money back for the order: a
    refunded order is owed again. A refund marked goodwill (:func:`is_goodwill`,
    ``refund_cash(..., goodwill=True)``) is a gesture: it does not re-open the
    order. Pending refunds count once they succeed.

    ``order_id`` names one order of ``tenant``: every payment of the tenant
    with that ``order_id`` counts, whenever it was made. When order numbers
    restart (each day, each shift: ``T1-0005`` again tomorrow), pass ``since``,
    the moment the numbering restarted (a timezone-aware datetime: the start of
    the business day, or the drawer session's ``opened_at``); only payments
    created at or after it count. Or make order ids unique (``2026-12-05/T1-0005``).
    A ``since`` that is not a timezone-aware datetime is refused with
    :class:`~paycore_cash.errors.InvalidCashRequest`; an order paid in part in
    another currency than ``total``'s, with :class:`~paycore.errors.CurrencyMismatch`
    (what it paid cannot be counted against the total); one refunded in full there
    paid nothing, and is left out.
    """
    check_amount(total, "order total", currency=None)
    if since is not None and (not isinstance(since, datetime) or since.utcoffset() is None):
        raise InvalidCashRequest(f"since must be a timezone-aware datetime, not {shown(since)}")
    paid = Money.zero(total.currency)
    foreign: list[Payment] = []
    for payment in await flow.list_payments(order_id=order_id, tenant=tenant, created_from=since):
        if payment.tenant != tenant or payment.status not in _PAID or not payment.captured_amount:
            continue  # it moved no money for the order
        if payment.currency != total.currency:
            if (payment.captured_amount - _returned(payment)).is_positive():  # not given back in full
                foreign.append(payment)
        else:
            paid = paid + payment.captured_amount - _returned(payment)
    if foreign:  # what they paid cannot be counted in the total's currency: the order's balance is not known
        paid_in = ", ".join(f"{payment.id} ({payment.captured_amount})" for payment in foreign)
        raise CurrencyMismatch(
            f"order {order_id!r} was paid in part in another currency than its total's {total.currency}: {paid_in}"
        )
    remaining = total - paid
    return remaining if remaining.is_positive() else Money.zero(total.currency)


def _returned(payment: Payment) -> Money:
    """What the succeeded refunds of ``payment`` gave back for its order (goodwill refunds aside)."""
    return Money.sum(
        (r.amount for r in payment.refunds if r.status is RefundStatus.SUCCEEDED and not is_goodwill(r)),
        payment.currency,
    )
