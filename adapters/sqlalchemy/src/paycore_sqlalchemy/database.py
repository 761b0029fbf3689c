"""``Database``: runs one unit of work in one transaction in one worker thread.

This is how a blocking driver serves asyncio and trio alike: every repository
or store method builds a plain function of a :class:`~sqlalchemy.Connection`
and hands it to :meth:`Database.run`, which calls it inside ``BEGIN ... COMMIT``
on a worker thread (``anyio.to_thread.run_sync``). The function either returns
(and the transaction commits) or raises (and it rolls back), so a method is all
or nothing. A cancelled caller waits for its unit to finish: a transaction is
never left half-way.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import exc

from paycore.errors import ConcurrentUpdate, StorageError, StorageUnavailable, first_line
from paycore.sqlstates import LOST_RACE, READ_ONLY
from paycore_sqlalchemy.engine import (
    WRITE_OPTION,
    acquire_engine,
    is_sqlite,
    safe_url,
    switches_autocommit,
    use_autocommit,
)
from paycore_sqlalchemy.straight import run_unit

if TYPE_CHECKING:
    from paycore_sqlalchemy.schemas import SqlSchema

__all__ = ["UNAVAILABLE", "Database", "unavailable"]

T = TypeVar("T")

UNAVAILABLE = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError)
"""What a database that cannot be reached (or a pool that is exhausted) raises."""


def unavailable(error: Exception, url: str) -> StorageUnavailable:
    """A :class:`StorageUnavailable` naming the database (password masked) and the driver's first line."""
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        detail = first_line(error.orig)
    elif isinstance(error, exc.TimeoutError):  # every connection of the pool busy past pool_timeout: not the server
        detail = (
            "every connection of paycore's pool stayed busy past pool_timeout; raise pool_size, max_overflow or "
            f"pool_timeout, or run fewer operations at once ({first_line(error)})"
        )
    else:
        detail = type(error).__name__
    return StorageUnavailable(f"database {url} failed: {detail}")


class Database:
    """A database reached by URL, with its schemas checked (or upgraded) before first use.

    ``auto_upgrade`` applies the migrations on first use; by default it is on
    for SQLite (the embedded default must just work) and off for servers,
    where ``paycore db upgrade`` is an explicit deployment step and a schema
    that is not current raises :class:`~paycore_sqlalchemy.errors.SchemaOutOfDate`.

    ``schemas`` are the :class:`~paycore_sqlalchemy.schemas.SqlSchema` the
    database must hold besides the adapter's own (the plugin adapter passes
    those its plugins register); ``None``: those of every installed plugin.
    A plugin's storage built on a database adds its own with
    :meth:`include_schema`.
    """

    def __init__(
        self,
        url: str,
        *,
        auto_upgrade: bool | None = None,
        engine_options: Mapping[str, Any] | None = None,
        schemas: Iterable[SqlSchema] | None = None,
    ) -> None:
        self._lease = acquire_engine(url, engine_options)
        self.engine: sa.Engine = self._lease.engine
        self.url = safe_url(url)
        self.dialect: str = self.engine.dialect.name
        self._auto_upgrade = is_sqlite(url) if auto_upgrade is None else auto_upgrade
        self._writer = self.engine.execution_options(**{WRITE_OPTION: True})
        """The engine whose connections run units that write (SQLite: ``BEGIN IMMEDIATE``)."""
        self._switch = switches_autocommit(self.engine.dialect)
        """Units without BEGIN and COMMIT switch their driver connection to autocommit themselves (psycopg)."""
        self._autocommit: sa.Engine | None = None
        """The engine whose connections run single-statement and compare-and-set units without BEGIN and COMMIT."""
        if self._switch:
            self._autocommit = self.engine
        elif self.dialect != "sqlite":
            self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._schemas: list[SqlSchema] | None = None if schemas is None else list(schemas)
        self._included: list[SqlSchema] = []
        self._ready = False
        self._ready_lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Database {self.url}>"

    async def run(self, work: Callable[[sa.Connection], T], *, write: bool = False, compare_and_set: bool = False) -> T:
        """Run ``work(connection)`` in one transaction on a worker thread; return its result.

        ``write=False`` marks a read of a single statement, which a server runs
        without ``BEGIN``/``COMMIT`` (one round trip instead of three); a unit
        that writes, or reads with several statements, passes ``write=True``.
        ``compare_and_set=True`` marks a writing unit whose every statement is
        atomic and safe on its own (an insert-if-absent, an update conditioned on
        what the row holds, retried by ``work`` when it matches nothing), such
        as the idempotency store's: a server runs it without ``BEGIN``/``COMMIT``
        too. SQLite runs every writing unit in ``BEGIN IMMEDIATE``.
        """
        run = functools.partial(self.run_sync, work, write=write, compare_and_set=compare_and_set)
        return await anyio.to_thread.run_sync(run)

    def run_sync(self, work: Callable[[sa.Connection], T], *, write: bool = False, compare_and_set: bool = False) -> T:
        """Run ``work(connection)`` in one transaction on the calling thread (see :meth:`run`).

        Refused once the database is closed: its engine may be disposed of, and a connection taken
        from it now would never be closed."""
        if self._closed:
            raise StorageError(f"database {self.url} was closed: open a new repository to use it")
        if not self._ready:
            self._prepare()
        return self._transaction(work, write=write, compare_and_set=compare_and_set)

    def _transaction(self, work: Callable[[sa.Connection], T], *, write: bool, compare_and_set: bool) -> T:
        serial = self._lease.serial_lock
        try:
            if serial is not None:
                with serial:
                    return self._in_transaction(work, write, compare_and_set)
            return self._in_transaction(work, write, compare_and_set)
        except UNAVAILABLE as error:
            if getattr(getattr(error, "orig", None), "sqlstate", None) in LOST_RACE:
                raise ConcurrentUpdate(f"database {self.url}: the transaction lost a race; nothing changed") from error
            raise unavailable(error, self.url) from error
        except exc.InternalError as error:
            if getattr(error.orig, "sqlstate", None) != READ_ONLY:
                raise
            raise StorageUnavailable(
                f"database {self.url} is read-only (a standby after a failover, or default_transaction_read_only): "
                "nothing was written; point paycore at the primary"
            ) from error

    def _in_transaction(self, work: Callable[[sa.Connection], T], write: bool, compare_and_set: bool) -> T:
        if self._autocommit is not None and (not write or compare_and_set):
            # One statement, or statements each atomic and safe alone: skip BEGIN and COMMIT round trips.
            with self._autocommit.connect() as connection:
                if self._switch:
                    use_autocommit(connection)
                with connection.begin():
                    return run_unit(connection, work)
        engine = self._writer if write else self.engine
        with engine.connect() as connection, connection.begin():
            return run_unit(connection, work)

    @property
    def schemas(self) -> tuple[SqlSchema, ...]:
        """The schemas this database must hold at their head revisions, the adapter's first."""
        from paycore_sqlalchemy.schemas import combine, installed_schemas

        given = installed_schemas() if self._schemas is None else self._schemas
        return combine([*given, *self._included])

    def include_schema(self, schema: SqlSchema) -> None:
        """Require ``schema`` too: the next unit of work checks (or upgrades) it first.

        For a plugin's storage built on this database, so its tables exist
        whether or not the plugin manager that built the database knew the plugin.
        """
        from paycore_sqlalchemy.schemas import combine

        with self._ready_lock:
            known = self.schemas
            if schema in known:
                return
            combine([*known, schema])  # refuses a schema that clashes with a known one
            self._included.append(schema)
            self._ready = False

    def _prepare(self) -> None:
        from paycore_sqlalchemy.migrate import ensure_current

        with self._ready_lock:
            if self._ready:
                return
            schemas = self.schemas
            self._transaction(
                lambda c: ensure_current(c, upgrade=self._auto_upgrade, url=self.url, schemas=schemas),
                write=True,
                compare_and_set=False,
            )
            self._ready = True

    def close(self) -> None:
        """Give back this share of the engine (the last share disposes of it)."""
        if not self._closed:
            self._closed = True
            self._lease.release()
