"""``LoopbackServer``: a throwaway server process on 127.0.0.1, the base of the test servers.

It makes a private directory, starts the process on a free loopback port (a
few ports are tried if one is taken meanwhile), waits until the server accepts
connections, and stops it and removes the directory afterwards; when the server
does not come up, the error quotes the end of its log. Subclasses say how to
prepare the directory, how to launch the process on a port and how to tell it
is ready: :class:`~paycore.testing.postgres.PostgresServer`,
:class:`~paycore.testing.redis.RedisServer`. Needs only the standard library
(no pytest), so benchmarks and scripts use it too::

    with RedisServer() as server:
        print(server.port)

Tests start theirs with :func:`start_for_test`: a server that cannot start
fails the test saying why, it never skips it.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TypeVar

from paycore.errors import PaycoreError

__all__ = ["HOST", "LoopbackServer", "ServerError", "free_port", "log_tail", "start_for_test", "stop_process"]

HOST = "127.0.0.1"
"""The only address test servers listen on."""


class ServerError(PaycoreError, RuntimeError):
    """A test server's program is missing, or the server did not start."""


def free_port(*, paired_at: int | None = None) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    ``paired_at``: the port ``paired_at`` higher must be free too and at most 65535 (a Redis
    cluster node listens on its port and on its bus port, 10,000 higher).
    """
    if paired_at is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            return int(probe.getsockname()[1])
    for _ in range(200):
        port = random.randint(20000, 65535 - paired_at)
        if _bindable(port) and _bindable(port + paired_at):
            return port
    raise ServerError(f"no free pair of loopback ports {paired_at} apart")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _resume(process: subprocess.Popen[bytes]) -> None:
    """Let a stopped server process go on (``SIGCONT``), unless it has ended (its pid may be another's by then)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)


def stop_process(process: subprocess.Popen[bytes] | None, how: signal.Signals, *, timeout: float) -> None:
    """Send ``how`` to ``process`` and wait; kill it if it outlives ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(path: Path | None, lines: int) -> str:
    """The last ``lines`` lines of a server's log on one line, for an error message."""
    if path is None:
        return "no log"
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "empty log"


class LoopbackServer:
    """A server process this object started on 127.0.0.1, in a directory of its own.

    Subclasses set :attr:`program` and :attr:`error`, and implement
    :meth:`_spawn` and :meth:`_accepts` (and :meth:`_prepare` when the directory
    needs setting up once, like ``initdb``).
    """

    program: ClassVar[str] = "server"
    """The program's name, in messages."""
    error: ClassVar[type[ServerError]] = ServerError
    """The exception raised when the server cannot start."""
    start_timeout: ClassVar[float] = 10.0
    """Seconds one launch may take to accept connections."""
    start_attempts: ClassVar[int] = 3
    """Ports tried when none was given (another process may take a free port first)."""
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    """How :meth:`stop` asks the server to shut down."""
    stop_timeout: ClassVar[float] = 10.0
    """Seconds :meth:`stop` waits before killing the server."""
    log_name: ClassVar[str] = "server.log"
    """The log file's name in :attr:`directory`."""
    log_lines: ClassVar[int] = 5
    """Lines of the log quoted when the server does not start."""

    def __init__(self, *, port: int | None = None) -> None:
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None
        self._resume: threading.Timer | None = None
        """The timer that lets a stalled server go on (:meth:`stall`)."""

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {HOST}:{self._port} {state}>"

    @property
    def port(self) -> int:
        """The loopback port (fixed at the first start, kept across restarts)."""
        if self._port is None:
            raise self.error(f"the {self.program} server has not been started yet")
        return self._port

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def stall(self, seconds: float) -> None:
        """Stop the server's process (``SIGSTOP``) for ``seconds``, then let it go on: a stalled server, whose
        connections stay open and whose requests wait in its sockets until it runs again (unlike a paused one, which
        drops the requests of a client that gave up meanwhile)."""
        if self._process is None or self._process.poll() is not None:
            raise self.error(f"the {self.program} server is not running")
        process = self._process
        os.kill(process.pid, signal.SIGSTOP)
        self._resume = threading.Timer(seconds, _resume, (process,))
        self._resume.daemon = True  # never holds the interpreter's exit
        self._resume.start()

    @property
    def directory(self) -> Path:
        """The server's private directory (made by :meth:`start`, removed by :meth:`stop`)."""
        if self._directory is None:
            raise self.error(f"the {self.program} server has no directory: it is not started")
        return self._directory

    @property
    def log_path(self) -> Path:
        """Where the server writes its log."""
        return self.directory / self.log_name

    def start(self) -> Self:
        """Start the server and wait until it accepts connections; a no-op while it runs.

        If it does not start, everything is cleaned up and :attr:`error` quotes its log.
        """
        if self.running:
            return self
        try:
            self._port = self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> int:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix=f"paycore-{self.program}-", dir=self._parent_directory()))
            self._prepare(self._directory)
        attempts = 1 if self._port is not None else self.start_attempts
        tried = []
        for _ in range(attempts):
            port = self._port if self._port is not None else self._free_port()
            tried.append(str(port))
            if self._launch(port):
                return port
        raise self.error(f"{self.program} did not start on {HOST} (tried port {', '.join(tried)}): {self._log_tail()}")

    def _free_port(self) -> int:
        """A free port to start on (a server listening on more than one port makes sure of the others)."""
        return free_port()

    def _launch(self, port: int) -> bool:
        process = self._process = self._spawn(port)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                return False
            if self._accepts(port):
                return True
            time.sleep(0.02)
        self._terminate(signal.SIGKILL)
        return False

    def _log_tail(self) -> str:
        return log_tail(self._directory / self.log_name if self._directory is not None else None, self.log_lines)

    def _terminate(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        resume, self._resume = self._resume, None
        if resume is not None:  # a stalled server is let go first: it would hold its stop signal until then
            resume.cancel()
            if process is not None:
                _resume(process)
        stop_process(process, how, timeout=self.stop_timeout)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL); its directory stays for a :meth:`start` on the same port."""
        self._terminate(signal.SIGKILL)

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        self._terminate(self.stop_signal)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a subclass provides -------------------------------------------------------------

    def _parent_directory(self) -> str | None:
        """Where to make the private directory (``None``: the system's temporary directory)."""
        return None

    def _prepare(self, directory: Path) -> None:
        """Set up a new private directory before the first launch (nothing by default)."""

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        """Start the server process on ``port``, logging to :attr:`log_path`."""
        raise NotImplementedError(f"{type(self).__name__} must say how to start {self.program}")

    def _accepts(self, port: int) -> bool:
        """True once the server on ``port`` answers."""
        raise NotImplementedError(f"{type(self).__name__} must say how to tell {self.program} is ready")


S = TypeVar("S", bound=LoopbackServer)


def start_for_test(server: S) -> S:
    """``server``, started; if it cannot start (its program missing, a port refused), the calling test fails.

    The failure quotes why (the :class:`ServerError`): a test that needs a real
    server is never skipped. pytest is imported only then.
    """
    try:
        return server.start()
    except ServerError as error:
        import pytest

        pytest.fail(str(error))
