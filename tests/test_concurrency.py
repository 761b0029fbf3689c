"""Concurrency in one process: racing requests leave the result of some sequential order.

The memory adapter never yields to the event loop by itself, so these tests
make the provider and the repository yield (``anyio.sleep``) to force the
requests to interleave at every await, as a networked backend would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from paycore import Money, RefundUpdate
from paycore.errors import (
    ConcurrentUpdate,
    IdempotencyInProgress,
    InvalidTransition,
    PaycoreError,
    PaymentBusy,
    RefundExceedsCaptured,
)
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.storage import Decide, PaymentLookup, PaymentWrite
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


def _yielding(function: Callable[..., Awaitable[Any]], delay: float = 0) -> Callable[..., Awaitable[Any]]:
    async def slower(*args: Any, **kwargs: Any) -> Any:
        await anyio.sleep(delay)
        result = await function(*args, **kwargs)
        await anyio.lowlevel.checkpoint()
        return result

    return slower


def _interleave(flow: PaymentFlow, monkeypatch: pytest.MonkeyPatch) -> list[ConcurrentUpdate]:
    """Make the repository yield around every call; return the list of races lost on ``save``.

    Its one-unit ``update`` becomes a read and a write that other requests can
    come between, as on a database that does not lock the row it read.
    """
    repository = flow.repository
    for name in ("get", "has_receipt"):
        monkeypatch.setattr(repository, name, _yielding(getattr(repository, name)))
    lost: list[ConcurrentUpdate] = []
    save = _yielding(repository.save)

    async def counting_save(*args: Any, **kwargs: Any) -> Any:
        try:
            return await save(*args, **kwargs)
        except ConcurrentUpdate as error:
            lost.append(error)
            raise

    monkeypatch.setattr(repository, "save", counting_save)

    async def racing_update(
        lookup: PaymentLookup, decide: Decide, *, known: Payment | None = None
    ) -> tuple[Payment, PaymentWrite | None]:
        """A unit of work that does not lock: read, yield, decide, write with the version check."""
        if known is not None:
            payment = known
        elif lookup.payment_id is not None:
            payment = await repository.get(lookup.payment_id)
        else:
            assert lookup.provider is not None
            assert lookup.reference is not None
            payment = await repository.get_by_external_id(lookup.provider, lookup.tenant, lookup.reference)
        write = decide(payment)
        if write is not None:
            await counting_save(write.payment, write.events, write.receipts)
        return payment, write

    monkeypatch.setattr(repository, "update", racing_update)
    return lost


async def _gather(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def run(index: int, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            results[index] = await call()
        except PaycoreError as error:
            results[index] = error

    async with anyio.create_task_group() as tasks:
        for index, call in enumerate(calls):
            tasks.start_soon(run, index, call)
    return results


async def test_a_hundred_identical_creates_reach_the_provider_once(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interleave(flow, monkeypatch)
    monkeypatch.setattr(fake, "initiate", _yielding(fake.initiate, delay=0.01))

    def create() -> Awaitable[Any]:
        return flow.create_payment(amount=XOF_5000, provider="fake", order_id="T-1", idempotency_key="order-T-1")

    results = await _gather(*[create] * 100)
    payments = [r.payment for r in results if not isinstance(r, PaycoreError)]
    refusals = [r for r in results if isinstance(r, PaycoreError)]
    assert len(fake.calls) == 1
    assert payments, "the request that held the key returns its payment"
    assert all(isinstance(r, IdempotencyInProgress) for r in refusals)
    assert len({p.id for p in payments}) == 1
    assert len(await flow.list_payments()) == 1
    replays = await _gather(*[create] * 10)
    assert {r.payment.id for r in replays} == {payments[0].id}
    assert len(fake.calls) == 1


async def _pending(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    fake.script("initiate", "pending")
    return (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment


def _summary(payment: Payment, events: Sequence[Any]) -> tuple[Any, ...]:
    return (
        payment.status,
        payment.captured_amount,
        tuple((r.amount, r.status) for r in payment.refunds),
        tuple((e.kind, e.from_status, e.to_status) for e in events),
    )


async def test_two_webhooks_for_one_payment_at_once_end_as_in_sequence(
    make_flow: Callable[..., PaymentFlow], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(concurrently: bool) -> tuple[Any, ...]:
        async with make_flow() as flow:
            fake = flow.provider("fake")
            assert isinstance(fake, FakeProvider)
            payment = await _pending(flow, fake)
            fake.settle(payment.id, Outcome.SUCCEEDED)
            paid = fake.webhook(payment.id, event_id="evt_paid")
            duplicate = fake.webhook(payment.id, event_id="evt_paid_again")
            if concurrently:
                with monkeypatch.context() as patch:
                    races = _interleave(flow, patch)
                    results = await _gather(
                        lambda: flow.handle_webhook("fake", *paid), lambda: flow.handle_webhook("fake", *duplicate)
                    )
                assert not [r for r in results if isinstance(r, PaycoreError)]
                assert races, "the two deliveries did race for the same version"
            else:
                await flow.handle_webhook("fake", *paid)
                await flow.handle_webhook("fake", *duplicate)
            final = await flow.get_payment(payment.id)
            return _summary(final, await flow.list_events(payment.id))

    assert await run(concurrently=True) == await run(concurrently=False)


async def test_the_same_delivery_twice_at_once_is_applied_once(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _pending(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, event_id="evt_1")
    races = _interleave(flow, monkeypatch)
    await _gather(*[lambda: flow.handle_webhook("fake", body, headers)] * 5)
    assert races
    events = await flow.list_events(payment.id)
    assert [e.to_status for e in events if e.kind == "status_changed"] == ["processing", "succeeded"]


async def test_a_webhook_racing_a_refund_confirmation_keeps_both(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await pay()
    fake.script("refund", "pending", "pending")
    first = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
    second = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    confirm_first = fake.webhook(
        payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, first.id, amount=first.amount)]
    )
    confirm_second = fake.webhook(
        payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, second.id, amount=second.amount)]
    )
    races = _interleave(flow, monkeypatch)
    await _gather(
        lambda: flow.handle_webhook("fake", *confirm_first), lambda: flow.handle_webhook("fake", *confirm_second)
    )
    assert races
    after = await flow.get_payment(payment.id)
    assert after.refunded_amount == Money.of("3000", "XOF")
    assert after.status is PaymentStatus.PARTIALLY_REFUNDED


async def test_two_refunds_at_once_that_together_exceed_the_captured_amount_let_exactly_one_win(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await pay()
    _interleave(flow, monkeypatch)
    monkeypatch.setattr(fake, "refund", _yielding(fake.refund, delay=0.005))
    results = await _gather(
        lambda: flow.refund(payment.id, amount=Money.of("3000", "XOF")),
        lambda: flow.refund(payment.id, amount=Money.of("3000", "XOF")),
    )
    won = [r for r in results if not isinstance(r, PaycoreError)]
    lost = [r for r in results if isinstance(r, PaycoreError)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], (RefundExceedsCaptured, PaymentBusy))
    after = await flow.get_payment(payment.id)
    assert after.refunded_amount == Money.of("3000", "XOF")
    assert len(after.refunds) == 1
    assert [op for op, _ in fake.calls].count("refund") == 1


async def test_a_capture_and_a_cancel_at_once_reach_the_provider_one_at_a_time(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await authorized()
    _interleave(flow, monkeypatch)
    monkeypatch.setattr(fake, "capture", _yielding(fake.capture, delay=0.005))
    monkeypatch.setattr(fake, "cancel", _yielding(fake.cancel, delay=0.005))
    results = await _gather(lambda: flow.capture(payment.id), lambda: flow.cancel(payment.id))
    refused = [r for r in results if isinstance(r, PaycoreError)]
    assert len(refused) == 1
    assert isinstance(refused[0], (PaymentBusy, InvalidTransition))
    operations = [op for op, _ in fake.calls if op in ("capture", "cancel")]
    assert len(operations) == 1
    after = await flow.get_payment(payment.id)
    assert after.status is (PaymentStatus.SUCCEEDED if operations == ["capture"] else PaymentStatus.CANCELED)
