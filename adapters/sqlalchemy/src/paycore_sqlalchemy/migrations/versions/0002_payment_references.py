"""Every provider reference of a payment, and the provider's own state for it.

Adds ``paycore_payment_references`` (one row per reference, unique per provider
code and tenant) and the columns ``provider_references`` and ``provider_state`` of
``paycore_payments``. Each payment's ``external_id`` is copied into the new table,
so a payment stored before this revision is still found by it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema, keeping every payment's external id as one of its references."""
    op.add_column(
        "paycore_payments",
        sa.Column("provider_references", JSON, server_default=sa.text("'[]'"), nullable=False),
    )
    op.add_column(
        "paycore_payments",
        sa.Column("provider_state", JSON, server_default=sa.text("'{}'"), nullable=False),
    )
    op.create_table(
        "paycore_payment_references",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["paycore_payments.id"],
            name=op.f("fk_paycore_payment_references_payment_id_paycore_payments"),
        ),
        sa.PrimaryKeyConstraint("provider", "tenant", "reference", name=op.f("pk_paycore_payment_references")),
    )
    op.create_index(
        "ix_paycore_payment_references_payment_id", "paycore_payment_references", ["payment_id"], unique=False
    )
    op.execute(
        "INSERT INTO paycore_payment_references (provider, tenant, reference, payment_id) "
        "SELECT provider, tenant, external_id, id FROM paycore_payments WHERE external_id IS NOT NULL"
    )


def downgrade() -> None:
    """Downgrade schema: payments keep their external id; their other references are dropped."""
    op.drop_index("ix_paycore_payment_references_payment_id", table_name="paycore_payment_references")
    op.drop_table("paycore_payment_references")
    op.drop_column("paycore_payments", "provider_state")
    op.drop_column("paycore_payments", "provider_references")
