"""The tiered idempotency store: Redis (a real redis-server) in front of a durable store."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from paycore.errors import (
    ConfigurationError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    StorageUnavailable,
)
from paycore.storage import IdempotencyClaim, IdempotencyStore
from paycore.testing import IdempotencyStoreConformance
from paycore.testing.redis import RedisServer
from paycore.testing.servers import start_for_test
from paycore.tiered import TieredIdempotencyStore
from paycore_memory import MemoryIdempotencyStore
from paycore_redis import RedisIdempotencyStore
from paycore_sqlalchemy import SqlIdempotencyStore

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

LEASE = 60.0
_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """One redis-server for the tests that do not stop it (each uses its own prefix)."""
    with start_for_test(RedisServer()) as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of this test alone, which it may kill and restart."""
    with start_for_test(RedisServer()) as server:
        yield server


class Recording:
    """An idempotency store that passes every call on and counts them by operation."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store
        self.calls: list[str] = []

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        self.calls.append("claim")
        return await self.store.claim(scope=scope, key=key, fingerprint=fingerprint, lease_seconds=lease_seconds)

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        self.calls.append("complete")
        await self.store.complete(scope=scope, key=key, token=token, result=result, ttl_seconds=ttl_seconds)

    async def release(self, *, scope: str, key: str, token: str) -> None:
        self.calls.append("release")
        await self.store.release(scope=scope, key=key, token=token)

    async def aclose(self) -> None:
        await self.store.aclose()


class TestRedisInFrontOfMemory(IdempotencyStoreConformance):
    """The shared idempotency rules hold for Redis tiered in front of the memory store."""

    says_how_long_results_are_kept = True

    @pytest.fixture
    async def idempotency_store(self, shared_redis: RedisServer) -> AsyncIterator[TieredIdempotencyStore]:
        """A fresh tiered store under a prefix of its own."""
        redis = RedisIdempotencyStore.from_url(shared_redis.url, prefix=f"tiered{next(_prefixes)}:")
        store = TieredIdempotencyStore([redis, MemoryIdempotencyStore()], names=["redis", "memory"])
        yield store
        await store.aclose()


class TestRedisInFrontOfSqlite(IdempotencyStoreConformance):
    """The shared idempotency rules hold for Redis tiered in front of the SQLite store."""

    says_how_long_results_are_kept = True

    @pytest.fixture
    async def idempotency_store(
        self, shared_redis: RedisServer, tmp_path: Path
    ) -> AsyncIterator[TieredIdempotencyStore]:
        """A fresh tiered store on a new SQLite file."""
        redis = RedisIdempotencyStore.from_url(shared_redis.url, prefix=f"tiered{next(_prefixes)}:")
        durable = SqlIdempotencyStore(f"sqlite:///{tmp_path / 'idempotency.db'}")
        store = TieredIdempotencyStore([redis, durable], names=["redis", "sqlalchemy"])
        yield store
        await store.aclose()


@pytest.fixture
async def tiers(redis_server: RedisServer) -> AsyncIterator[tuple[TieredIdempotencyStore, Recording, Recording]]:
    """A tiered store on this test's own Redis, with both tiers' calls recorded."""
    fast = Recording(RedisIdempotencyStore.from_url(redis_server.url, socket_timeout=0.5))
    durable = Recording(MemoryIdempotencyStore())
    store = TieredIdempotencyStore([fast, durable], names=["redis", "memory"], retry_after=0.0)
    yield store, fast, durable
    await store.aclose()


async def _run_once(store: IdempotencyStore, key: str, result: Mapping[str, Any]) -> None:
    claim = await store.claim(scope="", key=key, fingerprint="f", lease_seconds=LEASE)
    assert claim.token is not None
    await store.complete(scope="", key=key, token=claim.token, result=result, ttl_seconds=LEASE)


async def test_a_replay_found_in_redis_does_not_reach_the_durable_store(
    tiers: tuple[TieredIdempotencyStore, Recording, Recording],
) -> None:
    store, fast, durable = tiers
    await _run_once(store, "k", {"id": "pay_1"})
    fast.calls.clear()
    durable.calls.clear()
    replay = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert replay.result == {"id": "pay_1"}
    assert (fast.calls, durable.calls) == (["claim"], [])


async def test_a_new_request_holds_the_key_in_the_durable_store_too(
    tiers: tuple[TieredIdempotencyStore, Recording, Recording],
) -> None:
    store, _, durable = tiers
    await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    with pytest.raises(IdempotencyInProgress):
        await durable.store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)


async def test_a_result_found_only_in_the_durable_store_is_replayed_and_copied_into_redis(
    tiers: tuple[TieredIdempotencyStore, Recording, Recording],
) -> None:
    store, fast, durable = tiers
    await _run_once(durable.store, "k", {"id": "pay_1"})
    replay = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    from_redis = await fast.store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert replay.result == from_redis.result == {"id": "pay_1"}


async def test_a_result_copied_back_into_redis_is_not_kept_longer_than_the_durable_store_keeps_it(
    redis_server: RedisServer, tiers: tuple[TieredIdempotencyStore, Recording, Recording]
) -> None:
    store, _, _ = tiers
    claim = await store.claim(scope="", key="T4-0017", fingerprint="f", lease_seconds=LEASE)
    assert claim.token is not None
    await store.complete(scope="", key="T4-0017", token=claim.token, result={"id": "pay_1"}, ttl_seconds=1.0)
    redis_server.restart()  # Redis loses its copy
    await anyio.sleep(0.6)
    replay = await store.claim(scope="", key="T4-0017", fingerprint="f", lease_seconds=LEASE)
    assert replay.result == {"id": "pay_1"}  # from the durable store, copied back into Redis
    assert replay.expires_in is not None
    assert replay.expires_in <= 0.4 + 0.05
    await anyio.sleep(0.6)  # past the key's idempotency_ttl: free again in every tier (the next day's order T4-0017)
    again = await store.claim(scope="", key="T4-0017", fingerprint="f", lease_seconds=LEASE)
    assert again.token is not None
    assert again.result is None


async def test_a_request_running_when_redis_restarts_empty_is_not_run_again(
    redis_server: RedisServer, tiers: tuple[TieredIdempotencyStore, Recording, Recording]
) -> None:
    store, _, _ = tiers
    running = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    redis_server.restart()
    with pytest.raises(IdempotencyInProgress):
        await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert running.token is not None
    await store.complete(scope="", key="k", token=running.token, result={"id": "pay_1"}, ttl_seconds=LEASE)
    replay = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert replay.result == {"id": "pay_1"}


async def test_a_retry_while_redis_is_down_is_refused_not_run_twice(
    redis_server: RedisServer, tiers: tuple[TieredIdempotencyStore, Recording, Recording]
) -> None:
    store, _, _ = tiers
    await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    redis_server.kill()
    with pytest.raises(IdempotencyInProgress):
        await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)


async def test_requests_carry_on_while_redis_is_down(
    redis_server: RedisServer, tiers: tuple[TieredIdempotencyStore, Recording, Recording]
) -> None:
    store, _, _ = tiers
    redis_server.kill()
    await _run_once(store, "k", {"id": "pay_1"})
    replay = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert replay.result == {"id": "pay_1"}


async def test_a_redis_outage_is_logged_once_not_per_request(
    redis_server: RedisServer,
    tiers: tuple[TieredIdempotencyStore, Recording, Recording],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, _, _ = tiers
    redis_server.kill()
    with caplog.at_level(logging.INFO, logger="paycore.tiered"):
        for number in range(5):
            await _run_once(store, f"k{number}", {"n": number})
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "redis is unavailable" in warnings[0].getMessage()
    assert "durable store memory" in warnings[0].getMessage()


async def test_redis_coming_back_is_logged_and_filled_again(
    redis_server: RedisServer,
    tiers: tuple[TieredIdempotencyStore, Recording, Recording],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, fast, _ = tiers
    redis_server.kill()
    await _run_once(store, "k", {"id": "pay_1"})
    redis_server.start()
    with caplog.at_level(logging.INFO, logger="paycore.tiered"):
        await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    from_redis = await fast.store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert from_redis.result == {"id": "pay_1"}
    assert any("available again" in record.getMessage() for record in caplog.records)


async def test_a_redis_that_is_down_is_left_alone_until_retry_after(redis_server: RedisServer) -> None:
    fast = Recording(RedisIdempotencyStore.from_url(redis_server.url, socket_timeout=0.5))
    store = TieredIdempotencyStore([fast, MemoryIdempotencyStore()], retry_after=300.0)
    redis_server.kill()
    try:
        for number in range(3):
            await store.claim(scope="", key=f"k{number}", fingerprint="f", lease_seconds=LEASE)
    finally:
        await store.aclose()
    assert fast.calls == ["claim"]


async def test_a_key_reused_in_the_durable_store_leaves_no_claim_in_redis(
    redis_server: RedisServer, tiers: tuple[TieredIdempotencyStore, Recording, Recording]
) -> None:
    store, fast, durable = tiers
    await _run_once(durable.store, "k", {"id": "pay_1"})
    with pytest.raises(IdempotencyKeyReused):
        await store.claim(scope="", key="k", fingerprint="other", lease_seconds=LEASE)
    again = await fast.store.claim(scope="", key="k", fingerprint="third", lease_seconds=LEASE)
    assert again.token is not None


async def test_a_late_holder_after_a_redis_restart_cannot_overwrite_its_successor(
    redis_server: RedisServer,
) -> None:
    fast = RedisIdempotencyStore.from_url(redis_server.url)
    store = TieredIdempotencyStore([fast, MemoryIdempotencyStore()])
    try:
        late = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=0.2)
        redis_server.restart()
        await anyio.sleep(0.4)
        successor = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
        assert successor.taken_over
        assert late.token is not None
        assert successor.token is not None
        await store.complete(scope="", key="k", token=successor.token, result={"by": "successor"}, ttl_seconds=60)
        with pytest.raises(IdempotencyLeaseLost):
            await store.complete(scope="", key="k", token=late.token, result={"by": "late"}, ttl_seconds=60)
        replay = await fast.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    finally:
        await store.aclose()
    assert replay.result == {"by": "successor"}


async def test_a_token_this_store_did_not_give_is_refused(
    tiers: tuple[TieredIdempotencyStore, Recording, Recording],
) -> None:
    store, _, _ = tiers
    await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    with pytest.raises(IdempotencyLeaseLost, match="not one this store gave"):
        await store.complete(scope="", key="k", token="plain-token", result={"v": 1}, ttl_seconds=LEASE)


def test_a_tiered_store_needs_two_stores() -> None:
    with pytest.raises(ConfigurationError, match="at least two stores"):
        TieredIdempotencyStore([MemoryIdempotencyStore()])


class Stalling(Recording):
    """A cache whose ``complete`` or ``release`` fails (a stalled Redis): it keeps the claim it gave."""

    def __init__(self, store: IdempotencyStore, failing: str) -> None:
        super().__init__(store)
        self.failing = failing

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        if self.failing == "complete":
            raise StorageUnavailable("redis stalled")
        await super().complete(scope=scope, key=key, token=token, result=result, ttl_seconds=ttl_seconds)

    async def release(self, *, scope: str, key: str, token: str) -> None:
        if self.failing == "release":
            raise StorageUnavailable("redis stalled")
        await super().release(scope=scope, key=key, token=token)


async def test_a_result_the_cache_missed_is_replayed_from_the_durable_store_not_refused(
    shared_redis: RedisServer,
) -> None:
    fast = Stalling(RedisIdempotencyStore.from_url(shared_redis.url, prefix=f"tiered{next(_prefixes)}:"), "complete")
    store = TieredIdempotencyStore([fast, MemoryIdempotencyStore()], names=["redis", "memory"], retry_after=0.0)
    await _run_once(store, "k", {"id": "pay_1"})  # the cache still holds the request's claim
    replay = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert replay.result == {"id": "pay_1"}
    with pytest.raises(IdempotencyKeyReused):
        await store.claim(scope="", key="k", fingerprint="another request", lease_seconds=LEASE)
    await store.aclose()


async def test_a_key_released_while_the_cache_stalled_can_be_claimed_again(shared_redis: RedisServer) -> None:
    fast = Stalling(RedisIdempotencyStore.from_url(shared_redis.url, prefix=f"tiered{next(_prefixes)}:"), "release")
    store = TieredIdempotencyStore([fast, MemoryIdempotencyStore()], names=["redis", "memory"], retry_after=0.0)
    first = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert first.token is not None
    await store.release(scope="", key="k", token=first.token)  # refused by validation: nothing ran
    fast.failing = ""
    second = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)
    assert second.token is not None
    await store.complete(scope="", key="k", token=second.token, result={"id": "pay_2"}, ttl_seconds=LEASE)
    assert (await store.claim(scope="", key="k", fingerprint="f", lease_seconds=LEASE)).result == {"id": "pay_2"}
    await store.aclose()
