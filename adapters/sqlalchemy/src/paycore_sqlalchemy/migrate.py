"""The Alembic migrations of every schema a database holds: apply them, ask where it stands, detect drift.

Each :class:`~paycore_sqlalchemy.schemas.SqlSchema` (this adapter's, and each
plugin's) is one Alembic branch; all record their revisions in the table
``paycore_alembic_version``, so they coexist with an application's own Alembic
history in the same database. ``schemas`` defaults everywhere to
:func:`~paycore_sqlalchemy.schemas.installed_schemas`: this adapter's and
those of every installed plugin.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from paycore_sqlalchemy.database import UNAVAILABLE, unavailable
from paycore_sqlalchemy.engine import WRITE_OPTION, acquire_engine, safe_url
from paycore_sqlalchemy.errors import SchemaOutOfDate
from paycore_sqlalchemy.schemas import SqlSchema, combine, installed_schemas

__all__ = [
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "current_revisions",
    "downgrade",
    "drift",
    "ensure_current",
    "head_revisions",
    "missing_schemas",
    "schema_drift",
    "standing",
    "unknown_revisions",
    "upgrade",
    "upgrade_connection",
]

VERSION_TABLE: Final = "paycore_alembic_version"
SCRIPT_LOCATION: Final = "paycore_sqlalchemy:migrations"

Schemas = Sequence[SqlSchema] | None
"""Schemas to act on; ``None``: every installed one."""


def _resolve(schemas: Schemas) -> tuple[SqlSchema, ...]:
    return installed_schemas() if schemas is None else combine(schemas)


def alembic_config(connection: sa.Connection | None = None, schemas: Schemas = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the migrations of ``schemas``, bound to ``connection``."""
    resolved = _resolve(schemas)
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("path_separator", "newline")
    locations = "\n".join(str(schema.versions).replace("%", "%%") for schema in resolved)
    config.set_main_option("version_locations", locations)
    config.attributes["schemas"] = resolved
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_scripts: dict[tuple[tuple[str, int], ...], ScriptDirectory] = {}
"""The migration scripts of each set of schemas, read once per process while their folders stay as they are: a
flow built per request (Django under WSGI) checks its database's schema each time, and Alembic keeps something
of every script directory it reads until the process exits. A folder a revision was added to is read again."""
_scripts_lock = threading.Lock()


def _script(schemas: Schemas) -> ScriptDirectory:
    resolved = _resolve(schemas)
    locations = tuple((str(schema.versions), schema.versions.stat().st_mtime_ns) for schema in resolved)
    with _scripts_lock:
        found = _scripts.get(locations)
        if found is None:
            found = ScriptDirectory.from_config(alembic_config(schemas=resolved))
            found.get_heads()  # reads every revision now, under the lock: threads only read it afterwards
            _scripts[locations] = found
        return found


def head_revisions(schemas: Schemas = None) -> tuple[str, ...]:
    """The newest revision of each schema, sorted."""
    return tuple(sorted(_script(schemas).get_heads()))


def current_revisions(connection: sa.Connection) -> tuple[str, ...]:
    """The revisions the database is at, one per schema it holds, sorted (empty: never migrated)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return tuple(sorted(context.get_current_heads()))


def unknown_revisions(connection: sa.Connection, schemas: Schemas = None) -> list[str]:
    """The revisions the database is at that none of ``schemas`` ships: a newer release's, or a plugin's not
    installed (empty: every one is known)."""
    script = _script(schemas)
    unknown = []
    for revision in current_revisions(connection):
        try:
            script.get_revision(revision)
        except Exception:  # alembic raises several kinds for a revision it cannot find
            unknown.append(revision)
    return unknown


def _refuse_unknown(connection: sa.Connection, schemas: Schemas) -> None:
    unknown = unknown_revisions(connection, schemas)
    if unknown:
        names = ", ".join(schema.name for schema in _resolve(schemas))
        raise SchemaOutOfDate(
            f"the database is at revision(s) {', '.join(unknown)}, which none of the installed SQL schemas "
            f"({names}) ships: install the plugin that owns them (or a paycore-sqlalchemy as new as the database)"
        )


def upgrade_connection(connection: sa.Connection, revision: str = "heads", schemas: Schemas = None) -> None:
    """Apply the migrations up to ``revision`` (default: every schema's head) inside ``connection``'s transaction."""
    _refuse_unknown(connection, schemas)
    command.upgrade(alembic_config(connection, schemas), "heads" if revision == "head" else revision)


@contextmanager
def _connection(url: str) -> Iterator[sa.Connection]:
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                yield connection
    except UNAVAILABLE as error:
        raise unavailable(error, safe_url(url)) from error
    finally:
        lease.release()


def upgrade(url: str, revision: str = "heads", schemas: Schemas = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Apply the migrations to the database at ``url``; return (revisions before, revisions after)."""
    with _connection(url) as connection:
        before = current_revisions(connection)
        upgrade_connection(connection, revision, schemas)
        return before, current_revisions(connection)


def current(url: str) -> tuple[str, ...]:
    """The revisions the database at ``url`` is at (empty: never migrated)."""
    with _connection(url) as connection:
        return current_revisions(connection)


def standing(url: str) -> tuple[tuple[str, ...], list[str]]:
    """The revisions the database at ``url`` is at, and those of them no installed schema ships
    (:func:`unknown_revisions`), read on one connection."""
    with _connection(url) as connection:
        return current_revisions(connection), unknown_revisions(connection)


def missing_schemas(connection: sa.Connection, schemas: Schemas = None) -> list[str]:
    """The names of the schemas whose head revision the database is not at."""
    at = set(current_revisions(connection))
    script = _script(schemas)
    missing = []
    for schema in _resolve(schemas):
        heads = set(script.get_revisions(f"{schema.name}@head"))
        if not {head.revision for head in heads if head is not None} <= at:
            missing.append(schema.name)
    return missing


def ensure_current(connection: sa.Connection, *, upgrade: bool, url: str, schemas: Schemas = None) -> None:
    """Make sure every schema is at its head revision: upgrade them, or raise :class:`SchemaOutOfDate`."""
    missing = missing_schemas(connection, schemas)
    if not missing:
        return
    if upgrade:
        upgrade_connection(connection, schemas=schemas)
        return
    _refuse_unknown(connection, schemas)  # newer than the code: an upgrade is not what it needs
    at = ", ".join(current_revisions(connection)) or "none (empty)"
    raise SchemaOutOfDate(
        f"database {safe_url(url)} is at schema revision {at}; the SQL schema(s) {', '.join(missing)} "
        f"need revision {', '.join(head_revisions(schemas))}: run `paycore db upgrade --url URL` (URL of that database)"
    )


def schema_drift(connection: sa.Connection, schemas: Schemas = None) -> list[Any]:
    """Differences between the tables the schemas declare and the database (empty: no drift)."""
    context = MigrationContext.configure(
        connection,
        opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True},
    )
    declared = [schema.metadata for schema in _resolve(schemas)]
    return [
        diff
        for diff in compare_metadata(context, declared)  # type: ignore[arg-type]  # a sequence is accepted
        if not (diff[0] == "remove_table" and diff[1].name == VERSION_TABLE)
    ]


def drift(url: str, schemas: Schemas = None) -> list[Any]:
    """:func:`schema_drift` for the database at ``url``."""
    with _connection(url) as connection:
        return schema_drift(connection, schemas)


def downgrade(url: str, revision: str, schemas: Schemas = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Undo migrations down to ``revision`` (``"base"``: drop every table of ``schemas``); return (before, after)."""
    with _connection(url) as connection:
        before = current_revisions(connection)
        command.downgrade(alembic_config(connection, schemas), revision)
        return before, current_revisions(connection)
