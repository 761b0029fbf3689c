"""What a unit of work sends PostgreSQL around its statements: a plain ``BEGIN`` for a unit that writes,
nothing for one that does not need a transaction, the isolation the connection was given, kept, and
the round trips it waits for: a write's statements go together with its ``BEGIN`` and its ``COMMIT``
(the payment's version checked by the server), unless a check must see an answer before the commit.

A unit without ``BEGIN`` and ``COMMIT`` (a single-statement read, a compare-and-set
unit) switches its pooled connection to autocommit and back. What the server
receives is read from libpq's trace of the connection.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from attrs import evolve
from sqlalchemy import event

from paycore.errors import ConcurrentUpdate, IdempotencyInProgress
from paycore.records import Payment
from paycore.storage import KeyClaim, PaymentLookup, PaymentWrite
from paycore.testing.postgres import LibpqTrace
from paycore.testing.records import make_event, make_receipt, rich_payment
from paycore_sqlalchemy import SqlIdempotencyStore, SqlPaymentRepository
from paycore_sqlalchemy.codec import payment_row, receipt_row
from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.prepared import Prepared
from paycore_sqlalchemy.schema import payments, webhook_receipts

pytestmark = pytest.mark.postgres

INSERT_PAYMENT = Prepared(sa.insert(payments), by_columns=True)
INSERT_RECEIPT = Prepared(sa.insert(webhook_receipts), by_columns=True)
COUNT_RECEIPTS = Prepared(sa.select(sa.func.count().label("n")).select_from(webhook_receipts))
ISOLATION = Prepared(sa.select(sa.literal_column("current_setting('transaction_isolation')").label("level")))

_BEGIN = re.compile(r'"(BEGIN[^"]*)"')


class Sent:
    """What the database's pooled connections sent the server (libpq's trace of them)."""

    def __init__(self, trace: LibpqTrace, drivers: set[int]) -> None:
        self._trace = trace
        self._drivers = drivers

    def _trace_of_one_connection(self) -> LibpqTrace:
        assert len(self._drivers) == 1, "every unit should have run on the one pooled connection"
        return self._trace

    def begins(self) -> list[str]:
        """The ``BEGIN`` commands sent."""
        messages = self._trace_of_one_connection().messages()
        return [found for message in messages for found in _BEGIN.findall("\t".join(message))]

    def round_trips(self) -> int:
        """The waits for the server's answers (:meth:`LibpqTrace.round_trips`)."""
        return self._trace_of_one_connection().round_trips()


@contextmanager
def sent_to_the_server(database: Database) -> Iterator[Sent]:
    """What the database's pooled connections send while this is open (libpq's trace)."""
    drivers: set[int] = set()
    with LibpqTrace() as trace:

        def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            drivers.add(id(dbapi_connection))
            trace.start(dbapi_connection)

        def checkin(dbapi_connection: Any, record: Any) -> None:
            if dbapi_connection is not None:
                trace.stop(dbapi_connection)

        event.listen(database.engine, "checkout", checkout)
        event.listen(database.engine, "checkin", checkin)
        try:
            yield Sent(trace, drivers)
        finally:
            event.remove(database.engine, "checkout", checkout)
            event.remove(database.engine, "checkin", checkin)


PAYMENT = rich_payment()
"""The payment the receipts are for."""


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    database.run_sync(lambda c: INSERT_PAYMENT.execute(c, payment_row(PAYMENT)), write=True)
    yield database  # its schema is checked: one pooled connection from here on
    database.close()


def _receipt(event_id: str) -> dict[str, Any]:
    return receipt_row(make_receipt(PAYMENT, event_id))


def test_a_unit_that_writes_after_one_without_begin_sends_a_plain_begin(database: Database) -> None:
    with sent_to_the_server(database) as sent:
        assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 0}]
        database.run_sync(lambda c: INSERT_RECEIPT.execute(c, _receipt("evt-1")), compare_and_set=True)
        database.run_sync(lambda c: INSERT_RECEIPT.execute(c, _receipt("evt-2")), write=True)
        database.run_sync(lambda c: INSERT_RECEIPT.execute(c, _receipt("evt-3")), write=True)
        assert sent.begins() == ["BEGIN", "BEGIN"]  # none for the read and the compare-and-set unit
    assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 3}]


def test_a_unit_that_writes_after_one_without_begin_is_still_all_or_nothing(database: Database) -> None:
    receipt = _receipt("evt-once")
    database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {}))

    def insert_twice(connection: sa.Connection) -> None:
        INSERT_RECEIPT.execute(connection, receipt)
        INSERT_RECEIPT.execute(connection, receipt)

    with pytest.raises(sa.exc.IntegrityError):  # without BEGIN, the first insert stands on its own
        database.run_sync(insert_twice, compare_and_set=True)

    def write_then_fail(connection: sa.Connection) -> None:
        INSERT_RECEIPT.execute(connection, _receipt("evt-rolled-back"))
        raise RuntimeError("the unit fails after its write")

    with pytest.raises(RuntimeError):
        database.run_sync(write_then_fail, write=True)
    assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 1}]


def test_an_isolation_level_given_to_the_driver_connection_is_kept_after_a_unit_without_begin(
    postgres_url: str,
) -> None:
    database = Database(postgres_url, engine_options={"pool_size": 1})  # an engine of its own

    @event.listens_for(database.engine, "connect")
    def serializable(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = psycopg.IsolationLevel.SERIALIZABLE

    try:
        with sent_to_the_server(database) as sent:
            database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {}))  # after the schema check's unit
            levels = database.run_sync(lambda c: ISOLATION.mappings(c, {}), write=True)
            assert sent.begins() == ["BEGIN ISOLATION LEVEL SERIALIZABLE"] * 2
    finally:
        database.close()
    assert levels == [{"level": "serializable"}]


def test_a_unit_that_writes_runs_at_the_isolation_the_server_is_set_to(
    fresh_postgres_database: Callable[..., str],
) -> None:
    url = fresh_postgres_database()
    name = sa.make_url(url).database
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'")
    database = Database(url)
    try:
        database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {}))
        assert database.run_sync(lambda c: ISOLATION.mappings(c, {}), write=True) == [{"level": "repeatable read"}]
        database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {}))
        assert database.run_sync(lambda c: ISOLATION.mappings(c, {}), write=True) == [{"level": "repeatable read"}]
    finally:
        database.close()


@pytest.fixture
async def repository(database: Database) -> AsyncIterator[SqlPaymentRepository]:
    repository = SqlPaymentRepository(database)
    yield repository
    await repository.aclose()


def _next(payment: Payment, description: str, *receipts: str) -> PaymentWrite:
    """The next version of ``payment`` (its description changed) with an event, and a receipt per event id."""
    changed = evolve(payment, description=description, version=payment.version + 1)
    return PaymentWrite(
        changed, [make_event(changed, changed.version)], [make_receipt(changed, event_id) for event_id in receipts]
    )


@pytest.mark.anyio
async def test_a_write_of_the_payment_in_hand_reaches_the_server_in_one_round_trip(
    database: Database, repository: SqlPaymentRepository
) -> None:
    stored = await repository.get(PAYMENT.id)
    write = _next(stored, "Yassa — table 3", "evt-paid")
    with sent_to_the_server(database) as sent:
        await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: write, known=stored)
        # BEGIN, the payment's UPDATE (its version checked by the server), its event, its receipt and COMMIT.
        assert sent.round_trips() == 1
        assert sent.begins() == ["BEGIN"]
    assert await repository.get(PAYMENT.id) == write.payment
    assert [e.sequence for e in await repository.list_events(PAYMENT.id)] == [write.payment.version]
    assert await repository.has_receipt(PAYMENT.provider, PAYMENT.tenant, "evt-paid")


@pytest.mark.anyio
async def test_a_read_then_write_waits_for_the_read_then_sends_the_writes_together(
    database: Database, repository: SqlPaymentRepository
) -> None:
    stored = await repository.get(PAYMENT.id)
    write = _next(stored, "Mafé — table 8", "evt-read-first")
    with sent_to_the_server(database) as sent:
        found, written = await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda read: write)
        assert sent.round_trips() == 2  # BEGIN with the read; the writes with COMMIT
    assert (found, written) == (stored, write)
    assert await repository.get(PAYMENT.id) == write.payment


@pytest.mark.anyio
async def test_a_write_over_a_copy_the_row_moved_on_from_changes_nothing_and_the_next_unit_runs(
    database: Database, repository: SqlPaymentRepository
) -> None:
    stored = await repository.get(PAYMENT.id)
    first = _next(stored, "Thiou — table 1", "evt-first")
    await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: first, known=stored)
    late = _next(stored, "Thiou — table 1, again", "evt-late")  # decided over the copy before ``first``
    with sent_to_the_server(database) as sent:
        with pytest.raises(ConcurrentUpdate, match=f"at version {first.payment.version}"):
            await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: late, known=stored)
        after = _next(first.payment, "Thiou — table 1, paid", "evt-after")
        await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: after, known=first.payment)
        assert sent.begins() == ["BEGIN", "BEGIN"]  # the connection still runs each unit in a transaction
    assert await repository.get(PAYMENT.id) == after.payment
    events = await repository.list_events(PAYMENT.id)
    assert [e.sequence for e in events] == [first.payment.version, after.payment.version]
    assert not await repository.has_receipt(PAYMENT.provider, PAYMENT.tenant, "evt-late")


@pytest.mark.anyio
async def test_a_write_the_server_refuses_changes_nothing_of_its_unit(
    database: Database, repository: SqlPaymentRepository
) -> None:
    stored = await repository.get(PAYMENT.id)
    first = _next(stored, "Dibi — table 5", "evt-once")
    await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: first, known=stored)
    again = _next(first.payment, "Dibi — table 5, twice", "evt-once")  # the same receipt: refused
    with pytest.raises(ConcurrentUpdate):
        await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: again, known=first.payment)
    assert await repository.get(PAYMENT.id) == first.payment
    assert [e.sequence for e in await repository.list_events(PAYMENT.id)] == [first.payment.version]
    assert await repository.update(PaymentLookup.by_id(PAYMENT.id), lambda _: None) == (first.payment, None)


def test_a_unit_that_fails_after_sending_writes_changes_nothing(database: Database) -> None:
    def write_then_fail(connection: sa.Connection) -> None:
        INSERT_RECEIPT.send(connection, _receipt("evt-sent"))
        raise RuntimeError("the unit fails after its write was sent")

    for _ in range(2):  # the same pooled connection, twice
        with pytest.raises(RuntimeError):
            database.run_sync(write_then_fail, write=True)
        assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 0}]
    database.run_sync(lambda c: INSERT_RECEIPT.send(c, _receipt("evt-kept")), write=True)
    assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 1}]


def test_a_check_that_must_see_its_answer_before_the_commit_keeps_the_commit_waiting(database: Database) -> None:
    counts: list[int] = []

    def write(connection: sa.Connection) -> None:
        INSERT_RECEIPT.send(connection, _receipt("evt-checked"), counts.append)

    with sent_to_the_server(database) as sent:
        database.run_sync(write, write=True)
        assert sent.round_trips() == 2  # BEGIN and the insert; COMMIT once the check ran
    assert counts == [1]


def test_an_observation_of_a_sent_statement_lets_the_commit_go_with_it(database: Database) -> None:
    counts: list[int] = []

    def write(connection: sa.Connection) -> None:
        INSERT_RECEIPT.send(connection, _receipt("evt-observed"), counts.append, observes=True)

    with sent_to_the_server(database) as sent:
        database.run_sync(write, write=True)
        assert sent.round_trips() == 1  # BEGIN, the insert and COMMIT
    assert counts == [1]
    assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 1}]


@pytest.mark.anyio
async def test_a_keyed_write_sends_its_claim_with_its_read(
    database: Database, repository: SqlPaymentRepository
) -> None:
    store = SqlIdempotencyStore(database)
    stored = await repository.get(PAYMENT.id)
    write = _next(stored, "Pastels — comptoir")
    claim = KeyClaim(scope="t:chez-awa", key="refund-1", fingerprint="f", lease_seconds=60)
    with sent_to_the_server(database) as sent:
        held, found, written = await repository.claim_and_update(store, claim, PAYMENT.id, lambda _: write)
        assert sent.round_trips() == 2  # BEGIN, the claim and the read; the writes with COMMIT
    assert held.token is not None
    assert (found, written) == ([stored], write)
    with pytest.raises(IdempotencyInProgress):  # the claim was made and committed with the write
        await repository.claim_and_update(store, claim, PAYMENT.id, lambda _: None)
    assert await repository.get(PAYMENT.id) == write.payment
