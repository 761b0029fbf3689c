"""``Prepared``: a hot statement compiled once per dialect and sent straight to the driver.

``connection.execute(statement, parameters)`` works out the statement's cache
key (a walk over the whole statement), looks it up in SQLAlchemy's compiled
cache, builds its parameters and runs each value through its column type on
every call: about half of what a small write costs here, and more for a read
of a payment with its forty columns. A payment's reads and writes are the same
few statements over and over, so ``Prepared`` compiles each once per dialect
(and, for an ``INSERT``, per set of columns given), converts the values through
the column types itself, and hands the compiled SQL to a driver cursor on
the connection's own transaction; :meth:`Prepared.mappings` converts a read's
values back through the same column types. The statements of one driver
connection share that cursor, unit of work after unit of work (and with it the
driver's caches of converters): each statement's rows are fetched and its row
count read before the next is sent, and a cursor whose statement failed is
closed and replaced.

What SQLAlchemy's execution path would add is kept where it matters:

* a driver error is raised as SQLAlchemy's (``IntegrityError``,
  ``OperationalError``, ...), and a lost connection is invalidated so the
  pool does not hand it out again;
* when anything listens to the connection's statements (``before_execute``,
  ``before_cursor_execute``, their ``after_`` pairs, ``handle_error``: tracing,
  a test counting statements), or SQLAlchemy's statement log is on, the statement goes through
  ``exec_driver_sql`` instead, so every listener sees it as it would any other.

A statement outside a transaction SQLAlchemy began goes through
``exec_driver_sql`` too, so SQLAlchemy begins (and later ends) it. What is
skipped otherwise is SQLAlchemy's execution context and result object for each
statement: about a quarter of a SQLite lifecycle's instructions.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from paycore_sqlalchemy.engine import driver_error

__all__ = ["Prepared"]

Processor = Callable[[Any], Any]

_STATEMENT_LOG = logging.getLogger("sqlalchemy.engine.Engine")
"""SQLAlchemy's statement log (``echo=True``, or its level set to ``INFO``)."""

_LISTENED = ("before_execute", "after_execute", "before_cursor_execute", "after_cursor_execute")
"""The connection events a statement run through ``exec_driver_sql`` would fire."""


_PIPELINED_EXECUTEMANY = frozenset({"psycopg"})
"""Drivers whose ``executemany`` enters a pipeline, with a synchronization round trip: rows to insert go in one
multi-row ``INSERT`` on them instead."""

_MOST_ROWS_AT_ONCE = 64
"""The most rows one multi-row ``INSERT`` carries; more go in one ``executemany``."""


def _rows_parameters(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A multi-row ``INSERT``'s parameters (:meth:`Prepared._rows_for`): row i's ``column`` as ``r<i>_<column>``."""
    return {f"r{number}_{key}": value for number, row in enumerate(rows) for key, value in row.items()}


class _Unit:
    """What ``Prepared`` keeps about one open connection (one unit of work) between its statements."""

    __slots__ = ("cursor", "driver", "listened")

    def __init__(self, listened: bool) -> None:
        self.listened = listened
        """Whether anything listened to the connection's statements when it ran its first prepared one."""
        self.cursor: Any = None
        """The driver cursor the connection's statements run on, found by its first statement sent straight."""
        self.driver: Any = None
        """The driver connection ``cursor`` belongs to."""


_UNITS: weakref.WeakKeyDictionary[sa.Connection, _Unit] = weakref.WeakKeyDictionary()
"""Each open connection's :class:`_Unit`, dropped with the connection."""


def _straight(connection: sa.Connection) -> _Unit | None:
    """``connection``'s :class:`_Unit` if its statements go straight to the driver; ``None`` if they go
    through ``exec_driver_sql``: outside a transaction SQLAlchemy began (it then begins one), or while
    anything listens to statements."""
    if not connection.in_transaction():
        return None
    unit = _unit(connection)
    return None if unit.listened else unit


def _unit(connection: sa.Connection) -> _Unit:
    """``connection``'s :class:`_Unit`; whether anything listens is asked once per connection (one unit of work).

    A listener added while a unit runs sees the statements of the units after it.
    """
    unit = _UNITS.get(connection)
    if unit is None:
        unit = _UNITS[connection] = _Unit(_listeners_on(connection))
    return unit


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


_CURSOR = "paycore.prepared.cursor"
"""Where a pooled connection's ``info`` keeps the driver cursor its prepared statements run on, with the
driver connection it belongs to: units of work on that connection share the cursor, and its driver's
caches (psycopg's, of the converters for each type of value it sent and read)."""


def _cursor_of(info: dict[Any, Any], dbapi_connection: Any) -> Any:
    """The cursor of ``dbapi_connection`` kept in its pooled connection's ``info``, made at its first use."""
    kept = info.get(_CURSOR)
    if kept is not None and kept[0] is dbapi_connection:
        return kept[1]
    cursor = dbapi_connection.cursor()
    info[_CURSOR] = (dbapi_connection, cursor)
    return cursor


def _on_cursor(
    connection: sa.Connection, unit: _Unit, sql: str, arguments: Any, many: bool, rows: bool
) -> tuple[int, list[Any] | None]:
    """Run ``sql`` on ``connection``'s driver connection: its row count and, if ``rows``, its rows.

    The statements of every unit on the same driver connection share one driver
    cursor (:func:`_cursor_of`): each statement's rows are all fetched (and its
    row count read) before this returns, so the next one finds nothing left on
    it. A cursor whose statement failed is closed and not used again, and a
    connection that reconnected (after an invalidation) gets a new one.
    """
    fairy = connection.connection
    dbapi_connection = fairy.dbapi_connection
    assert dbapi_connection is not None
    cursor = unit.cursor
    if cursor is None or unit.driver is not dbapi_connection:
        cursor = unit.cursor = _cursor_of(fairy.info, dbapi_connection)
        unit.driver = dbapi_connection
    try:
        if many:
            cursor.executemany(sql, arguments)
        else:
            cursor.execute(sql, arguments)
        return cursor.rowcount, (cursor.fetchall() if rows else None)
    except BaseException as error:
        unit.cursor = None
        fairy.info.pop(_CURSOR, None)
        with contextlib.closing(cursor):
            if isinstance(error, connection.dialect.loaded_dbapi.Error):
                raise driver_error(connection, error, sql, arguments, cursor=cursor, many=many) from error
            raise


class _Compiled:
    """One statement compiled for one dialect and one set of given columns."""

    def __init__(self, statement: sa.ClauseElement, dialect: sa.Dialect, keys: tuple[str, ...] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ()) if self.positional else tuple(compiled.binds)
        """The statement's parameters, in the order a positional driver takes them."""
        self.processors: dict[str, Processor] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        self._plan: tuple[tuple[str, Processor | None], ...] = tuple(
            (name, self.processors.get(name)) for name in self.names
        )
        """Each parameter, in order, with the converter its type gives it (``None``: taken as it is)."""
        self.keys: tuple[str, ...] = ()
        """A read's result columns, in order (an empty tuple for a write)."""
        self.results: tuple[tuple[int, Processor], ...] = ()
        """The result columns whose values their type converts, by position, with the converter."""
        if isinstance(statement, sa.Select):
            columns = list(statement.selected_columns)
            self.keys = tuple(column.key for column in columns)
            converters = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
            self.results = tuple((i, convert) for i, convert in enumerate(converters) if convert is not None)

    def arguments(self, parameters: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """``parameters`` (one value for each of the statement's) as the driver takes them: converted,
        in order for a positional driver, by name for the others."""
        plan = self._plan
        if self.positional:
            return tuple([parameters[name] if convert is None else convert(parameters[name]) for name, convert in plan])
        return {name: parameters[name] if convert is None else convert(parameters[name]) for name, convert in plan}


class Prepared:
    """A statement run through :meth:`execute` (a ``SELECT``: :meth:`mappings`) instead of ``connection.execute``."""

    def __init__(self, statement: sa.ClauseElement, *, by_columns: bool = False) -> None:
        self.statement = statement
        self._by_columns = by_columns
        """An ``INSERT`` names the columns it is given, as ``connection.execute`` compiles it."""
        self._compiled: dict[tuple[str, str, str, tuple[str, ...] | None], _Compiled] = {}

    def _for(self, dialect: sa.Dialect, parameters: Mapping[str, Any]) -> _Compiled:
        """The statement compiled for ``dialect`` (its database, driver and parameter style) and these columns."""
        keys = tuple(parameters) if self._by_columns else None
        cache_key = (dialect.name, dialect.driver, dialect.paramstyle, keys)
        found = self._compiled.get(cache_key)
        if found is None:
            found = self._compiled[cache_key] = _Compiled(self.statement, dialect, keys)
        return found

    def _rows_for(self, dialect: sa.Dialect, keys: tuple[str, ...], count: int) -> _Compiled:
        """The ``INSERT`` of ``count`` rows of columns ``keys`` as one statement (``VALUES (...), (...)``).

        Its parameters are named ``r<row>_<column>`` (:func:`_rows_parameters`).
        """
        cache_key = (dialect.name, dialect.driver, dialect.paramstyle, keys, count)
        found = self._compiled.get(cache_key)
        if found is None:
            statement = self.statement
            assert isinstance(statement, sa.Insert)
            table = statement.table
            assert isinstance(table, sa.Table)
            rows = [
                {key: sa.bindparam(f"r{row}_{key}", type_=table.c[key].type) for key in keys} for row in range(count)
            ]
            found = self._compiled[cache_key] = _Compiled(statement.values(rows), dialect, None)
        return found

    def _inserts_rows(self, dialect: sa.Dialect, parameters: Sequence[Mapping[str, Any]]) -> tuple[str, ...] | None:
        """The columns of ``parameters`` when they go as one multi-row ``INSERT``; ``None`` for an ``executemany``."""
        statement = self.statement
        if dialect.driver not in _PIPELINED_EXECUTEMANY:
            return None
        if not (self._by_columns and isinstance(statement, sa.Insert)) or statement.select is not None:
            return None
        if len(parameters) > _MOST_ROWS_AT_ONCE:
            return None
        keys = tuple(parameters[0])
        return keys if all(tuple(row) == keys for row in parameters) else None

    def execute(self, connection: sa.Connection, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> int:
        """Run the statement with ``parameters`` (a sequence of them: one multi-row ``INSERT``, or one
        ``executemany``); the rows it affected.

        A sequence of one runs as one ``execute``. On a driver whose ``executemany``
        costs round trips of its own (psycopg enters pipeline mode), rows to insert
        with the same columns go as one ``INSERT ... VALUES (...), (...)``;
        sqlite3's ``executemany`` loops in C and costs less than that statement's parameters.
        """
        if not isinstance(parameters, (dict, Mapping)):  # a dict is answered without the ABC's check
            if not parameters:
                raise ValueError("no parameters to execute with")
            if len(parameters) == 1:
                parameters = parameters[0]
        many = False
        if isinstance(parameters, (dict, Mapping)):
            compiled = self._for(connection.dialect, parameters)
            arguments: Any = compiled.arguments(parameters)
        elif (keys := self._inserts_rows(connection.dialect, parameters)) is not None:
            compiled = self._rows_for(connection.dialect, keys, len(parameters))
            arguments = compiled.arguments(_rows_parameters(parameters))
        else:
            compiled = self._for(connection.dialect, parameters[0])
            arguments = [compiled.arguments(row) for row in parameters]
            many = True
        unit = _straight(connection)
        if unit is None:
            return int(connection.exec_driver_sql(compiled.sql, arguments).rowcount)
        return _on_cursor(connection, unit, compiled.sql, arguments, many, rows=False)[0]

    def mappings(self, connection: sa.Connection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run a ``SELECT`` with ``parameters``; its rows as dictionaries keyed by result column, values converted."""
        compiled = self._for(connection.dialect, parameters)
        arguments = compiled.arguments(parameters)
        unit = _straight(connection)
        if unit is None:
            fetched: list[Any] = list(connection.exec_driver_sql(compiled.sql, arguments).fetchall())
        else:
            fetched = _on_cursor(connection, unit, compiled.sql, arguments, False, rows=True)[1] or []
        keys, converters = compiled.keys, compiled.results
        found = []
        for row in fetched:
            values = list(row)
            for position, convert in converters:
                values[position] = convert(values[position])
            found.append(dict(zip(keys, values, strict=True)))
        return found
