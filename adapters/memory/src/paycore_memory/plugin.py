"""The ``memory`` plugin: registers the in-memory repository and idempotency store."""

from __future__ import annotations

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
    """Register repository type ``memory``, the embedded default."""
    register("memory", _repository, embedded_default=True)


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``memory``, the embedded default."""
    register("memory", _idempotency_store, embedded_default=True)
