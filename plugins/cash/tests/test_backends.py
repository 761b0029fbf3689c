"""The cash plugin picks its own drawer storage by the repository's ``storage_backend``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paycore.errors import ConfigurationError
from paycore.hookspecs import hookimpl
from paycore.plugins import create_plugin_manager
from paycore_cash import plugin as cash_plugin
from paycore_cash.backends import drawer_storage
from paycore_cash.backends.memory import MemoryDrawerStorage
from paycore_cash.backends.sql import SqlDrawerStorage
from paycore_cash.hookspecs import DrawerBackendRegistrar
from paycore_memory import MemoryRepository
from paycore_sqlalchemy import SqlPaymentRepository

pytestmark = pytest.mark.anyio


def test_a_memory_repository_has_one_drawer_storage_of_its_own() -> None:
    manager = create_plugin_manager()
    first, second = MemoryRepository(), MemoryRepository()
    storage = drawer_storage(manager, first)
    assert isinstance(storage, MemoryDrawerStorage)
    assert drawer_storage(manager, first) is storage
    assert drawer_storage(manager, second) is not storage


async def test_a_sql_repository_keeps_drawers_in_its_own_database(tmp_path: Path) -> None:
    repository = SqlPaymentRepository(f"sqlite:///{tmp_path / 'paycore.db'}")
    try:
        storage = drawer_storage(create_plugin_manager(), repository)
        assert isinstance(storage, SqlDrawerStorage)
        assert storage.database is repository.database
        assert await storage.list_sessions(None) == []
    finally:
        await repository.aclose()


class _DjangoLikeRepository:
    storage_backend = "django"


class _UnknownRepository:
    storage_backend = "mongo"


def test_a_backend_whose_implementation_is_not_installed_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "paycore_cash.backends.django.storage", None)  # as if paycore-django were absent
    with pytest.raises(ConfigurationError, match=r"_DjangoLikeRepository.*paycore-cash\[django\]"):
        drawer_storage(create_plugin_manager(), _DjangoLikeRepository())


def test_an_unknown_backend_names_the_repository_and_the_known_backends() -> None:
    with pytest.raises(ConfigurationError, match=r"_UnknownRepository.*'mongo'.*django, memory, sqlalchemy"):
        drawer_storage(create_plugin_manager(), _UnknownRepository())


class _MongoDrawers:
    """A package that brings drawer storage for its own backend."""

    def __init__(self) -> None:
        self.storage = MemoryDrawerStorage()

    @hookimpl
    def paycore_cash_drawer_backends(self, register: DrawerBackendRegistrar) -> None:
        register("mongo", lambda repository: self.storage)


def test_another_package_adds_drawer_storage_for_its_backend() -> None:
    plugin = _MongoDrawers()
    manager = create_plugin_manager([cash_plugin, plugin], entry_points=False)
    assert drawer_storage(manager, _UnknownRepository()) is plugin.storage


class _Hijack:
    @hookimpl
    def paycore_cash_drawer_backends(self, register: DrawerBackendRegistrar) -> None:
        register("memory", lambda repository: MemoryDrawerStorage())


def test_a_built_in_backend_cannot_be_replaced() -> None:
    manager = create_plugin_manager([_Hijack()])
    with pytest.raises(ConfigurationError, match="'memory' is registered twice"):
        drawer_storage(manager, MemoryRepository())


def test_storage_that_lacks_drawer_methods_is_refused() -> None:
    class _Broken:
        @hookimpl
        def paycore_cash_drawer_backends(self, register: Any) -> None:
            register("mongo", lambda repository: object())

    with pytest.raises(ConfigurationError, match="'mongo' is a object"):
        drawer_storage(create_plugin_manager([cash_plugin, _Broken()], entry_points=False), _UnknownRepository())


def test_a_storage_without_give_up_refund_is_refused_naming_it() -> None:
    """A drawer storage written before refunds could be given up would let a till that slept through its
    refund's lease pay it out after the flow failed it: refused when the flow is built, naming the method."""

    class _BeforeGiveUp:
        def __getattr__(self, name: str) -> Any:
            if name == "give_up_refund":
                raise AttributeError(name)
            return getattr(MemoryDrawerStorage(), name)

    class _Old:
        @hookimpl
        def paycore_cash_drawer_backends(self, register: Any) -> None:
            register("mongo", lambda repository: _BeforeGiveUp())

    manager = create_plugin_manager([cash_plugin, _Old()], entry_points=False)
    with pytest.raises(
        ConfigurationError, match=r"lacks methods of paycore_cash\.storage\.DrawerStorage: give_up_refund$"
    ):
        drawer_storage(manager, _UnknownRepository())


@pytest.mark.parametrize("adapter", ["paycore_memory", "paycore_sqlalchemy"])
def test_no_storage_adapter_imports_the_cash_plugin(adapter: str) -> None:
    modules = {
        "paycore_memory": "paycore_memory, paycore_memory.plugin, paycore_memory.repository",
        "paycore_sqlalchemy": "paycore_sqlalchemy, paycore_sqlalchemy.plugin, paycore_sqlalchemy.cli, "
        "paycore_sqlalchemy.migrate, paycore_sqlalchemy.schemas",
    }[adapter]
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith('paycore_cash')))"
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert output.strip() == "[]"
