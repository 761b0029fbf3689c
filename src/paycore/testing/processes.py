"""What the test servers (PostgreSQL, Redis) share: ports, stopping processes, reading logs."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

__all__ = ["free_port", "log_tail", "stop_process"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
