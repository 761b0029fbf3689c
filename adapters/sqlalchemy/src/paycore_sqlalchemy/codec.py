"""Payments, refunds, events and receipts to this adapter's table rows and back, exactly.

The conversion itself is the core's :mod:`paycore.rows` (the Django adapter
uses it too): money as integer minor units beside a currency code, the nested
records as JSON documents. This module only maps it onto this schema's column
names (``authorized_amount``/``authorized_currency``, ``captured_amount``/
``captured_currency``, ``provider_references``) and stores a missing tenant as
``''`` (:data:`~paycore_sqlalchemy.schema.NO_TENANT`). ``decode(encode(x)) == x``
for every record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from paycore.records import Payment, PaymentEvent, Refund, WebhookReceipt
from paycore.rows import (
    PAYMENT_COLUMNS,
    event_from_values,
    event_values,
    lookup_references,
    payment_from_values,
    payment_values,
    receipt_values,
    refund_from_values,
    refund_values,
)
from paycore_sqlalchemy.schema import NO_TENANT

__all__ = [
    "COLUMNS_OF_VALUE",
    "event_row",
    "payment_from_row",
    "payment_row",
    "receipt_row",
    "reference_rows",
    "references_of",
    "refund_from_row",
    "refund_rows",
    "row_event",
    "store_tenant",
    "tenant_from_store",
]

_COLUMN_OF = {"references": "provider_references"}
"""``paycore.rows`` value names that this schema spells otherwise (money columns aside)."""

COLUMNS_OF_VALUE: Mapping[str, tuple[str, ...]] = {
    **{name: (column,) for name, column in _COLUMN_OF.items()},
    "authorized": ("authorized_amount", "authorized_currency"),
    "captured": ("captured_amount", "captured_currency"),
}
"""The ``paycore_payments`` columns of each :data:`paycore.rows.PAYMENT_COLUMNS` value this schema stores
otherwise than in one column of the same name (:func:`payment_row`)."""


def store_tenant(tenant: str | None) -> str:
    """How ``tenant`` is stored (``None`` becomes ``''``)."""
    return NO_TENANT if tenant is None else tenant


def tenant_from_store(value: str | None) -> str | None:
    """The tenant a stored value stands for."""
    return None if value is None or value == NO_TENANT else value


def payment_row(payment: Payment, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """The ``paycore_payments`` row of ``payment`` (its refunds go in :func:`refund_rows`).

    With ``fields`` (names of :class:`Payment` fields), only the columns those fields are stored in.
    """
    values = payment_values(payment, fields)
    row = {_COLUMN_OF.get(name, name): value for name, value in values.items()}
    for kind in ("authorized", "captured"):
        if kind in row:
            units = row.pop(kind)
            amount_column, currency_column = COLUMNS_OF_VALUE[kind]
            row[amount_column] = units
            row[currency_column] = None if units is None else payment.amount.currency
    if "tenant" in row:
        row["tenant"] = store_tenant(payment.tenant)
    return row


def payment_from_row(row: Mapping[Any, Any], refunds: Sequence[Refund] = ()) -> Payment:
    """The :class:`Payment` a ``paycore_payments`` row holds, with ``refunds``."""
    values = {
        name: row[_COLUMN_OF.get(name, name)] for name in PAYMENT_COLUMNS if name not in ("authorized", "captured")
    }
    for kind in ("authorized", "captured"):
        values[kind] = row[COLUMNS_OF_VALUE[kind][0]]
    values["tenant"] = tenant_from_store(row["tenant"])
    return payment_from_values(values, refunds)


def references_of(payment: Payment) -> tuple[str, ...]:
    """Every reference ``payment`` is found by: its ``external_id``, then its ``references``, each once."""
    return lookup_references(payment)


def reference_rows(payment: Payment) -> list[dict[str, Any]]:
    """The ``paycore_payment_references`` rows of ``payment``: one per reference it is found by."""
    tenant = store_tenant(payment.tenant)
    return [
        {"provider": payment.provider, "tenant": tenant, "reference": reference, "payment_id": payment.id}
        for reference in references_of(payment)
    ]


def refund_rows(payment: Payment, positions: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """The ``paycore_refunds`` rows of ``payment``, numbered in the order it holds them (``positions``: only those)."""
    return refund_values(payment, positions)


def refund_from_row(row: Mapping[Any, Any], payment_id: str) -> Refund:
    """The :class:`Refund` a payment row joined with its refunds holds (refund columns prefixed ``refund_``)."""
    return refund_from_values(row, payment_id, "refund_")


def event_row(event: PaymentEvent) -> dict[str, Any]:
    """The ``paycore_payment_events`` row of ``event``."""
    return event_values(event)


def row_event(row: Mapping[Any, Any]) -> PaymentEvent:
    """The :class:`PaymentEvent` a ``paycore_payment_events`` row holds."""
    return event_from_values(row)


def receipt_row(receipt: WebhookReceipt) -> dict[str, Any]:
    """The ``paycore_webhook_receipts`` row of ``receipt``."""
    return {**receipt_values(receipt), "tenant": store_tenant(receipt.tenant)}
