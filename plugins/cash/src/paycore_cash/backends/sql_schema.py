"""The cash plugin's tables in a SQL database, and the schema it registers with the SQL adapter.

Imported only when the SQL adapter is installed (it imports SQLAlchemy and
``paycore_sqlalchemy``). The migrations in ``sql_migrations/`` build exactly
these tables; their branch is labelled ``cash``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import sqlalchemy as sa

from paycore_cash.backends.rows import GIVEN_UP, PAID_OUT
from paycore_sqlalchemy.schema import NAMING_CONVENTION
from paycore_sqlalchemy.schemas import SqlSchema
from paycore_sqlalchemy.types import UTCDateTime

__all__ = [
    "CASH_SCHEMA",
    "cash_movements",
    "drawer_sessions",
    "metadata",
    "refund_claims",
]

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
"""The cash plugin's tables (apart from the adapter's own)."""

ID = sa.String(64)
CODE = sa.String(64)
CURRENCY = sa.String(3)
STATUS = sa.String(32)


def _non_negative(*columns: str) -> list[sa.CheckConstraint]:
    return [sa.CheckConstraint(f"{c} >= 0", name=f"{c}_non_negative") for c in columns]


drawer_sessions = sa.Table(
    "paycore_cash_drawer_sessions",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("tenant", CODE, nullable=False),
    sa.Column("till", CODE, nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("opening_float", sa.BigInteger, nullable=False),
    sa.Column("opened_by", sa.String(255), nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("status", STATUS, nullable=False),
    sa.Column("closed_by", sa.String(255)),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("counted", sa.BigInteger),
    sa.Column("expected", sa.BigInteger),
    sa.Column("variance", sa.BigInteger),
    sa.Column("close_id", ID),
    sa.Column("version", sa.Integer, nullable=False),
    *_non_negative("opening_float", "counted"),
    sa.Index("ix_paycore_cash_drawer_sessions_till", "tenant", "till", "opened_at"),
    sa.Index(
        "uq_paycore_cash_drawer_sessions_open_till",
        "tenant",
        "till",
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    ),
)
"""Drawer sessions; at most one open session per till (tenant ``None`` stored as ``''``)."""

cash_movements = sa.Table(
    "paycore_cash_movements",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("session_id", ID, sa.ForeignKey("paycore_cash_drawer_sessions.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", STATUS, nullable=False),
    sa.Column("currency", CURRENCY, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("payment_id", ID),
    sa.Column("refund_id", ID),
    sa.Column("tendered", sa.BigInteger),
    sa.Column("change", sa.BigInteger),
    *_non_negative("amount", "tendered", "change"),
    sa.UniqueConstraint("session_id", "position", name="uq_paycore_cash_movements_position"),
    sa.Index(
        "uq_paycore_cash_movements_sale",
        "payment_id",
        unique=True,
        sqlite_where=sa.text("kind = 'sale'"),
        postgresql_where=sa.text("kind = 'sale'"),
    ),
    sa.Index(
        "uq_paycore_cash_movements_refund",
        "refund_id",
        unique=True,
        sqlite_where=sa.text("kind = 'refund'"),
        postgresql_where=sa.text("kind = 'refund'"),
    ),
)
"""Cash movements of a drawer session, in the order they were added."""

refund_claims = sa.Table(
    "paycore_cash_refund_claims",
    metadata,
    sa.Column("refund_id", ID, primary_key=True),
    sa.Column("payment_id", ID, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("through", sa.Integer),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.CheckConstraint(f"outcome IN ('{PAID_OUT}', '{GIVEN_UP}')", name="outcome"),
)
"""What became of each refund id a drawer was asked about: paid out (its REFUND movement is stored, in the
same transaction) or given up ``through`` a payment version (no REFUND sent by a call written down at that
version or before is ever stored; a later call's payout turns the row into ``paid_out``). ``payment_id`` is
``''`` for a refund movement that names no payment. The row, keyed by the refund id, is where a give-up and
the payout it races collide, so one of them fails and the other takes effect."""

CASH_SCHEMA: Final = SqlSchema("cash", metadata, Path(__file__).parent / "sql_migrations")
"""What the cash plugin registers through ``paycore_sqlalchemy_schemas``."""
