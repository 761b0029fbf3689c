"""``Prepared``: a hot statement compiled once per dialect and sent with ``exec_driver_sql``.

``connection.execute(statement, parameters)`` works out the statement's cache
key (a walk over the whole statement), looks it up in SQLAlchemy's compiled
cache, builds its parameters and runs each value through its column type on
every call: about half of what a small write costs here, and more for a read
of a payment with its forty columns. A payment's reads and writes are the same
few statements over and over, so ``Prepared`` compiles each once per dialect
(and, for an ``INSERT``, per set of columns given) and hands the driver the
compiled SQL and the converted values through ``exec_driver_sql``;
:meth:`Prepared.mappings` converts a read's values back through the same
column types. That is still SQLAlchemy's execution path: its events
(``before_cursor_execute`` sees the same SQL), its error translation
(``IntegrityError``, ``OperationalError``) and its handling of a lost
connection are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

__all__ = ["Prepared"]

Processor = Callable[[Any], Any]


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
        processors = self.processors
        converted = [
            processors[name](parameters[name]) if name in processors else parameters[name] for name in self.names
        ]
        return tuple(converted) if self.positional else dict(zip(self.names, converted, strict=True))


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

    def execute(
        self, connection: sa.Connection, parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        """Run the statement with ``parameters`` (a sequence of them: one ``executemany``)."""
        if isinstance(parameters, Mapping):
            compiled = self._for(connection.dialect, parameters)
            return connection.exec_driver_sql(compiled.sql, compiled.arguments(parameters))  # type: ignore[arg-type]
        if not parameters:
            raise ValueError("no parameters to execute with")
        compiled = self._for(connection.dialect, parameters[0])
        rows = [compiled.arguments(row) for row in parameters]
        return connection.exec_driver_sql(compiled.sql, rows)  # type: ignore[arg-type]

    def mappings(self, connection: sa.Connection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Run a ``SELECT`` with ``parameters``; its rows as dictionaries keyed by result column, values converted."""
        compiled = self._for(connection.dialect, parameters)
        result = connection.exec_driver_sql(compiled.sql, compiled.arguments(parameters))  # type: ignore[arg-type]
        keys, converters = compiled.keys, compiled.results
        found = []
        for row in result.fetchall():
            values = list(row)
            for position, convert in converters:
                values[position] = convert(values[position])
            found.append(dict(zip(keys, values, strict=True)))
        return found
