"""``Prepared`` writes exactly what ``connection.execute`` would, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from attrs import evolve
from sqlalchemy import event, exc

from paycore.testing.records import make_event, make_receipt, rich_payment
from paycore_sqlalchemy import SqlPaymentRepository
from paycore_sqlalchemy.codec import event_row, payment_row, receipt_row
from paycore_sqlalchemy.prepared import Prepared
from paycore_sqlalchemy.schema import payment_events, payments, webhook_receipts

pytestmark = pytest.mark.anyio

UPDATE = Prepared(
    sa.update(payments)
    .where(payments.c.id == sa.bindparam("b_id"))
    .values({c.name: sa.bindparam(c.name) for c in payments.c if c.name != "id"})
)
INSERT_EVENTS = Prepared(sa.insert(payment_events), by_columns=True)
INSERT_RECEIPTS = Prepared(sa.insert(webhook_receipts), by_columns=True)


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SqlPaymentRepository]:
    repository = SqlPaymentRepository(database_url)
    yield repository
    await repository.aclose()


async def test_a_prepared_update_stores_every_field_as_the_repository_reads_it(
    repository: SqlPaymentRepository,
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    changed = evolve(payment, description="Dîner — table 9", metadata={"table": 9, "nested": {"ok": None}})
    row = payment_row(changed)
    row["b_id"] = row.pop("id")

    def work(connection: sa.Connection) -> int:
        return UPDATE.execute(connection, row).rowcount

    assert await repository.database.run(work, write=True) == 1
    assert await repository.get(payment.id) == changed


async def test_prepared_inserts_take_any_columns_given_and_many_rows_at_once(
    repository: SqlPaymentRepository,
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    rows = [event_row(make_event(payment, sequence)) for sequence in (2, 3)]

    def work(connection: sa.Connection) -> None:
        INSERT_EVENTS.execute(connection, rows)
        INSERT_EVENTS.execute(connection, {**event_row(make_event(payment, 4)), "message": "by one"})

    await repository.database.run(work, write=True)
    assert [e.sequence for e in await repository.list_events(payment.id)] == [2, 3, 4]


async def test_a_refusal_is_sqlalchemys_error_and_statement_events_see_the_sql(
    repository: SqlPaymentRepository,
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = {**receipt_row(make_receipt(payment, "evt-once"))}
    seen: list[str] = []

    def listen(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(repository.database.engine, "before_cursor_execute", listen)
    try:
        await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
        with pytest.raises(exc.IntegrityError):
            await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
    finally:
        event.remove(repository.database.engine, "before_cursor_execute", listen)
    assert sum(statement.startswith("INSERT INTO paycore_webhook_receipts") for statement in seen) == 2
    assert await repository.has_receipt(payment.provider, payment.tenant, "evt-once")
