"""A partial index of the refunds still pending at the provider, for the reaper.

The reaper asks the provider about a refund whose report has waited too long (a
webhook lost), and flags those it cannot ask about. It lists the payments holding
one, oldest first by the payment's ``(updated_at, id)``; few refunds are pending
at any time, so the index holds only those rows (``WHERE status = 'pending'``, on
PostgreSQL and SQLite), by ``(updated_at, payment_id)``, and the listing reads
them alone whatever the table holds.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IS_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    """Upgrade schema: refunds get ``ix_paycore_refunds_pending``."""
    op.create_index(
        "ix_paycore_refunds_pending",
        "paycore_refunds",
        ["updated_at", "payment_id"],
        unique=False,
        postgresql_where=IS_PENDING,
        sqlite_where=IS_PENDING,
    )


def downgrade() -> None:
    """Downgrade schema: drops ``ix_paycore_refunds_pending``."""
    op.drop_index("ix_paycore_refunds_pending", table_name="paycore_refunds")
