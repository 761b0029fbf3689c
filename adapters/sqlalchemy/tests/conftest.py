"""Fixtures for the SQLAlchemy adapter's tests: SQLite files and a real PostgreSQL server.

The PostgreSQL server is started once per session (``paycore.testing.postgres``)
on a loopback port; each test gets a fresh database copied from a migrated
template, so no test sees another's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from paycore.testing.postgres import PostgresServer, scratch_databases, session_server
from paycore_sqlalchemy import migrate
from paycore_sqlalchemy.schema import metadata

TEMPLATE = "paycore_template"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session, with a migrated template database."""
    with session_server(template=TEMPLATE, prepare=migrate.upgrade) as server:
        yield server


@pytest.fixture(scope="session")
def _shared_postgres_database(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("paycore_tests", template=TEMPLATE)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, _shared_postgres_database: str) -> str:
    """The URL of a PostgreSQL database with the current schema and empty tables."""
    import psycopg

    tables = ", ".join(table.name for table in metadata.sorted_tables)
    with psycopg.connect(postgres_server.dsn("paycore_tests"), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {tables}")
    return _shared_postgres_database


@pytest.fixture
def fresh_postgres_database(postgres_server: PostgresServer) -> Iterator[Callable[..., str]]:
    """Make new PostgreSQL databases, migrated unless ``migrated=False``, dropped afterwards; give their URLs."""
    with scratch_databases(postgres_server, template=TEMPLATE) as make:
        yield make


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file of this test (created and migrated on first use)."""
    return f"sqlite:///{tmp_path / 'paycore.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))
