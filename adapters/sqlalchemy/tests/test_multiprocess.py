"""Four processes delivering the same webhooks at once leave every payment as one process would,
on PostgreSQL and on SQLite (several processes sharing the embedded default's file).

The payments are created once, the database is copied, and the same 200
webhooks (duplicates and out-of-order deliveries included) are delivered into
one copy by a single process in order and into the other by four processes at
once, each in its own shuffled order. Every payment must end identical, with the
same events, and no event or receipt may be stored twice.
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

import anyio
import pytest
import sqlalchemy as sa

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.money import Money
from paycore.records import RefundUpdate
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider
from paycore.testing.postgres import PostgresServer
from paycore_sqlalchemy import migrate
from paycore_sqlalchemy.engine import acquire_engine

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "workers" / "deliver_webhooks.py"
PROCESSES = 4
_names = itertools.count(1)

sys.path.insert(0, str(WORKER.parent))
from deliver_webhooks import flow_config  # noqa: E402


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Callable[[], str]]]:
    """The URL of an empty database, and a function copying it (once seeded) to a second one."""
    if request.param == "sqlite":
        seeded = tmp_path / "seeded.db"
        migrate.upgrade(f"sqlite:///{seeded}")

        def copy_file() -> str:
            copied = tmp_path / "copy.db"
            for suffix in ("", "-wal"):
                if Path(f"{seeded}{suffix}").exists():
                    shutil.copyfile(f"{seeded}{suffix}", f"{copied}{suffix}")
            return f"sqlite:///{copied}"

        yield f"sqlite:///{seeded}", copy_file
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    run = next(_names)
    seeded_name, copy_name = f"mp_seeded_{run}", f"mp_copy_{run}"
    url = server.create_database(seeded_name, template="paycore_template")
    yield url, lambda: server.create_database(copy_name, template=seeded_name)
    for name in (seeded_name, copy_name):
        server.drop_database(name)


def _delivery(provider: FakeProvider, payment_id: str, **kwargs: Any) -> dict[str, Any]:
    body, headers = provider.webhook(payment_id, **kwargs)
    return {"body": body.decode(), "headers": headers}


async def _seed(url: str) -> list[dict[str, Any]]:
    """Create 50 payments in three situations; return the 200 webhooks to deliver about them."""
    deliveries: list[dict[str, Any]] = []
    async with PaymentFlow.from_config(flow_config(url), plugins=[paycore.testing.fake]) as flow:
        provider = flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        for index in range(50):
            amount = Money.of(str(5000 + index), "XOF")
            if index < 35:
                provider.script("initiate", "pending")
                checkout = await flow.create_payment(amount=amount, provider="fake", order_id=f"o{index}")
                payment_id = checkout.payment.id
                assert checkout.payment.status is PaymentStatus.PROCESSING
                final = Outcome.SUCCEEDED if index < 20 else Outcome.FAILED
                deliveries.append(_delivery(provider, payment_id, outcome=Outcome.PENDING, event_id=f"e{index}-1"))
                deliveries += [_delivery(provider, payment_id, outcome=final, event_id=f"e{index}-2")] * 2
                last_id = f"e{index}-3" if final is Outcome.SUCCEEDED else f"e{index}-2"
                deliveries.append(_delivery(provider, payment_id, outcome=final, event_id=last_id))
            else:
                checkout = await flow.create_payment(amount=amount, provider="fake", order_id=f"o{index}")
                payment_id = checkout.payment.id
                provider.script("refund", "pending")
                refund = await flow.refund(payment_id, amount=Money.of("1000", "XOF"))
                settled = RefundUpdate(RefundStatus.SUCCEEDED, refund_id=refund.id, amount=refund.amount)
                deliveries += [_delivery(provider, payment_id, refunds=[settled], event_id=f"e{index}-1")] * 3
                deliveries.append(_delivery(provider, payment_id, event_id=f"e{index}-2"))
    assert len(deliveries) == 200
    return deliveries


def _run_workers(url: str, deliveries: Path, seeds: list[int]) -> list[dict[str, int]]:
    start_at = time.time() + (2.0 if len(seeds) > 1 else 0.0)
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, str(deliveries), "--seed", str(seed), "--start-at", str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for seed in seeds
    ]
    summaries = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()[-2000:]
        summaries.append(json.loads(out))
    return summaries


def _outcome(url: str) -> dict[str, Any]:
    """Every payment's final state and event kinds, by payment id; plus integrity counts."""
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            payments = {
                row.id: (row.status, row.captured_amount, row.needs_review, row.event_count)
                for row in connection.execute(
                    sa.text("SELECT id, status, captured_amount, needs_review, event_count FROM paycore_payments")
                )
            }
            refunds = {
                (row.payment_id, row.id): (row.status, row.amount)
                for row in connection.execute(sa.text("SELECT payment_id, id, status, amount FROM paycore_refunds"))
            }
            kinds: dict[str, list[str]] = {}
            for row in connection.execute(
                sa.text("SELECT payment_id, kind FROM paycore_payment_events ORDER BY payment_id, sequence")
            ):
                kinds.setdefault(row.payment_id, []).append(row.kind)
            gaps = connection.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT payment_id, count(*) AS n, max(sequence) AS top, "
                    "count(DISTINCT sequence) AS distinct_n FROM paycore_payment_events GROUP BY payment_id) s "
                    "WHERE n <> top OR n <> distinct_n"
                )
            ).scalar_one()
            receipts = connection.execute(sa.text("SELECT count(*) FROM paycore_webhook_receipts")).scalar_one()
    finally:
        lease.release()
    return {"payments": payments, "refunds": refunds, "kinds": kinds, "gaps": gaps, "receipts": receipts}


def test_four_processes_delivering_the_same_webhooks_end_as_one_process_does(
    databases: tuple[str, Callable[[], str]], tmp_path: Path
) -> None:
    sequential_url, copy = databases
    deliveries = anyio.run(_seed, sequential_url)
    concurrent_url = copy()
    listing = tmp_path / "deliveries.json"
    listing.write_text(json.dumps(deliveries))

    _run_workers(sequential_url, listing, [-1])
    summaries = _run_workers(concurrent_url, listing, [1, 2, 3, 4])
    print("redelivered after losing races:", [s["redelivered"] for s in summaries])

    alone, together = _outcome(sequential_url), _outcome(concurrent_url)
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
