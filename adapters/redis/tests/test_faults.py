"""Redis faults seen from a whole flow: several processes, one key, one provider call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis

from paycore.testing.redis import RedisServer
from paycore_sqlalchemy import SqlIdempotencyStore, SqlPaymentRepository

WORKER = Path(__file__).with_name("burst_worker.py")
PROCESSES = 4
REQUESTS = 50

pytestmark = pytest.mark.redis


async def _create_schema(database_url: str) -> None:
    # The first use of a SQLite file applies the migrations: do it once here
    # rather than race the processes to it.
    store = SqlIdempotencyStore(database_url)
    await store.release(scope="", key="warm-up", token="none")
    await store.aclose()


async def _payments_of_the_order(database_url: str) -> list[str]:
    repository = SqlPaymentRepository(database_url)
    try:
        return [payment.id for payment in await repository.list_payments(order_id="T12-0042")]
    finally:
        await repository.aclose()


def _run_workers(options: dict[str, Any], count: int) -> list[str]:
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                json.dumps({**options, "processes": count, "backend": "trio" if number % 2 else "asyncio"}),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(count)
    ]
    outcomes: list[str] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        outcomes += json.loads(out.strip().splitlines()[-1])
    return outcomes


@pytest.mark.slow
def test_identical_requests_from_4_processes_make_one_payment_with_one_provider_call(
    redis_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path / 'pos.db'}"
    anyio.run(_create_schema, database_url)
    options = {
        "redis_url": redis_server.url,
        "database_url": database_url,
        "prefix": prefix,
        "counter": f"{prefix}provider-calls",
        "ready": f"{prefix}ready",
        "requests": REQUESTS,
    }
    outcomes = _run_workers(options, PROCESSES)
    retried = _run_workers({**options, "ready": f"{prefix}ready-again", "requests": 1}, 1)
    provider_calls = int(redis.Redis.from_url(redis_server.url).get(options["counter"]) or 0)
    paid = {outcome for outcome in outcomes if outcome != "in_progress"}
    assert len(outcomes) == PROCESSES * REQUESTS
    assert provider_calls == 1
    assert len(paid) == 1
    assert retried == list(paid)
    assert anyio.run(_payments_of_the_order, database_url) == list(paid)
