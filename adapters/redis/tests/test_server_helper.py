"""``paycore.testing.redis.RedisServer``: the helper the Redis tests start servers with."""

from __future__ import annotations

import pytest
import redis

from paycore.testing.redis import RedisServer, RedisServerError

pytestmark = pytest.mark.redis


def test_a_missing_redis_server_binary_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(RedisServerError, match="apt-get install -y redis-server"):
        RedisServer().start()


def test_a_restarted_server_is_empty_and_on_the_same_port() -> None:
    with RedisServer() as server:
        port = server.port
        with redis.Redis.from_url(server.url) as client:
            client.set("k", "v")
        server.restart()
        with redis.Redis.from_url(server.url) as client:
            assert server.port == port
            assert client.get("k") is None


def test_a_server_started_with_a_password_starts_and_asks_for_it() -> None:
    with RedisServer(options={"requirepass": "s3cret-redis"}) as server:
        with redis.Redis(host="127.0.0.1", port=server.port) as client, pytest.raises(redis.AuthenticationError):
            client.get("k")
        with redis.Redis(host="127.0.0.1", port=server.port, password="s3cret-redis") as client:
            assert client.ping()
