"""Django for the adapter's tests: settings, a SQLite file database and a real PostgreSQL one.

Django is configured here (``settings.configure`` in ``pytest_configure``), not by
``DJANGO_SETTINGS_MODULE``, so a run from the repository root collects these
tests with no extra option. Two database aliases:

* ``default``: a SQLite file (WAL, ``BEGIN IMMEDIATE``, a 30 s busy timeout), as a
  small restaurant would run it;
* ``postgres``: PostgreSQL, on a throwaway server (:mod:`paycore.testing.postgres`)
  started only when a collected test is marked ``postgres``.

The ``using`` fixture runs a test once on each, with a transactional Django test
database (units of work run on worker threads, which must see committed rows).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from paycore.testing.postgres import PostgresServer, session_server

TESTS: Final = Path(__file__).parent
POSTGRES_ALIAS: Final = "postgres"

_directory: Path | None = None


def database_settings(directory: Path) -> dict[str, dict[str, Any]]:
    """The test project's ``DATABASES``; the PostgreSQL port is filled in when its server starts."""
    sqlite = str(directory / "paycore.db")
    return {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite,
            "TEST": {"NAME": sqlite},
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        },
        POSTGRES_ALIAS: {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "paycore",
            "USER": "paycore",
            "HOST": "127.0.0.1",
            "PORT": "",
            "TEST": {"NAME": "test_paycore", "DEPENDENCIES": []},
        },
    }


def pytest_configure(config: pytest.Config) -> None:
    """Configure Django once for the session (unless something configured it already)."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    global _directory
    _directory = Path(tempfile.mkdtemp(prefix="paycore-django-tests-"))
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    settings.configure(
        DEBUG=False,
        SECRET_KEY="paycore-django-tests-only",
        USE_TZ=True,
        TIME_ZONE="UTC",
        ALLOWED_HOSTS=["testserver", "localhost", "127.0.0.1"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.admin",
            "paycore_django",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF="paycore_django_test_urls",
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES=database_settings(_directory),
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        PAYCORE={},
    )
    django.setup()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Delete the SQLite files of the session."""
    if _directory is not None:
        shutil.rmtree(_directory, ignore_errors=True)


EXAMPLE_POS: Final = TESTS.parents[2] / "examples" / "django_pos"
"""The restaurant POS example, served by :func:`pos_site`."""


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pos_site(tmp_path: Path) -> Iterator[str]:
    """The POS example (``manage.py demo``: Django and the dummy gateway) on a free loopback port; its base URL."""
    import httpx

    port = free_port()
    env = {**os.environ, "POS_PORT": str(port), "POS_DATABASE": str(tmp_path / "pos.sqlite3")}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE_POS / "manage.py"), "demo"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the example did not start:\n" + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session; the ``postgres`` alias points at it."""
    from django.conf import settings

    with session_server() as server:
        settings.DATABASES[POSTGRES_ALIAS]["PORT"] = str(server.port)
        try:
            yield server
        finally:
            from django.db import connections

            connections.close_all()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request: pytest.FixtureRequest) -> None:
    """Start PostgreSQL before the test databases are created, if a collected test needs it."""
    if any(item.get_closest_marker("postgres") for item in request.session.items):
        request.getfixturevalue("postgres_server")


@pytest.fixture(
    params=[
        pytest.param("default", marks=pytest.mark.django_db(transaction=True), id="sqlite"),
        pytest.param(
            POSTGRES_ALIAS,
            marks=[pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=[POSTGRES_ALIAS])],
            id="postgresql",
        ),
    ]
)
def using(request: pytest.FixtureRequest) -> str:
    """The Django database alias of this test: each test using it runs on SQLite and on PostgreSQL."""
    return str(request.param)
