"""Cash-drawer sessions and movements live in the SQL database beside the payments."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.plugins import create_plugin_manager
from paycore.secrets import Settings
from paycore_cash.storage import DrawerStorage
from paycore_cash.testing import DrawerStorageConformance
from paycore_memory import MemoryRepository
from paycore_sqlalchemy import SqlPaymentRepository
from paycore_sqlalchemy.drawers import SqlDrawerStorage


class TestSqlDrawerStorage(DrawerStorageConformance):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def drawer_storage(self, database_url: str) -> AsyncIterator[SqlDrawerStorage]:
        repository = SqlPaymentRepository(database_url)
        yield SqlDrawerStorage(repository.database)
        await repository.aclose()


@pytest.mark.anyio
async def test_the_cash_plugin_gets_drawer_storage_beside_a_sql_repository(sqlite_url: str) -> None:
    manager = create_plugin_manager()
    repository = SqlPaymentRepository(sqlite_url)
    try:
        storage = manager.hook.paycore_cash_drawer_storage(
            repository=repository, settings=Settings({"url": sqlite_url})
        )
        assert isinstance(storage, DrawerStorage)
        assert isinstance(storage, SqlDrawerStorage)
        assert storage.database is repository.database
    finally:
        await repository.aclose()


def test_the_sql_adapter_leaves_other_repositories_alone() -> None:
    from paycore_sqlalchemy import plugin

    assert plugin.paycore_cash_drawer_storage(repository=MemoryRepository(), settings=Settings()) is None
