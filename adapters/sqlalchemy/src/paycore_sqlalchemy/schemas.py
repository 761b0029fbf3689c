"""The schemas a database holds: the adapter's own tables and those plugins register.

A schema is a :class:`sqlalchemy.MetaData` with its tables and a directory of
Alembic revisions whose first revision carries the schema's name as its branch
label. Every schema records its revisions in the one version table
(``paycore_alembic_version``), so ``paycore db upgrade`` upgrades them all
(``upgrade heads``) and ``paycore db check`` compares them all.

Plugins register theirs through the ``paycore_sqlalchemy_schemas`` hook
(:mod:`paycore_sqlalchemy.hookspecs`); a storage a plugin builds on a
:class:`~paycore_sqlalchemy.database.Database` may also name its schema with
:meth:`~paycore_sqlalchemy.database.Database.include_schema`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Protocol

import pluggy
import sqlalchemy as sa
from attrs import field, frozen

from paycore.errors import ConfigurationError
from paycore_sqlalchemy.schema import metadata as adapter_metadata

__all__ = [
    "ADAPTER_SCHEMA",
    "SchemaRegistrar",
    "SqlSchema",
    "combine",
    "installed_schemas",
    "registered_schemas",
]


def _directory(value: str | Path) -> Path:
    return Path(value).absolute()


@frozen
class SqlSchema:
    """Tables and their migrations, owned by one package.

    ``name`` is the Alembic branch label of the first revision in ``versions``
    (``upgrade cash@head`` upgrades that schema alone); ``metadata`` declares
    exactly what the migrations build, which ``paycore db check`` verifies.
    Revision ids must be unique across every installed schema: prefix them
    with the name (``cash_0001``).
    """

    name: str
    metadata: sa.MetaData = field(repr=False)
    versions: Path = field(converter=_directory)
    """The directory of Alembic revision files."""

    @property
    def tables(self) -> frozenset[str]:
        """The names of the tables this schema declares."""
        return frozenset(self.metadata.tables)


ADAPTER_SCHEMA: Final = SqlSchema("paycore", adapter_metadata, Path(__file__).parent / "migrations" / "versions")
"""Payments, refunds, events, webhook receipts and idempotency keys: this adapter's own tables."""


class SchemaRegistrar(Protocol):
    """The ``register`` given to ``paycore_sqlalchemy_schemas``."""

    def __call__(self, schema: SqlSchema) -> None:
        """Add ``schema`` to the database's schemas."""


def combine(schemas: Iterable[SqlSchema]) -> tuple[SqlSchema, ...]:
    """The adapter's schema and ``schemas``, each once, the adapter's first and the rest by name.

    Refuses (:class:`ConfigurationError`) two different schemas of one name, a
    schema that is not an :class:`SqlSchema`, and a table declared by two schemas.
    """
    by_name: dict[str, SqlSchema] = {ADAPTER_SCHEMA.name: ADAPTER_SCHEMA}
    for schema in schemas:
        if not isinstance(schema, SqlSchema):
            raise ConfigurationError(f"a SQL schema must be a paycore_sqlalchemy.schemas.SqlSchema, not {schema!r}")
        known = by_name.get(schema.name)
        if known is not None and known != schema:
            raise ConfigurationError(
                f"two different SQL schemas are named {schema.name!r} ({known.versions} and {schema.versions}); "
                "each schema needs a name of its own"
            )
        by_name[schema.name] = schema
    ordered = (ADAPTER_SCHEMA, *sorted((s for n, s in by_name.items() if n != ADAPTER_SCHEMA.name), key=_name))
    owners: dict[str, str] = {}
    for schema in ordered:
        for table in sorted(schema.tables):
            if table in owners:
                raise ConfigurationError(
                    f"table {table!r} is declared by both SQL schema {owners[table]!r} and {schema.name!r}"
                )
            owners[table] = schema.name
    return ordered


def _name(schema: SqlSchema) -> str:
    return schema.name


def registered_schemas(plugin_manager: pluggy.PluginManager | None) -> tuple[SqlSchema, ...]:
    """The adapter's schema and every schema the plugins of ``plugin_manager`` register."""
    found: list[SqlSchema] = []
    hook = None if plugin_manager is None else getattr(plugin_manager.hook, "paycore_sqlalchemy_schemas", None)
    if hook is not None:
        hook(register=found.append)
    return combine(found)


@functools.cache
def installed_schemas() -> tuple[SqlSchema, ...]:
    """The schemas of every installed plugin (found through the ``paycore`` entry points)."""
    from paycore.plugins import create_plugin_manager

    return registered_schemas(create_plugin_manager())
