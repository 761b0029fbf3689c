"""Initial schema: payments, refunds, events, webhook receipts, idempotency keys.

Databases made before plugins owned their tables also got the cash plugin's drawer
tables here; the cash plugin's first migration adopts them as they are.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

"""

from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = ("paycore",)
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "paycore_idempotency_keys",
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_paycore_idempotency_keys")),
    )
    op.create_index("ix_paycore_idempotency_keys_expires", "paycore_idempotency_keys", ["expires_at"], unique=False)

    op.create_table(
        "paycore_payments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("authorized_amount", sa.BigInteger(), nullable=True),
        sa.Column("authorized_currency", sa.String(length=3), nullable=True),
        sa.Column("captured_amount", sa.BigInteger(), nullable=True),
        sa.Column("captured_currency", sa.String(length=3), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("capture", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("customer", JSON, nullable=True),
        sa.Column("items", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("next_action", JSON, nullable=True),
        sa.Column("fraud_status", sa.String(length=32), nullable=False),
        sa.Column("fraud_message", sa.Text(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("review_reason", sa.String(length=32), nullable=True),
        sa.Column("review_message", sa.Text(), nullable=False),
        sa.Column("pending_call", JSON, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_paycore_payments_amount_non_negative")),
        sa.CheckConstraint("authorized_amount >= 0", name=op.f("ck_paycore_payments_authorized_amount_non_negative")),
        sa.CheckConstraint("captured_amount >= 0", name=op.f("ck_paycore_payments_captured_amount_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paycore_payments")),
        sa.UniqueConstraint("provider", "tenant", "external_id", name="uq_paycore_payments_external_id"),
    )
    op.create_index("ix_paycore_payments_created", "paycore_payments", ["created_at", "id"], unique=False)
    op.create_index("ix_paycore_payments_order", "paycore_payments", ["order_id", "created_at", "id"], unique=False)
    op.create_index("ix_paycore_payments_status_updated", "paycore_payments", ["status", "updated_at", "id"], unique=False)
    op.create_index(
        "ix_paycore_payments_tenant_created", "paycore_payments", ["tenant", "created_at", "id"], unique=False
    )

    op.create_table(
        "paycore_payment_events",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=True),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("provider_event_id", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["paycore_payments.id"], name=op.f("fk_paycore_payment_events_payment_id_paycore_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paycore_payment_events")),
        sa.UniqueConstraint("payment_id", "sequence", name="uq_paycore_payment_events_sequence"),
    )
    op.create_table(
        "paycore_refunds",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_paycore_refunds_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["paycore_payments.id"], name=op.f("fk_paycore_refunds_payment_id_paycore_payments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paycore_refunds")),
        sa.UniqueConstraint("payment_id", "position", name="uq_paycore_refunds_position"),
    )
    op.create_table(
        "paycore_webhook_receipts",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["paycore_payments.id"],
            name=op.f("fk_paycore_webhook_receipts_payment_id_paycore_payments"),
        ),
        sa.PrimaryKeyConstraint("provider", "tenant", "event_id", name=op.f("pk_paycore_webhook_receipts")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    for table in (
        "paycore_webhook_receipts",
        "paycore_refunds",
        "paycore_payment_events",
        "paycore_payments",
        "paycore_idempotency_keys",
    ):
        op.drop_table(table)
