"""A caller cancelled while its unit of work runs in its worker thread.

Under asyncio, a server cancelling its handler as the client goes, or ``asyncio.wait_for`` around a
call: the cancellation goes through anyio's shields, and the unit commits in its thread after the
caller is gone. Under trio, a cancel scope's deadline lands once the unit has ended. The key it
claimed is still let go at once, and the provider call it wrote down (never sent) is undone, so a
retry runs at once and sends the call once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore.testing.cancelling import cancelled_midway
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def _cancelled_while_its_unit_runs(flow: PaymentFlow, act: Callable[[], Awaitable[object]]) -> None:
    """Run ``act``; its first unit that writes takes 0.3 s in its thread, and the caller is cancelled 0.1 s in."""
    database: Any = flow.repository.database  # type: ignore[attr-defined]
    run_sync = database.run_sync
    slowed: list[bool] = []

    def slow(work: Any, **kwargs: Any) -> Any:
        if not slowed and (kwargs.get("write") or kwargs.get("compare_and_set")):
            slowed.append(True)
            time.sleep(0.3)  # a busy database: the unit is still running when the caller goes
        return run_sync(work, **kwargs)

    database.run_sync = slow
    try:
        await cancelled_midway(act, after=0.1)
    finally:
        database.run_sync = run_sync


@pytest.mark.parametrize("operation", ["initiate", "capture", "cancel", "refund"])
@pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
async def test_a_caller_gone_while_its_unit_runs_leaves_no_key_or_call_held(
    database_url: str, operation: str, keyed: bool
) -> None:
    config = {
        "repository": database_url,
        "providers": {"fake": {"type": "fake", "webhook_secret": "whsec_cut"}},
        "idempotency_lease": 60,  # a key or call left held would refuse the retry for a minute
    }
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake]) as flow:
        provider = flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        key = "op-1" if keyed else None
        payment: Payment | None = None
        if operation != "initiate":
            created = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T4-17", capture=False)
            payment = created.payment
            if operation == "refund":
                payment = await flow.capture(payment.id)

        async def act() -> Payment:
            if payment is None:
                created = await flow.create_payment(
                    amount=XOF_5000, provider="fake", order_id="T4-18", idempotency_key=key
                )
                return created.payment
            if operation == "refund":
                refund = await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key=key)
                return await flow.get_payment(refund.payment_id)
            done: Payment = await getattr(flow, operation)(payment.id, idempotency_key=key)
            return done

        before = [call[0] for call in provider.calls].count(operation)
        await _cancelled_while_its_unit_runs(flow, act)
        await anyio.sleep(0.4)  # the unit has committed in its thread by now
        assert [call[0] for call in provider.calls].count(operation) == before, "sent for a caller gone before it"
        stored = await flow.list_payments(order_id="T4-18") if payment is None else [await flow.get_payment(payment.id)]
        assert all(each.pending_call is None for each in stored), "a call never sent is still written down"
        with anyio.fail_after(5):  # at once: no key or call held for a lease
            again = await act()
        assert again.pending_call is None
        if operation == "capture":
            assert again.status is PaymentStatus.SUCCEEDED
        assert [call[0] for call in provider.calls].count(operation) == before + 1
