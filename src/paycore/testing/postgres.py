"""``PostgresServer``: a throwaway PostgreSQL cluster on 127.0.0.1 for tests and benchmarks.

It runs ``initdb`` and ``postgres`` from the installed binaries in a temporary
directory, on a free loopback port, with durability turned off (``fsync=off``)
for speed, and removes everything when stopped::

    with PostgresServer() as server:
        url = server.create_database("t1")      # postgresql+psycopg://paycore@127.0.0.1:PORT/t1
        ...

PostgreSQL refuses to run as root: when the tests run as root, the cluster is
owned by and run as the ``postgres`` user if it exists, else ``nobody``. The
binaries are found in ``$PAYCORE_PG_BIN``, then the newest
``/usr/lib/postgresql/*/bin``, then ``PATH``. Creating databases needs
``psycopg``.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from paycore.testing.processes import free_port, log_tail, stop_process

__all__ = ["PostgresServer", "PostgresServerError", "postgres_bin_dir"]

_START_TIMEOUT: Final = 30.0
SUPERUSER: Final = "paycore"
"""The cluster's superuser (trust authentication on loopback, no password)."""


class PostgresServerError(RuntimeError):
    """The PostgreSQL binaries are missing or the server did not start."""


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    Raises :class:`PostgresServerError` saying how to install them when there are none.
    """
    candidates: list[Path] = []
    configured = os.environ.get("PAYCORE_PG_BIN")
    if configured:
        candidates.append(Path(configured))

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    raise PostgresServerError(
        "PostgreSQL server binaries (initdb, postgres) were not found in $PAYCORE_PG_BIN, "
        "/usr/lib/postgresql/*/bin or PATH; install them (e.g. `apt-get install -y postgresql`) "
        "or point PAYCORE_PG_BIN at their directory to run the PostgreSQL tests"
    )


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run as when we are root (``None``: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresServerError("running as root and neither a 'postgres' nor a 'nobody' account exists")


class PostgresServer:
    """A PostgreSQL cluster this object created and started, listening on 127.0.0.1 only."""

    def __init__(self, *, bin_dir: str | os.PathLike[str] | None = None) -> None:
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._user = _unprivileged_user()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresServer 127.0.0.1:{self._port} {state}>"

    @property
    def port(self) -> int:
        """The loopback port the server listens on."""
        if self._port is None:
            raise PostgresServerError("the server has not been started yet")
        return self._port

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """A SQLAlchemy URL for ``database``: ``postgresql+psycopg://paycore@127.0.0.1:PORT/NAME``."""
        return f"postgresql+{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string for ``database``."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    @property
    def _uid(self) -> int | None:
        return None if self._user is None else self._user.pw_uid

    @property
    def _gid(self) -> int | None:
        return None if self._user is None else self._user.pw_gid

    @property
    def _extra_groups(self) -> list[int] | None:
        return None if self._user is None else []

    def _parent_directory(self) -> str | None:
        """Where to make the cluster's directory: one the server's user can reach."""
        if self._user is None:
            return None
        parent = Path(tempfile.gettempdir())
        reachable = all(part.stat().st_mode & 0o001 for part in (parent, *parent.parents))
        return None if reachable else "/tmp"

    def start(self) -> PostgresServer:
        """Create the cluster and start the server; wait until it accepts connections."""
        if self.running:
            return self
        bin_dir = self._bin_dir or postgres_bin_dir()
        self._directory = Path(tempfile.mkdtemp(prefix="paycore-postgres-", dir=self._parent_directory()))
        data = self._directory / "data"
        if self._user is not None:
            os.chown(self._directory, self._user.pw_uid, self._user.pw_gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        init = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            cwd=self._directory, env=env, capture_output=True, check=False,
            user=self._uid, group=self._gid, extra_groups=self._extra_groups,
        )  # fmt: skip
        if init.returncode != 0:
            output = (init.stderr or init.stdout).decode(errors="replace").strip()[-500:]
            self.stop()
            raise PostgresServerError(f"initdb failed: {output}")
        attempts = 3
        for _ in range(attempts):
            port = free_port()
            if self._launch(bin_dir, data, port, env):
                self._port = port
                return self
        log = self._log_tail()
        self.stop()
        raise PostgresServerError(f"postgres did not start on 127.0.0.1 after {attempts} attempts: {log}")

    def _launch(self, bin_dir: Path, data: Path, port: int, env: dict[str, str]) -> bool:
        assert self._directory is not None
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": str(self._directory),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
            "shared_buffers": "128MB",
            "timezone": "UTC",
        }
        arguments = [str(bin_dir / "postgres"), "-D", str(data)]
        for name, value in settings.items():
            arguments += ["-c", f"{name}={value}"]
        log = open(self._directory / "postgres.log", "ab")  # noqa: SIM115 (the child keeps it)
        try:
            self._process = subprocess.Popen(
                arguments, cwd=self._directory, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                user=self._uid, group=self._gid, extra_groups=self._extra_groups,
            )  # fmt: skip
        finally:
            log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self._accepts(port):
                return True
            time.sleep(0.05)
        self._terminate(signal.SIGKILL)
        return False

    def _accepts(self, port: int) -> bool:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a test dependency
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user={SUPERUSER} dbname=postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _log_tail(self) -> str:
        return log_tail(self._directory / "postgres.log" if self._directory is not None else None, 5)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given); return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(query)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, disconnecting whoever is still connected to it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _terminate(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        stop_process(process, how, timeout=15)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the cluster."""
        self._terminate(signal.SIGINT)
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
