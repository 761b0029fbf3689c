"""Four processes delivering the same webhooks at once through the Django storage leave every payment
as one process does, on SQLite (one file shared by the processes) and on PostgreSQL.

The payments are created once, the database is copied, and the same 200 webhooks
(duplicates and out-of-order deliveries included) are delivered into one copy by a
single process in order and into the other by four processes at once, each in its
own shuffled order. Every payment must end identical, with the same events, and no
event or receipt may be stored twice.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paycore.testing.postgres import SUPERUSER, PostgresServer

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "workers" / "django_webhooks.py"
PROCESSES = 4
_names = itertools.count(1)

Database = dict[str, Any]


def _sqlite(path: Path) -> Database:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "timeout": 60,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


def _postgres(server: PostgresServer, name: str) -> Database:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": SUPERUSER,
        "HOST": "127.0.0.1",
        "PORT": str(server.port),
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Callable[[], Database]]]:
    """An empty database, and a function copying it (once seeded) to a second one."""
    if request.param == "sqlite":
        seeded = tmp_path / "seeded.db"

        def copy_file() -> Database:
            copied = tmp_path / "copy.db"
            for suffix in ("", "-wal"):
                if Path(f"{seeded}{suffix}").exists():
                    shutil.copyfile(f"{seeded}{suffix}", f"{copied}{suffix}")
            return _sqlite(copied)

        yield _sqlite(seeded), copy_file
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    run = next(_names)
    seeded_name, copy_name = f"django_mp_seeded_{run}", f"django_mp_copy_{run}"
    server.create_database(seeded_name)

    def copy_database() -> Database:
        server.create_database(copy_name, template=seeded_name)
        return _postgres(server, copy_name)

    yield _postgres(server, seeded_name), copy_database
    for name in (seeded_name, copy_name):
        server.drop_database(name)


def _command(*arguments: str) -> list[str]:
    return [sys.executable, str(WORKER), *arguments]


def _run(*arguments: str) -> str:
    done = subprocess.run(_command(*arguments), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _deliver(database: Database, deliveries: Path, seeds: list[int]) -> list[dict[str, int]]:
    start_at = time.time() + (3.0 if len(seeds) > 1 else 0.0)
    processes = [
        subprocess.Popen(
            [
                *_command("deliver", json.dumps(database), str(deliveries)),
                "--seed",
                str(seed),
                "--start-at",
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in seeds
    ]
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err.decode()[-2000:]
        summaries.append(json.loads(out))
    return summaries


def test_four_processes_delivering_the_same_webhooks_end_as_one_process_does(
    databases: tuple[Database, Callable[[], Database]], tmp_path: Path
) -> None:
    sequential, copy = databases
    listing = tmp_path / "deliveries.json"
    _run("seed", json.dumps(sequential), str(listing))
    concurrent = copy()

    _deliver(sequential, listing, [-1])
    summaries = _deliver(concurrent, listing, [1, 2, 3, 4])
    print("redelivered after losing races:", [s["redelivered"] for s in summaries])

    alone = json.loads(_run("outcome", json.dumps(sequential)))
    together = json.loads(_run("outcome", json.dumps(concurrent)))
    assert sum(s["delivered"] for s in summaries) == PROCESSES * 200
    assert together["payments"] == alone["payments"]
    assert together["refunds"] == alone["refunds"]
    assert together["kinds"] == alone["kinds"]
    assert together["gaps"] == alone["gaps"] == 0
    assert together["receipts"] == alone["receipts"] == 50 + 35 + 15 + 20
    statuses = sorted(status for status, *_ in together["payments"].values())
    assert statuses.count("succeeded") == 20
    assert statuses.count("failed") == 15
    assert statuses.count("partially_refunded") == 15
