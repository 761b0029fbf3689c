"""``Prepared`` writes and reads exactly what ``connection.execute`` would, on SQLite and PostgreSQL,
whether its statements go straight to the driver (nothing listens) or through SQLAlchemy (something does)."""

from __future__ import annotations

import gc
import os
import sqlite3
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import anyio.to_thread
import pytest
import sqlalchemy as sa
from attrs import evolve
from sqlalchemy import event, exc

from paycore.errors import StorageUnavailable
from paycore.records import Payment
from paycore.testing.records import make_event, make_payment, make_receipt, rich_payment
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


GET = Prepared(sa.select(payments).where(payments.c.id == sa.bindparam("payment_id")))


def _update_row(payment: Payment) -> dict[str, Any]:
    """The parameters with which ``UPDATE`` writes ``payment`` over the row of its id."""
    row = payment_row(payment)
    row["b_id"] = row.pop("id")
    return row


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
    row = _update_row(changed)

    def work(connection: sa.Connection) -> int:
        return UPDATE.execute(connection, row)

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


async def test_rows_to_insert_go_at_once_in_one_unit_of_work(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    same = [event_row(make_event(payment, sequence)) for sequence in (2, 3, 4)]
    reordered = {**event_row(make_event(payment, 6)), "message": "by hand"}
    mixed = [event_row(make_event(payment, 5)), dict(reversed(reordered.items()))]  # same columns, another order
    many = [event_row(make_event(payment, sequence)) for sequence in range(7, 107)]

    def work(connection: sa.Connection) -> list[int]:
        return [INSERT_EVENTS.execute(connection, rows) for rows in (same, mixed, many)]

    assert await repository.database.run(work, write=True) == [3, 2, 100]
    events = await repository.list_events(payment.id)
    assert [e.sequence for e in events] == list(range(2, 107))
    assert [e.message for e in events[3:5]] == ["", "by hand"]
    inserts = [" ".join(s.split()) for s in listened if s.startswith("INSERT INTO paycore_payment_events")]
    if inserts and repository.database.engine.dialect.driver == "psycopg":
        # a listener sees each statement: on psycopg (whose executemany is a pipeline) the three rows went as one
        assert inserts[0].count("), (") == 2
        assert len(inserts) == 1 + 1 + 1


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


@pytest.fixture(params=["straight to the driver", "through SQLAlchemy"])
def listened(request: pytest.FixtureRequest, repository: SqlPaymentRepository) -> Iterator[list[str]]:
    """The statements seen by a listener on the engine: none when nothing listens (the driver path)."""
    seen: list[str] = []

    def listen(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    if request.param == "straight to the driver":
        yield seen
        return
    event.listen(repository.database.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(repository.database.engine, "before_cursor_execute", listen)


async def test_both_paths_write_and_read_the_same_values(repository: SqlPaymentRepository, listened: list[str]) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    changed = evolve(payment, description="Attiéké — table 4", metadata={"split": [1, 2]}, version=payment.version + 1)
    row = _update_row(changed)

    def work(connection: sa.Connection) -> tuple[int, list[dict[str, Any]]]:
        return UPDATE.execute(connection, row), GET.mappings(connection, {"payment_id": payment.id})

    updated, rows = await repository.database.run(work, write=True)
    assert updated == 1
    assert [r["description"] for r in rows] == ["Attiéké — table 4"]
    assert rows[0]["metadata"] == {"split": [1, 2]}
    assert rows[0]["created_at"] == payment.created_at
    assert await repository.get(payment.id) == changed


async def test_a_refused_row_raises_sqlalchemys_error_and_its_unit_changes_nothing(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-twice"))
    other = receipt_row(make_receipt(payment, "evt-other"))
    await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
    with pytest.raises(exc.IntegrityError) as refused:
        await repository.database.run(lambda c: INSERT_RECEIPTS.execute(c, [other, receipt]), write=True)
    assert "parameters hidden" in str(refused.value)  # a row's values stay out of error messages
    assert not await repository.has_receipt(payment.provider, payment.tenant, "evt-other")
    assert await repository.has_receipt(payment.provider, payment.tenant, "evt-twice")


@pytest.mark.postgres
async def test_a_lost_connection_is_reported_and_never_handed_out_again(postgres_url: str) -> None:
    repository = SqlPaymentRepository(postgres_url)
    try:
        payment = rich_payment()
        await repository.add(payment, [])
        lost = Prepared(
            sa.select(
                sa.func.pg_terminate_backend(sa.func.pg_backend_pid()).label("ended"),
                sa.bindparam("note", type_=sa.String).label("note"),
            )
        )
        session = f"cs_{uuid.uuid4().hex}"  # a provider's session, say: never in an error message
        with pytest.raises(StorageUnavailable, match="terminating connection") as raised:
            await repository.database.run(lambda connection: lost.mappings(connection, {"note": session}))
        assert session not in "".join(traceback.format_exception(raised.value))
        cause = raised.value.__cause__
        assert isinstance(cause, exc.OperationalError)
        assert cause.connection_invalidated
        for _ in range(3):  # every pooled connection still handed out works
            assert await repository.get(payment.id) == payment
    finally:
        await repository.aclose()


@pytest.mark.postgres
async def test_after_the_server_ends_every_connection_one_unit_fails_not_one_per_pooled_connection(
    postgres_url: str,
) -> None:
    repository = SqlPaymentRepository(postgres_url)
    admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    try:
        payment = rich_payment()
        await repository.add(payment, [])

        async def hold_a_connection() -> None:  # each unit keeps its connection a moment: the pool opens several
            await repository.database.run(lambda connection: connection.exec_driver_sql("select pg_sleep(0.2)"))

        async with anyio.create_task_group() as tasks:
            for _ in range(6):
                tasks.start_soon(hold_a_connection)
        assert repository.database.engine.pool.checkedin() > 1
        with admin.connect() as connection:  # what a restart or a failover does to them
            connection.execute(
                sa.text(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = current_database() and pid <> pg_backend_pid()"
                )
            )
        failed = 0
        for _ in range(8):
            try:
                assert await repository.get(payment.id) == payment
            except StorageUnavailable:
                failed += 1
        assert failed <= 1
    finally:
        admin.dispose()
        await repository.aclose()


async def test_outside_a_transaction_sqlalchemy_begins_and_ends_it(repository: SqlPaymentRepository) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    changed = evolve(payment, description="Café Touba — comptoir", version=payment.version + 1)
    row = _update_row(changed)
    with repository.database.engine.connect() as connection:
        assert not connection.in_transaction()
        assert UPDATE.execute(connection, row) == 1
        assert connection.in_transaction()  # begun by SQLAlchemy, so its commit is SQLAlchemy's
        connection.commit()
    assert await repository.get(payment.id) == changed


RECEIPT_IDS = Prepared(
    sa.select(webhook_receipts.c.event_id)
    .where(webhook_receipts.c.payment_id == sa.bindparam("payment_id"))
    .order_by(webhook_receipts.c.event_id)
)


async def test_a_statement_after_a_refused_one_in_the_same_unit_runs(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-a"))

    def work(connection: sa.Connection) -> tuple[int, list[dict[str, Any]]]:
        INSERT_RECEIPTS.execute(connection, receipt)
        with pytest.raises(exc.IntegrityError):
            INSERT_RECEIPTS.execute(connection, receipt)
        added = INSERT_RECEIPTS.execute(connection, receipt_row(make_receipt(payment, "evt-b")))
        return added, RECEIPT_IDS.mappings(connection, {"payment_id": payment.id})

    # Each statement stands alone (no BEGIN on a server), so the unit goes on after a refusal.
    added, rows = await repository.database.run(work, write=True, compare_and_set=True)
    assert added == 1
    assert rows == [{"event_id": "evt-a"}, {"event_id": "evt-b"}]


async def test_the_units_after_one_whose_statement_was_refused_run_on_the_same_connection(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-a"))
    await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
    for _ in range(3):  # the pool hands the same connection back each time
        with pytest.raises(exc.IntegrityError):
            await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
        rows = await repository.database.run(lambda c: RECEIPT_IDS.mappings(c, {"payment_id": payment.id}))
        assert rows == [{"event_id": "evt-a"}]
    added = receipt_row(make_receipt(payment, "evt-b"))
    assert await repository.database.run(lambda c: INSERT_RECEIPTS.execute(c, added), write=True) == 1
    rows = await repository.database.run(lambda c: RECEIPT_IDS.mappings(c, {"payment_id": payment.id}))
    assert rows == [{"event_id": "evt-a"}, {"event_id": "evt-b"}]


async def test_each_statement_of_a_unit_gets_its_own_rows_and_count(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    first, second = rich_payment(), make_payment()
    await repository.add(first, [])
    await repository.add(second, [])
    changed = evolve(first, description="Thiéboudienne — table 2", version=first.version + 1)
    row = _update_row(changed)
    receipts = [receipt_row(make_receipt(second, event_id)) for event_id in ("evt-1", "evt-2", "evt-3")]

    def work(connection: sa.Connection) -> list[Any]:
        return [
            GET.mappings(connection, {"payment_id": second.id}),
            INSERT_RECEIPTS.execute(connection, receipts),
            GET.mappings(connection, {"payment_id": "pay_none"}),
            UPDATE.execute(connection, row),
            RECEIPT_IDS.mappings(connection, {"payment_id": second.id}),
            UPDATE.execute(connection, {**row, "b_id": "pay_none"}),
            GET.mappings(connection, {"payment_id": first.id}),
        ]

    read_second, inserted, none, updated, receipt_ids, not_updated, read_first = await repository.database.run(
        work, write=True
    )
    assert [r["id"] for r in read_second] == [second.id]
    assert inserted == 3
    assert none == []
    assert updated == 1
    assert receipt_ids == [{"event_id": "evt-1"}, {"event_id": "evt-2"}, {"event_id": "evt-3"}]
    assert not_updated == 0
    assert [(r["id"], r["description"]) for r in read_first] == [(first.id, "Thiéboudienne — table 2")]


async def test_a_handle_error_listener_sees_a_refused_statement(repository: SqlPaymentRepository) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-seen"))
    await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
    seen: list[str] = []

    def handle_error(context: sa.engine.ExceptionContext) -> None:
        seen.append(type(context.sqlalchemy_exception).__name__)

    event.listen(repository.database.engine, "handle_error", handle_error)
    try:
        with pytest.raises(exc.IntegrityError):
            await repository.database.run(lambda connection: INSERT_RECEIPTS.execute(connection, receipt), write=True)
    finally:
        event.remove(repository.database.engine, "handle_error", handle_error)
    assert seen == ["IntegrityError"]


@pytest.mark.postgres
async def test_a_connection_that_lost_its_driver_connection_runs_the_next_statements_on_a_new_one(
    postgres_url: str,
) -> None:
    repository = SqlPaymentRepository(postgres_url)
    try:
        payment = rich_payment()
        await repository.add(payment, [])
        lost = sa.select(sa.func.pg_terminate_backend(sa.func.pg_backend_pid()))

        def work() -> list[dict[str, Any]]:
            with repository.database.engine.connect() as connection:
                connection.begin()
                assert GET.mappings(connection, {"payment_id": payment.id})
                with pytest.raises(exc.OperationalError) as raised:
                    connection.execute(lost)  # through SQLAlchemy, which invalidates the connection
                assert raised.value.connection_invalidated
                connection.rollback()
                connection.begin()  # on a driver connection SQLAlchemy makes anew
                GET.mappings(connection, {"payment_id": payment.id})
                return GET.mappings(connection, {"payment_id": payment.id})

        rows = await anyio.to_thread.run_sync(work)
        assert [r["id"] for r in rows] == [payment.id]
    finally:
        await repository.aclose()


class Refused(Exception):
    """A check's refusal of a sent statement's row count."""


def _exactly_one(count: int) -> None:
    if count != 1:
        raise Refused(f"{count} rows")


async def test_a_sent_statement_is_checked_before_its_unit_commits(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    changed = evolve(payment, description="Soupe kandia — table 6", version=payment.version + 1)
    row = _update_row(changed)

    def work(connection: sa.Connection) -> None:
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-before")))
        UPDATE.send(connection, row, _exactly_one)
        UPDATE.send(connection, {**row, "b_id": "pay_none"}, _exactly_one)  # no such row: refused
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-after")))

    with pytest.raises(Refused, match="0 rows"):
        await repository.database.run(work, write=True)
    assert await repository.get(payment.id) == payment
    for event_id in ("evt-before", "evt-after"):
        assert not await repository.has_receipt(payment.provider, payment.tenant, event_id)


async def test_a_statement_run_after_sent_ones_sees_what_they_wrote(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    counts: list[int] = []

    def work(connection: sa.Connection) -> list[dict[str, Any]]:
        for event_id in ("evt-1", "evt-2"):
            INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, event_id)), counts.append)
        INSERT_RECEIPTS.send(connection, [receipt_row(make_receipt(payment, e)) for e in ("evt-3", "evt-4")])
        return RECEIPT_IDS.mappings(connection, {"payment_id": payment.id})

    rows = await repository.database.run(work, write=True)
    assert rows == [{"event_id": f"evt-{n}"} for n in (1, 2, 3, 4)]
    assert counts == [1, 1]  # each sent statement's own count, checked before the read's answer


async def test_a_refused_sent_statement_raises_sqlalchemys_error_and_its_unit_changes_nothing(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-twice"))
    await repository.database.run(lambda connection: INSERT_RECEIPTS.send(connection, receipt), write=True)

    def work(connection: sa.Connection) -> None:
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-new")))
        INSERT_RECEIPTS.send(connection, receipt)
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-newer")))

    for _ in range(2):  # the connection the refusal happened on runs the next unit
        with pytest.raises(exc.IntegrityError) as refused:
            await repository.database.run(work, write=True)
        assert "parameters hidden" in str(refused.value)  # a row's values stay out of error messages
        rows = await repository.database.run(lambda c: RECEIPT_IDS.mappings(c, {"payment_id": payment.id}))
        assert rows == [{"event_id": "evt-twice"}]


async def test_a_statement_through_sqlalchemy_after_sent_ones_sees_what_they_wrote(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    counts: list[int] = []
    receipts = sa.select(webhook_receipts.c.event_id).where(webhook_receipts.c.payment_id == payment.id)

    def work(connection: sa.Connection) -> list[str]:
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-sent")), counts.append)
        found = list(connection.execute(receipts).scalars())
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-then")), counts.append)
        return found

    assert await repository.database.run(work, write=True) == ["evt-sent"]
    assert counts == [1, 1]
    rows = await repository.database.run(lambda c: RECEIPT_IDS.mappings(c, {"payment_id": payment.id}))
    assert rows == [{"event_id": "evt-sent"}, {"event_id": "evt-then"}]


async def test_a_refusal_that_arrives_while_later_statements_are_sent_is_raised_and_changes_nothing(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-first"))
    await repository.database.run(lambda connection: INSERT_RECEIPTS.send(connection, receipt), write=True)
    changed = evolve(payment, description="Akara — comptoir", version=payment.version + 1)
    row = _update_row(changed)

    def refused_then_more(connection: sa.Connection) -> None:
        INSERT_RECEIPTS.send(connection, receipt)  # a duplicate: the server refuses it
        time.sleep(0.2)  # its refusal is back before the next statement goes
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-later")))

    def missed_then_refused(connection: sa.Connection) -> None:
        UPDATE.send(connection, {**row, "b_id": "pay_none"}, _exactly_one)  # matches no row
        INSERT_RECEIPTS.send(connection, receipt)
        time.sleep(0.2)
        UPDATE.send(connection, row, _exactly_one)

    with pytest.raises(exc.IntegrityError):
        await repository.database.run(refused_then_more, write=True)
    with pytest.raises(Refused, match="0 rows"):  # the first failure in the unit's order is what is raised
        await repository.database.run(missed_then_refused, write=True)
    rows = await repository.database.run(lambda c: RECEIPT_IDS.mappings(c, {"payment_id": payment.id}))
    assert rows == [{"event_id": "evt-first"}]
    assert await repository.get(payment.id) == payment


def _missed() -> NoReturn:
    raise Refused("missed its row")


async def test_a_statement_that_must_change_one_row_and_changes_none_refuses_its_unit(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    changed = evolve(payment, description="Ceebu jën — table 2", version=payment.version + 1)
    row = _update_row(changed)

    def missing(connection: sa.Connection) -> None:
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-before")))
        UPDATE.send_one(connection, {**row, "b_id": "pay_none"}, _missed)  # no such row
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-after")))

    def found(connection: sa.Connection) -> None:
        UPDATE.send_one(connection, row, _missed)
        INSERT_RECEIPTS.send(connection, receipt_row(make_receipt(payment, "evt-kept")))

    for _ in range(2):  # the connection the refusal happened on runs the next unit
        with pytest.raises(Refused, match="missed its row"):
            await repository.database.run(missing, write=True)
        assert await repository.get(payment.id) == payment
        for event_id in ("evt-before", "evt-after"):
            assert not await repository.has_receipt(payment.provider, payment.tenant, event_id)
    await repository.database.run(found, write=True)
    assert await repository.get(payment.id) == changed
    assert await repository.has_receipt(payment.provider, payment.tenant, "evt-kept")


async def test_a_refusal_after_a_statement_that_changed_its_one_row_undoes_that_row_too(
    repository: SqlPaymentRepository, listened: list[str]
) -> None:
    payment = rich_payment()
    await repository.add(payment, [])
    receipt = receipt_row(make_receipt(payment, "evt-once"))
    await repository.database.run(lambda connection: INSERT_RECEIPTS.send(connection, receipt), write=True)
    changed = evolve(payment, description="Thiakry — table 4", version=payment.version + 1)
    row = _update_row(changed)

    def changed_then_refused(connection: sa.Connection) -> None:
        UPDATE.send_one(connection, row, _missed)
        INSERT_RECEIPTS.send(connection, receipt)  # a duplicate: the server refuses it

    def missed_then_refused(connection: sa.Connection) -> None:
        UPDATE.send_one(connection, {**row, "b_id": "pay_none"}, _missed)
        INSERT_RECEIPTS.send(connection, receipt)

    with pytest.raises(exc.IntegrityError):
        await repository.database.run(changed_then_refused, write=True)
    with pytest.raises(Refused, match="missed its row"):  # the first failure in the unit's order
        await repository.database.run(missed_then_refused, write=True)
    assert await repository.get(payment.id) == payment


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists the process's open files through /proc")
async def test_a_sqlite_file_is_let_go_when_the_flow_closes_even_if_a_kept_cursor_is_still_held(
    tmp_path: Any,
) -> None:
    """A unit's error can keep its cursors alive after the flow closes (its traceback, in a reference cycle until the
    collector runs); a cursor whose statement is still open would keep the SQLite file open with it."""
    import paycore.testing.fake
    import paycore_sqlalchemy.plugin
    from paycore.flow import PaymentFlow
    from paycore.money import Money

    database = str(tmp_path / "shop.db")
    config = {"repository": f"sqlite:///{database}", "providers": {"fake": {"type": "fake", "webhook_secret": "w"}}}
    flow = PaymentFlow.from_config(config, plugins=[paycore.testing.fake, paycore_sqlalchemy.plugin])
    async with flow:
        await flow.create_payment(amount=Money.of("1000", "XOF"), provider="fake", order_id="T1", idempotency_key="k")
        held = [found for found in gc.get_objects() if type(found) is sqlite3.Cursor and _on(found, database)]
        assert held, "the pooled connection keeps its statements' cursors"
        for cursor in held:
            cursor.execute("SELECT 1 UNION ALL SELECT 2")  # a statement left open, as an error can leave one
    still_open = [
        target
        for name in os.listdir("/proc/self/fd")
        if (target := _link(f"/proc/self/fd/{name}")) is not None and target.startswith(database)
    ]
    assert still_open == []


def _link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # closed since it was listed
        return None


def _on(cursor: sqlite3.Cursor, database: str) -> bool:
    """Whether ``cursor`` is one of a connection to the SQLite file ``database`` (not another test's)."""
    try:
        return any(row[2] == database for row in cursor.connection.execute("PRAGMA database_list"))
    except sqlite3.Error:  # a closed connection
        return False
