"""The packaged migrations create exactly the tables the code declares, and ``paycore db`` applies them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from paycore.cli import main
from paycore.errors import DuplicateExternalId
from paycore.records import Payment
from paycore.testing.records import make_payment, next_version
from paycore_sqlalchemy import Database, SchemaOutOfDate, SqlPaymentRepository, migrate
from paycore_sqlalchemy.codec import payment_row
from paycore_sqlalchemy.engine import acquire_engine
from paycore_sqlalchemy.schema import payments
from paycore_sqlalchemy.schemas import SqlSchema


def _empty_database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make(migrated=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database that was never migrated."""
    return _empty_database(request.param, tmp_path, request)


def _drift(url: str) -> list[object]:
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            return migrate.schema_drift(connection)
    finally:
        lease.release()


def _db(*arguments: str) -> int:
    """``paycore db ARGUMENTS`` through the real command line (the plugin is found by its entry point)."""
    return main(["db", *arguments])


def test_the_migrations_create_exactly_the_declared_tables(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    assert _drift(empty_url) == []


def test_drift_is_detected_when_the_database_differs_from_the_code(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    lease = acquire_engine(empty_url)
    try:
        with lease.engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_paycore_payments_order"))
    finally:
        lease.release()
    assert [diff[0] for diff in _drift(empty_url)] == ["add_index"]


def test_downgrading_to_nothing_and_upgrading_again_gives_the_same_schema(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    migrate.downgrade(empty_url, "base")
    assert migrate.current(empty_url) == ()
    migrate.upgrade(empty_url)
    assert _drift(empty_url) == []


def test_paycore_db_upgrade_brings_an_empty_database_to_head(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _db("current", "--url", empty_url) == 1
    assert _db("upgrade", "--url", empty_url) == 0
    assert f"upgraded from empty to {', '.join(migrate.head_revisions())}" in capsys.readouterr().out
    assert _db("current", "--url", empty_url) == 0
    assert "up to date" in capsys.readouterr().out
    assert _db("check", "--url", empty_url) == 0
    assert _db("upgrade", "--url", empty_url) == 0
    assert "already at revision" in capsys.readouterr().out


def test_paycore_db_takes_the_url_from_a_config_file(tmp_path: Path) -> None:
    database = tmp_path / "from-config.db"
    config = tmp_path / "paycore.toml"
    config.write_text(f'repository = "sqlite:///{database}"\n')
    assert _db("upgrade", "--config", str(config)) == 0
    assert migrate.current(f"sqlite:///{database}") == migrate.head_revisions()


def test_paycore_db_takes_the_url_from_the_global_config_option(tmp_path: Path) -> None:
    database = tmp_path / "global.db"
    config = tmp_path / "paycore.toml"
    config.write_text(f'repository = "sqlite:///{database}"\n')
    assert main(["--config", str(config), "db", "upgrade"]) == 0
    assert migrate.current(f"sqlite:///{database}") == migrate.head_revisions()


def test_paycore_db_reports_an_unreachable_database_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert _db("current", "--url", "postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:1/none") == 2
    error = capsys.readouterr().err
    assert "paycore db:" in error
    assert "s3cret-pw" not in error


@pytest.mark.anyio
async def test_a_sqlite_database_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    repository = SqlPaymentRepository(url)
    try:
        assert await repository.list_payments() == []
    finally:
        await repository.aclose()
    assert migrate.current(url) == migrate.head_revisions()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_an_unmigrated_postgres_database_is_refused_with_the_command_to_run(
    fresh_postgres_database: Callable[..., str],
) -> None:
    repository = SqlPaymentRepository(fresh_postgres_database(migrated=False))
    try:
        with pytest.raises(SchemaOutOfDate, match="paycore db upgrade"):
            await repository.list_payments()
    finally:
        await repository.aclose()


_COLUMNS_SINCE_0002 = ("provider_references", "provider_state")


def _store_at_0001(url: str, stored: list[Payment]) -> None:
    """Insert ``stored`` as revision 0001's code did: payment rows only, no references."""
    rows = [{k: v for k, v in payment_row(p).items() if k not in _COLUMNS_SINCE_0002} for p in stored]
    lease = acquire_engine(url)
    try:
        with lease.engine.begin() as connection:
            connection.execute(sa.insert(payments), rows)
    finally:
        lease.release()


@pytest.mark.anyio
async def test_payments_stored_before_references_are_found_by_their_external_id_after_upgrading(
    empty_url: str,
) -> None:
    migrate.upgrade(empty_url, "0001")
    legacy = [
        make_payment(tenant="chez-awa", external_id="gw-1"),
        make_payment(tenant=None, external_id="gw-1"),
        make_payment(provider="wave", tenant="chez-awa", external_id="wave-7"),
        make_payment(tenant="chez-awa"),
    ]
    _store_at_0001(empty_url, legacy)
    migrate.upgrade(empty_url)
    assert _drift(empty_url) == []
    repository = SqlPaymentRepository(empty_url)
    try:
        for payment in legacy:
            assert await repository.get(payment.id) == payment
            if payment.external_id is not None:
                found = await repository.get_by_external_id(payment.provider, payment.tenant, payment.external_id)
                assert found == payment
        grown = next_version(legacy[0], references=("gw-1", "pi-2"), provider_state={"intent": "pi-2"})
        await repository.save(grown, [])
        assert await repository.get_by_external_id("fake", "chez-awa", "pi-2") == grown
        assert await repository.get_by_external_id("fake", "chez-awa", "gw-1") == grown
        with pytest.raises(DuplicateExternalId, match="'gw-1'"):
            await repository.save(next_version(legacy[3], external_id="gw-1"), [])
        with pytest.raises(DuplicateExternalId, match="'wave-7'"):
            await repository.add(make_payment(provider="wave", tenant="chez-awa", external_id="wave-7"), [])
    finally:
        await repository.aclose()


@pytest.mark.anyio
async def test_downgrading_the_references_keeps_every_payment_and_its_external_id(empty_url: str) -> None:
    payment = make_payment(tenant="chez-awa", external_id="cs-1", references=("cs-1", "pi-1"))
    migrate.upgrade(empty_url)
    repository = SqlPaymentRepository(empty_url)
    try:
        await repository.add(payment, [])
    finally:
        await repository.aclose()
    migrate.downgrade(empty_url, "0001")
    lease = acquire_engine(empty_url)
    try:
        with lease.engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            kept = connection.execute(sa.text("SELECT id, external_id FROM paycore_payments")).all()
    finally:
        lease.release()
    assert "paycore_payment_references" not in tables
    assert [tuple(row) for row in kept] == [(payment.id, "cs-1")]
    migrate.upgrade(empty_url)
    repository = SqlPaymentRepository(empty_url)
    try:
        assert (await repository.get_by_external_id("fake", "chez-awa", "cs-1")).id == payment.id
    finally:
        await repository.aclose()


@pytest.mark.postgres
def test_postgresql_gets_the_function_with_which_a_write_refuses_its_unit(request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("fresh_postgres_database")(migrated=False)
    migrate.upgrade(url)
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT paycore_expect_one_row(1)")).scalar() == 1
        for changed in (0, 2):
            with lease.engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as refused:
                connection.execute(sa.text(f"SELECT paycore_expect_one_row({changed})"))
            assert getattr(refused.value.orig, "sqlstate", None) == "PC001"
            assert f"changed {changed} rows where it must change one" in str(refused.value)
        migrate.downgrade(url, "0003")
        with lease.engine.connect() as connection:
            found = connection.execute(sa.text("SELECT count(*) FROM pg_proc WHERE proname = 'paycore_expect_one_row'"))
            assert found.scalar() == 0
    finally:
        lease.release()


@pytest.mark.parametrize("where", ["--url", "--config"])
def test_paycore_db_reports_a_url_whose_port_is_not_a_number_without_a_traceback(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://paycore:s3cret-pw@127.0.0.1:notaport/paycore"
    config = tmp_path / "paycore.toml"
    config.write_text(f'repository = "{url}"\n')
    assert _db("current", where, url if where == "--url" else str(config)) == 2
    error = capsys.readouterr().err
    assert error.startswith("paycore db: sqlalchemy: 'url' 'postgresql://paycore:***@127.0.0.1:notaport/paycore'")
    assert "its port is not a number" in error
    assert error.count("\n") == 1
    assert "s3cret-pw" not in error


def test_paycore_db_refuses_an_unknown_revision_before_opening_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "never.db"
    assert _db("upgrade", "--url", f"sqlite:///{database}", "--revision", "nonsense") == 2
    error = capsys.readouterr().err
    assert error.startswith("paycore db: --revision 'nonsense' is no revision of the installed schemas")
    assert f"the heads are {', '.join(migrate.head_revisions())}" in error
    assert not database.exists()


def test_paycore_db_reports_a_relative_revision_alembic_refuses_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert _db("upgrade", "--url", url, "--revision", "nonsense+1") == 2
    error = capsys.readouterr().err
    assert error == "paycore db: upgrade failed: Can't locate revision identified by 'nonsense'\n"
    assert migrate.current(url) == ()


def test_paycore_db_refuses_an_empty_url_instead_of_migrating_the_default_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An unset "$DATABASE_URL" gives --url "": it created and migrated ./paycore.db, exit 0.
    monkeypatch.chdir(tmp_path)
    for action in ("upgrade", "current", "check"):
        assert _db(action, "--url", "") == 2
        assert capsys.readouterr().err.startswith("paycore db: --url is empty")
    assert list(tmp_path.iterdir()) == []


def _stamped_newer(url: str) -> None:
    """The database as a newer release leaves it: at a revision this code does not ship."""
    lease = acquire_engine(url)
    try:
        with lease.engine.begin() as connection:
            connection.execute(sa.text(f"DELETE FROM {migrate.VERSION_TABLE}"))
            connection.execute(sa.text(f"INSERT INTO {migrate.VERSION_TABLE} (version_num) VALUES ('0099')"))
    finally:
        lease.release()


@pytest.mark.anyio
@pytest.mark.parametrize("auto_upgrade", [False, True])
async def test_a_database_newer_than_the_code_is_refused_as_newer_not_as_behind(
    empty_url: str, auto_upgrade: bool
) -> None:
    """A rolled-back deploy: running `paycore db upgrade` with this code, as "behind" would tell, cannot help."""
    migrate.upgrade(empty_url)
    _stamped_newer(empty_url)
    repository = SqlPaymentRepository(Database(empty_url, auto_upgrade=auto_upgrade))
    try:
        with pytest.raises(SchemaOutOfDate, match="0099, which none of the installed SQL schemas") as refused:
            await repository.list_payments()
        assert "run `paycore db upgrade`" not in str(refused.value)
    finally:
        await repository.aclose()
    assert migrate.standing(empty_url)[1] == ["0099"]


def test_paycore_db_current_says_a_database_newer_than_the_code_is_ahead(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(empty_url)
    _stamped_newer(empty_url)
    assert _db("current", "--url", empty_url) == 1
    out = capsys.readouterr().out
    assert "ahead of this code: 0099" in out
    assert "behind" not in out


def _config_file(folder: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    """A paycore TOML file holding ``text`` in ``folder``, the working directory from now on."""
    monkeypatch.chdir(folder)
    config = folder / "paycore.toml"
    config.write_text(text)
    return config


@pytest.mark.parametrize(("repository", "said"), [("memory", "'memory'"), ("django", "manage.py migrate")])
def test_paycore_db_refuses_a_repository_of_another_type_instead_of_migrating_a_file_of_its_own(
    repository: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It upgraded ./paycore.db and said so, exit 0: an operator was told the project's database was migrated.
    config = _config_file(tmp_path, monkeypatch, f'repository = "{repository}"\n')
    for action in ("upgrade", "current", "check"):
        assert _db(action, "--config", str(config)) == 2
        error = capsys.readouterr().err
        assert f"the configured repository is of type '{repository}', which `paycore db` does not migrate" in error
        assert said in error
    assert not (tmp_path / "paycore.db").exists()


@pytest.mark.anyio
async def test_a_repository_built_again_and_again_reads_the_migrations_once(tmp_path: Path) -> None:
    """A flow built per request (Django under WSGI) checks its schema each time: Alembic keeps something of each
    script directory it reads until the process exits (an ``atexit`` callback), so the process grew per request."""
    import atexit

    url = f"sqlite:///{tmp_path / 'again.db'}"

    async def one_more() -> None:
        repository = SqlPaymentRepository(url)
        try:
            await repository.list_payments()
        finally:
            await repository.aclose()

    await one_more()
    before = atexit._ncallbacks()
    for _ in range(20):
        await one_more()
    assert atexit._ncallbacks() == before


@pytest.mark.parametrize(
    ("where", "url"),
    [("--url", "redis://:pw@127.0.0.1:6379/0"), ("--config", "mongodb://db.internal/x"), ("--url", "paycore.db")],
)
def test_paycore_db_refuses_a_url_no_sql_database_has_in_one_line(
    where: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was SQLAlchemy's NoSuchModuleError with its traceback, exit 1.
    config = _config_file(tmp_path, monkeypatch, f'[repository]\nurl = "{url}"\n')
    assert _db("upgrade", where, url if where == "--url" else str(config)) == 2
    error = capsys.readouterr().err
    assert "is no database URL paycore-sqlalchemy serves" in error
    assert error.count("\n") == 1
    assert "pw" not in error


@pytest.mark.parametrize("scheme", ["SQLITE", "Sqlite+PySqlite"])
def test_a_url_s_scheme_is_read_whatever_its_case(
    scheme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was SQLAlchemy's NoSuchModuleError for "SQLITE" with its traceback, exit 1.
    assert _db("upgrade", "--url", f"{scheme}:///{tmp_path / 'cased.db'}") == 0
    assert migrate.current(f"sqlite:///{tmp_path / 'cased.db'}") == migrate.head_revisions()


@pytest.mark.postgres
def test_postgres_is_read_as_postgresql_as_libpq_and_hosts_write_it(
    fresh_postgres_database: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = fresh_postgres_database(migrated=False)
    assert _db("upgrade", "--url", url.replace("postgresql+psycopg://", "postgres+psycopg://")) == 0
    assert migrate.current(url) == migrate.head_revisions()


def test_paycore_db_names_a_driver_that_is_not_installed_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert _db("current", "--url", "postgresql+nosuchdriver://u@127.0.0.1/x") == 2
    error = capsys.readouterr().err
    assert error.startswith("paycore db: sqlalchemy: cannot use postgresql+nosuchdriver://u@127.0.0.1/x")
    assert error.count("\n") == 1


def test_a_revision_added_to_a_schema_s_folder_is_seen(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    revision = 'revision = "{new}"\ndown_revision = {old}\nbranch_labels = {labels}\n\n\ndef upgrade():\n    pass\n'
    (versions / "notes_0001.py").write_text(revision.format(new="notes_0001", old="None", labels='("notes",)'))
    notes = SqlSchema(name="notes", metadata=sa.MetaData(), versions=versions)
    assert "notes_0001" in migrate.head_revisions([notes])
    (versions / "notes_0002.py").write_text(revision.format(new="notes_0002", old='"notes_0001"', labels="None"))
    os.utime(versions, ns=(versions.stat().st_atime_ns, versions.stat().st_mtime_ns + 1_000_000))
    assert "notes_0002" in migrate.head_revisions([notes])
