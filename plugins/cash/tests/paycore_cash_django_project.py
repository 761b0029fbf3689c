"""The Django project of the cash plugin's Django tests, shared with any other Django tests of the run.

One pytest process holds one Django project. Run alone, the cash plugin's
tests configure it here. Run with the Django adapter's tests (whose conftest
configures Django first: its ``pytest_configure`` runs before the cash
plugin's, which is ``trylast``), they join that project instead: they add the
cash app to its ``INSTALLED_APPS`` and their two database aliases to its
``DATABASES``, and touch nothing of the adapter's own aliases. The cash tests
never use pytest-django's test databases: their aliases hold databases of their
own, migrated once per session and emptied before each test.

This module imports nothing of ``paycore_django``; it needs only Django.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

__all__ = ["CASH_APP", "POSTGRES_ALIAS", "POSTGRES_DATABASE", "SQLITE_ALIAS", "cash_databases", "set_up"]

CASH_APP: Final = "paycore_cash.backends.django"
"""The cash plugin's Django app (app label ``paycore_cash``)."""

SQLITE_ALIAS: Final = "cash_sqlite"
"""A SQLite file of the session, as a small restaurant would run it (WAL, ``BEGIN IMMEDIATE``)."""

POSTGRES_ALIAS: Final = "cash_postgres"
"""A database on the cash tests' PostgreSQL server; its port is filled in when the server starts."""

POSTGRES_DATABASE: Final = "paycore_cash_django"
"""The name of the PostgreSQL database behind :data:`POSTGRES_ALIAS`."""


def cash_databases(directory: Path) -> dict[str, dict[str, Any]]:
    """The database aliases of the cash plugin's Django tests, their SQLite file in ``directory``."""
    sqlite = str(directory / "cash-drawers.db")
    return {
        SQLITE_ALIAS: {
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
            "NAME": POSTGRES_DATABASE,
            "USER": "paycore",
            "HOST": "127.0.0.1",
            "PORT": "",
            "TEST": {"NAME": POSTGRES_DATABASE, "DEPENDENCIES": []},
        },
    }


def _configure(directory: Path) -> None:
    """Configure a project of the cash tests' own: the apps the flow needs, the cash aliases."""
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="paycore-cash-tests-only",
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "paycore_django", CASH_APP],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "default.db")},
            **cash_databases(directory),
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PAYCORE={},
    )
    django.setup()


def _join(directory: Path) -> None:
    """Add the cash aliases and the cash app to a project something else configured."""
    import django
    from django.apps import apps
    from django.conf import settings
    from django.db import connections

    added = {alias: config for alias, config in cash_databases(directory).items() if alias not in settings.DATABASES}
    settings.DATABASES.update(added)
    if connections.settings is not settings.DATABASES:
        connections.settings.update(added)
    # Django's defaults for the new aliases, filled in place as for those it read at start.
    connections.configure_settings({"default": settings.DATABASES["default"], **added})
    if CASH_APP in settings.INSTALLED_APPS:
        django.setup()
        return
    settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, CASH_APP]
    if apps.ready:
        apps.set_installed_apps(settings.INSTALLED_APPS)
    else:
        django.setup()


def set_up(directory: Path) -> None:
    """Make sure Django is set up with the cash app and the cash tests' aliases (files in ``directory``)."""
    from django.conf import settings

    if settings.configured:
        _join(directory)
    else:
        _configure(directory)
