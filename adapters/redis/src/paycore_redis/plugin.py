"""The ``redis`` plugin: registers idempotency store type ``redis``."""

from __future__ import annotations

from paycore import hookimpl
from paycore.hookspecs import AdapterContext, IdempotencyStoreRegistrar
from paycore_redis.settings import RedisStoreSettings
from paycore_redis.store import RedisIdempotencyStore


def create_store(context: AdapterContext) -> RedisIdempotencyStore:
    """Build the store from its settings table (``url``, ``prefix``, ``socket_timeout``...)."""
    return RedisIdempotencyStore(RedisStoreSettings.from_mapping(context.settings))


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``redis``."""
    register("redis", create_store, url_schemes=("redis", "rediss", "unix", "redis+sentinel"))
