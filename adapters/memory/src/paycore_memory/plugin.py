"""The ``memory`` plugin: registers the in-memory repository and idempotency store."""

from __future__ import annotations

from paycore import hookimpl
from paycore.errors import ConfigurationError
from paycore.hookspecs import AdapterContext, IdempotencyStoreRegistrar, RepositoryRegistrar
from paycore_memory.idempotency import MemoryIdempotencyStore
from paycore_memory.repository import MemoryRepository


def _no_settings(context: AdapterContext, owner: str) -> None:
    """The memory adapter has no settings: one given is a mistake (a misspelled key of another adapter)."""
    if context.settings:
        raise ConfigurationError(f"{owner}: no setting {', '.join(map(repr, sorted(context.settings)))}; it has none")


def _repository(context: AdapterContext) -> MemoryRepository:
    _no_settings(context, "repository 'memory'")
    return MemoryRepository()


def _idempotency_store(context: AdapterContext) -> MemoryIdempotencyStore:
    _no_settings(context, "idempotency store 'memory'")
    return MemoryIdempotencyStore()


@hookimpl
def paycore_register_repositories(register: RepositoryRegistrar) -> None:
    """Register repository type ``memory``, the embedded default."""
    register("memory", _repository, embedded_default=True)


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``memory``, the embedded default."""
    register("memory", _idempotency_store, embedded_default=True)
