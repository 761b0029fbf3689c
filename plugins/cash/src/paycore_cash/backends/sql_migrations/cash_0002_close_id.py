"""The identity of a keyed close on the drawer session it closed.

A close made under an idempotency key stores an id derived from the key
(``close_id``), so a retry of that close finds the session it closed and
replays it, even after the till was opened again.

Revision ID: cash_0002
Revises: cash_0001
Create Date: 2026-12-04

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cash_0002"
down_revision: str | Sequence[str] | None = "cash_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSIONS = "paycore_cash_drawer_sessions"


def upgrade() -> None:
    """Add the nullable ``close_id`` column (closes made before it have none)."""
    op.add_column(SESSIONS, sa.Column("close_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop ``close_id``."""
    op.drop_column(SESSIONS, "close_id")
