"""Fixtures for the Redis tests: a real ``redis-server`` on a loopback port, started and stopped here."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import pytest

from paycore.testing.redis import RedisServer
from paycore.testing.servers import start_for_test
from paycore_redis import RedisIdempotencyStore

_prefixes = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server for the tests that do not stop it; each test uses its own key prefix."""
    with start_for_test(RedisServer()) as server:
        yield server


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of this test alone, which it may kill and restart."""
    with start_for_test(RedisServer()) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return f"test{next(_prefixes)}:"


@pytest.fixture
async def redis_store(redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisIdempotencyStore]:
    """A store on the shared server, under this test's own prefix."""
    store = RedisIdempotencyStore.from_url(redis_server.url, prefix=prefix)
    yield store
    await store.aclose()
