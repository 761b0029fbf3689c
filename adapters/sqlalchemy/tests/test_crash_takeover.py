"""A process killed while holding an idempotency key: the key is taken over after its lease,
and the request then settles what its first attempt stored instead of starting again.

A create claims its key and stores its payment in one transaction, so the only
moment a killed process can leave its key held is after both, before the
provider call is sent (the worker hangs there)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.errors import IdempotencyInProgress, ProviderOutcomeUnknown
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore.testing.fake import FakeProvider
from paycore_sqlalchemy import migrate
from paycore_sqlalchemy.engine import acquire_engine

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "workers" / "create_and_hang.py"
KEY, ORDER = "order-77-pay", "order-77"

sys.path.insert(0, str(WORKER.parent))
from create_and_hang import flow_config  # noqa: E402


def _held_lease(url: str) -> float | None:
    """When the lease on KEY ends, while a holder has it; ``None`` before it is taken."""
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT expires_at FROM paycore_idempotency_keys WHERE key = :key AND token IS NOT NULL"),
                {"key": KEY},
            ).scalar()
    finally:
        lease.release()


def _start_and_kill_holder(url: str) -> float:
    """Run the hanging worker until it holds KEY, kill it (SIGKILL); return its lease's end."""
    process = subprocess.Popen([sys.executable, str(WORKER), url, KEY, ORDER], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while (expires_at := _held_lease(url)) is None:
            assert process.poll() is None, process.stderr.read().decode()[-2000:] if process.stderr else ""
            assert time.monotonic() < deadline, "the worker never took the key"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return expires_at


async def _create(flow: PaymentFlow) -> PaymentStatus:
    checkout = await flow.create_payment(
        amount=Money.of("7500", "XOF"), provider="fake", order_id=ORDER, idempotency_key=KEY
    )
    return checkout.payment.status


def test_a_key_held_by_a_killed_process_is_taken_over_after_its_lease_and_never_sends_twice(database_url: str) -> None:
    migrate.upgrade(database_url)
    expires_at = _start_and_kill_holder(database_url)

    async def after_the_crash() -> None:
        async with PaymentFlow.from_config(flow_config(database_url), plugins=[paycore.testing.fake]) as flow:
            provider = flow.provider("fake")
            assert isinstance(provider, FakeProvider)
            with pytest.raises(IdempotencyInProgress):
                await _create(flow)
            await anyio.sleep(max(0.0, expires_at - time.time()) + 0.1)
            with pytest.raises(ProviderOutcomeUnknown):  # within a provider timeout of the lease: not concluded
                await _create(flow)
            await anyio.sleep(1.1)  # the worker's provider_timeout past the lease: no request still on its way
            # The call may have left: the provider is asked first. It never saw it, so the create is sent now, once.
            assert await _create(flow) is PaymentStatus.SUCCEEDED
            assert await _create(flow) is PaymentStatus.SUCCEEDED
            payments = await flow.list_payments(order_id=ORDER)
            assert [p.status for p in payments] == [PaymentStatus.SUCCEEDED]
            assert provider.calls == [("check_status", payments[0].id)] * 2 + [("initiate", payments[0].id)]
            events = await flow.repository.list_events(payments[0].id)
            assert [e.kind for e in events].count("created") == 1

    anyio.run(after_the_crash)
