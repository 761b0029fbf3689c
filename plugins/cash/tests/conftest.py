"""Fixtures for the cash plugin's tests: a flow with the cash provider on the memory adapter,
SQLite files and a real PostgreSQL server for the SQL drawer storage, and the
Django database aliases (SQLite and PostgreSQL) for the Django drawer storage.

The PostgreSQL server is started once per session (``paycore.testing.postgres``)
on a loopback port, only by the tests that ask for it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.testing.postgres import PostgresServer, scratch_databases, session_server
from paycore_cash.drawers import CashDrawers

# The checks that the refund claims tests share report a failed ``assert`` as the tests' own do.
pytest.register_assert_rewrite(f"{__name__.rpartition('.')[0]}.refund_claims".lstrip("."))

TENANT = "chez-awa"


def xof(amount: str | int) -> Money:
    """An amount of CFA francs."""
    return Money.of(str(amount), "XOF")


def cash_config(**cash_settings: Any) -> dict[str, Any]:
    """A configuration enabling the cash provider for the default tenant and for ``chez-awa``."""
    cash = {"type": "cash", **cash_settings}
    return {
        "repository": "memory",
        "idempotency": "memory",
        "providers": {"cash": dict(cash)},
        "tenants": {TENANT: {"providers": {"cash": dict(cash)}}, "chez-binta": {"providers": {"cash": dict(cash)}}},
    }


@pytest.fixture(name="cash_config")
def cash_config_fixture() -> Any:
    """The factory of cash configurations (see :func:`cash_config`)."""
    return cash_config


@pytest.fixture
async def flow() -> AsyncIterator[PaymentFlow]:
    """A flow with the cash provider (drawers in XOF) on in-memory storage."""
    async with PaymentFlow.from_config(cash_config(currency="XOF")) as built:
        yield built


@pytest.fixture
def drawers(flow: PaymentFlow) -> CashDrawers:
    """The drawers of tenant ``chez-awa``."""
    return CashDrawers(flow, tenant=TENANT)


# -- SQL databases -----------------------------------------------------------------------------

_TEMPLATE = "paycore_cash_template"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session, with a template database at every schema's head."""
    from paycore_sqlalchemy import migrate

    with session_server(template=_TEMPLATE, prepare=migrate.upgrade) as server:
        yield server


@pytest.fixture
def fresh_postgres_database(postgres_server: PostgresServer) -> Iterator[Callable[..., str]]:
    """Make new PostgreSQL databases, migrated unless ``migrated=False``, dropped afterwards; give their URLs."""
    with scratch_databases(postgres_server, template=_TEMPLATE, prefix="cash_test") as make:
        yield make


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a SQLite file of this test (created and migrated on first use)."""
    return f"sqlite:///{tmp_path / 'paycore.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def repository_url(request: pytest.FixtureRequest) -> str:
    """Each test using it runs on the memory adapter, on SQLite and on a fresh PostgreSQL database."""
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make()


# -- Django ------------------------------------------------------------------------------------

_django_directory: Path | None = None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Set Django up with the cash app when the Django adapter is installed (after any other conftest
    configured Django: the cash tests then join its project, see ``paycore_cash_django_project``)."""
    global _django_directory
    if importlib.util.find_spec("django") is None or importlib.util.find_spec("paycore_django") is None:
        return
    tests = str(Path(__file__).parent)
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from paycore_cash_django_project import set_up

    _django_directory = Path(tempfile.mkdtemp(prefix="paycore-cash-django-tests-"))
    set_up(_django_directory)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Delete the Django SQLite files of the session."""
    if _django_directory is not None:
        shutil.rmtree(_django_directory, ignore_errors=True)


def migrate_django(alias: str, *target: str) -> None:
    """Apply the Django migrations to the database ``alias``: all of them, or up to ``target`` (an app label and
    a migration name)."""
    from django.core.management import call_command

    call_command("migrate", *target, database=alias, interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def django_sqlite(django_db_blocker: Any) -> str:
    """The SQLite alias, migrated once for the session (its file is deleted with the session's directory)."""
    from django.db import connections
    from paycore_cash_django_project import SQLITE_ALIAS

    with django_db_blocker.unblock():
        migrate_django(SQLITE_ALIAS)
        connections[SQLITE_ALIAS].close()
    return SQLITE_ALIAS


@pytest.fixture(scope="session")
def django_postgres(postgres_server: PostgresServer, django_db_blocker: Any) -> Iterator[str]:
    """The PostgreSQL alias on the session's server, its database made and migrated once for the session, and
    dropped at its end."""
    from django.conf import settings
    from django.db import connections
    from paycore_cash_django_project import POSTGRES_ALIAS, POSTGRES_DATABASE

    postgres_server.create_database(POSTGRES_DATABASE)
    try:
        settings.DATABASES[POSTGRES_ALIAS]["PORT"] = str(postgres_server.port)
        with django_db_blocker.unblock():
            migrate_django(POSTGRES_ALIAS)
        yield POSTGRES_ALIAS
    finally:
        connections[POSTGRES_ALIAS].close()
        postgres_server.drop_database(POSTGRES_DATABASE)


def _emptied(alias: str, django_db_blocker: Any) -> Iterator[str]:
    """``alias``, every table of it emptied (its migrations kept) and its connection closed, for one test."""
    from django.core.management import call_command
    from django.db import connections

    with django_db_blocker.unblock():
        call_command("flush", database=alias, interactive=False, verbosity=0, inhibit_post_migrate=True)
        connections[alias].close()
        yield alias


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def using(request: pytest.FixtureRequest, django_db_blocker: Any) -> Iterator[str]:
    """An emptied Django database alias of the cash tests: once SQLite, once PostgreSQL."""
    alias = request.getfixturevalue("django_sqlite" if request.param == "sqlite" else "django_postgres")
    yield from _emptied(str(alias), django_db_blocker)


@pytest.fixture
def postgres_using(django_postgres: str, django_db_blocker: Any) -> Iterator[str]:
    """The emptied PostgreSQL alias."""
    yield from _emptied(django_postgres, django_db_blocker)
