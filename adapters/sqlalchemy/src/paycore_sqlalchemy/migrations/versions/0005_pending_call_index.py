"""A partial index of the payments that carry a provider call, for the reaper.

The reaper settles provider calls whose answer was lost, whatever their payment's
status (an unknown capture of an authorized payment, an unknown refund of a paid
one). It lists them oldest first by ``(updated_at, id)``; few payments carry a
call at any time, so the index holds only those rows (``WHERE pending_call IS NOT
NULL``, on PostgreSQL and SQLite) and the listing reads a few entries whatever
the table holds.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CARRIES_A_CALL = sa.text("pending_call IS NOT NULL")


def upgrade() -> None:
    """Upgrade schema: payments get ``ix_paycore_payments_pending_call``."""
    op.create_index(
        "ix_paycore_payments_pending_call",
        "paycore_payments",
        ["updated_at", "id"],
        unique=False,
        postgresql_where=CARRIES_A_CALL,
        sqlite_where=CARRIES_A_CALL,
    )


def downgrade() -> None:
    """Downgrade schema: drops ``ix_paycore_payments_pending_call``."""
    op.drop_index("ix_paycore_payments_pending_call", table_name="paycore_payments")
