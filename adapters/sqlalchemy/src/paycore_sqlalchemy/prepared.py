"""``Prepared``: a hot statement compiled once per dialect and sent straight to the driver.

``connection.execute(statement, parameters)`` works out the statement's cache
key (a walk over the whole statement), looks it up in SQLAlchemy's compiled
cache, builds its parameters and runs each value through its column type on
every call: about half of what a small write costs here, and more for a read
of a payment with its forty columns. A payment's reads and writes are the same
few statements over and over, so ``Prepared`` compiles each once per dialect
(and, for an ``INSERT``, per set of columns given), converts the values through
the column types itself, and hands the compiled SQL to a driver cursor on
the connection's own transaction (:mod:`paycore_sqlalchemy.straight`);
:meth:`Prepared.mappings` converts a read's values back through the same column
types. A statement whose answer nothing needs at once (a write whose row count
is only checked) goes by :meth:`Prepared.send`: on psycopg it waits for no
answer, and the statements of a unit reach the server in one round trip.

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

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from paycore_sqlalchemy.straight import GUARDED, Check, Missed, Unit, straight

__all__ = ["Prepared"]

Processor = Callable[[Any], Any]

_PIPELINED_EXECUTEMANY = frozenset({"psycopg"})
"""Drivers whose ``executemany`` enters a pipeline, with a synchronization round trip: rows to insert go in one
multi-row ``INSERT`` on them instead."""

_MOST_ROWS_AT_ONCE = 64
"""The most rows one multi-row ``INSERT`` carries; more go in one ``executemany``."""


def _rows_parameters(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A multi-row ``INSERT``'s parameters (:meth:`Prepared._rows_for`): row i's ``column`` as ``r<i>_<column>``."""
    return {f"r{number}_{key}": value for number, row in enumerate(rows) for key, value in row.items()}


def _count(connection: sa.Connection, unit: Unit | None, sql: str, arguments: Any, many: bool) -> int:
    """Run ``sql`` now, straight on ``unit`` or (without one) through SQLAlchemy; the rows it affected."""
    if unit is None:
        return int(connection.exec_driver_sql(sql, arguments).rowcount)
    return unit.run(connection, sql, arguments, many, rows=False)[0]


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

    @functools.cached_property
    def guarded(self) -> str:
        """An ``UPDATE``'s SQL as the server refuses it when it changes no row, or more than one."""
        return GUARDED.format(sql=self.sql)

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
        The statements :meth:`send` queued before it go in the same round trip.
        """
        compiled, arguments, many = self._arguments(connection.dialect, parameters)
        return _count(connection, straight(connection), compiled.sql, arguments, many)

    def send(
        self,
        connection: sa.Connection,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        check: Check | None = None,
        *,
        observes: bool = False,
    ) -> None:
        """Run the statement as :meth:`execute` does, without waiting for its answer where the driver can
        (:mod:`paycore_sqlalchemy.straight`); ``check`` its row count when the answer comes.

        The answer comes with the unit's next statement that needs one, or before the
        unit commits; ``check`` (and a refusal of the database) raises then, and the
        unit rolls back. Where statements cannot wait, it runs and is checked now.
        ``observes``: ``check`` only takes note of the count, never raises, and may
        run once the unit committed (so the unit's ``COMMIT`` need not wait for it).
        """
        compiled, arguments, many = self._arguments(connection.dialect, parameters)
        unit = straight(connection)
        if unit is not None and unit.pipelining:
            unit.queue(connection, compiled.sql, arguments, many, check, observes=observes)
            return
        count = _count(connection, unit, compiled.sql, arguments, many)
        if check is not None:
            check(count)

    def send_one(self, connection: sa.Connection, parameters: Mapping[str, Any], missed: Missed) -> None:
        """Send the statement (an ``UPDATE``) as :meth:`send` does; it must change exactly one row, else
        ``missed`` raises, and the unit rolls back.

        Where statements wait for no answer (psycopg, in a transaction), the server
        itself refuses the statement when it changes another number of rows
        (:data:`~paycore_sqlalchemy.straight.GUARDED`), so that no check holds back the
        unit's ``COMMIT``, which then goes with its last writes; elsewhere the row count is checked here.
        """
        compiled = self._for(connection.dialect, parameters)
        arguments = compiled.arguments(parameters)
        unit = straight(connection)
        if unit is not None and unit.pipelining:
            unit.queue(connection, compiled.guarded, arguments, False, None, missed=missed)
        elif _count(connection, unit, compiled.sql, arguments, False) != 1:
            missed()

    def _arguments(
        self, dialect: sa.Dialect, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> tuple[_Compiled, Any, bool]:
        """The statement compiled for ``parameters``, its arguments as the driver takes them, and whether
        they go as one ``executemany``."""
        if not isinstance(parameters, (dict, Mapping)):  # a dict is answered without the ABC's check
            if not parameters:
                raise ValueError("no parameters to execute with")
            if len(parameters) == 1:
                parameters = parameters[0]
        if isinstance(parameters, (dict, Mapping)):
            compiled = self._for(dialect, parameters)
            return compiled, compiled.arguments(parameters), False
        if (keys := self._inserts_rows(dialect, parameters)) is not None:
            compiled = self._rows_for(dialect, keys, len(parameters))
            return compiled, compiled.arguments(_rows_parameters(parameters)), False
        compiled = self._for(dialect, parameters[0])
        return compiled, [compiled.arguments(row) for row in parameters], True

    def mappings(self, connection: sa.Connection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run a ``SELECT`` with ``parameters``; its rows as dictionaries keyed by result column, values converted."""
        compiled = self._for(connection.dialect, parameters)
        arguments = compiled.arguments(parameters)
        unit = straight(connection)
        if unit is None:
            fetched: list[Any] = list(connection.exec_driver_sql(compiled.sql, arguments).fetchall())
        else:
            fetched = unit.run(connection, compiled.sql, arguments, False, rows=True)[1] or []
        keys, converters = compiled.keys, compiled.results
        found = []
        for row in fetched:
            values = list(row)
            for position, convert in converters:
                values[position] = convert(values[position])
            found.append(dict(zip(keys, values, strict=True)))
        return found
