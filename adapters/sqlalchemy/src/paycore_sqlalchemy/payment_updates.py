"""The ``UPDATE`` of a payment's row that sets only the columns its new version changed.

A payment's next version differs from the one stored in a few fields: its
status, version, event count and update time, a reference or an amount. Setting
all forty columns on every write costs a conversion per value (a JSON encoding
for each document column), a driver parameter each, and a wider row for the
database to write. When the write knows the stored copy it follows (the copy
read, or the one the caller held, in the same transaction as the write), the
statement sets only the columns whose fields differ. The version check in its
``WHERE`` makes this exact: the row matches only while it holds that stored
version, which is the copy compared against.

Each set of changed columns is compiled once (:class:`~paycore_sqlalchemy.prepared.Prepared`),
and there are few: the same transitions change the same fields.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import attrs
import sqlalchemy as sa

from paycore.records import Payment, Refund
from paycore.rows import VALUES_OF_FIELD, changed_fields, differing
from paycore_sqlalchemy.codec import COLUMNS_OF_VALUE
from paycore_sqlalchemy.prepared import Prepared
from paycore_sqlalchemy.schema import payments, refunds

__all__ = [
    "ALL_COLUMNS",
    "COLUMNS_OF_FIELD",
    "changed_columns",
    "changed_fields",
    "changed_refund_columns",
    "columns_of",
    "refund_update",
    "update_statements",
]

_WRITTEN_ELSEWHERE = frozenset({"id", "refunds"})
"""Fields not written by the payment's ``UPDATE``: the key it is found by, and the rows of another table."""

COLUMNS_OF_FIELD: Mapping[str, tuple[str, ...]] = {
    field: tuple(column for value in values for column in COLUMNS_OF_VALUE.get(value, (value,)))
    for field, values in VALUES_OF_FIELD.items()
    if field not in _WRITTEN_ELSEWHERE
}
"""The ``paycore_payments`` columns each :class:`~paycore.records.Payment` field is stored in: the core's
values of the field (:data:`paycore.rows.VALUES_OF_FIELD`) under this schema's names (:data:`COLUMNS_OF_VALUE`)."""

_MOST_STATEMENTS = 256
"""Sets of changed columns kept compiled at most; the one least recently used is compiled again when next needed."""

ALL_COLUMNS: tuple[str, ...] = tuple(column.name for column in payments.c if column.name != "id")
"""Every column an ``UPDATE`` of a payment may set."""


@functools.lru_cache(maxsize=_MOST_STATEMENTS)
def columns_of(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The columns ``fields`` are stored in, in table order."""
    named = {column for field in fields for column in COLUMNS_OF_FIELD[field]}
    return tuple(column for column in ALL_COLUMNS if column in named)


def changed_columns(stored: Payment, payment: Payment) -> tuple[str, ...]:
    """The columns whose fields differ between ``stored`` and its next version ``payment``, in table order."""
    return columns_of(changed_fields(stored, payment))


@functools.lru_cache(maxsize=_MOST_STATEMENTS)
def update_statements(columns: tuple[str, ...]) -> tuple[Prepared, Prepared]:
    """The two ``UPDATE`` statements of a write that sets ``columns``.

    Both match only the payment's row at the version before the one written
    (``b_id``, ``b_previous``). The first also requires the stored
    ``external_id`` and ``provider_references`` to be those of the row's
    parameters (a write that adds no reference); the second does not.
    """
    update = (
        sa.update(payments)
        .where(payments.c.id == sa.bindparam("b_id"), payments.c.version == sa.bindparam("b_previous"))
        .values({name: sa.bindparam(name) for name in columns})
    )
    keeping = update.where(
        payments.c.external_id.is_not_distinct_from(sa.bindparam("external_id")),
        payments.c.provider_references == sa.bindparam("provider_references"),
    )
    return Prepared(keeping), Prepared(update)


_REFUND_COLUMNS_OF_FIELD: Mapping[str, tuple[str, ...]] = {
    field.name: ("currency", "amount") if field.name == "amount" else (field.name,)
    for field in attrs.fields(Refund)
    if field.name not in ("id", "payment_id")
}
"""The ``paycore_refunds`` columns each :class:`~paycore.records.Refund` field a refund's ``UPDATE`` may set is in."""


def changed_refund_columns(before: Refund, after: Refund) -> tuple[str, ...]:
    """The columns of a refund's row whose fields differ between ``before`` and ``after`` (the same refund)."""
    fields = differing(before, after, _REFUND_COLUMNS_OF_FIELD)
    return tuple(column for name in fields for column in _REFUND_COLUMNS_OF_FIELD[name])


@functools.lru_cache(maxsize=_MOST_STATEMENTS)
def refund_update(columns: tuple[str, ...]) -> Prepared:
    """The ``UPDATE`` of a refund's row (found by ``b_id`` and ``b_payment_id``) that sets ``columns``."""
    return Prepared(
        sa.update(refunds)
        .where(refunds.c.id == sa.bindparam("b_id"), refunds.c.payment_id == sa.bindparam("b_payment_id"))
        .values({name: sa.bindparam(name) for name in columns})
    )
