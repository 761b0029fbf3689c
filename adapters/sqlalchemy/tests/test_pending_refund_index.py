"""Revision 0006: the reaper's listing of the payments holding a pending refund reads a partial index of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from attrs import evolve

from paycore.money import Money
from paycore.records import Payment, Refund, new_id
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.records import BASE_TIME, make_payment
from paycore_sqlalchemy import SqlPaymentRepository, migrate
from paycore_sqlalchemy.engine import acquire_engine

INDEX = "ix_paycore_refunds_pending"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database that was never migrated."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make(migrated=False)


def _definition(url: str) -> str | None:
    """The ``CREATE INDEX`` text of :data:`INDEX`, as the database keeps it (``None``: no such index)."""
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
            else:
                query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
            found: str | None = connection.execute(sa.text(query), {"name": INDEX}).scalar()
            return found
    finally:
        lease.release()


def test_the_index_holds_only_the_pending_refunds_and_goes_on_downgrade(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    kept = (_definition(empty_url) or "").lower().replace("::text", "")  # PostgreSQL writes out its casts
    definition = " ".join(kept.replace("(", " ").replace(")", " ").split())
    assert "paycore_refunds" in definition
    assert "updated_at, payment_id" in definition
    assert "where status = 'pending'" in definition
    migrate.downgrade(empty_url, "0005")
    assert _definition(empty_url) is None
    migrate.upgrade(empty_url)
    assert _definition(empty_url) is not None


class _Plans:
    """Before each ``SELECT`` of payments the repository runs, the database's plan for it."""

    def __init__(self) -> None:
        self.plans: list[str] = []

    def __call__(self, connection: sa.Connection, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT") or "paycore_payments" not in statement:
            return
        if connection.dialect.name == "sqlite":
            rows = cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
        else:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a few rows: make the planner show what it can use
            rows = cursor.execute("EXPLAIN " + statement, parameters).fetchall()
        self.plans.append("\n".join(str(row) for row in rows))


def _refunded(status: RefundStatus, minutes: int) -> Payment:
    """A captured payment updated ``minutes`` after :data:`BASE_TIME`, with one refund of ``status`` made then."""
    at = BASE_TIME + timedelta(minutes=minutes)
    payment = make_payment(status=PaymentStatus.SUCCEEDED, captured_amount=Money.of("5000", "XOF"), updated_at=at)
    refund = Refund(
        id=new_id("re"),
        payment_id=payment.id,
        amount=Money.of("1000", "XOF"),
        status=status,
        reason="",
        created_at=at,
        updated_at=at,
    )
    return evolve(payment, refunds=(refund,))


@pytest.mark.anyio
async def test_listing_the_payments_holding_a_pending_refund_reads_the_partial_index(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    repository = SqlPaymentRepository(empty_url)
    plans = _Plans()
    try:
        for minutes in range(3):
            await repository.add(_refunded(RefundStatus.PENDING, minutes), [])
            await repository.add(_refunded(RefundStatus.SUCCEEDED, minutes), [])
        sa.event.listen(repository.database.engine, "before_cursor_execute", plans)
        try:
            bound = BASE_TIME + timedelta(hours=1)
            first = await repository.list_with_pending_refunds(updated_before=bound, limit=2)
            after = (first[-1].updated_at, first[-1].id)
            rest = await repository.list_with_pending_refunds(updated_before=bound, limit=2, after=after)
        finally:
            sa.event.remove(repository.database.engine, "before_cursor_execute", plans)
    finally:
        await repository.aclose()
    assert [len(first), len(rest)] == [2, 1]
    assert len(plans.plans) == 2
    for plan in plans.plans:
        assert INDEX in plan, plan
