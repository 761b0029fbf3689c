"""A database paycore's migrations never ran on: every call is a ``StorageUnavailable`` saying to run ``migrate``.

Never migrated, or migrated while ``DATABASE_ROUTERS`` kept paycore's models
off it (``migrate`` then records paycore's migrations there without creating a
table): on SQLite and on PostgreSQL alike, paycore answers with its own error,
naming the database alias and the command to run, never with Django's raw
``ProgrammingError`` ("relation ... does not exist"). Any other
``ProgrammingError`` is a real programming error and still surfaces as it is.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from django.db import ProgrammingError, connections

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.errors import StorageUnavailable
from paycore.money import Money
from paycore_django.units import run_unit_sync

pytestmark = pytest.mark.anyio

EMPTY: Final = "unmigrated"
"""The alias of the empty database a test adds for its while."""

_names = itertools.count(1)


def _add_alias(monkeypatch: pytest.MonkeyPatch, database: dict[str, Any]) -> None:
    """Add :data:`EMPTY` to ``DATABASES`` for the test's while (its connections closed and forgotten after)."""
    monkeypatch.setitem(connections.settings, EMPTY, database)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, django_db_blocker: Any
) -> Iterator[str]:
    """The alias of a database no migration ran on: a new SQLite file, or a new PostgreSQL database."""
    dropped: str | None = None
    if request.param == "sqlite":
        database = copy.deepcopy(connections["default"].settings_dict)
        database["NAME"] = str(tmp_path / "never-migrated.db")
    else:
        server = request.getfixturevalue("postgres_server")
        dropped = f"django_unmigrated_{next(_names)}"
        server.create_database(dropped)
        database = copy.deepcopy(connections["postgres"].settings_dict)
        database["NAME"] = dropped
    _add_alias(monkeypatch, database)
    with django_db_blocker.unblock():
        try:
            yield EMPTY
        finally:
            connections[EMPTY].close()
            del connections[EMPTY]
            if dropped is not None:
                request.getfixturevalue("postgres_server").drop_database(dropped)


def _config(using: str) -> dict[str, Any]:
    return {"repository": {"type": "django", "using": using}, "providers": {"fake": {"type": "fake"}}}


async def test_every_call_on_a_database_never_migrated_is_storage_unavailable_saying_to_migrate(
    empty_database: str,
) -> None:
    async with PaymentFlow.from_config(_config(empty_database), plugins=[paycore.testing.fake]) as flow:
        with pytest.raises(StorageUnavailable) as created:
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o-1")
        with pytest.raises(StorageUnavailable) as read:
            await flow.get_payment("pay_missing")
    for refused in (created.value, read.value):
        assert f"Django database {empty_database!r} lacks paycore's tables" in str(refused)
        assert f"python manage.py migrate --database {empty_database}" in str(refused)


ON_POSTGRESQL: Final = pytest.mark.parametrize(
    "empty_database", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@ON_POSTGRESQL
def test_another_programming_error_on_postgresql_surfaces_as_it_is(empty_database: str) -> None:
    def mistaken() -> None:
        with connections[empty_database].cursor() as cursor:
            cursor.execute("SELEC 1")

    with pytest.raises(ProgrammingError, match="syntax error"):
        run_unit_sync(empty_database, mistaken)


@ON_POSTGRESQL
def test_a_table_refused_to_the_database_user_is_storage_unavailable_saying_so(empty_database: str) -> None:
    def refused() -> None:  # all rolled back with the unit: the table, the role, the role taken
        with connections[empty_database].cursor() as cursor:
            cursor.execute("CREATE TABLE paycore_secret (id integer)")
            cursor.execute("CREATE ROLE paycore_clerk")
            cursor.execute("SET LOCAL ROLE paycore_clerk")
            cursor.execute("SELECT * FROM paycore_secret")

    with pytest.raises(StorageUnavailable, match="refuses paycore's tables to its user"):
        run_unit_sync(empty_database, refused)


@ON_POSTGRESQL
def test_a_write_to_a_read_only_database_is_storage_unavailable_saying_so(empty_database: str) -> None:
    """A hot standby after a failover (or default_transaction_read_only) raised Django's raw InternalError."""

    def write_read_only() -> None:  # rolled back with the unit
        with connections[empty_database].cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute("CREATE TABLE paycore_written (id integer)")

    with pytest.raises(StorageUnavailable, match="is read-only"):
        run_unit_sync(empty_database, write_read_only)
