"""``paycore.testing.servers``: one launcher for the throwaway test servers, usable without pytest."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from paycore.testing.postgres import PostgresServer, PostgresServerError
from paycore.testing.redis import RedisServer, RedisServerError
from paycore.testing.servers import HOST, LoopbackServer, ServerError, free_port

# A server that accepts connections on argv[1] and says so in its log, or exits at once when told to.
_ECHO_SERVER = textwrap.dedent(
    """
    import socket, sys, time
    if sys.argv[2] == "fail":
        print("fatal: configuration refused", flush=True)
        sys.exit(3)
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print("ready to accept connections", flush=True)
    while True:
        connection, _ = listener.accept()
        connection.close()
    """
)


class ToyServerError(ServerError):
    """The toy server did not start."""


class ToyServer(LoopbackServer):
    """A Python process listening on the loopback port, for testing the launcher itself."""

    program = "toy"
    error = ToyServerError
    start_timeout = 10.0
    start_attempts = 2
    behaviour: ClassVar[str] = "serve"

    def _prepare(self, directory: Path) -> None:
        (directory / "prepared").write_text("yes")

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-c", _ECHO_SERVER, str(port), self.behaviour], stdout=log, stderr=subprocess.STDOUT
            )

    def _accepts(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False


class FailingToyServer(ToyServer):
    behaviour = "fail"


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_a_port_paired_with_another_leaves_both_free_and_in_range() -> None:
    """A Redis cluster node also listens 10,000 ports higher: redis-server refuses a port above 55535."""
    for _ in range(100):
        port = free_port(paired_at=10000)
        assert 20000 <= port <= 55535
        for taken in (port, port + 10000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((HOST, taken))  # free: binds


def test_a_started_server_accepts_connections_on_loopback_until_stopped() -> None:
    with ToyServer() as server:
        assert server.running
        assert _connects(server.port)
        assert (server.directory / "prepared").read_text() == "yes"
        directory, port = server.directory, server.port
    assert not server.running
    assert not directory.exists()
    assert not _connects(port)


def test_a_server_killed_while_stalled_leaves_nothing_to_wake_later(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its stall's timer is cancelled with it: it would raise in its thread once the process is gone (or wake another
    that got its pid), and hold the interpreter's exit until it fired."""
    raised: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda hook: raised.append(hook.exc_value))
    with ToyServer() as server:
        server.stall(0.3)
        server.kill()  # at once, stalled as it is
        assert not server.running
    time.sleep(0.6)  # when the stall would have ended
    assert raised == []


def test_a_killed_server_starts_again_on_the_same_port_without_preparing_again() -> None:
    with ToyServer() as server:
        port = server.port
        (server.directory / "prepared").write_text("kept")
        server.kill()
        assert not _connects(port)
        server.start()
        assert server.port == port
        assert _connects(port)
        assert (server.directory / "prepared").read_text() == "kept"


def test_a_server_that_does_not_start_is_reported_with_its_log_and_cleaned_up() -> None:
    server = FailingToyServer()
    with pytest.raises(ToyServerError, match=r"toy did not start on 127\.0\.0\.1 \(tried port \d+, \d+\)") as raised:
        server.start()
    assert "fatal: configuration refused" in str(raised.value)
    assert isinstance(raised.value, RuntimeError)
    assert not server.running
    with pytest.raises(ToyServerError, match="not started"):
        _ = server.directory


def test_the_port_of_a_server_never_started_is_refused() -> None:
    with pytest.raises(ToyServerError, match="the toy server has not been started yet"):
        _ = ToyServer().port


def test_a_missing_program_is_reported_by_the_servers_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    server = RedisServer()
    with pytest.raises(RedisServerError, match="apt-get install -y redis-server"):
        server.start()
    assert not server.running


def test_postgres_and_redis_servers_build_on_the_launcher() -> None:
    assert issubclass(PostgresServer, LoopbackServer)
    assert issubclass(RedisServer, LoopbackServer)
    assert issubclass(PostgresServerError, ServerError)
    assert issubclass(RedisServerError, RuntimeError)


def test_the_servers_import_without_pytest_installed() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["pytest"] = None  # as if pytest were not installed
        try:
            import pytest
        except ImportError:
            pass
        else:
            raise SystemExit("pytest was importable")
        from paycore.testing.servers import LoopbackServer
        from paycore.testing.postgres import PostgresServer
        from paycore.testing.redis import RedisServer
        import paycore.testing
        print("imported", PostgresServer.__name__, RedisServer.__name__)
        """
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "imported PostgresServer RedisServer"
