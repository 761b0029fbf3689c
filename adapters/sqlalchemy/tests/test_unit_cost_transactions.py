"""What a unit of work sends PostgreSQL around its statements: a plain ``BEGIN`` for a unit that writes,
nothing for one that does not need a transaction, and the isolation the connection was given, kept.

A unit without ``BEGIN`` and ``COMMIT`` (a single-statement read, a compare-and-set
unit) switches its pooled connection to autocommit and back. What the server
receives is read from libpq's trace of the connection.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import pq
from sqlalchemy import event

from paycore.testing.records import make_receipt, rich_payment
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


@contextmanager
def sent_to_the_server(database: Database) -> Iterator[Callable[[], list[str]]]:
    """The ``BEGIN`` commands the database's pooled connections send while this is open (libpq's trace),
    and a check that every unit ran on one and the same driver connection."""
    drivers: set[int] = set()
    with tempfile.TemporaryFile() as trace:

        def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            drivers.add(id(dbapi_connection))
            dbapi_connection.pgconn.trace(os.dup(trace.fileno()))  # libpq closes its copy at untrace
            dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

        def checkin(dbapi_connection: Any, record: Any) -> None:
            if dbapi_connection is not None:
                dbapi_connection.pgconn.untrace()

        def begins() -> list[str]:
            assert len(drivers) == 1, "every unit should have run on the one pooled connection"
            trace.seek(0)
            lines = trace.read().decode().splitlines()
            return [found for line in lines if line.startswith("F") for found in _BEGIN.findall(line)]

        event.listen(database.engine, "checkout", checkout)
        event.listen(database.engine, "checkin", checkin)
        try:
            yield begins
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
    with sent_to_the_server(database) as begins:
        assert database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {})) == [{"n": 0}]
        database.run_sync(lambda c: INSERT_RECEIPT.execute(c, _receipt("evt-1")), compare_and_set=True)
        database.run_sync(lambda c: INSERT_RECEIPT.execute(c, _receipt("evt-2")), write=True)
        database.run_sync(lambda c: INSERT_RECEIPT.execute(c, _receipt("evt-3")), write=True)
        assert begins() == ["BEGIN", "BEGIN"]  # none for the read and the compare-and-set unit
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
        with sent_to_the_server(database) as begins:
            database.run_sync(lambda c: COUNT_RECEIPTS.mappings(c, {}))  # after the schema check's unit
            levels = database.run_sync(lambda c: ISOLATION.mappings(c, {}), write=True)
            assert begins() == ["BEGIN ISOLATION LEVEL SERIALIZABLE"] * 2
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
