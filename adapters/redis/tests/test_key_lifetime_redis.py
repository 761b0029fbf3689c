"""Idempotency keys are bound for ``idempotency_ttl``, then free, with Redis alone and Redis in front of SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import paycore_memory.plugin
import paycore_redis.plugin
import paycore_sqlalchemy.plugin
from paycore.testing.lifetime_suite import KeyLifetimeConformance
from paycore.testing.redis import RedisServer

pytestmark = pytest.mark.redis


class TestKeyLifetimeOnRedis(KeyLifetimeConformance):
    """Payments in memory, keys in Redis alone."""

    @pytest.fixture
    def storage_config(self, redis_server: RedisServer, prefix: str) -> Mapping[str, Any]:
        return {
            "repository": "memory",
            "idempotency": [{"type": "redis", "url": redis_server.url, "prefix": prefix}],
        }

    @pytest.fixture
    def storage_plugins(self) -> Sequence[object]:
        return (paycore_memory.plugin, paycore_redis.plugin)


class TestKeyLifetimeOnRedisInFrontOfSql(KeyLifetimeConformance):
    """Payments in SQLite, keys in Redis in front of SQLite (the tiered store)."""

    @pytest.fixture
    def storage_config(self, redis_server: RedisServer, prefix: str, tmp_path: Path) -> Mapping[str, Any]:
        return {
            "repository": f"sqlite:///{tmp_path / 'paycore.db'}",
            "idempotency": ["redis", "sqlalchemy"],
            "idempotency_settings": {"redis": {"url": redis_server.url, "prefix": prefix}},
        }

    @pytest.fixture
    def storage_plugins(self) -> Sequence[object]:
        return (paycore_sqlalchemy.plugin, paycore_redis.plugin)
