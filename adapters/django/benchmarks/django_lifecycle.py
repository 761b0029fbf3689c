"""A payment's lifecycle through the Django ORM against the same lifecycle through the SQL adapter.

A lifecycle is ``paycore.testing.fake.mobile_money_lifecycle``: create with an
idempotency key, success by signed webhook, a partial refund left pending, and
its confirmation by signed webhook. Both adapters run it through ``PaymentFlow``
(one unit of work per worker-thread call) on the same kinds of database in one
run: a SQLite file (WAL, ``BEGIN IMMEDIATE``) and PostgreSQL (a throwaway server
started here, ``fsync=off``). Django keeps its connections open
(``CONN_MAX_AGE = None``), as the SQL adapter's pool does, so both pay for
queries, not for connecting. Every configuration runs three times, interleaved,
and its best run counts (the machine may be busy). ``ratio`` = Django's time /
the SQL adapter's time.

    .venv/bin/python adapters/django/benchmarks/django_lifecycle.py            # full run
    .venv/bin/python adapters/django/benchmarks/django_lifecycle.py --quick    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

import paycore.testing.fake
from paycore import Money
from paycore.flow import PaymentFlow
from paycore.testing.fake import mobile_money_lifecycle
from paycore.testing.postgres import SUPERUSER, PostgresServer, PostgresServerError

ROUNDS = 3
"""Every configuration runs this many times, interleaved; the best run counts."""
AMOUNT = Money.of("5000", "XOF")
REFUND = Money.of("1500", "XOF")
PROVIDERS = {"fake": {"type": "fake", "webhook_secret": "whsec-bench"}}


def _setup_django(sqlite: Path, postgres: PostgresServer | None) -> list[str]:
    """Configure Django with a SQLite alias and, if a server runs, a PostgreSQL one; migrate them."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    databases: dict[str, dict[str, Any]] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite),
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
    if postgres is not None:
        postgres.create_database("django_bench")
        databases["postgres"] = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "django_bench",
            "USER": SUPERUSER,
            "HOST": "127.0.0.1",
            "PORT": str(postgres.port),
            "CONN_MAX_AGE": None,
        }
    settings.configure(INSTALLED_APPS=["paycore_django"], DATABASES=databases, USE_TZ=True, TIME_ZONE="UTC")
    django.setup()
    for alias in databases:
        call_command("migrate", database=alias, verbosity=0)
    return list(databases)


def _sql_url(directory: Path, postgres: PostgresServer | None, kind: str) -> str:
    """A migrated database of the SQL adapter of ``kind`` (``sqlite`` or ``postgresql``)."""
    from paycore_sqlalchemy import migrate

    if kind == "sqlite":
        url = f"sqlite:///{directory / 'sqlalchemy.db'}"
    else:
        assert postgres is not None
        url = postgres.create_database("sqlalchemy_bench")
    migrate.upgrade(url)
    return url


def _flow(repository: Any) -> PaymentFlow:
    return PaymentFlow.from_config(
        {"repository": repository, "providers": PROVIDERS}, plugins=[paycore.testing.fake], environ={}
    )


async def _lifecycle(flow: PaymentFlow, tag: str) -> None:
    """One mobile-money lifecycle (``paycore.testing.fake.mobile_money_lifecycle``)."""
    await mobile_money_lifecycle(flow, tag=tag, amount=AMOUNT, refund=REFUND)


async def _lifecycles(repository: Any, count: int, prefix: str) -> float:
    """Seconds per lifecycle, over ``count`` lifecycles through a flow on ``repository`` (after a warm-up)."""
    async with _flow(repository) as flow:
        await _lifecycle(flow, f"{prefix}-warm")
        started = time.perf_counter()
        for number in range(count):
            await _lifecycle(flow, f"{prefix}-{number}")
        return (time.perf_counter() - started) / count


def _start_postgres() -> PostgresServer | None:
    try:
        return PostgresServer().start()
    except PostgresServerError as error:
        print(f"PostgreSQL skipped: {error}", file=sys.stderr)
        return None


def main() -> None:
    """Run every configuration, print per-lifecycle times and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few lifecycles, one round")
    args = parser.parse_args()
    count, rounds = (10, 1) if args.quick else (200, ROUNDS)

    with tempfile.TemporaryDirectory(prefix="paycore-django-bench-") as name:
        directory = Path(name)
        postgres = _start_postgres()
        try:
            aliases = _setup_django(directory / "django.db", postgres)
            kinds = {"default": "sqlite", "postgres": "postgresql"}
            configurations = {
                kinds[alias]: (
                    {"type": "django", "using": alias},
                    _sql_url(directory, postgres, kinds[alias]),
                )
                for alias in aliases
            }
            best: dict[tuple[str, str], float] = {}
            for round_number in range(rounds):
                for kind, (django_repository, sql_repository) in configurations.items():
                    for adapter, repository in (("django", django_repository), ("sqlalchemy", sql_repository)):
                        seconds = anyio.run(_lifecycles, repository, count, f"{adapter}-{kind}-{round_number}")
                        best[kind, adapter] = min(best.get((kind, adapter), seconds), seconds)
        finally:
            from django.db import connections

            connections.close_all()
            if postgres is not None:
                postgres.stop()

    print(f"{count} lifecycles per run, best of {rounds} run(s); milliseconds per lifecycle")
    print(f"{'database':<12}{'django ORM':>12}{'sqlalchemy':>12}{'ratio':>8}")
    for kind in configurations:
        django_ms, sql_ms = best[kind, "django"] * 1000, best[kind, "sqlalchemy"] * 1000
        print(f"{kind:<12}{django_ms:>12.2f}{sql_ms:>12.2f}{django_ms / sql_ms:>8.2f}")


if __name__ == "__main__":
    main()
