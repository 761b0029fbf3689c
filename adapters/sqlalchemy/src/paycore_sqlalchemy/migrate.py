"""The packaged Alembic migrations: apply them, ask where a database stands, detect drift.

The migrations live in ``paycore_sqlalchemy/migrations`` and record their
revision in the table ``paycore_alembic_version``, so they coexist with an
application's own Alembic history in the same database.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
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
from paycore_sqlalchemy.schema import metadata

__all__ = [
    "VERSION_TABLE",
    "current",
    "current_revision",
    "downgrade",
    "drift",
    "ensure_current",
    "head_revision",
    "schema_drift",
    "upgrade",
]

VERSION_TABLE: Final = "paycore_alembic_version"
SCRIPT_LOCATION: Final = "paycore_sqlalchemy:migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for the packaged migrations, bound to ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision this package ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade_connection(connection: sa.Connection, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` inside ``connection``'s transaction."""
    command.upgrade(alembic_config(connection), revision)


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


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply the migrations to the database at ``url``; return (revision before, revision after)."""
    with _connection(url) as connection:
        before = current_revision(connection)
        upgrade_connection(connection, revision)
        return before, current_revision(connection)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at."""
    with _connection(url) as connection:
        return current_revision(connection)


def ensure_current(connection: sa.Connection, *, upgrade: bool, url: str) -> None:
    """Make sure the schema is at the head revision: upgrade it, or raise :class:`SchemaOutOfDate`."""
    at = current_revision(connection)
    head = head_revision()
    if at == head:
        return
    if upgrade:
        upgrade_connection(connection)
        return
    raise SchemaOutOfDate(
        f"database {safe_url(url)} is at schema revision {at or 'none (empty)'}, this paycore-sqlalchemy "
        f"needs {head}: run `paycore db upgrade --url URL` (URL of that database)"
    )


def schema_drift(connection: sa.Connection) -> list[Any]:
    """Differences between the tables the code declares and the database (empty: no drift)."""
    context = MigrationContext.configure(
        connection,
        opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True},
    )
    return [
        diff
        for diff in compare_metadata(context, metadata)
        if not (diff[0] == "remove_table" and diff[1].name == VERSION_TABLE)
    ]


def drift(url: str) -> list[Any]:
    """:func:`schema_drift` for the database at ``url``."""
    with _connection(url) as connection:
        return schema_drift(connection)


def downgrade(url: str, revision: str) -> tuple[str | None, str | None]:
    """Undo migrations down to ``revision`` (``"base"``: drop every paycore table); return (before, after)."""
    with _connection(url) as connection:
        before = current_revision(connection)
        command.downgrade(alembic_config(connection), revision)
        return before, current_revision(connection)
