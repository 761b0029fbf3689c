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
