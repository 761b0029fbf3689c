"""Engines by URL: one shared :class:`~sqlalchemy.engine.Engine` per database, set up for paycore.

SQLite gets WAL journaling, a busy timeout, foreign keys, and ``BEGIN IMMEDIATE``
for units of work that write (so two writers queue on the database lock instead
of failing to upgrade a read lock). On psycopg, a unit of work that needs no
transaction switches its pooled connection to autocommit and back
(:func:`use_autocommit`), leaving the connection's isolation level as it was.
Every engine is reference-counted: the repository and the idempotency store of
one flow share it, and the last one to close disposes of it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from paycore.errors import ConfigurationError, StorageUnavailable
from paycore.secrets import redact_url, shown_setting
from paycore.wire import quoted

__all__ = [
    "LIBPQ_TIMEOUTS",
    "WRITE_OPTION",
    "EngineLease",
    "acquire_engine",
    "driver_error",
    "is_sqlite",
    "libpq_timeouts",
    "parse_url",
    "safe_url",
    "switches_autocommit",
    "use_autocommit",
]

WRITE_OPTION: Final = "paycore_write"
"""Execution option marking a connection whose transaction will write (SQLite: ``BEGIN IMMEDIATE``)."""

SQLITE_BUSY_TIMEOUT: Final = 30.0
"""Seconds a SQLite writer waits for the database lock before giving up."""

_AUTOCOMMIT_LENT: Final = "paycore_autocommit_lent"
"""Key (in a pooled connection's ``info``) marking a driver connection :func:`use_autocommit` switched."""
_SQLITE_FILE: Final = "paycore_sqlite_file"
"""A pooled SQLite connection's info key: the file it opened (its path, device and inode)."""

LIBPQ_DRIVERS: Final = frozenset({"psycopg", "psycopg2"})
"""The PostgreSQL drivers built on libpq, whose connections take :data:`LIBPQ_TIMEOUTS`."""
LIBPQ_TIMEOUTS: Final[Mapping[str, int]] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
"""libpq's connection settings a PostgreSQL URL gets unless it sets them itself: a server that does not answer
a connection within 10 s, or leaves what was sent to it unacknowledged for 30 s (a partition, a host frozen),
fails the unit of work (``StorageUnavailable``) instead of holding its worker thread and pooled connection for the
operating system's TCP timeouts (minutes to hours). Over a Unix socket libpq ignores the TCP ones."""


def libpq_timeouts(url: URL, environ: Mapping[str, str]) -> dict[str, int]:
    """The :data:`LIBPQ_TIMEOUTS` a connection to ``url`` is given: none that the URL sets, none at all for a URL
    naming a libpq service (``?service=...``, ``PGSERVICE``: its file says), and no ``connect_timeout`` when
    ``PGCONNECT_TIMEOUT`` does (a keyword given to libpq would win over both)."""
    if "service" in url.query or environ.get("PGSERVICE"):
        return {}
    given = set(url.query) | ({"connect_timeout"} if environ.get("PGCONNECT_TIMEOUT") else set())
    return {name: value for name, value in LIBPQ_TIMEOUTS.items() if name not in given}


def parse_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy :class:`~sqlalchemy.engine.URL`; :class:`ConfigurationError` if invalid."""
    if isinstance(url, URL):
        return url
    if not isinstance(url, str) or not url:
        raise ConfigurationError(
            f"sqlalchemy: 'url' must be a database URL such as 'sqlite:///paycore.db', not {shown_setting(url)}"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number (int() of it)
        reason = " (its port is not a number)" if isinstance(error, ValueError) else ""
        raise ConfigurationError(
            f"sqlalchemy: 'url' {quoted(redact_url(url))} is not a database URL{reason}; "
            "expected e.g. 'sqlite:///paycore.db' or 'postgresql+psycopg://user@host/db'"
        ) from None
    # A scheme is case-insensitive (RFC 3986), and ``postgres://`` is PostgreSQL's own short name for it (libpq,
    # DATABASE_URL on many hosts), which SQLAlchemy no longer reads.
    backend, plus, driver = parsed.drivername.lower().partition("+")
    drivername = ("postgresql" if backend == "postgres" else backend) + plus + driver
    return parsed if drivername == parsed.drivername else parsed.set(drivername=drivername)


def safe_url(url: str | URL) -> str:
    """The URL with its password masked (in its user part or as a query parameter), for messages and reprs.

    The text is masked before SQLAlchemy reads it too: a password holding an unencoded ``@`` and ``/``
    is read by SQLAlchemy as ending at the first ``@``, and the rest of it would show as host and database.
    """
    return redact_url(parse_url(redact_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True))


def is_sqlite(url: str | URL) -> bool:
    """True for ``sqlite`` URLs."""
    return parse_url(url).get_backend_name() == "sqlite"


def _is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _create_engine(url: URL, options: Mapping[str, Any]) -> Engine:
    # Every unit of work ends in COMMIT or ROLLBACK itself: the pool need not roll back again.
    # A statement's parameters (a customer's contact, a provider's session) stay out of error messages.
    kwargs: dict[str, Any] = {"pool_reset_on_return": None, "hide_parameters": True}
    try:
        url.get_dialect()  # a dialect SQLAlchemy has no module for, or a driver not installed
    except (ArgumentError, ImportError) as error:
        raise ConfigurationError(f"sqlalchemy: cannot use {safe_url(url)}: {error}") from None
    if url.get_backend_name() == "sqlite":
        connect_args: dict[str, Any] = {"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}
        if _is_sqlite_memory(url):
            kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = connect_args
    else:
        if url.get_driver_name() in LIBPQ_DRIVERS:
            kwargs["connect_args"] = libpq_timeouts(url, os.environ)
        kwargs["pool_size"] = int(options.get("pool_size", 10))
        kwargs["max_overflow"] = int(options.get("max_overflow", 10))
        kwargs["pool_pre_ping"] = bool(options.get("pool_pre_ping", False))
    if "pool_timeout" in options and not _is_sqlite_memory(url):
        kwargs["pool_timeout"] = float(options["pool_timeout"])
    try:
        engine = sa.create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as error:
        raise ConfigurationError(f"sqlalchemy: cannot use {safe_url(url)}: {error}") from None
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, memory=_is_sqlite_memory(url))
    elif switches_autocommit(engine.dialect):
        event.listen(engine, "checkin", _end_autocommit)
    from paycore_sqlalchemy.straight import close_kept_cursors  # it imports this module

    event.listen(engine, "close", close_kept_cursors)
    return engine


def switches_autocommit(dialect: sa.Dialect) -> bool:
    """Whether :func:`use_autocommit` serves ``dialect``'s connections (psycopg's); others use SQLAlchemy's
    ``isolation_level="AUTOCOMMIT"``."""
    return dialect.driver == "psycopg"


def use_autocommit(connection: sa.Connection) -> None:
    """Run ``connection``'s statements without ``BEGIN`` and ``COMMIT`` until it goes back to the pool.

    For an engine :func:`switches_autocommit` serves (made by :func:`acquire_engine`),
    called before the connection's transaction begins. The driver connection is
    switched to autocommit and, when it is checked in, back; nothing else of it
    changes. SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` does the same, but then
    sets the dialect's default isolation level on the driver connection by name,
    and psycopg starts every later transaction on it with ``BEGIN ISOLATION LEVEL
    READ COMMITTED`` instead of ``BEGIN``: the same isolation, which the server
    parses in each unit that writes.
    """
    fairy = connection.connection
    dbapi_connection = fairy.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.autocommit:
        dbapi_connection.autocommit = True
        fairy.info[_AUTOCOMMIT_LENT] = True


def _end_autocommit(dbapi_connection: Any, record: Any) -> None:
    # Pool "checkin": switch back what use_autocommit switched (an invalidated connection has no driver connection).
    if record.info.pop(_AUTOCOMMIT_LENT, False) and dbapi_connection is not None:
        try:
            dbapi_connection.autocommit = False
        except Exception as error:  # not idle: never hand it out in autocommit
            record.invalidate(error)


def _configure_sqlite(engine: Engine, *, memory: bool) -> None:
    lost: list[str] = []  # once its file was removed or replaced: why the engine refuses every unit

    @event.listens_for(engine, "do_connect")
    def _before_connecting(*args: Any) -> None:
        if lost:  # a new connection would make an empty file, or read a restored one through the old one's WAL
            raise StorageUnavailable(lost[0])  # a new error each time: one raised again would keep every traceback

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the sqlite3 module, start transactions.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                record.info[_SQLITE_FILE] = _file_of(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as error:  # "file is not a database": no unit of work could run on it
            raise StorageUnavailable(f"database {safe_url(engine.url)} failed: {error}") from error
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Straight to the driver: BEGIN is not a statement of the unit, and going through
        # exec_driver_sql cost a whole statement's execution context per transaction.
        begin = "BEGIN IMMEDIATE" if connection.get_execution_options().get(WRITE_OPTION, False) else "BEGIN"
        opened = connection.connection.info.get(_SQLITE_FILE)
        if not lost and opened is not None and _file_identity(opened[0]) != opened[1:]:
            # In WAL mode SQLite goes on reading and writing a file removed or replaced under it (a backup
            # restored, a cleanup): whatever it wrote would be lost. A connection opened now would read a
            # replacement through the old file's WAL, still at its path, and corrupt it: no unit runs any more.
            lost.append(
                f"database {safe_url(engine.url)}: its file was removed or replaced while paycore had it open; "
                "nothing more is read or written through it: stop every process using it, check the file, "
                "and restore a backup only while no flow has it open"
            )
        if lost:
            connection.invalidate()
            raise StorageUnavailable(lost[0])
        try:
            connection.connection.driver_connection.execute(begin)  # type: ignore[union-attr]  # sqlite3's
        except connection.dialect.loaded_dbapi.Error as error:
            raise driver_error(connection, error, begin, ()) from error


def _file_of(cursor: Any) -> tuple[str, int, int] | None:
    """The file an SQLite connection opened (as SQLite resolved its path), with its device and inode."""
    path = next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "")
    identity = _file_identity(path) if path else None
    return None if identity is None else (path, *identity)


def _file_identity(path: str) -> tuple[int, int] | None:
    """The device and inode of the file at ``path`` now; ``None`` if there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def driver_error(
    connection: sa.Connection, error: Exception, sql: str, arguments: Any, *, cursor: Any = None, many: bool = False
) -> sa.exc.DBAPIError:
    """``error``, raised by the driver under ``connection`` for ``sql``, as SQLAlchemy would raise it.

    For what paycore sends to the driver itself: the error is SQLAlchemy's
    class for it (``IntegrityError``, ``OperationalError``...), its message
    hides the parameters when the engine does, and a lost connection is
    invalidated first, with every connection the pool made before it (the
    server restarted, or failed over), so the pool hands none of them out again.
    """
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    lost = dialect.is_disconnect(error, dbapi_connection, cursor)
    translated = sa.exc.DBAPIError.instance(
        sql,
        arguments,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=connection.engine.hide_parameters,
        connection_invalidated=lost,
        dialect=dialect,
        ismulti=many,
    )
    if lost:  # as SQLAlchemy does: every connection the pool made before it is stale too (a restart, a failover)
        connection.engine.pool._invalidate(connection.connection, error)
        connection.invalidate(error)
    return translated


class EngineLease:
    """A share of a reference-counted engine; :meth:`release` gives it back."""

    def __init__(self, key: tuple[str, tuple[tuple[str, str], ...]], engine: Engine) -> None:
        self._key = key
        self.engine = engine
        self.serial_lock: threading.Lock | None = threading.Lock() if _is_sqlite_memory(engine.url) else None
        self._released = False

    def release(self) -> None:
        """Give the share back; the last share disposes of the engine (idempotent)."""
        if self._released:
            return
        self._released = True
        _release(self._key)


_LOCK = threading.Lock()
_ENGINES: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[Engine, int, threading.Lock | None]] = {}


def acquire_engine(url: str | URL, options: Mapping[str, Any] | None = None) -> EngineLease:
    """A share of the engine for ``url`` (created on first use, shared afterwards).

    ``options`` are pool settings (``pool_size``, ``max_overflow``,
    ``pool_timeout``, ``pool_pre_ping``); different options get a different engine.
    """
    parsed = parse_url(url)
    options = dict(options or {})
    key = (parsed.render_as_string(hide_password=False), tuple(sorted((k, str(v)) for k, v in options.items())))
    with _LOCK:
        found = _ENGINES.get(key)
        if found is None:
            engine = _create_engine(parsed, options)
            lease = EngineLease(key, engine)
            _ENGINES[key] = (engine, 1, lease.serial_lock)
            return lease
        engine, count, lock = found
        _ENGINES[key] = (engine, count + 1, lock)
    lease = EngineLease(key, engine)
    lease.serial_lock = lock
    return lease


def _release(key: tuple[str, tuple[tuple[str, str], ...]]) -> None:
    with _LOCK:
        engine, count, lock = _ENGINES[key]
        if count > 1:
            _ENGINES[key] = (engine, count - 1, lock)
            return
        del _ENGINES[key]
    engine.dispose()
