"""The ``redis`` store's settings: what is accepted, what is refused, and what never shows."""

from __future__ import annotations

import re

import pytest

from paycore.errors import ConfigurationError
from paycore.secrets import Settings
from paycore_redis import RedisIdempotencyStore, RedisStoreSettings, SentinelTarget
from paycore_redis.settings import redact_url


def test_defaults_are_a_local_redis_and_the_paycore_prefix() -> None:
    settings = RedisStoreSettings.from_mapping({})
    assert (settings.url, settings.prefix) == ("redis://127.0.0.1:6379/0", "paycore:idem:")


def test_socket_timeout_is_read_and_the_connect_timeout_follows_it() -> None:
    settings = RedisStoreSettings.from_mapping({"socket_timeout": "0.25"})
    assert (settings.socket_timeout, settings.connect_timeout) == (0.25, 0.25)


@pytest.mark.parametrize("value", [0, -1, "soon", True, float("inf")])
def test_a_timeout_that_is_not_a_positive_number_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"socket_timeout must be a (positive )?number of seconds"):
        RedisStoreSettings.from_mapping({"socket_timeout": value})


@pytest.mark.parametrize(
    ("name", "value", "limit"),
    [
        ("socket_timeout", 1e10, "3600 (an hour)"),
        ("connect_timeout", "3601", "3600 (an hour)"),
        ("abandoned_retention", 1e300, "315360000 (ten years)"),
    ],
)
def test_a_duration_beyond_what_a_socket_or_redis_takes_is_refused_when_read(
    name: str, value: object, limit: str
) -> None:
    # Accepted, such a value failed every keyed call: OverflowError from the socket, or Redis refusing the expiry.
    with pytest.raises(ConfigurationError, match=rf"redis store: {name} .* at most {re.escape(limit)}"):
        RedisStoreSettings.from_mapping({name: value})
    assert RedisStoreSettings.from_mapping({name: 3600}).socket_timeout > 0


@pytest.mark.parametrize(
    "raw",
    [
        {"url": "default:SEKRET42@cache.internal:6379/0"},
        {"url": ":SEKRET42@cache:6379/0"},
    ],
)
def test_a_url_without_a_scheme_is_refused_without_quoting_its_password(raw: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="url must be a redis:// URL") as refused:
        RedisStoreSettings.from_mapping(raw)
    assert "SEKRET42" not in str(refused.value)


def test_a_url_without_a_scheme_in_the_configuration_is_refused_without_its_password() -> None:
    import paycore_memory.plugin
    import paycore_redis.plugin
    from paycore.flow import PaymentFlow

    raw = {"idempotency": "redis", "idempotency_settings": {"redis": {"url": "user:SEKRET42@cache:6379/0"}}}
    with pytest.raises(ConfigurationError, match="url must be a redis:// URL") as refused:
        PaymentFlow.from_config(
            raw, plugins=[paycore_memory.plugin, paycore_redis.plugin], entry_points=False, environ={}
        )
    assert "SEKRET42" not in str(refused.value)


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown setting\(s\) \['ttl'\]"):
        RedisStoreSettings.from_mapping({"ttl": 5})


def test_a_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="URL scheme 'postgresql'"):
        RedisStoreSettings.from_mapping({"url": "postgresql://db/x"})


def test_a_prefix_that_is_not_text_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="prefix must be a string"):
        RedisStoreSettings.from_mapping({"prefix": 7})


def test_cluster_is_a_flag() -> None:
    assert RedisStoreSettings.from_mapping({"cluster": "true"}).cluster is True
    with pytest.raises(ConfigurationError, match="cluster must be true or false"):
        RedisStoreSettings.from_mapping({"cluster": "maybe"})


def test_cluster_with_a_sentinel_url_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cluster = true needs a redis://"):
        RedisStoreSettings.from_mapping({"url": "redis+sentinel://s1/main", "cluster": True})


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    target = SentinelTarget.parse("redis+sentinel://:pw@s1:26380,s2/pos-main/3")
    assert target.sentinels == (("s1", 26380), ("s2", 26379))
    assert (target.service, target.db) == ("pos-main", 3)
    assert target.password is not None
    assert target.password.reveal() == "pw"


def test_a_sentinel_url_without_a_service_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must name the monitored service"):
        RedisStoreSettings.from_mapping({"url": "redis+sentinel://s1:26379"})


def test_a_sentinel_url_with_a_bad_port_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sentinel port 'x'"):
        RedisStoreSettings.from_mapping({"url": "redis+sentinel://s1:x/main"})


def test_a_password_in_the_url_never_shows_in_a_repr() -> None:
    store = RedisIdempotencyStore.from_url("redis://app:hunter2@cache:6379/0")
    assert "hunter2" not in repr(store)
    assert "hunter2" not in repr(store.settings)
    assert "app:***@cache" in repr(store)


def test_a_password_setting_is_a_secret() -> None:
    settings = RedisStoreSettings.from_mapping(Settings({"password": "hunter2"}))
    assert "hunter2" not in repr(settings)
    assert settings.password is not None
    assert settings.password.reveal() == "hunter2"


def test_redacting_a_url_without_a_password_leaves_it_as_it_is() -> None:
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact_url("rediss://:s3cret@cache:6380/1") == "rediss://:***@cache:6380/1"


def test_a_transport_other_than_auto_or_threads_is_refused() -> None:
    assert RedisStoreSettings.from_mapping({"transport": "threads"}).transport == "threads"
    with pytest.raises(ConfigurationError, match=r"transport must be one of \['auto', 'threads'\]"):
        RedisStoreSettings.from_mapping({"transport": "uvloop"})


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis://:SEKRET42@cache:99999/0", "Port out of range"),
        ("redis://:SEKRET42@cache:-5/0", "Port could not be cast to integer"),
        ("redis://:SEKRET42@cache:0/0", "port 0 is not from 1 to 65535"),
        ("redis://:SEKRET42@cache:6379/0?health_check_interval=abc", "Invalid value for .health_check_interval."),
        ("redis://:SEKRET42@cache:6379/notadb", "database 'notadb' is not a number"),
        ("redis://:SEKRET42@cache:6379/0?db=-1", "database -1 is negative"),
        ("unix://", "must name the socket"),
    ],
)
def test_a_url_redis_cannot_use_is_refused_when_read_without_its_password(url: str, reason: str) -> None:
    # Accepted, such a URL passed 'paycore check' and every keyed call raised a raw ValueError (or used database 0).
    with pytest.raises(ConfigurationError, match=reason) as refused:
        RedisStoreSettings.from_mapping({"url": url})
    assert f"redis store: url {redact_url(url)!r}" in str(refused.value)
    assert "SEKRET42" not in str(refused.value)


def test_a_url_whose_host_part_python_cannot_read_is_refused_without_its_password() -> None:
    # urllib's error quotes the URL's host part, user and password included.
    with pytest.raises(ConfigurationError, match="invalid characters under NFKC normalization") as refused:
        RedisStoreSettings.from_mapping({"url": "redis://app:SEKRET42@cache\uff03x:6379/0"})
    assert "SEKRET42" not in str(refused.value)


def test_a_url_redis_cannot_use_is_refused_when_the_flow_is_built() -> None:
    import paycore_memory.plugin
    import paycore_redis.plugin
    from paycore.flow import PaymentFlow

    raw = {"idempotency": "redis", "idempotency_settings": {"redis": {"url": "redis://:SEKRET42@cache:99999/0"}}}
    with pytest.raises(ConfigurationError, match="url 'redis://:\\*\\*\\*@cache:99999/0' cannot be used") as refused:
        PaymentFlow.from_config(
            raw, plugins=[paycore_memory.plugin, paycore_redis.plugin], entry_points=False, environ={}
        )
    assert "SEKRET42" not in str(refused.value)


def test_a_sentinel_port_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"sentinel port '99999' .* is not a number from 1 to 65535"):
        RedisStoreSettings.from_mapping({"url": "redis+sentinel://s1:99999/main"})


def test_a_cluster_url_naming_a_database_other_than_0_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="a Redis Cluster has database 0 only, not 3"):
        RedisStoreSettings.from_mapping({"url": "redis://cache:7000/3", "cluster": True})
    for url in (  # what redis-py reads is still accepted
        "redis://cache",
        "redis://cache:6379/",
        "redis://cache:6379/3",
        "redis://cache:6379/0?db=2&health_check_interval=30",
        "rediss://:pw@cache:6380/1?ssl_cert_reqs=none",
        "unix:///run/redis.sock?db=1",
    ):
        assert RedisStoreSettings.from_mapping({"url": url}).url == url


@pytest.mark.parametrize(
    ("name", "value"), [("cluster", "redis://:SEKRET42@cache/0"), ("transport", "rediss://:SEKRET42@c/0")]
)
def test_a_url_under_another_setting_is_quoted_without_its_password(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"redis store: {name} must be") as refused:
        RedisStoreSettings.from_mapping({name: value})
    assert "SEKRET42" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "rediss://:Xk3vQ9rTz8Lm/Pq2WnB7y+Hs4=@paycore.redis.cache.windows.net:6380/0",
        "redis://app:Xk3vQ9rTz8Lm#Pq2WnB7y@cache:6379/0",
        "redis+sentinel://default:Xk3vQ9rTz8Lm/Pq2WnB7y@s1:26379,s2:26379/mymaster/0",
        "unix://:Xk3vQ9rTz8Lm/Pq2WnB7y@/run/redis/redis.sock",
        "redis://cache.example:6379/2?password=Xk3vQ9rTz8Lm#Pq2WnB7y",  # redis-py connected with the first part
    ],
)
def test_a_password_holding_a_raw_slash_or_hash_shows_no_part_of_it_and_says_to_encode_it(url: str) -> None:
    # redis-py took the password up to its '/' for the port, and quoted it in its error.
    with pytest.raises(ConfigurationError, match="must be percent-encoded") as refused:
        RedisStoreSettings.from_mapping({"url": url})
    assert "Xk3vQ9rTz8Lm" not in str(refused.value)
    assert "Pq2WnB7y" not in str(refused.value)
