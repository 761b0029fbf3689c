"""Indexes for listing by status (alone or within a tenant), and refunds' metadata.

Adds ``paycore_refunds.metadata`` (a JSON document, ``{}`` for the refunds stored
before) and two indexes of ``paycore_payments``, so that a back office's listing
by status, or by tenant and status, in creation order reads an index range:
``(status, created_at, id)`` and ``(tenant, status, created_at, id)``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema: refunds get ``metadata`` (``{}``); payments get the status listing indexes."""
    op.add_column("paycore_refunds", sa.Column("metadata", JSON, server_default=sa.text("'{}'"), nullable=False))
    op.create_index(
        "ix_paycore_payments_status_created", "paycore_payments", ["status", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_paycore_payments_tenant_status_created",
        "paycore_payments",
        ["tenant", "status", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    """Downgrade schema: drops the indexes and refunds' metadata."""
    op.drop_index("ix_paycore_payments_tenant_status_created", table_name="paycore_payments")
    op.drop_index("ix_paycore_payments_status_created", table_name="paycore_payments")
    with op.batch_alter_table("paycore_refunds") as batch:
        batch.drop_column("metadata")
