"""Revision 0005: the reaper's listing of the payments that carry a provider call reads a partial index of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paycore.calls import CallOperation, ProviderCall
from paycore.status import PaymentStatus
from paycore.testing.records import BASE_TIME, make_payment
from paycore_sqlalchemy import SqlPaymentRepository, migrate
from paycore_sqlalchemy.engine import acquire_engine

INDEX = "ix_paycore_payments_pending_call"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database that was never migrated."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make(migrated=False)


def _index_definition(connection: sa.Connection) -> str | None:
    """The ``CREATE INDEX`` text of :data:`INDEX`, as the database keeps it (``None``: no such index)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
    found: str | None = connection.execute(sa.text(query), {"name": INDEX}).scalar()
    return found


def _definition(url: str) -> str | None:
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            return _index_definition(connection)
    finally:
        lease.release()


def test_the_index_holds_only_the_payments_that_carry_a_call_and_goes_on_downgrade(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    definition = " ".join((_definition(empty_url) or "").lower().replace("(", " ").replace(")", " ").split())
    assert "updated_at, id" in definition
    assert "where pending_call is not null" in definition
    migrate.downgrade(empty_url, "0004")
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


@pytest.mark.anyio
async def test_listing_the_payments_that_carry_a_call_reads_the_partial_index(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    repository = SqlPaymentRepository(empty_url)
    plans = _Plans()
    try:
        for minutes in range(3):
            at = BASE_TIME + timedelta(minutes=minutes)
            call = ProviderCall.start(CallOperation.CAPTURE, now=at, lease=timedelta(minutes=2))
            await repository.add(make_payment(status=PaymentStatus.AUTHORIZED, updated_at=at, pending_call=call), [])
            await repository.add(make_payment(status=PaymentStatus.SUCCEEDED, updated_at=at), [])
        sa.event.listen(repository.database.engine, "before_cursor_execute", plans)
        try:
            first = await repository.list_with_calls(limit=2)
            await repository.list_with_calls(limit=2, after=(first[-1].updated_at, first[-1].id))
        finally:
            sa.event.remove(repository.database.engine, "before_cursor_execute", plans)
    finally:
        await repository.aclose()
    assert len(plans.plans) == 2
    for plan in plans.plans:
        assert INDEX in plan, plan
