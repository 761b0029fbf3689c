"""What became of each cash refund: paid out, or given up for good.

A refund whose call ran out of time with nothing paid out is given up, and a
till that pays it out afterwards, under that call, must be refused. Each
refund id gets one claim row: ``paid_out`` stored with its REFUND movement, or
``given_up`` (``through`` a payment version) stored instead of it; the two
collide on the row, so of a give-up and a payout racing exactly one takes
effect. Every REFUND movement stored before this revision gets its
``paid_out`` claim here, so a refund paid out already is never given up.

Revision ID: cash_0003
Revises: cash_0002
Create Date: 2026-12-08

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cash_0003"
down_revision: str | Sequence[str] | None = "cash_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MOVEMENTS = "paycore_cash_movements"
CLAIMS = "paycore_cash_refund_claims"


def upgrade() -> None:
    """Create the claims table and record a ``paid_out`` claim for every REFUND movement stored already."""
    op.create_table(
        CLAIMS,
        sa.Column("refund_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("through", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("outcome IN ('paid_out', 'given_up')", name=op.f("ck_paycore_cash_refund_claims_outcome")),
        sa.PrimaryKeyConstraint("refund_id", name=op.f("pk_paycore_cash_refund_claims")),
    )
    movements = sa.table(
        MOVEMENTS,
        sa.column("kind", sa.String()),
        sa.column("payment_id", sa.String()),
        sa.column("refund_id", sa.String()),
        sa.column("at", sa.DateTime()),
    )
    claims = sa.table(
        CLAIMS,
        sa.column("refund_id", sa.String()),
        sa.column("payment_id", sa.String()),
        sa.column("outcome", sa.String()),
        sa.column("at", sa.DateTime()),
    )
    # One row per refund id: the unique index allows one REFUND movement per refund id, and grouping makes one
    # row even if a database holds more. A movement that names no payment is claimed for '' (none).
    paid_out = (
        sa.select(
            movements.c.refund_id,
            sa.func.coalesce(sa.func.min(movements.c.payment_id), sa.literal_column("''")),
            sa.literal_column("'paid_out'"),
            sa.func.min(movements.c.at),
        )
        .where(movements.c.kind == sa.literal_column("'refund'"), movements.c.refund_id.is_not(None))
        .group_by(movements.c.refund_id)
    )
    op.execute(claims.insert().from_select(["refund_id", "payment_id", "outcome", "at"], paid_out))


def downgrade() -> None:
    """Drop the claims table (refunds given up can then be paid out again)."""
    op.drop_table(CLAIMS)
