"""The store through Redis Sentinel and on a Redis Cluster, each started here for real."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from paycore.errors import IdempotencyInProgress
from paycore.testing.redis import RedisServer
from paycore.testing.servers import start_for_test
from paycore_redis import RedisIdempotencyStore

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture(scope="module")
def sentinel_url() -> Iterator[str]:
    """A master and a Sentinel watching it as ``pos-main``: the store's Sentinel URL."""
    master = start_for_test(RedisServer())
    sentinel = start_for_test(RedisServer.sentinel_for(master, "pos-main"))
    yield f"redis+sentinel://127.0.0.1:{sentinel.port}/pos-main/0"
    sentinel.stop()
    master.stop()


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    """A one-node Redis Cluster holding every hash slot."""
    node = start_for_test(RedisServer(options={"cluster-enabled": "yes", "cluster-config-file": "nodes.conf"}))
    admin = redis.Redis.from_url(node.url, decode_responses=True)
    admin.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
    deadline = time.monotonic() + 10
    while admin.cluster("info")["cluster_state"] != "ok":
        if time.monotonic() > deadline:
            pytest.fail("the one-node Redis Cluster did not reach cluster_state:ok")
        time.sleep(0.05)
    admin.close()
    yield f"redis://127.0.0.1:{node.port}"
    node.stop()


@pytest.fixture
async def sentinel_store(sentinel_url: str, prefix: str) -> AsyncIterator[RedisIdempotencyStore]:
    """A store that finds its master through the Sentinel."""
    store = RedisIdempotencyStore.from_url(sentinel_url, prefix=prefix)
    yield store
    await store.aclose()


@pytest.fixture
async def cluster_store(cluster_url: str, prefix: str) -> AsyncIterator[RedisIdempotencyStore]:
    """A store on the cluster."""
    store = RedisIdempotencyStore.from_url(cluster_url, prefix=prefix, cluster=True)
    yield store
    await store.aclose()


async def test_a_store_behind_sentinel_takes_completes_and_replays_a_key(
    sentinel_store: RedisIdempotencyStore,
) -> None:
    claim = await sentinel_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert claim.token is not None
    await sentinel_store.complete(scope="", key="k", token=claim.token, result={"id": 1}, ttl_seconds=60)
    replay = await sentinel_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert replay.result == {"id": 1}


async def test_a_store_on_a_cluster_takes_completes_and_replays_a_key(cluster_store: RedisIdempotencyStore) -> None:
    claim = await cluster_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert claim.token is not None
    with pytest.raises(IdempotencyInProgress):
        await cluster_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    await cluster_store.complete(scope="", key="k", token=claim.token, result={"id": 1}, ttl_seconds=60)
    replay = await cluster_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert replay.result == {"id": 1}
