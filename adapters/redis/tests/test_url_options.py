"""A URL's query options: those redis-py's connection does not take are refused when the flow is built, the
others reach the connection; and a connection redis-py cannot make during a call is a ``StorageError``."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis

import paycore_memory.plugin
import paycore_redis.plugin
from paycore.errors import ConfigurationError, StorageError
from paycore.flow import PaymentFlow
from paycore.testing.redis import RedisServer
from paycore.tiered import TieredIdempotencyStore
from paycore_memory import MemoryIdempotencyStore
from paycore_redis import RedisIdempotencyStore, RedisStoreSettings
from paycore_redis.settings import redact_url

REFUSED = [
    # Accepted, each failed every keyed call with a raw TypeError from redis-py's connection.
    ("redis://:SEKRET42@cache:6379/0?ssl=true", {}, r"Connection takes no option 'ssl'; TLS needs a rediss:// URL"),
    ("redis://:SEKRET42@cache:6379/0?ssl_cert_reqs=required", {}, r"no option 'ssl_cert_reqs'; TLS needs a rediss://"),
    (
        "redis://:SEKRET42@cache:6379/0?ssl_ca_certs=/etc/ssl/certs/ca-certificates.crt",
        {},
        r"no option 'ssl_ca_certs'; TLS needs a rediss://",
    ),
    ("redis://:SEKRET42@cache:6379/0?sockettimeout=1", {}, r"no option 'sockettimeout'; did you mean 'socket_timeout'"),
    ("redis://:SEKRET42@cache:6379/0?foo=bar", {}, r"Connection takes no option 'foo'"),
    ("redis://cache:6379/0?password=SEKRET42&foo=bar&db=1", {}, r"Connection takes no option 'foo'$"),
    ("redis://:SEKRET42@cache:6379/0?foo=1&bar=2", {"transport": "threads"}, r"no option 'bar', 'foo'$"),
    ("redis://:SEKRET42@cache:6379/0?connection_class=SSLConnection", {}, r"no option 'connection_class'"),
    ("rediss://:SEKRET42@cache:6380/0?ssl=true", {}, r"SSLConnection takes no option 'ssl'"),
    ("unix://:SEKRET42@/run/redis.sock?ssl=true", {}, r"UnixDomainSocketConnection takes no option 'ssl'"),
    ("unix://:SEKRET42@/run/redis.sock?socket_keepalive=true", {}, r"no option 'socket_keepalive'"),
    ("redis://:SEKRET42@cache:7000?ssl=true", {"cluster": True}, r"no option 'ssl'; TLS needs a rediss://"),
    ("redis://:SEKRET42@cache:7000?foo=bar", {"cluster": True}, r"no option 'foo'"),
    # Read by paycore, not redis-py: a query was ignored.
    ("redis+sentinel://:SEKRET42@s1:26379/main/0?socket_timeout=1", {}, r"takes no query option \('socket_timeout'\)"),
]

ACCEPTED = [
    ("redis://:SEKRET42@cache:6379/0?socket_timeout=1", {}),
    ("redis://cache:6379?db=2", {}),
    ("redis://cache:6379/0?db=2&health_check_interval=30&socket_keepalive=true", {}),
    ("redis://cache:6379/0?max_connections=20&retry_on_timeout=false&client_name=pos", {}),
    ("redis://cache:6379/0?foo=", {}),  # no value: redis-py reads nothing
    ("rediss://:SEKRET42@cache:6380/0?ssl_cert_reqs=required", {}),
    ("rediss://cache:6380/0?ssl_ca_certs=/etc/ssl/certs/ca-certificates.crt&ssl_check_hostname=false", {}),
    ("rediss://cache:6380/0?ssl_cert_reqs=none", {"transport": "threads"}),
    ("unix:///run/redis.sock?db=1&socket_timeout=1", {}),
    ("redis://cache:7000?socket_timeout=1&max_connections=20", {"cluster": True}),
    ("rediss://cache:7000?ssl_cert_reqs=required", {"cluster": True}),
    ("redis+sentinel://s1:26379/main/0", {}),
]


@pytest.mark.parametrize(("url", "more", "reason"), REFUSED)
def test_a_query_option_redis_py_does_not_take_is_refused_naming_it_without_the_password(
    url: str, more: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ConfigurationError, match=reason) as refused:
        RedisStoreSettings.from_mapping({"url": url, **more})
    assert str(refused.value).startswith(f"redis store: url {redact_url(url)!r} cannot be used: ")
    assert "SEKRET42" not in str(refused.value)


@pytest.mark.parametrize(("url", "more"), ACCEPTED)
def test_query_options_redis_py_takes_are_accepted(url: str, more: dict[str, Any]) -> None:
    assert RedisStoreSettings.from_mapping({"url": url, **more}).url == url


@pytest.mark.parametrize("tiered", [False, True])
def test_a_query_option_redis_py_does_not_take_is_refused_when_the_flow_is_built(tiered: bool) -> None:
    url = "redis://:SEKRET42@cache:6379/0?ssl=true"
    raw: dict[str, Any] = {
        "idempotency": ["redis", "memory"] if tiered else "redis",
        "idempotency_settings": {"redis": {"url": url}},
    }
    shown = re.escape(repr(redact_url(url)))
    with pytest.raises(ConfigurationError, match=f"url {shown} cannot be used: .* no option 'ssl'") as refused:
        PaymentFlow.from_config(
            raw, plugins=[paycore_memory.plugin, paycore_redis.plugin], entry_points=False, environ={}
        )
    assert "SEKRET42" not in str(refused.value)


@pytest.mark.anyio
@pytest.mark.redis
@pytest.mark.parametrize("transport", ["auto", "threads"])
async def test_query_options_reach_the_connection(redis_server: RedisServer, prefix: str, transport: str) -> None:
    url = f"{redis_server.url}?db=2&socket_timeout=1&health_check_interval=30&client_name=paycore-test"
    store = RedisIdempotencyStore.from_url(url, prefix=prefix, transport=transport)
    try:
        claim = await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
        assert claim.token is not None
        await store.complete(scope="", key="k", token=claim.token, result={"id": 1}, ttl_seconds=60)
        assert (await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)).result == {"id": 1}
    finally:
        await store.aclose()
    database_2 = redis.Redis(host="127.0.0.1", port=redis_server.port, db=2)
    try:
        assert database_2.exists(store.record_key("", "k"))
    finally:
        database_2.close()


@pytest.mark.anyio
@pytest.mark.redis
@pytest.mark.parametrize("transport", ["auto", "threads"])
async def test_a_connection_redis_py_cannot_make_during_a_call_is_a_storage_error(
    redis_server: RedisServer, prefix: str, transport: str
) -> None:
    # Settings made without from_mapping's checks: the connection refuses the option at the first call.
    url = redis_server.url.replace("redis://", "redis://:SEKRET42@") + "?sockettimeout=1"
    store = RedisIdempotencyStore(RedisStoreSettings(url=url, prefix=prefix, transport=transport))
    tiered = TieredIdempotencyStore([store, MemoryIdempotencyStore()], names=["redis", "memory"])
    try:
        with pytest.raises(StorageError, match="sockettimeout") as failed:
            await store.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
        assert isinstance(failed.value.__cause__, TypeError)
        assert "SEKRET42" not in str(failed.value)
        # So a tiered store carries on with the store behind, as when Redis is down.
        claim = await tiered.claim(scope="", key="k", fingerprint="f", lease_seconds=30)
        assert claim.token is not None
        await tiered.complete(scope="", key="k", token=claim.token, result={"id": 1}, ttl_seconds=60)
        assert (await tiered.claim(scope="", key="k", fingerprint="f", lease_seconds=30)).result == {"id": 1}
    finally:
        await tiered.aclose()
