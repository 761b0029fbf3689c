"""What a relational store keeps: a payment as flat values and back, and an idempotency key's row.

A relational adapter (the Django ORM, SQLAlchemy) keeps a payment as one row of
plain values plus child rows (refunds, events, webhook receipts, references).
This module is the one conversion between paycore's records and those values,
so every such adapter stores a payment the same way:

* money is split into integer minor units (at most a ``BIGINT``) beside its
  currency code; the authorized and captured amounts share the payment's
  currency column;
* the records without columns of their own (customer, basket, metadata, next
  action, pending provider call, provider state, references) are JSON documents
  in :mod:`paycore.serialization`'s wire format, structured back with the
  payment's own field types, so a field added to one of them needs no
  migration;
* times must be timezone-aware.

``payment_from_values(payment_values(p), refunds) == p`` for every payment.
Values are keyed by the column names below (:data:`PAYMENT_COLUMNS`...); an
adapter whose columns are spelled otherwise renames them, and one that keeps
"no tenant" as something other than ``NULL`` maps the ``tenant`` value.

An idempotency key's row and the decision a claim takes on meeting one are in
:mod:`paycore.key_rows`. Nothing here touches a database.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from paycore.errors import InvalidAmount, ValidationError
from paycore.money import Money
from paycore.records import Payment, PaymentEvent, Refund, WebhookReceipt
from paycore.serialization import structure, unstructure
from paycore.status import FraudStatus, PaymentStatus, RefundStatus, ReviewReason

__all__ = [
    "BIGINT_MAX",
    "DOCUMENT_COLUMNS",
    "EVENT_COLUMNS",
    "PAYMENT_COLUMNS",
    "RECEIPT_COLUMNS",
    "REFUND_COLUMNS",
    "VALUES_OF_FIELD",
    "changed_fields",
    "differing",
    "event_from_values",
    "event_values",
    "lookup_references",
    "minor_units",
    "money_from_units",
    "payment_from_values",
    "payment_values",
    "receipt_values",
    "refund_from_values",
    "refund_values",
]

BIGINT_MAX: Final = 2**63 - 1
"""The most minor units a stored amount may have (a signed 64-bit ``BIGINT``)."""

DOCUMENT_COLUMNS: Final = (
    "customer", "items", "metadata", "next_action", "pending_call", "provider_state", "references",
)  # fmt: skip
"""Payment values kept as JSON documents."""

PAYMENT_COLUMNS: Final = (
    "id", "tenant", "provider", "order_id", "status", "currency", "amount", "authorized", "captured",
    "external_id", "capture", "description", *DOCUMENT_COLUMNS, "return_url", "fraud_status", "fraud_message",
    "needs_review", "review_reason", "review_message", "version", "event_count", "created_at", "updated_at",
)  # fmt: skip
"""The values of a payment's row (:func:`payment_values`)."""

REFUND_COLUMNS: Final = (
    "id", "position", "status", "currency", "amount", "reason", "external_id", "metadata", "created_at",
    "updated_at",
)  # fmt: skip
"""The values of a refund's row read back (:func:`refund_from_values`); the row also holds ``payment_id``."""

EVENT_COLUMNS: Final = (
    "id", "payment_id", "sequence", "kind", "cause", "tenant", "from_status", "to_status", "amount", "currency",
    "refund_id", "provider_event_id", "message", "at",
)  # fmt: skip
"""The values of an event's row (:func:`event_values`)."""

RECEIPT_COLUMNS: Final = ("provider", "tenant", "event_id", "payment_id", "received_at")
"""The values of a webhook receipt's row (:func:`receipt_values`)."""


# -- payments, refunds, events, receipts -------------------------------------------------------


@functools.cache
def _payment_field_types() -> dict[str, Any]:
    """The declared types of :class:`Payment`'s fields (resolved once)."""
    attrs.resolve_types(Payment)
    return {field.name: field.type for field in attrs.fields(Payment)}


def minor_units(money: Money | None, what: str) -> int | None:
    """``money``'s minor units as stored; :class:`InvalidAmount` if a ``BIGINT`` cannot hold them."""
    if money is None:
        return None
    if abs(money.minor_units) > BIGINT_MAX:
        raise InvalidAmount(f"{what} {money} is too large to store (at most {BIGINT_MAX} minor units)")
    return money.minor_units


def money_from_units(units: int | None, currency: str | None) -> Money | None:
    """The :class:`Money` stored as ``units`` of ``currency`` (``None`` when either is absent)."""
    if units is None or currency is None:
        return None
    return Money(int(units), currency)


def _units_in(money: Money | None, currency: str, what: str) -> int | None:
    """Minor units of an amount kept in the payment's currency column; refuses another currency."""
    if money is not None and money.currency != currency:
        raise InvalidAmount(f"{what} {money} is not in the payment's currency {currency}; it cannot be stored")
    return minor_units(money, what)


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{what} {value.isoformat()} has no time zone (a naive datetime); store timezone-aware datetimes (UTC)"
        )
    return value


def _document(value: Any, what: str) -> Any:
    """``value`` as JSON-ready data; :class:`ValidationError` if it cannot be JSON."""
    data = unstructure(value)
    if not data and isinstance(data, (dict, list)):
        return data  # empty: JSON as it is
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"payment {what} cannot be stored as JSON: {error}") from None
    return data


def _optional_document(value: Any, what: str) -> Any:
    return None if value is None else _document(value, what)


def lookup_references(payment: Payment) -> tuple[str, ...]:
    """Every reference a webhook may find ``payment`` by: ``external_id``, then ``references``, once each."""
    return tuple(dict.fromkeys(r for r in (payment.external_id, *payment.references) if r))


def _units_of(name: str, what: str) -> Callable[[Payment], int | None]:
    """The stored minor units of an amount kept in the payment's currency column (``name``: its field)."""
    getter = operator.attrgetter(name)
    return lambda payment: _units_in(getter(payment), payment.amount.currency, what)


def _document_of(name: str, what: str, *, optional: bool = False) -> Callable[[Payment], Any]:
    """The JSON document field ``name`` is stored as."""
    getter = operator.attrgetter(name)
    if optional:
        return lambda payment: _optional_document(getter(payment), what)
    return lambda payment: _document(getter(payment), what)


_PAYMENT_VALUE: Final[Mapping[str, Callable[[Payment], Any]]] = {
    "id": operator.attrgetter("id"),
    "tenant": operator.attrgetter("tenant"),
    "provider": operator.attrgetter("provider"),
    "order_id": operator.attrgetter("order_id"),
    "status": lambda payment: PaymentStatus(payment.status).value,
    "currency": lambda payment: payment.amount.currency,
    "amount": lambda payment: minor_units(payment.amount, "amount"),
    "authorized": _units_of("authorized_amount", "authorized amount"),
    "captured": _units_of("captured_amount", "captured amount"),
    "external_id": operator.attrgetter("external_id"),
    "capture": operator.attrgetter("capture"),
    "description": operator.attrgetter("description"),
    "customer": _document_of("customer", "customer", optional=True),
    "items": _document_of("items", "items"),
    "metadata": lambda payment: _document(dict(payment.metadata), "metadata"),
    "next_action": _document_of("next_action", "next action", optional=True),
    "pending_call": _document_of("pending_call", "pending call", optional=True),
    "provider_state": lambda payment: _document(dict(payment.provider_state), "provider state"),
    "references": lambda payment: list(payment.references),
    "return_url": operator.attrgetter("return_url"),
    "fraud_status": lambda payment: FraudStatus(payment.fraud_status).value,
    "fraud_message": operator.attrgetter("fraud_message"),
    "needs_review": operator.attrgetter("needs_review"),
    "review_reason": lambda payment: (
        None if payment.review_reason is None else ReviewReason(payment.review_reason).value
    ),
    "review_message": operator.attrgetter("review_message"),
    "version": operator.attrgetter("version"),
    "event_count": operator.attrgetter("event_count"),
    "created_at": lambda payment: _aware(payment.created_at, "created_at"),
    "updated_at": lambda payment: _aware(payment.updated_at, "updated_at"),
}
"""How each of :data:`PAYMENT_COLUMNS` is computed from a payment."""

VALUES_OF_FIELD: Final[Mapping[str, tuple[str, ...]]] = {
    field.name: {
        "amount": ("currency", "amount"),
        "authorized_amount": ("authorized",),
        "captured_amount": ("captured",),
    }.get(field.name, (field.name,))
    for field in attrs.fields(Payment)
    if field.name != "refunds"
}
"""The values (of :data:`PAYMENT_COLUMNS`) each :class:`Payment` field is stored in; refunds have rows of their own."""


def differing(before: object, after: object, names: Iterable[str]) -> tuple[str, ...]:
    """The attributes among ``names`` whose values differ between ``before`` and ``after``, two versions of
    one record (a value that is the same object is not compared)."""
    changed = []
    for name in names:
        old, new = getattr(before, name), getattr(after, name)
        if old is not new and old != new:
            changed.append(name)
    return tuple(changed)


def changed_fields(stored: Payment, payment: Payment) -> tuple[str, ...]:
    """The fields of :data:`VALUES_OF_FIELD` (a payment's row, not its refunds) that differ between ``stored``
    and its next version ``payment``: what an ``UPDATE`` over ``stored`` sets (:func:`payment_values`)."""
    return differing(stored, payment, VALUES_OF_FIELD)


def payment_values(payment: Payment, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The values of ``payment``'s row, keyed by :data:`PAYMENT_COLUMNS` (its refunds: :func:`refund_values`).

    With ``fields`` (names of :class:`Payment` fields), only the values those
    fields are stored in (:data:`VALUES_OF_FIELD`): what an ``UPDATE`` of the
    fields that changed sets. Raises :class:`InvalidAmount` for an amount a
    ``BIGINT`` cannot hold or an authorized/captured amount in another currency,
    :class:`ValidationError` for a naive time or a document that is not JSON.
    """
    if fields is None:
        return {name: value(payment) for name, value in _PAYMENT_VALUE.items()}
    return {name: _PAYMENT_VALUE[name](payment) for field in fields for name in VALUES_OF_FIELD[field]}


def payment_from_values(values: Mapping[str, Any], refunds: Sequence[Refund] = ()) -> Payment:
    """The :class:`Payment` a row's values hold (:func:`payment_values`'s keys), with ``refunds``."""
    types = _payment_field_types()
    currency = values["currency"]
    review_reason = values["review_reason"]

    def document(name: str) -> Any:
        return None if values[name] is None else structure(values[name], types[name])

    return Payment(
        id=values["id"],
        provider=values["provider"],
        order_id=values["order_id"],
        amount=Money(int(values["amount"]), currency),
        tenant=values["tenant"],
        status=PaymentStatus(values["status"]),
        authorized_amount=money_from_units(values["authorized"], currency),
        captured_amount=money_from_units(values["captured"], currency),
        refunds=tuple(refunds),
        external_id=values["external_id"],
        references=tuple(values["references"] or ()),
        provider_state=values["provider_state"] or {},
        capture=bool(values["capture"]),
        description=values["description"],
        customer=document("customer"),
        items=document("items") or (),
        metadata=values["metadata"] or {},
        return_url=values["return_url"],
        next_action=document("next_action"),
        fraud_status=FraudStatus(values["fraud_status"]),
        fraud_message=values["fraud_message"],
        needs_review=bool(values["needs_review"]),
        review_reason=None if review_reason is None else ReviewReason(review_reason),
        review_message=values["review_message"],
        pending_call=document("pending_call"),
        version=values["version"],
        event_count=values["event_count"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )


def refund_values(payment: Payment, positions: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The values of ``payment``'s refund rows (with ``payment_id``), numbered in the order it holds them.

    With ``positions``, only the rows of the refunds at those positions, in that order.
    """
    refunds = payment.refunds
    numbered = enumerate(refunds) if positions is None else ((position, refunds[position]) for position in positions)
    return [
        {
            "id": refund.id,
            "payment_id": payment.id,
            "position": position,
            "status": RefundStatus(refund.status).value,
            "currency": refund.amount.currency,
            "amount": minor_units(refund.amount, "refund amount"),
            "reason": refund.reason,
            "external_id": refund.external_id,
            "metadata": _document(dict(refund.metadata), "refund metadata"),
            "created_at": _aware(refund.created_at, "refund created_at"),
            "updated_at": _aware(refund.updated_at, "refund updated_at"),
        }
        for position, refund in numbered
    ]


def refund_from_values(values: Mapping[str, Any], payment_id: str, prefix: str = "") -> Refund:
    """The :class:`Refund` of ``payment_id`` a row holds, its values keyed ``prefix + column``.

    ``prefix`` reads a refund out of a payment row joined with its refunds
    (``"refund_"``, ``"refunds__"``: however the join names them).
    """
    return Refund(
        id=values[f"{prefix}id"],
        payment_id=payment_id,
        amount=Money(int(values[f"{prefix}amount"]), values[f"{prefix}currency"]),
        status=RefundStatus(values[f"{prefix}status"]),
        reason=values[f"{prefix}reason"],
        external_id=values[f"{prefix}external_id"],
        metadata=values[f"{prefix}metadata"] or {},
        created_at=values[f"{prefix}created_at"],
        updated_at=values[f"{prefix}updated_at"],
    )


def event_values(event: PaymentEvent) -> dict[str, Any]:
    """The values of ``event``'s row, keyed by :data:`EVENT_COLUMNS`."""
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
        "amount": minor_units(amount, "event amount"),
        "currency": None if amount is None else amount.currency,
        "refund_id": event.refund_id,
        "provider_event_id": event.provider_event_id,
        "message": event.message,
        "at": _aware(event.at, "event time"),
    }


def event_from_values(values: Mapping[str, Any]) -> PaymentEvent:
    """The :class:`PaymentEvent` a row's values hold (:data:`EVENT_COLUMNS`)."""
    return PaymentEvent(
        id=values["id"],
        payment_id=values["payment_id"],
        sequence=values["sequence"],
        kind=values["kind"],
        cause=values["cause"],
        tenant=values["tenant"],
        from_status=values["from_status"],
        to_status=values["to_status"],
        amount=money_from_units(values["amount"], values["currency"]),
        refund_id=values["refund_id"],
        provider_event_id=values["provider_event_id"],
        message=values["message"],
        at=values["at"],
    )


def receipt_values(receipt: WebhookReceipt) -> dict[str, Any]:
    """The values of ``receipt``'s row, keyed by :data:`RECEIPT_COLUMNS`."""
    return {
        "provider": receipt.provider,
        "tenant": receipt.tenant,
        "event_id": receipt.event_id,
        "payment_id": receipt.payment_id,
        "received_at": _aware(receipt.received_at, "receipt time"),
    }
