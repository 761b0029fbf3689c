"""The ``memory`` plugin: registers the in-memory repository and idempotency store."""

from __future__ import annotations

import weakref

from paycore import hookimpl
from paycore.hookspecs import AdapterContext, IdempotencyStoreRegistrar, RepositoryRegistrar
from paycore_memory.idempotency import MemoryIdempotencyStore
from paycore_memory.repository import MemoryRepository


def _repository(context: AdapterContext) -> MemoryRepository:
    return MemoryRepository()


def _idempotency_store(context: AdapterContext) -> MemoryIdempotencyStore:
    return MemoryIdempotencyStore()


@hookimpl
def paycore_register_repositories(register: RepositoryRegistrar) -> None:
    """Register repository type ``memory``."""
    register("memory", _repository)


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``memory``."""
    register("memory", _idempotency_store)


@hookimpl(optionalhook=True)
def paycore_cash_drawer_storage(repository: object, settings: object) -> object | None:
    """Give the cash plugin drawer storage beside a :class:`MemoryRepository`.

    One storage per repository object, so every flow and service sharing the
    repository sees the same drawers. Imports the cash plugin only when it asks.
    """
    if not isinstance(repository, MemoryRepository):
        return None
    from paycore_memory.drawers import MemoryDrawerStorage

    storage = _DRAWERS.get(repository)
    if storage is None:
        storage = _DRAWERS.setdefault(repository, MemoryDrawerStorage())
    return storage


_DRAWERS: weakref.WeakKeyDictionary[MemoryRepository, object] = weakref.WeakKeyDictionary()
