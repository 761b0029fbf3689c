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
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Final

from paycore.testing.processes import free_port, log_tail, stop_process

__all__ = ["RedisServer", "RedisServerError", "redis_server_binary"]

_START_TIMEOUT: Final = 10.0


class RedisServerError(RuntimeError):
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
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A ``redis-server`` process this object started, bound to 127.0.0.1 only."""

    def __init__(
        self,
        *,
        port: int | None = None,
        binary: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        self._binary = binary
        self._port = port
        self._options = dict(options or {})
        self._sentinel_config: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<RedisServer 127.0.0.1:{self._port} {state}>"

    @classmethod
    def sentinel_for(cls, master: RedisServer, service: str) -> RedisServer:
        """A Sentinel (not started) that monitors ``master`` as ``service``, quorum 1."""
        sentinel = cls(binary=master._binary)
        sentinel._sentinel_config = f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
        return sentinel

    @property
    def port(self) -> int:
        """The loopback port (fixed at the first start, kept across restarts)."""
        if self._port is None:
            raise RedisServerError("the server has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> RedisServer:
        """Start the server (empty) and wait until it answers ``PING``."""
        if self.running:
            return self
        binary = self._binary or redis_server_binary()
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="paycore-redis-")
        attempts = 1 if self._port is not None else 3
        for attempt in range(attempts):
            port = self._port if self._port is not None else free_port()
            if self._launch(binary, port):
                self._port = port
                return self
            if attempt + 1 == attempts:
                break
        raise RedisServerError(f"redis-server did not start on 127.0.0.1:{port}: {self._log_tail()}")

    def _launch(self, binary: str, port: int) -> bool:
        assert self._directory is not None
        directory = self._directory.name
        log = Path(directory, "redis.log")
        arguments = [binary]
        if self._sentinel_config is not None:
            config = Path(directory, "sentinel.conf")
            config.write_text(self._sentinel_config)
            arguments += [str(config), "--sentinel"]
        options = {
            **self._options,
            "port": str(port),
            "bind": "127.0.0.1",
            **({} if self._sentinel_config else {"save": "", "appendonly": "no"}),
            "dir": directory,
            "logfile": str(log),
            "daemonize": "no",
        }
        for name, value in options.items():
            arguments += [f"--{name}", value]
        self._process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if _pings(port):
                return True
            time.sleep(0.01)
        self._terminate(signal.SIGKILL)
        return False

    def _log_tail(self) -> str:
        return log_tail(Path(self._directory.name, "redis.log") if self._directory is not None else None, 3)

    def _terminate(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        stop_process(process, how, timeout=10)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): connections drop, every key is lost."""
        self._terminate(signal.SIGKILL)

    def restart(self) -> None:
        """Kill the server and start it again, empty, on the same port."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._terminate(signal.SIGTERM)
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
