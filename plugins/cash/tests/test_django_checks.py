"""``manage.py check`` tells a Django project what the cash drawers need, before the first payment.

* The cash provider enabled without the drawers' Django app in
  ``INSTALLED_APPS``: ``paycore_django.E005`` names the app, and building the
  flow refuses with a ``ConfigurationError`` naming it too.
* The app installed but its migrations not applied: ``paycore_cash.W001``
  (``check --database ...``), which the app registers when it is ready.

Each project is a fresh process (this one has the app installed, its models
imported and its checks registered).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections
from paycore_cash_django_project import CASH_APP, SQLITE_ALIAS

PROJECT = """
    import sys

    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    settings.configure(
        USE_TZ=True,
        INSTALLED_APPS={apps!r},
        DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}}},
        PAYCORE={{"providers": {{"cash": {{"type": "cash", "currency": "XOF"}}}}}},
    )
    django.setup()
    call_command("migrate", "paycore_django", verbosity=0)
    try:
        call_command("check", databases=["default"], stderr=sys.stdout)
    except SystemCheckError as error:
        print(error)

    import paycore_django
    from paycore.errors import ConfigurationError

    try:
        paycore_django.blocking_flow().flow.provider("cash")
    except ConfigurationError as error:
        print("FLOW", error)
    else:
        print("FLOW built")
"""
"""A project enabling the cash provider, ``paycore_django`` migrated: it prints ``check --database default``,
then ``FLOW`` and how building its flow ends."""

APPS = ["django.contrib.contenttypes", "django.contrib.auth", "paycore_django"]


def run_project(directory: Path, apps: list[str]) -> tuple[str, str]:
    """What :data:`PROJECT` prints with ``apps`` installed: its check's report, and how its flow was built."""
    code = textwrap.dedent(PROJECT.format(apps=apps))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=directory)
    assert done.returncode == 0, done.stderr
    check, _, flow = done.stdout.partition("FLOW ")
    return check, flow


@pytest.fixture(scope="module")
def without_the_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The project without the drawers' app."""
    return run_project(tmp_path_factory.mktemp("without-the-cash-app"), APPS)


def test_the_cash_provider_without_the_drawers_app_fails_manage_py_check(without_the_app: tuple[str, str]) -> None:
    check, _ = without_the_app
    assert "(paycore_django.E005) provider 'cash'" in check
    assert "'paycore_cash.backends.django': add it to INSTALLED_APPS" in check


def test_the_flow_without_the_drawers_app_is_refused_naming_the_app(without_the_app: tuple[str, str]) -> None:
    _, flow = without_the_app
    assert "'paycore_cash.backends.django': add it to INSTALLED_APPS" in flow
    assert "RuntimeError" not in flow


def test_the_drawers_app_unmigrated_is_w001_in_manage_py_check(tmp_path: Path) -> None:
    check, flow = run_project(tmp_path, [*APPS, CASH_APP])
    assert "(paycore_cash.W001) database 'default' lacks 3 migration(s) of paycore_cash" in check
    assert "HINT: Run: python manage.py migrate paycore_cash --database default" in check
    assert "paycore_django.E005" not in check
    assert flow.strip() == "built"


@pytest.fixture
def unmigrated(django_db_blocker: Any) -> Iterator[str]:
    """The cash tests' SQLite database, every migration applied but the drawers' (applied again afterwards)."""
    with django_db_blocker.unblock():
        call_command("migrate", database=SQLITE_ALIAS, interactive=False, verbosity=0)
        call_command("migrate", "paycore_cash", "zero", database=SQLITE_ALIAS, interactive=False, verbosity=0)
        try:
            yield SQLITE_ALIAS
        finally:
            call_command("migrate", "paycore_cash", database=SQLITE_ALIAS, interactive=False, verbosity=0)
            connections[SQLITE_ALIAS].close()


def test_w001_names_the_missing_migrations_and_the_command(unmigrated: str) -> None:
    from paycore_cash.backends.django.checks import check_migrations

    found = check_migrations(databases=[unmigrated])
    assert [message.id for message in found] == ["paycore_cash.W001"]
    assert "0001_initial" in found[0].msg
    assert found[0].hint == f"Run: python manage.py migrate paycore_cash --database {unmigrated}"
