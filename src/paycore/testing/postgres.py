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

Test suites share two fixtures' worth of work: :func:`session_server` (one
server per session, with a migrated template database) and
:func:`scratch_databases` (databases of one test, copied from the template,
dropped afterwards). :class:`LibpqTrace` reads what psycopg connections send
the server, to count the round trips a unit of work waits for.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, ClassVar, Final

from paycore.testing.servers import HOST, LoopbackServer, ServerError, start_for_test

__all__ = [
    "LibpqTrace",
    "PostgresServer",
    "PostgresServerError",
    "postgres_bin_dir",
    "scratch_databases",
    "session_server",
]

SUPERUSER: Final = "paycore"
"""The cluster's superuser (trust authentication on loopback, no password)."""


class PostgresServerError(ServerError):
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


class PostgresServer(LoopbackServer):
    """A PostgreSQL cluster this object created and started, listening on 127.0.0.1 only."""

    program = "postgres"
    error = PostgresServerError
    start_timeout = 30.0
    stop_signal = signal.SIGINT
    stop_timeout = 15.0
    log_name = "postgres.log"
    settings: ClassVar[dict[str, str]] = {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "300",
        "shared_buffers": "128MB",
        "timezone": "UTC",
    }
    """Server settings for tests: fast, not durable. A commit PostgreSQL acknowledged may be lost when the server
    is killed (:meth:`kill`): a crash test that counts on committed writes surviving it sets ``fsync`` and
    ``synchronous_commit`` to ``"on"`` in a subclass's ``settings``, or it sees writes paycore made vanish."""

    def __init__(self, *, bin_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._user = _unprivileged_user()

    def url(self, database: str = "postgres", *, driver: str = "psycopg") -> str:
        """A SQLAlchemy URL for ``database``: ``postgresql+psycopg://paycore@127.0.0.1:PORT/NAME``."""
        return f"postgresql+{driver}://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string for ``database``."""
        return f"host={HOST} port={self.port} user={SUPERUSER} dbname={database}"

    @property
    def _binaries(self) -> Path:
        return self._bin_dir or postgres_bin_dir()

    @property
    def _environment(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

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

    def _prepare(self, directory: Path) -> None:
        """Create the cluster (``initdb``) in ``directory``."""
        if self._user is not None:
            os.chown(directory, self._user.pw_uid, self._user.pw_gid)
        init = subprocess.run(
            [str(self._binaries / "initdb"), "-D", str(directory / "data"), "-U", SUPERUSER, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            cwd=directory, env=self._environment, capture_output=True, check=False,
            user=self._uid, group=self._gid, extra_groups=self._extra_groups,
        )  # fmt: skip
        if init.returncode != 0:
            output = (init.stderr or init.stdout).decode(errors="replace").strip()[-500:]
            raise PostgresServerError(f"initdb failed: {output}")

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        settings = {
            **self.settings,
            "listen_addresses": HOST,
            "port": str(port),
            "unix_socket_directories": str(self.directory),
        }
        arguments = [str(self._binaries / "postgres"), "-D", str(self.directory / "data")]
        for name, value in settings.items():
            arguments += ["-c", f"{name}={value}"]
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(
                arguments, cwd=self.directory, env=self._environment, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                user=self._uid, group=self._gid, extra_groups=self._extra_groups,
            )  # fmt: skip

    def _accepts(self, port: int) -> bool:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - psycopg is a test dependency
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    return True
            except OSError:
                return False
        try:
            with psycopg.connect(f"host={HOST} port={port} user={SUPERUSER} dbname=postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

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


@contextmanager
def session_server(
    *, template: str | None = None, prepare: Callable[[str], object] | None = None
) -> Iterator[PostgresServer]:
    """A started server, stopped on leaving; with ``template``, that database is made and ``prepare(url)`` run on it.

    ``prepare`` is typically a migration (the SQL adapter's ``migrate.upgrade``).
    A server that cannot start fails the calling test (:func:`start_for_test`).
    """
    with start_for_test(PostgresServer()) as server:
        if template is not None:
            url = server.create_database(template)
            if prepare is not None:
                prepare(url)
        yield server


_scratch_names = itertools.count(1)


@contextmanager
def scratch_databases(server: PostgresServer, *, template: str, prefix: str = "test") -> Iterator[Callable[..., str]]:
    """A maker of databases on ``server``, all dropped on leaving; each call gives one's URL.

    ``make()`` copies ``template``; ``make(migrated=False)`` makes an empty database.
    """
    made: list[str] = []

    def make(*, migrated: bool = True) -> str:
        name = f"{prefix}_{next(_scratch_names)}"
        made.append(name)
        return server.create_database(name, template=template if migrated else None)

    try:
        yield make
    finally:
        for name in made:
            server.drop_database(name)


class LibpqTrace:
    """What psycopg connections send PostgreSQL, from libpq's own trace of them, kept in a temporary file.

    :meth:`start` tracing a connection, run what is measured, :meth:`stop` (libpq
    writes its trace out when it stops), then read :meth:`messages` or
    :meth:`round_trips`::

        with LibpqTrace() as trace:
            trace.start(connection)
            ...
            trace.stop(connection)
            assert trace.round_trips() == 2
    """

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by __exit__

    def __enter__(self) -> LibpqTrace:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()

    def start(self, connection: Any) -> None:
        """Trace what the psycopg ``connection`` sends and receives from now on."""
        from psycopg import pq

        connection.pgconn.trace(os.dup(self._file.fileno()))  # libpq closes its copy at untrace
        connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    @staticmethod
    def stop(connection: Any) -> None:
        """Stop tracing the psycopg ``connection``; what it sent is then in the trace."""
        connection.pgconn.untrace()

    def messages(self) -> list[list[str]]:
        """The messages sent so far, each as its trace line's fields (``F``, length, type, ...)."""
        self._file.seek(0)
        lines = [line.split("\t") for line in self._file.read().decode(errors="replace").splitlines()]
        return [fields for fields in lines if fields[0] == "F" and len(fields) > 2]  # not a SQL text's next line

    def round_trips(self) -> int:
        """The waits for the server's answers: each ``Sync`` (the end of a statement, or of statements sent
        together in pipeline mode) and each simple ``Query`` (``BEGIN``, ``COMMIT``)."""
        return sum(1 for fields in self.messages() if fields[2].strip() in ("Sync", "Query"))
