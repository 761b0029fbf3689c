"""Cash drawer sessions and movements; adopts the tables a database made before plugins owned theirs.

Until the cash plugin owned its storage, the SQL adapter's revision 0001
created these two tables. A database made then already has them, with rows:
this revision creates only what is missing (a table, or an index of one), so
upgrading keeps every drawer session and movement.

Revision ID: cash_0001
Revises:
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "cash_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("cash",)
depends_on: str | Sequence[str] | None = None

SESSIONS = "paycore_cash_drawer_sessions"
MOVEMENTS = "paycore_cash_movements"


def _create_sessions() -> None:
    op.create_table(
        SESSIONS,
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("till", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("opening_float", sa.BigInteger(), nullable=False),
        sa.Column("opened_by", sa.String(length=255), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("closed_by", sa.String(length=255), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counted", sa.BigInteger(), nullable=True),
        sa.Column("expected", sa.BigInteger(), nullable=True),
        sa.Column("variance", sa.BigInteger(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("counted >= 0", name=op.f("ck_paycore_cash_drawer_sessions_counted_non_negative")),
        sa.CheckConstraint(
            "opening_float >= 0", name=op.f("ck_paycore_cash_drawer_sessions_opening_float_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paycore_cash_drawer_sessions")),
    )


def _create_movements() -> None:
    op.create_table(
        MOVEMENTS,
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.String(length=64), nullable=True),
        sa.Column("refund_id", sa.String(length=64), nullable=True),
        sa.Column("tendered", sa.BigInteger(), nullable=True),
        sa.Column("change", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_paycore_cash_movements_amount_non_negative")),
        sa.CheckConstraint("change >= 0", name=op.f("ck_paycore_cash_movements_change_non_negative")),
        sa.CheckConstraint("tendered >= 0", name=op.f("ck_paycore_cash_movements_tendered_non_negative")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            [f"{SESSIONS}.id"],
            name=op.f("fk_paycore_cash_movements_session_id_paycore_cash_drawer_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paycore_cash_movements")),
        sa.UniqueConstraint("session_id", "position", name="uq_paycore_cash_movements_position"),
    )


def _index(name: str, table: str, columns: list[str], *, unique: bool = False, where: str | None = None) -> None:
    if name in {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(table)}:
        return
    condition = None if where is None else sa.text(where)
    op.create_index(name, table, columns, unique=unique, sqlite_where=condition, postgresql_where=condition)


def upgrade() -> None:
    """Create the drawer tables and indexes a database lacks; keep those it has, with their rows."""
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table(SESSIONS):
        _create_sessions()
    if not inspector.has_table(MOVEMENTS):
        _create_movements()
    _index("ix_paycore_cash_drawer_sessions_till", SESSIONS, ["tenant", "till", "opened_at"])
    _index(
        "uq_paycore_cash_drawer_sessions_open_till", SESSIONS, ["tenant", "till"], unique=True, where="status = 'open'"
    )
    _index("uq_paycore_cash_movements_refund", MOVEMENTS, ["refund_id"], unique=True, where="kind = 'refund'")
    _index("uq_paycore_cash_movements_sale", MOVEMENTS, ["payment_id"], unique=True, where="kind = 'sale'")


def downgrade() -> None:
    """Drop the drawer tables (and every drawer session and movement in them)."""
    op.drop_table(MOVEMENTS)
    op.drop_table(SESSIONS)
