"""Payments, refunds and events to table rows and back, exactly.

Money is split into integer minor units and a currency code; the nested records
a payment carries (customer, basket, next action, pending provider call) are
JSON documents in :mod:`paycore.serialization`'s wire format. ``decode(encode(x))
== x`` for every record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from paycore.errors import InvalidAmount
from paycore.money import Money
from paycore.records import (
    Customer,
    LineItem,
    NextAction,
    Payment,
    PaymentEvent,
    ProviderCall,
    Refund,
    WebhookReceipt,
)
from paycore.serialization import structure, unstructure
from paycore.status import FraudStatus, PaymentStatus, RefundStatus, ReviewReason
from paycore_sqlalchemy.schema import NO_TENANT

__all__ = [
    "event_row",
    "payment_from_row",
    "payment_row",
    "receipt_row",
    "refund_from_row",
    "refund_rows",
    "row_event",
    "store_tenant",
    "tenant_from_store",
]

_BIGINT_MAX: Final = 2**63 - 1


def store_tenant(tenant: str | None) -> str:
    """How ``tenant`` is stored (``None`` becomes ``''``)."""
    return NO_TENANT if tenant is None else tenant


def tenant_from_store(value: str | None) -> str | None:
    """The tenant a stored value stands for."""
    return None if value is None or value == NO_TENANT else value


def _units(money: Money | None, what: str) -> int | None:
    if money is None:
        return None
    if abs(money.minor_units) > _BIGINT_MAX:
        raise InvalidAmount(f"{what} {money} is too large to store (at most {_BIGINT_MAX} minor units)")
    return money.minor_units


def _money(units: int | None, currency: str | None) -> Money | None:
    if units is None or currency is None:
        return None
    return Money(int(units), currency)


def payment_row(payment: Payment) -> dict[str, Any]:
    """The ``paycore_payments`` row of ``payment`` (its refunds go in :func:`refund_rows`)."""
    authorized, captured = payment.authorized_amount, payment.captured_amount
    return {
        "id": payment.id,
        "tenant": store_tenant(payment.tenant),
        "provider": payment.provider,
        "order_id": payment.order_id,
        "currency": payment.amount.currency,
        "amount": _units(payment.amount, "amount"),
        "status": payment.status.value,
        "authorized_amount": _units(authorized, "authorized amount"),
        "authorized_currency": None if authorized is None else authorized.currency,
        "captured_amount": _units(captured, "captured amount"),
        "captured_currency": None if captured is None else captured.currency,
        "external_id": payment.external_id,
        "capture": payment.capture,
        "description": payment.description,
        "customer": None if payment.customer is None else unstructure(payment.customer),
        "items": unstructure(payment.items),
        "metadata": dict(payment.metadata),
        "return_url": payment.return_url,
        "next_action": None if payment.next_action is None else unstructure(payment.next_action),
        "fraud_status": payment.fraud_status.value,
        "fraud_message": payment.fraud_message,
        "needs_review": payment.needs_review,
        "review_reason": None if payment.review_reason is None else payment.review_reason.value,
        "review_message": payment.review_message,
        "pending_call": None if payment.pending_call is None else unstructure(payment.pending_call),
        "version": payment.version,
        "event_count": payment.event_count,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def refund_rows(payment: Payment) -> list[dict[str, Any]]:
    """The ``paycore_refunds`` rows of ``payment``, numbered in the order it holds them."""
    return [
        {
            "id": refund.id,
            "payment_id": payment.id,
            "position": position,
            "currency": refund.amount.currency,
            "amount": _units(refund.amount, "refund amount"),
            "status": refund.status.value,
            "reason": refund.reason,
            "external_id": refund.external_id,
            "created_at": refund.created_at,
            "updated_at": refund.updated_at,
        }
        for position, refund in enumerate(payment.refunds)
    ]


def refund_from_row(row: Mapping[Any, Any], payment_id: str) -> Refund:
    """The :class:`Refund` a row of ``paycore_refunds`` (or of a join, prefixed ``refund_``) holds."""
    return Refund(
        id=row["refund_id"],
        payment_id=payment_id,
        amount=Money(int(row["refund_amount"]), row["refund_currency"]),
        status=RefundStatus(row["refund_status"]),
        reason=row["refund_reason"],
        external_id=row["refund_external_id"],
        created_at=row["refund_created_at"],
        updated_at=row["refund_updated_at"],
    )


def payment_from_row(row: Mapping[Any, Any], refunds: Sequence[Refund] = ()) -> Payment:
    """The :class:`Payment` a ``paycore_payments`` row holds, with ``refunds``."""
    currency = row["currency"]
    customer = row["customer"]
    action = row["next_action"]
    call = row["pending_call"]
    review_reason = row["review_reason"]
    return Payment(
        id=row["id"],
        provider=row["provider"],
        order_id=row["order_id"],
        amount=Money(int(row["amount"]), currency),
        tenant=tenant_from_store(row["tenant"]),
        status=PaymentStatus(row["status"]),
        authorized_amount=_money(row["authorized_amount"], row["authorized_currency"]),
        captured_amount=_money(row["captured_amount"], row["captured_currency"]),
        refunds=tuple(refunds),
        external_id=row["external_id"],
        capture=bool(row["capture"]),
        description=row["description"],
        customer=None if customer is None else structure(customer, Customer),
        items=structure(row["items"], tuple[LineItem, ...]),
        metadata=row["metadata"],
        return_url=row["return_url"],
        next_action=None if action is None else structure(action, NextAction),
        fraud_status=FraudStatus(row["fraud_status"]),
        fraud_message=row["fraud_message"],
        needs_review=bool(row["needs_review"]),
        review_reason=None if review_reason is None else ReviewReason(review_reason),
        review_message=row["review_message"],
        pending_call=None if call is None else structure(call, ProviderCall),
        version=row["version"],
        event_count=row["event_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def event_row(event: PaymentEvent) -> dict[str, Any]:
    """The ``paycore_payment_events`` row of ``event``."""
    amount = event.amount
    return {
        "id": event.id,
        "payment_id": event.payment_id,
        "sequence": event.sequence,
        "kind": event.kind,
        "cause": event.cause,
        "tenant": event.tenant,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "amount": _units(amount, "event amount"),
        "currency": None if amount is None else amount.currency,
        "refund_id": event.refund_id,
        "provider_event_id": event.provider_event_id,
        "message": event.message,
        "at": event.at,
    }


def row_event(row: Mapping[Any, Any]) -> PaymentEvent:
    """The :class:`PaymentEvent` a ``paycore_payment_events`` row holds."""
    return PaymentEvent(
        id=row["id"],
        payment_id=row["payment_id"],
        sequence=row["sequence"],
        kind=row["kind"],
        cause=row["cause"],
        tenant=row["tenant"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        amount=_money(row["amount"], row["currency"]),
        refund_id=row["refund_id"],
        provider_event_id=row["provider_event_id"],
        message=row["message"],
        at=row["at"],
    )


def receipt_row(receipt: WebhookReceipt) -> dict[str, Any]:
    """The ``paycore_webhook_receipts`` row of ``receipt``."""
    return {
        "provider": receipt.provider,
        "tenant": store_tenant(receipt.tenant),
        "event_id": receipt.event_id,
        "payment_id": receipt.payment_id,
        "received_at": receipt.received_at,
    }
