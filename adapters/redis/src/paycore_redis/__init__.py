"""Redis idempotency store for paycore: the fast path in front of a durable store.

``RedisIdempotencyStore`` keeps idempotency keys in Redis with one atomic Lua
script per operation (claim, complete, release), under asyncio and trio.
Configured as idempotency store type ``redis``; list it before a durable store
(``idempotency = ["redis", "sqlalchemy"]``) for a tiered store.
"""

from paycore_redis.settings import RedisStoreSettings, SentinelTarget
from paycore_redis.store import RedisIdempotencyStore

__all__ = ["RedisIdempotencyStore", "RedisStoreSettings", "SentinelTarget"]
