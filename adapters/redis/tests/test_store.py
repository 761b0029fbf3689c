"""The Redis idempotency store against a real ``redis-server``, under asyncio and trio."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from functools import partial

import anyio
import pytest
import redis

from paycore.errors import (
    IdempotencyInProgress,
    IdempotencyLeaseLost,
    StorageError,
    StorageUnavailable,
)
from paycore.testing import IdempotencyStoreConformance
from paycore.testing.redis import RedisServer
from paycore_redis import RedisIdempotencyStore

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


def _admin(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


async def test_a_replayed_request_costs_one_evalsha(
    redis_server: RedisServer, redis_store: RedisIdempotencyStore
) -> None:
    claim = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert claim.token is not None
    await redis_store.complete(scope="", key="k", token=claim.token, result={"id": "pay_1"}, ttl_seconds=60)
    admin = _admin(redis_server)
    admin.config_resetstat()
    replay = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    stats = admin.info("commandstats")
    assert replay.result == {"id": "pay_1"}
    assert stats["cmdstat_evalsha"]["calls"] == 1
    run_by_the_script = {"cmdstat_hmget", "cmdstat_time", "cmdstat_pttl"}
    assert set(stats) <= {"cmdstat_evalsha", "cmdstat_config|resetstat", *run_by_the_script}


async def test_records_live_under_the_prefix(redis_server: RedisServer, redis_store: RedisIdempotencyStore) -> None:
    await redis_store.claim(scope="t:chez-awa", key="order-1", fingerprint="f", lease_seconds=30)
    prefix = redis_store.settings.prefix
    assert _admin(redis_server).keys(f"{prefix}*") == [f"{prefix}t%3Achez-awa:order-1"]


async def test_two_prefixes_on_one_redis_do_not_share_keys(
    redis_server: RedisServer, redis_store: RedisIdempotencyStore
) -> None:
    other = redis_store.with_prefix(redis_store.settings.prefix + "other-app:")
    try:
        await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
        claim = await other.claim(scope="", key="k", fingerprint="g", lease_seconds=30)
    finally:
        await other.aclose()
    assert claim.token is not None


async def test_a_colon_in_the_scope_cannot_collide_with_a_colon_in_the_key(
    redis_store: RedisIdempotencyStore,
) -> None:
    await redis_store.claim(scope="a:b", key="c", fingerprint="f", lease_seconds=30)
    claim = await redis_store.claim(scope="a", key="b:c", fingerprint="g", lease_seconds=30)
    assert claim.token is not None


async def test_a_completed_record_expires_after_its_ttl(
    redis_server: RedisServer, redis_store: RedisIdempotencyStore
) -> None:
    claim = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert claim.token is not None
    await redis_store.complete(scope="", key="k", token=claim.token, result={"id": 1}, ttl_seconds=600)
    ttl = _admin(redis_server).pttl(redis_store.record_key("", "k"))
    assert 599_000 < ttl <= 600_000


async def test_an_abandoned_record_is_kept_for_the_retention_after_its_lease(
    redis_server: RedisServer, prefix: str
) -> None:
    store = RedisIdempotencyStore.from_url(redis_server.url, prefix=prefix, abandoned_retention=100)
    try:
        await store.claim(scope="", key="k", fingerprint="f", lease_seconds=20)
        ttl = _admin(redis_server).pttl(store.record_key("", "k"))
    finally:
        await store.aclose()
    assert 119_000 < ttl <= 120_000


async def test_an_abandoned_record_that_expired_gives_a_fresh_key(redis_server: RedisServer, prefix: str) -> None:
    store = RedisIdempotencyStore.from_url(redis_server.url, prefix=prefix, abandoned_retention=0.05)
    try:
        await store.claim(scope="", key="k", fingerprint="f", lease_seconds=0.05)
        await anyio.sleep(0.2)
        claim = await store.claim(scope="", key="k", fingerprint="other", lease_seconds=30)
    finally:
        await store.aclose()
    assert claim.token is not None
    assert not claim.taken_over


async def test_a_claim_resent_after_a_broken_connection_keeps_the_key(
    redis_store: RedisIdempotencyStore,
) -> None:
    # redis-py re-sends a command once when its connection broke; the first
    # attempt may have run. Sending the same claim twice must not refuse it.
    arguments = ["f", "token-1", 30_000, 60_000]
    first = await redis_store._clients.run("claim", [redis_store.record_key("", "k")], arguments)
    again = await redis_store._clients.run("claim", [redis_store.record_key("", "k")], arguments)
    assert first == again == ["token", 0]
    with pytest.raises(IdempotencyInProgress):
        await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)


async def test_a_completion_resent_after_it_succeeded_is_harmless(redis_store: RedisIdempotencyStore) -> None:
    claim = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert claim.token is not None
    for _ in range(2):
        await redis_store.complete(scope="", key="k", token=claim.token, result={"id": 1}, ttl_seconds=60)
    replay = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert replay.result == {"id": 1}


async def test_a_result_that_is_not_json_is_refused_and_the_key_stays_held(
    redis_store: RedisIdempotencyStore,
) -> None:
    claim = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert claim.token is not None
    with pytest.raises(StorageError, match="must be JSON data"):
        await redis_store.complete(scope="", key="k", token=claim.token, result={"x": object()}, ttl_seconds=60)
    with pytest.raises(IdempotencyInProgress):
        await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)


async def test_the_lease_is_timed_by_the_redis_server(
    redis_server: RedisServer, redis_store: RedisIdempotencyStore
) -> None:
    await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    seconds, micros = _admin(redis_server).time()
    deadline = int(_admin(redis_server).hget(redis_store.record_key("", "k"), "l") or 0)
    assert 29_000 < deadline - (seconds * 1000 + micros // 1000) <= 30_000


async def test_a_store_whose_redis_is_down_raises_storage_unavailable(own_redis_server: RedisServer) -> None:
    store = RedisIdempotencyStore.from_url(own_redis_server.url, socket_timeout=0.5)
    own_redis_server.kill()
    try:
        with pytest.raises(StorageUnavailable, match=r"127\.0\.0\.1"):
            await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    finally:
        await store.aclose()


async def test_a_password_never_appears_in_an_unavailable_error(own_redis_server: RedisServer) -> None:
    url = f"redis://:hunter2@127.0.0.1:{own_redis_server.port}/0"
    own_redis_server.kill()
    store = RedisIdempotencyStore.from_url(url, socket_timeout=0.5)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    finally:
        await store.aclose()
    assert "hunter2" not in str(caught.value)


async def test_the_store_works_again_after_redis_restarts_empty(own_redis_server: RedisServer) -> None:
    store = RedisIdempotencyStore.from_url(own_redis_server.url)
    try:
        await store.claim(scope="", key="before", fingerprint="f", lease_seconds=30)
        own_redis_server.restart()
        claim = await store.claim(scope="", key="before", fingerprint="other", lease_seconds=30)
    finally:
        await store.aclose()
    assert claim.token is not None


async def test_a_holder_whose_lease_was_taken_over_cannot_overwrite_the_new_result(
    redis_store: RedisIdempotencyStore,
) -> None:
    late = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=0.1)
    await anyio.sleep(0.25)
    new = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert new.token is not None
    assert new.taken_over
    assert late.token is not None
    await redis_store.complete(scope="", key="k", token=new.token, result={"by": "new"}, ttl_seconds=60)
    with pytest.raises(IdempotencyLeaseLost):
        await redis_store.complete(scope="", key="k", token=late.token, result={"by": "late"}, ttl_seconds=60)
    await redis_store.release(scope="", key="k", token=late.token)
    replay = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert replay.result == {"by": "new"}


async def test_a_closed_store_refuses_calls(redis_server: RedisServer, prefix: str) -> None:
    store = RedisIdempotencyStore.from_url(redis_server.url, prefix=prefix)
    await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    await store.aclose()
    with pytest.raises(StorageError, match="is closed"):
        await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)


class TestRedisStoreConformance(IdempotencyStoreConformance):
    """The shared idempotency rules, against a real redis-server."""

    says_how_long_results_are_kept = True

    @pytest.fixture
    async def idempotency_store(self, redis_server: RedisServer, prefix: str) -> AsyncIterator[RedisIdempotencyStore]:
        """A store under a prefix of its own on the shared server."""
        store = RedisIdempotencyStore.from_url(redis_server.url, prefix=prefix)
        yield store
        await store.aclose()


@pytest.mark.parametrize("transport", ["auto", "threads"])
async def test_a_redis_too_slow_to_answer_is_asked_once_and_the_store_is_unavailable(
    own_redis_server: RedisServer, transport: str
) -> None:
    store = RedisIdempotencyStore.from_url(own_redis_server.url, socket_timeout=0.3, transport=transport)
    admin = _admin(own_redis_server)
    try:
        await store.claim(scope="", key="warm", fingerprint="f", lease_seconds=30)  # the connection is open
        connected = int(admin.info("stats")["total_connections_received"])
        admin.execute_command("CLIENT", "PAUSE", "1000", "ALL")  # every command waits a second, past the timeout
        with pytest.raises(StorageUnavailable):
            await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
        await anyio.sleep(1.2)  # the pause ends
        reconnected = int(admin.info("stats")["total_connections_received"]) - connected
    finally:
        await store.aclose()
    assert reconnected == 0, "a timed-out script is not sent again on a new connection (the caller waited twice)"


@pytest.mark.parametrize("transport", ["auto", "threads"])
async def test_a_retry_of_a_claim_whose_reply_never_came_holds_the_key_the_claim_took_meanwhile(
    own_redis_server: RedisServer, transport: str
) -> None:
    """Redis stalls past the timeout: the claim's script waits in its buffer and takes the key when Redis resumes,
    under a token no caller holds. A retry of the same request from this process holds the key then, instead of
    being told for the whole lease that it is "still running" when nothing runs."""
    store = RedisIdempotencyStore.from_url(own_redis_server.url, socket_timeout=0.3, transport=transport)
    elsewhere = RedisIdempotencyStore.from_url(own_redis_server.url)  # another process's
    try:
        await store.claim(scope="", key="warm", fingerprint="f", lease_seconds=30)
        own_redis_server.stall(1.0)
        with pytest.raises(StorageUnavailable):
            await store.claim(scope="", key="T4-17", fingerprint="f", lease_seconds=30)
        await anyio.sleep(1.5)  # Redis runs again: the claim's script ran, and took the key
        retried = await store.claim(scope="", key="T4-17", fingerprint="f", lease_seconds=30)
        assert retried.token is not None, "the retry holds the key"
        with pytest.raises(IdempotencyInProgress):  # one holder at a time, in this process as in another
            await store.claim(scope="", key="T4-17", fingerprint="f", lease_seconds=30)
        with pytest.raises(IdempotencyInProgress):
            await elsewhere.claim(scope="", key="T4-17", fingerprint="f", lease_seconds=30)
        await store.complete(scope="", key="T4-17", token=retried.token, result={"done": 1}, ttl_seconds=60)
        replayed = await elsewhere.claim(scope="", key="T4-17", fingerprint="f", lease_seconds=30)
        assert replayed.result == {"done": 1}
    finally:
        await store.aclose()
        await elsewhere.aclose()


async def test_a_store_used_from_many_event_loops_keeps_the_clients_of_open_loops_only(
    own_redis_server: RedisServer,
) -> None:
    import asyncio
    import gc

    store = RedisIdempotencyStore.from_url(own_redis_server.url)

    async def claim(number: int) -> None:
        await store.claim(scope="", key=f"k{number}", fingerprint="f", lease_seconds=30)

    try:
        for number in range(20):
            await anyio.to_thread.run_sync(asyncio.run, claim(number))  # a loop of its own each time, then closed
        gc.collect()
        clients = int(_admin(own_redis_server).info("clients")["connected_clients"])
    finally:
        await store.aclose()
    assert clients <= 3, "the closed loops' connections were kept open"


async def _claim_cut_short(store: RedisIdempotencyStore, started: Callable[[], Awaitable[object]]) -> None:
    """Claim key ``k`` in a task of its own; cancel that task the asyncio way once ``started()`` has returned."""
    import asyncio

    task = asyncio.ensure_future(store.claim(scope="", key="k", fingerprint="f", lease_seconds=30))
    await started()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("transport", ["auto", "threads"])
async def test_a_claim_cut_off_in_its_worker_thread_runs_to_its_end_and_the_key_is_left_free(
    redis_server: RedisServer, prefix: str, transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio's own Task.cancel() lands while the claim's script runs (its worker thread goes on): the script is
    waited for, then the key it took is let go, so the retry takes it at once."""
    import asyncio
    import time

    store = RedisIdempotencyStore.from_url(redis_server.url, prefix=prefix, transport=transport)
    running, run_blocking, run = threading.Event(), store._clients._run_blocking, store._clients._run

    def slow_blocking(name: str, keys: list[str], args: list[object]) -> object:
        running.set()
        time.sleep(0.2)  # the caller is cancelled meanwhile
        return run_blocking(name, keys, args)

    async def slow(name: str, keys: list[str], args: list[object]) -> object:
        running.set()
        await asyncio.sleep(0.2)
        return await run(name, keys, args)

    monkeypatch.setattr(store._clients, "_run_blocking", slow_blocking)
    monkeypatch.setattr(store._clients, "_run", slow if transport == "auto" else run)
    try:
        await _claim_cut_short(store, partial(anyio.to_thread.run_sync, running.wait))
        monkeypatch.undo()
        again = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
        assert again.token is not None, "the key was free for the retry at once"
    finally:
        await store.aclose()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_claim_whose_caller_is_cancelled_while_it_travels_leaves_the_key_free(
    redis_store: RedisIdempotencyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """asyncio's own Task.cancel() reaches through anyio's shield: the claim may have run at Redis, its token lost
    with the caller. The key is let go, not held for its lease by a request that will never use it."""
    import asyncio

    run, sent = redis_store._clients.run, anyio.Event()

    async def claim_then_wait(name: str, keys: list[str], args: list[object]) -> object:
        reply = await run(name, keys, args)
        if name == "claim":
            sent.set()
            await asyncio.sleep(1)  # the reply travels back: the caller is cancelled here
        return reply

    monkeypatch.setattr(redis_store._clients, "run", claim_then_wait)
    await _claim_cut_short(redis_store, sent.wait)
    monkeypatch.undo()
    again = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert again.token is not None, "the key was free for the retry at once"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_retry_racing_the_release_of_a_cancelled_claim_never_makes_two_holders(
    redis_store: RedisIdempotencyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancelled claim's token is let go by a release still on its way: a retry sent meanwhile must not hold
    the key with that token, or the release would free it under the retry and a third request would hold it too."""
    import asyncio

    run, first = redis_store._clients.run, [True]

    async def claim_then_cut(name: str, keys: list[str], args: list[object]) -> object:
        reply = await run(name, keys, args)
        if name == "claim" and first:
            first.clear()
            await asyncio.sleep(10)  # the script took the key; the caller is cancelled before the reply
        return reply

    monkeypatch.setattr(redis_store._clients, "run", claim_then_cut)
    request = {"scope": "", "key": "k", "fingerprint": "f", "lease_seconds": 30}
    cut = asyncio.create_task(redis_store.claim(**request))
    await asyncio.sleep(0.1)
    cut.cancel()
    await asyncio.sleep(0)  # the release of its token is sent now, on a task of its own
    holders = []
    for _ in range(2):  # a retry racing that release, then another request once it landed
        try:
            holders.append((await redis_store.claim(**request)).token)
        except IdempotencyInProgress:
            pass
        with suppress(asyncio.CancelledError):
            await cut
    assert len(holders) <= 1, "one holder of a key at a time"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_claim_whose_reply_the_client_cut_off_is_a_storage_error_and_leaves_the_key_free(
    redis_store: RedisIdempotencyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client itself cancels the wait for a claim's reply (its connection closing) after the script ran: the
    caller gets StorageUnavailable, a PaycoreError, and the key the script took is let go."""
    import asyncio

    run = redis_store._clients._run

    async def claim_then_cut(name: str, keys: list[str], args: list[object]) -> object:
        reply = await run(name, keys, args)
        if name == "claim":
            cut = asyncio.get_running_loop().create_future()
            cut.cancel()
            await cut  # the reply's wait, cancelled by the client, not by the caller
        return reply

    monkeypatch.setattr(redis_store._clients, "_run", claim_then_cut)
    with pytest.raises(StorageUnavailable, match="cut off"):
        await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    monkeypatch.undo()
    again = await redis_store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
    assert again.token is not None, "the key was free for the retry at once"


async def test_more_callers_at_once_than_connections_wait_for_one_instead_of_finding_redis_down(
    redis_store: RedisIdempotencyStore,
) -> None:
    """redis-py's own pool refused the hundred-and-first call at once (MaxConnectionsError, a ConnectionError):
    Redis was taken for down, and a tiered store went on without it."""
    taken = await redis_store.claim(scope="s", key="k", fingerprint="f", lease_seconds=30)
    assert taken.token is not None
    await redis_store.complete(scope="s", key="k", token=taken.token, result={"v": 1}, ttl_seconds=60)
    answers: list[object] = []

    async def replay() -> None:
        answers.append((await redis_store.claim(scope="s", key="k", fingerprint="f", lease_seconds=30)).result)

    async with anyio.create_task_group() as callers:
        for _ in range(250):
            callers.start_soon(replay)
    assert answers == [{"v": 1}] * 250
