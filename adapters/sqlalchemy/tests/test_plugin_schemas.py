"""Plugins register their tables and migrations; the adapter upgrades, checks and requires them all."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.hookspecs import hookimpl
from paycore.plugins import create_plugin_manager
from paycore_sqlalchemy import Database, SchemaOutOfDate, SqlPaymentRepository, migrate
from paycore_sqlalchemy.schema import NAMING_CONVENTION
from paycore_sqlalchemy.schemas import ADAPTER_SCHEMA, SchemaRegistrar, SqlSchema, combine, registered_schemas

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "notes_0001"
down_revision = None
branch_labels = ("notes",)
depends_on = None


def upgrade():
    op.create_table(
        "notes_entries",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes_entries")),
    )
    op.create_index("ix_notes_entries_text", "notes_entries", ["text"])


def downgrade():
    op.drop_table("notes_entries")
"""


@pytest.fixture
def notes_schema(tmp_path: Path) -> SqlSchema:
    """A plugin's schema: one table, one index, one revision in a branch of its own."""
    versions = tmp_path / "notes_versions"
    versions.mkdir()
    (versions / "notes_0001.py").write_text(REVISION)
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    sa.Table(
        "notes_entries",
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Index("ix_notes_entries_text", "text"),
    )
    return SqlSchema("notes", metadata, versions)


class _NotesPlugin:
    def __init__(self, schema: SqlSchema) -> None:
        self.schema = schema

    @hookimpl
    def paycore_sqlalchemy_schemas(self, register: SchemaRegistrar) -> None:
        register(self.schema)


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_plugin_registers_its_schema_through_the_hook(notes_schema: SqlSchema) -> None:
    manager = create_plugin_manager([_NotesPlugin(notes_schema)])
    schemas = registered_schemas(manager)
    assert schemas[0] == ADAPTER_SCHEMA
    assert notes_schema in schemas


def test_upgrade_check_and_downgrade_cover_every_schema(notes_schema: SqlSchema, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'notes.db'}"
    schemas = [notes_schema]
    adapter_heads = migrate.head_revisions(schemas=[])
    before, after = migrate.upgrade(url, schemas=schemas)
    assert (before, after) == ((), tuple(sorted((*adapter_heads, "notes_0001"))))
    assert "notes_entries" in _tables(url)
    assert migrate.drift(url, schemas=schemas) == []
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_notes_entries_text"))
    engine.dispose()
    assert [diff[0] for diff in migrate.drift(url, schemas=schemas)] == ["add_index"]
    migrate.downgrade(url, "notes@base", schemas=schemas)
    assert migrate.current(url) == adapter_heads
    assert "notes_entries" not in _tables(url)


@pytest.mark.anyio
async def test_a_flow_on_sqlite_creates_the_tables_of_its_plugins_on_first_use(
    notes_schema: SqlSchema, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'flow.db'}"
    async with PaymentFlow.from_config({"repository": url}, plugins=[_NotesPlugin(notes_schema)]) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        assert notes_schema in flow.repository.database.schemas
        assert await flow.list_payments() == []
    assert "notes_entries" in _tables(url)
    assert "notes_0001" in migrate.current(url)


@pytest.mark.anyio
async def test_a_database_without_a_plugins_tables_is_refused_when_not_upgraded_automatically(
    notes_schema: SqlSchema, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'behind.db'}"
    migrate.upgrade(url, schemas=[])
    repository = SqlPaymentRepository(Database(url, auto_upgrade=False, schemas=[notes_schema]), owns_database=True)
    try:
        with pytest.raises(SchemaOutOfDate, match=r"notes.*paycore db upgrade"):
            await repository.list_payments()
    finally:
        await repository.aclose()


def test_a_database_holding_a_schema_no_longer_installed_says_so(notes_schema: SqlSchema, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'orphan.db'}"
    migrate.upgrade(url, schemas=[notes_schema])
    with pytest.raises(SchemaOutOfDate, match=r"notes_0001.*install the plugin"):
        migrate.upgrade(url, schemas=[])


def test_two_schemas_may_not_declare_one_table(notes_schema: SqlSchema, tmp_path: Path) -> None:
    clash = SqlSchema("other", notes_schema.metadata, tmp_path)
    with pytest.raises(ConfigurationError, match="'notes_entries' is declared by both SQL schema 'notes' and 'other'"):
        combine([notes_schema, clash])


def test_two_different_schemas_may_not_share_a_name(notes_schema: SqlSchema, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="two different SQL schemas are named 'notes'"):
        combine([notes_schema, SqlSchema("notes", sa.MetaData(), tmp_path)])
