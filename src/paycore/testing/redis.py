"""``RedisServer``: a throwaway ``redis-server`` on 127.0.0.1 for tests and benchmarks.

It runs in a temporary directory on a free loopback port, persists nothing
(``--save '' --appendonly no``), and can be killed and restarted empty on the
same port to test what a store does when Redis goes away::

    with RedisServer() as server:
        store = RedisIdempotencyStore.from_url(server.url)
        ...
        server.restart()        # killed, then back on the same port, empty

``RedisServer(options={"cluster-enabled": "yes"})`` passes further
``redis-server`` options; ``RedisServer.sentinel_for(server, "pos-main")`` is
a Sentinel watching ``server`` as service ``pos-main``. It needs only the
``redis-server`` binary (no client library): readiness is checked with a raw
``PING``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

from paycore.testing.servers import HOST, LoopbackServer, ServerError, free_port

CLUSTER_BUS_OFFSET = 10000
"""How much higher than its port a Redis cluster node's bus port is."""

__all__ = ["RedisServer", "RedisServerError", "redis_server_binary"]


class RedisServerError(ServerError):
    """``redis-server`` is missing or did not start."""


def redis_server_binary() -> str:
    """The path of ``redis-server`` (``$REDIS_SERVER`` or the one on ``PATH``).

    Raises :class:`RedisServerError` with the way to install it when there is none.
    """
    configured = os.environ.get("REDIS_SERVER")
    found = configured or shutil.which("redis-server")
    if not found or not Path(found).exists():
        raise RedisServerError(
            "redis-server is not installed (looked at $REDIS_SERVER and PATH); "
            "install it, e.g. `apt-get install -y redis-server`, to run the Redis tests"
        )
    return found


def _pings(port: int) -> bool:
    """Whether a Redis server answers on ``port``: ``+PONG``, or ``-NOAUTH`` from one started with a password
    (``options={"requirepass": ...}``), which is up and waits for it."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer(LoopbackServer):
    """A ``redis-server`` process this object started, bound to 127.0.0.1 only."""

    program = "redis-server"
    error = RedisServerError
    log_name = "redis.log"
    log_lines = 3

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(port=port)
        self._binary = binary
        self._options = dict(options or {})
        self._sentinel_config: str | None = None

    @classmethod
    def sentinel_for(cls, master: RedisServer, service: str) -> RedisServer:
        """A Sentinel (not started) that monitors ``master`` as ``service``, quorum 1."""
        sentinel = cls(binary=master._binary)
        sentinel._sentinel_config = f"sentinel monitor {service} {HOST} {master.port} 1\n"
        return sentinel

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        arguments = [self._binary or redis_server_binary()]
        if self._sentinel_config is not None:
            config = self.directory / "sentinel.conf"
            config.write_text(self._sentinel_config)
            arguments += [str(config), "--sentinel"]
        options = {
            **self._options,
            "port": str(port),
            "bind": HOST,
            **({} if self._sentinel_config else {"save": "", "appendonly": "no"}),
            "dir": str(self.directory),
            "logfile": str(self.log_path),
            "daemonize": "no",
        }
        for name, value in options.items():
            arguments += [f"--{name}", value]
        return subprocess.Popen(
            arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _accepts(self, port: int) -> bool:
        return _pings(port)

    def _free_port(self) -> int:
        if self._options.get("cluster-enabled") == "yes":
            return free_port(paired_at=CLUSTER_BUS_OFFSET)  # redis-server refuses a port above 55535
        return free_port()

    def restart(self) -> None:
        """Kill the server and start it again, empty, on the same port."""
        self.kill()
        self.start()
