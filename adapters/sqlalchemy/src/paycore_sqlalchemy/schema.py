"""The adapter's tables, as SQLAlchemy Core metadata; its Alembic migrations create exactly these.

Amounts are integer minor units beside their currency, with ``CHECK`` constraints
that keep them non-negative. A missing tenant is stored as ``''`` so that unique
constraints treat "no tenant" as one tenant (SQL treats every ``NULL`` as distinct).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from paycore_sqlalchemy.types import JSONDocument, UTCDateTime

__all__ = [
    "NAMING_CONVENTION",
    "NO_TENANT",
    "idempotency_keys",
    "metadata",
    "payment_events",
    "payment_references",
    "payments",
    "refunds",
    "webhook_receipts",
]

NO_TENANT: Final = ""
"""What a ``None`` tenant is stored as."""

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""How constraints and indexes are named; plugins' tables use it too, so names never depend on the dialect."""

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
"""The adapter's own tables (plugins declare theirs in a metadata of their own)."""

ID = sa.String(64)
CODE = sa.String(64)
CURRENCY = sa.String(3)
STATUS = sa.String(32)


def _non_negative(*columns: str) -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(f"{c} >= 0", name=f"{c}_non_negative") for c in columns]


payments = sa.Table(
    "paycore_payments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("tenant", CODE, nullable=False),
    sa.Column("provider", CODE, nullable=False),
    sa.Column("order_id", sa.String(255), nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", STATUS, nullable=False),
    sa.Column("authorized_amount", sa.BigInteger),
    sa.Column("authorized_currency", CURRENCY),
    sa.Column("captured_amount", sa.BigInteger),
    sa.Column("captured_currency", CURRENCY),
    sa.Column("external_id", sa.String(255)),
    sa.Column("provider_references", JSONDocument, nullable=False, server_default=sa.text("'[]'")),
    sa.Column("provider_state", JSONDocument, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("capture", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("customer", JSONDocument),
    sa.Column("items", JSONDocument, nullable=False),
    sa.Column("metadata", JSONDocument, nullable=False),
    sa.Column("return_url", sa.Text),
    sa.Column("next_action", JSONDocument),
    sa.Column("fraud_status", STATUS, nullable=False),
    sa.Column("fraud_message", sa.Text, nullable=False),
    sa.Column("needs_review", sa.Boolean, nullable=False),
    sa.Column("review_reason", STATUS),
    sa.Column("review_message", sa.Text, nullable=False),
    sa.Column("pending_call", JSONDocument),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event_count", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    *_non_negative("amount", "authorized_amount", "captured_amount"),
    sa.UniqueConstraint("provider", "tenant", "external_id", name="uq_paycore_payments_external_id"),
    sa.Index("ix_paycore_payments_created", "created_at", "id"),
    sa.Index("ix_paycore_payments_tenant_created", "tenant", "created_at", "id"),
    sa.Index("ix_paycore_payments_order", "order_id", "created_at", "id"),
    sa.Index("ix_paycore_payments_status_updated", "status", "updated_at", "id"),
    sa.Index("ix_paycore_payments_status_created", "status", "created_at", "id"),
    sa.Index("ix_paycore_payments_tenant_status_created", "tenant", "status", "created_at", "id"),
    sa.Index(
        "ix_paycore_payments_pending_call",
        "updated_at",
        "id",
        postgresql_where=sa.text("pending_call IS NOT NULL"),
        sqlite_where=sa.text("pending_call IS NOT NULL"),
    ),
)
"""One row per payment; ``version`` is the optimistic-concurrency counter.

``provider_references`` is the payment's ``references`` as it holds them (in order);
lookups by reference go through :data:`payment_references`. ``ix_paycore_payments_pending_call``
holds only the rows that carry a provider call (a partial index on PostgreSQL and SQLite): the
reaper's listing of them reads a few entries, whatever the table holds."""

payment_references = sa.Table(
    "paycore_payment_references",
    metadata,
    sa.Column("provider", CODE, primary_key=True),
    sa.Column("tenant", CODE, primary_key=True),
    sa.Column("reference", sa.String(255), primary_key=True),
    sa.Column("payment_id", ID, sa.ForeignKey("paycore_payments.id"), nullable=False),
    sa.Index("ix_paycore_payment_references_payment_id", "payment_id"),
)
"""Every reference a provider reported for a payment (its ``external_id`` too), one row each:
the primary key makes a reference one payment's per provider code and tenant, and is the
index a webhook's lookup uses. A reference stays its payment's once written."""

refunds = sa.Table(
    "paycore_refunds",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("payment_id", ID, sa.ForeignKey("paycore_payments.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", STATUS, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("metadata", JSONDocument, nullable=False, server_default=sa.text("'{}'")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    *_non_negative("amount"),
    sa.UniqueConstraint("payment_id", "position", name="uq_paycore_refunds_position"),
    sa.Index(
        "ix_paycore_refunds_pending",
        "updated_at",
        "payment_id",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    ),
)
"""A payment's refunds, in the order the payment holds them.

``ix_paycore_refunds_pending`` holds only the refunds still pending at the provider (a partial
index on PostgreSQL and SQLite): the reaper's listing of the payments holding one reads those
entries alone, however many refunds are stored."""

payment_events = sa.Table(
    "paycore_payment_events",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("payment_id", ID, sa.ForeignKey("paycore_payments.id"), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("kind", STATUS, nullable=False),
    sa.Column("cause", STATUS, nullable=False),
    sa.Column("tenant", CODE),
    sa.Column("from_status", STATUS),
    sa.Column("to_status", STATUS),
    sa.Column("amount", sa.BigInteger),
    sa.Column("currency", CURRENCY),
    sa.Column("refund_id", ID),
    sa.Column("provider_event_id", sa.String(255)),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("payment_id", "sequence", name="uq_paycore_payment_events_sequence"),
)
"""The append-only history: one row per change, numbered per payment."""

webhook_receipts = sa.Table(
    "paycore_webhook_receipts",
    metadata,
    sa.Column("provider", CODE, primary_key=True),
    sa.Column("tenant", CODE, primary_key=True),
    sa.Column("event_id", sa.String(255), primary_key=True),
    sa.Column("payment_id", ID, sa.ForeignKey("paycore_payments.id"), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)
"""Provider event ids already applied: the primary key makes a second delivery a no-op."""

idempotency_keys = sa.Table(
    "paycore_idempotency_keys",
    metadata,
    sa.Column("scope", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("token", sa.String(64)),
    sa.Column("result", JSONDocument),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Index("ix_paycore_idempotency_keys_expires", "expires_at"),
)
"""One row per key: held (``token`` set, ``expires_at`` = lease end) or completed
(``result`` set, ``expires_at`` = end of retention); times are Unix seconds."""
