"""Statements sent straight to the driver: warm cursors, and on psycopg, few round trips.

:class:`~paycore_sqlalchemy.prepared.Prepared` hands its compiled SQL to the
:class:`Unit` of the connection it runs on (one unit of work, in
:func:`run_unit`). The unit keeps what its statements share: the driver
cursors kept on the pooled connection, one per statement (:data:`_CURSORS`),
whether anything listens to statements (then nothing goes straight), and on
psycopg the statements queued for one round trip.

**One round trip for what a unit only needs to have done.** A unit of work
writes a payment, its events, its receipt and its idempotency key's result;
none of those statements needs another's answer before it is sent. Each one
sent alone waits a whole round trip to the server. On a driver that can
pipeline (psycopg over libpq 14 or later), :meth:`Unit.queue` sends a
statement without waiting, and the unit's next statement that does need an
answer (a read, an insert whose count decides what follows), or the end of the
unit (:func:`run_unit`, before ``COMMIT``), collects every answer in one round
trip. Each queued statement may carry a check of the rows it affected (a
version check's "exactly one"), run when its answer is collected, before
anything is committed: a check that raises rolls the unit back. A refusal of the
server (a unique constraint) is raised then too, as SQLAlchemy's error, and the
statements after it in the queue do not run; the checks of those answered before
it run first, as a version check that missed its row explains the refusal better.
A statement that goes through SQLAlchemy instead (``connection.execute``) while
statements are queued has them answered and checked first: while the queue is
open, a cursor factory of the unit's stands in for the driver connection's.

The transaction's ``BEGIN`` goes in the same round trip as the unit's first
statement: the driver connection is switched to autocommit (and back when it is
checked in, as :func:`~paycore_sqlalchemy.engine.use_autocommit` does) and the
unit sends ``BEGIN`` itself, with the isolation, read-only and deferrable
settings the driver connection has; psycopg would otherwise send it alone and
wait.

**``COMMIT`` with the last writes.** A check that runs here must see its
answer before the unit commits, so while one is queued, ``COMMIT`` waits for
it: a round trip of its own. A payment's version check does not need to run
here: the ``UPDATE`` is sent guarded (:meth:`Unit.queue`'s ``missed``; the SQL
of :data:`GUARDED`), so the server itself refuses the transaction when the
row is not at the version the write follows (the function
``paycore_expect_one_row`` of migration ``0004``, SQLSTATE :data:`GUARD_SQLSTATE`),
and nothing sent after it commits. When the queue holds no check that must
run first (an observation, such as whether a key's completion matched, may
come after), :func:`run_unit` sends ``COMMIT`` with the unit's last writes:
a unit that writes a payment it holds costs one round trip.

A unit on SQLite, a unit without a transaction, and a unit whose statements
anything listens to run every statement at once, its check right after it: the
same results, in the same order.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import weakref
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import sqlalchemy as sa

from paycore_sqlalchemy.engine import driver_error, use_autocommit

__all__ = [
    "GUARDED",
    "GUARD_SQLSTATE",
    "Check",
    "Missed",
    "Sent",
    "Unit",
    "close_kept_cursors",
    "collect",
    "run_unit",
    "straight",
]

T = TypeVar("T")

Check = Callable[[int], None]
"""A check of the rows a queued statement affected; it raises to refuse the unit."""

Missed = Callable[[], NoReturn]
"""What a guarded statement raises when the server refused it for changing no row (or more than one)."""

GUARD_SQLSTATE = "PC001"
"""The SQLSTATE ``paycore_expect_one_row`` raises (migration ``0004``)."""

GUARDED = "WITH paycore_changed AS ({sql} RETURNING 1) SELECT paycore_expect_one_row(count(*)) FROM paycore_changed"
"""An ``UPDATE`` (``sql``) that must change exactly one row, as the server refuses it otherwise."""

_STATEMENT_LOG = logging.getLogger("sqlalchemy.engine.Engine")
"""SQLAlchemy's statement log (``echo=True``, or its level set to ``INFO``)."""

_LISTENED = ("before_execute", "after_execute", "before_cursor_execute", "after_cursor_execute")
"""The connection events a statement run through ``exec_driver_sql`` would fire."""

_PIPELINING = frozenset({"psycopg"})
"""Drivers whose statements can be sent without waiting for the answers before them."""

_CURSORS = "paycore.prepared.cursors"
"""Where a pooled connection's ``info`` keeps the driver cursors its prepared statements run on, with the
driver connection they belong to: a cursor (or a few, for a statement queued more than once at a time)
per statement's SQL, shared by the units of work on that connection. psycopg keeps the converters of a
cursor's last statement while the next one is the same, so each statement keeps its own warm."""

_MOST_STATEMENTS_KEPT = 256
"""The most statements whose cursors a pooled connection keeps; past that they are closed and made anew."""


class Unit:
    """What the statements of one open connection (one unit of work) share between them."""

    __slots__ = (
        "begun",
        "cursor_factory",
        "cursors",
        "driver",
        "listened",
        "pipeline",
        "pipelining",
        "queued",
        "taken",
    )

    def __init__(self, listened: bool, pipelining: bool) -> None:
        self.listened = listened
        """Whether anything listened to the connection's statements when it ran its first prepared one."""
        self.pipelining = pipelining
        """Whether :meth:`queue` sends statements without waiting (psycopg, in a transaction)."""
        self.begun = not pipelining
        """Whether the transaction's ``BEGIN`` was sent (or is left to the driver)."""
        self.cursors: dict[str, list[Any]] = {}
        """The driver connection's cursors by statement, found by the unit's first statement."""
        self.driver: Any = None
        """The driver connection ``cursors`` belong to (SQLAlchemy replaces one it found lost)."""
        self.pipeline: Any = None
        """The driver's pipeline while statements are queued in it."""
        self.cursor_factory: tuple[Any, Any] | None = None
        """The driver connection in pipeline mode with its own cursor factory, while the pipeline's stands in."""
        self.queued: list[Sent] = []
        """The queued statements, in the order they were sent."""
        self.taken: dict[str, int] = {}
        """How many cursors of each statement the queue holds (each queued statement keeps its own answer)."""

    def run(
        self, connection: sa.Connection, sql: str, arguments: Any, many: bool, rows: bool
    ) -> tuple[int, list[Any] | None]:
        """Run ``sql`` now: its row count and, if ``rows``, its rows.

        The statements queued before it (and the transaction's ``BEGIN``) go in the
        same round trip, and their checks run before its answer is read.
        """
        if self.pipelining and (self.queued or not self.begun):
            cursor = self.queue(connection, sql, arguments, many, None)
            self.collect(connection)  # the answers of all, in one round trip
            return cursor.rowcount, (cursor.fetchall() if rows else None)
        cursor = self._cursor(connection, sql)
        try:
            if many:
                cursor.executemany(sql, arguments)
            else:
                cursor.execute(sql, arguments)
            return cursor.rowcount, (cursor.fetchall() if rows else None)
        except BaseException as error:
            self._drop_cursors(connection)
            if isinstance(error, connection.dialect.loaded_dbapi.Error):
                raise driver_error(connection, error, sql, arguments, cursor=cursor, many=many) from error
            raise

    def collect(self, connection: sa.Connection) -> None:
        """Wait for the answers of the queued statements (one round trip) and run their checks in order."""
        pipeline, queued = self.pipeline, self.queued
        if pipeline is None:
            return
        self._close_pipeline()
        try:
            pipeline.__exit__(None, None, None)  # sends a sync, reads every answer, leaves pipeline mode
        except BaseException as error:
            self._refuse(connection, error, queued)
        for sent in queued:
            if sent.check is not None:
                sent.check(sent.cursor.rowcount)

    def finish(self, connection: sa.Connection) -> None:
        """:meth:`collect` at the end of the unit; with ``COMMIT`` in the same round trip when no check of the
        queue must run before it (see the module docstring)."""
        if self.pipeline is not None and all(sent.check is None or sent.observes for sent in self.queued):
            self.queue(connection, _COMMIT, None, False, None)
        self.collect(connection)

    def abandon(self) -> None:
        """Leave the pipeline after an error ended the unit: its answers are read and dropped."""
        pipeline = self.pipeline
        if pipeline is not None:
            self._close_pipeline()
            with contextlib.suppress(Exception):  # the answers after a refusal say "aborted": nothing to add
                pipeline.__exit__(None, None, None)

    def _close_pipeline(self) -> None:
        """Forget the queue, and give the driver connection its cursor factory back."""
        self.pipeline, self.queued, self.taken = None, [], {}
        if self.cursor_factory is not None:
            driver, factory = self.cursor_factory
            driver.cursor_factory = factory
            self.cursor_factory = None

    def queue(
        self,
        connection: sa.Connection,
        sql: str,
        arguments: Any,
        many: bool,
        check: Check | None,
        *,
        observes: bool = False,
        missed: Missed | None = None,
    ) -> Any:
        """Send ``sql`` without waiting for its answer, on a cursor of its own; ``check`` its row count when
        the answer comes. The pipeline (and the transaction) opens with the queue's first statement.

        ``observes``: ``check`` only takes note of the count and may run after the unit
        committed. ``missed``: ``sql`` is guarded (:data:`GUARDED`), and ``missed`` raises
        what the server's refusal of it means. Only for a unit that :attr:`pipelining`;
        the cursor its answer will be on.
        """
        try:
            if self.pipeline is None:
                self._open(connection)
            cursor = self._queue_cursor(connection, sql)
            if many:
                cursor.executemany(sql, arguments)
            else:
                cursor.execute(sql, arguments)
        except BaseException as error:
            # Sending reads the answers already there: one of them may be a refusal of a statement before.
            queued = [*self.queued, Sent(None, None, sql, arguments, missed=missed)]
            self.abandon()
            self._refuse(connection, error, queued)
        self.queued.append(Sent(cursor, check, sql, arguments, observes=observes, missed=missed))
        return cursor

    def _refuse(self, connection: sa.Connection, error: BaseException, queued: list[Sent]) -> NoReturn:
        """Raise ``error``, which ended the queue ``queued``, as SQLAlchemy's error.

        The statements answered before the refused one are checked first: a check that
        fails explains the refusal better (a version check's ``UPDATE`` that missed its
        row, then its event refused as a duplicate). A guarded statement the server
        refused raises what its ``missed`` says.
        """
        answered = [(sent.check, sent.cursor.rowcount) for sent in queued if sent.check is not None and sent.answered]
        self._drop_cursors(connection)
        if not isinstance(error, connection.dialect.loaded_dbapi.Error):
            raise error
        for check, count in answered:
            check(count)
        if getattr(error, "sqlstate", None) == GUARD_SQLSTATE:
            # The first guarded statement without an answer is the refused one: none after it ran.
            refused = next((sent.missed for sent in queued if sent.missed is not None and not sent.answered), None)
            if refused is not None:
                refused()
        # Which statement was refused, the driver does not say: the message names them all.
        sql = "; ".join(sent.sql for sent in queued)
        arguments = [sent.arguments for sent in queued]
        raise driver_error(connection, error, sql, arguments) from error

    def _open(self, connection: sa.Connection) -> None:
        """Enter the driver's pipeline, queuing the transaction's ``BEGIN`` if the unit has not sent it."""
        driver: Any = connection.connection.dbapi_connection
        begin = None
        if not self.begun:
            self.begun = True
            if driver.pgconn.transaction_status == _IDLE:
                begin = _begin_command(driver)
                use_autocommit(connection)  # so psycopg sends no BEGIN of its own, alone, waiting for it
        self.pipeline = driver.pipeline()
        self.pipeline.__enter__()
        factory = driver.cursor_factory
        self.cursor_factory = (driver, factory)
        driver.cursor_factory = functools.partial(_collecting_first, self, connection, factory)
        if begin is not None:
            cursor = self._queue_cursor(connection, begin)
            cursor.execute(begin)
            self.queued.append(Sent(cursor, None, begin, None))

    def _queue_cursor(self, connection: sa.Connection, sql: str) -> Any:
        """A cursor of ``sql`` no statement of the queue holds."""
        taken = self.taken.get(sql, 0)
        self.taken[sql] = taken + 1
        return self._cursor(connection, sql, taken)

    def _cursor(self, connection: sa.Connection, sql: str, position: int = 0) -> Any:
        """The driver connection's cursor number ``position`` of ``sql`` (made at its first use)."""
        fairy = connection.connection
        driver: Any = fairy.dbapi_connection
        cursors = self.cursors
        if self.driver is not driver:
            kept = fairy.info.get(_CURSORS)
            if kept is None or kept[0] is not driver:
                kept = fairy.info[_CURSORS] = (driver, {})
            cursors = self.cursors = kept[1]
            self.driver = driver
        of_sql = cursors.get(sql)
        if of_sql is None:
            if len(cursors) >= _MOST_STATEMENTS_KEPT and self.pipeline is None:  # none holds a queued answer
                _close([cursor for kept in cursors.values() for cursor in kept])
                cursors.clear()
            of_sql = cursors[sql] = []
        while len(of_sql) <= position:
            if self.cursor_factory is None:
                of_sql.append(driver.cursor())
            else:  # what ``driver.cursor()`` does, with the factory the pipeline's stands in for
                of_sql.append(self.cursor_factory[1](driver, row_factory=driver.row_factory))
        return of_sql[position]

    def _drop_cursors(self, connection: sa.Connection) -> None:
        """Close the connection's cursors after a statement failed; the next statements get new ones."""
        kept = connection.connection.info.pop(_CURSORS, None)
        self.cursors, self.driver = {}, None
        if kept is not None:
            _close([cursor for of_sql in kept[1].values() for cursor in of_sql])


class Sent:
    """A statement sent on a :class:`Unit`'s pipeline, waiting for its answer."""

    __slots__ = ("arguments", "check", "cursor", "missed", "observes", "sql")

    def __init__(
        self,
        cursor: Any,
        check: Check | None,
        sql: str,
        arguments: Any,
        *,
        observes: bool = False,
        missed: Missed | None = None,
    ) -> None:
        self.cursor = cursor
        """The cursor its answer comes on (``None``: it could not be sent)."""
        self.check = check
        self.sql = sql
        self.arguments = arguments
        self.observes = observes
        """Whether ``check`` only takes note of the count (it may run after the unit committed)."""
        self.missed = missed
        """For a guarded statement, what raises when the server refused it (see :data:`GUARDED`)."""

    @property
    def answered(self) -> bool:
        """Whether its answer came (and was not an error)."""
        return self.cursor is not None and self.cursor.pgresult is not None


_COMMIT = "COMMIT"


def _collecting_first(unit: Unit, connection: sa.Connection, factory: Any, driver: Any, **options: Any) -> Any:
    """The driver connection's cursor factory while statements are queued: a statement that goes through
    SQLAlchemy (``connection.execute``) reads its answer at once, so the queued ones are answered (and checked)
    first, and the pipeline is left before it is sent."""
    unit.collect(connection)
    return factory(driver, **options)


def close_kept_cursors(dbapi_connection: Any, record: Any) -> None:
    """Close the cursors a pooled connection keeps (:data:`_CURSORS`) as the pool closes it (its ``close`` event).

    A cursor something else still holds (the frame of an error raised in a unit, kept in a reference cycle until
    the collector runs) would otherwise keep its statement open, and SQLite its file, after the engine is disposed.
    """
    kept = record.info.pop(_CURSORS, None)
    if kept is not None:
        _close([cursor for of_sql in kept[1].values() for cursor in of_sql])


def _close(cursors: list[Any]) -> None:
    for cursor in cursors:
        with contextlib.suppress(Exception):
            cursor.close()


_IDLE = 0
"""libpq's transaction status of a connection outside any transaction (``PQTRANS_IDLE``)."""

_UNITS: weakref.WeakKeyDictionary[sa.Connection, Unit] = weakref.WeakKeyDictionary()
"""Each open connection's :class:`Unit`, dropped with the connection."""


def straight(connection: sa.Connection) -> Unit | None:
    """``connection``'s :class:`Unit` if its statements go straight to the driver; ``None`` if they go
    through ``exec_driver_sql``: outside a transaction SQLAlchemy began (it then begins one), or while
    anything listens to statements."""
    if not connection.in_transaction():
        return None
    unit = _UNITS.get(connection)
    if unit is None:
        unit = _UNITS[connection] = _new_unit(connection, collected=False)
    return None if unit.listened else unit


def _new_unit(connection: sa.Connection, *, collected: bool) -> Unit:
    """The :class:`Unit` of ``connection``; whether anything listens is asked once per connection (a listener
    added while a unit runs sees the statements of the units after it).

    Only the statements of a unit ``collected`` by :func:`run_unit` (which collects what was queued before
    the unit commits) are queued: on any other, a statement queued could be committed unchecked.
    """
    listened = _listeners_on(connection)
    driver = connection.connection.dbapi_connection
    pipelining = (
        collected
        and not listened
        and connection.dialect.driver in _PIPELINING
        and driver is not None
        and not driver.autocommit  # a unit without a transaction: each statement stands alone
        and _libpq_pipelines()
    )
    return Unit(listened, pipelining)


@functools.cache
def _libpq_pipelines() -> bool:
    """Whether psycopg's libpq has pipeline mode (libpq 14 or later)."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _listeners_on(connection: sa.Connection) -> bool:
    if connection.engine.echo or _STATEMENT_LOG.isEnabledFor(logging.INFO):
        return True
    if not (
        getattr(connection, "_has_events", True)
        or getattr(connection.engine, "_has_events", True)
        or getattr(connection.dialect, "_has_events", True)
    ):
        # SQLAlchemy's own test before it fires any of these events: nothing was ever listened to.
        return False
    dispatch = connection.dispatch
    if any(getattr(dispatch, name) for name in _LISTENED):
        return True
    return bool(connection.dialect.dispatch.handle_error)


def _begin_command(driver: Any) -> str:
    """The ``BEGIN`` psycopg would send on ``driver``: with its isolation level, read-only and deferrable settings."""
    parts = ["BEGIN"]
    if driver.isolation_level is not None:
        parts.append("ISOLATION LEVEL " + driver.isolation_level.name.replace("_", " "))
    if driver.read_only is not None:
        parts.append("READ ONLY" if driver.read_only else "READ WRITE")
    if driver.deferrable is not None:
        parts.append("DEFERRABLE" if driver.deferrable else "NOT DEFERRABLE")
    return " ".join(parts)


def collect(connection: sa.Connection) -> None:
    """Wait for the answers of the statements ``connection``'s unit queued, and run their checks
    (:meth:`Unit.collect`); nothing if none are queued."""
    unit = _UNITS.get(connection)
    if unit is not None:
        unit.collect(connection)


def run_unit(connection: sa.Connection, work: Callable[[sa.Connection], T]) -> T:
    """``work(connection)``, then the answers and checks of what it queued: all before its transaction ends.

    Should ``work`` raise, what it queued is dropped (the transaction then rolls back).
    """
    unit = _UNITS[connection] = _new_unit(connection, collected=True)
    try:
        result = work(connection)
    except BaseException:
        unit.abandon()
        raise
    unit.finish(connection)
    return result
