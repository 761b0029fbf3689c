"""A caller cancelled while what must end once begun runs: it still ends, and a retry finds it done.

Under asyncio the cut is asyncio's own ``Task.cancel()`` (``asyncio.wait_for``, ``asyncio.timeout``, a server
cancelling its handler), which goes through anyio's shielded scopes; under trio, a cancel scope's."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import pytest

from paycore import hookimpl
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment, PaymentEvent
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider
from paycore_memory import MemoryIdempotencyStore

pytestmark = pytest.mark.anyio


def _count(fake: FakeProvider, operation: str) -> int:
    return [op for op, _ in fake.calls].count(operation)


def _on_asyncio() -> bool:
    return anyio.get_cancelled_exc_class() is asyncio.CancelledError


async def _cancelled_once(started: anyio.Event, operation: Callable[[], Any]) -> None:
    """Run ``operation`` in a task of its own; cancel it once ``started`` is set: the asyncio way under asyncio,
    by the cancel scope of its task group under trio."""
    if _on_asyncio():
        task = asyncio.ensure_future(operation())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return
    async with anyio.create_task_group() as group:
        group.start_soon(operation)
        await started.wait()
        group.cancel_scope.cancel()


def _writes_slowly_once_answered(
    monkeypatch: pytest.MonkeyPatch, flow: PaymentFlow, fake: FakeProvider, operation: str
) -> anyio.Event:
    """``fake``'s ``operation`` sets the event returned once it has answered; from then on the flow's writes wait a
    moment (a slow database), so a caller cut then is cut while the provider's answer is written."""
    answered, update, asked = anyio.Event(), flow.repository.update, getattr(fake, operation)

    async def answer_then_say(*args: Any) -> Any:
        answer = await asked(*args)
        answered.set()
        return answer

    async def slow_update(*args: Any, **kwargs: Any) -> Any:
        if answered.is_set():
            await anyio.sleep(0.05)  # the caller is cut here
        return await update(*args, **kwargs)

    monkeypatch.setattr(fake, operation, answer_then_say)
    monkeypatch.setattr(flow.repository, "update", slow_update)
    return answered


@pytest.mark.parametrize("key", ["cap-1", None], ids=["keyed", "keyless"])
async def test_a_capture_cancelled_while_its_answer_is_written_still_records_it(
    flow: PaymentFlow,
    fake: FakeProvider,
    authorized: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    key: str | None,
) -> None:
    payment: Payment = await authorized()
    answered = _writes_slowly_once_answered(monkeypatch, flow, fake, "capture")
    await _cancelled_once(answered, lambda: flow.capture(payment.id, idempotency_key=key))
    stored = await flow.get_payment(payment.id)
    assert (stored.status, stored.pending_call) == (PaymentStatus.SUCCEEDED, None), "the answer was recorded"
    if key is not None:
        assert await flow.capture(payment.id, idempotency_key=key) == stored, "replayed at once"
    assert _count(fake, "capture") == 1


class SlowToComplete:
    """An idempotency store kept apart from the payments that takes a moment to keep a result."""

    def __init__(self) -> None:
        self.store = MemoryIdempotencyStore()
        self.completing = anyio.Event()

    async def claim(self, **claim: Any) -> Any:
        return await self.store.claim(**claim)

    async def complete(self, **completion: Any) -> None:
        self.completing.set()
        await anyio.sleep(0.05)  # the caller is cancelled here
        await self.store.complete(**completion)

    async def release(self, **release: Any) -> None:
        await self.store.release(**release)

    async def aclose(self) -> None:
        await self.store.aclose()


async def test_a_refund_cancelled_while_its_key_is_completed_leaves_the_key_completed(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    store = SlowToComplete()
    flow.idempotency_store = store  # type: ignore[assignment]
    refund = lambda: flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="re-1")  # noqa: E731
    await _cancelled_once(store.completing, refund)
    made = await refund()  # replayed: neither IdempotencyInProgress nor a second refund
    assert made.status.value == "succeeded"
    assert _count(fake, "refund") == 1


async def test_a_create_cancelled_while_the_provider_has_it_is_asked_about_by_its_retry_at_once(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    sent, initiate = anyio.Event(), fake.initiate

    async def never_answered(payment: Payment) -> Any:
        await initiate(payment)
        sent.set()
        await anyio.sleep_forever()

    fake.initiate = never_answered  # type: ignore[method-assign]
    create = lambda: flow.create_payment(  # noqa: E731
        amount=Money.of("5000", "XOF"), provider="fake", order_id="o", idempotency_key="k"
    )
    await _cancelled_once(sent, create)
    fake.initiate = initiate  # type: ignore[method-assign]
    (cut,) = await flow.list_payments()
    assert cut.pending_call is not None
    assert cut.pending_call.unknown
    retried = await create()
    assert (retried.payment.id, retried.payment.status) == (cut.id, PaymentStatus.SUCCEEDED)
    assert [op for op, _ in fake.calls] == ["initiate", "check_status"]


class SlowObserver:
    """Hears every committed event; the first of a refund's confirmation takes a moment."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.hearing = anyio.Event()

    @hookimpl
    async def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        if event.kind == "refund_status_changed" and not self.hearing.is_set():
            self.hearing.set()
            await anyio.sleep(0.05)  # the caller is cancelled here
        self.heard.append(event.kind)


async def test_an_observer_cut_by_a_cancel_still_hears_every_committed_event(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    observer = SlowObserver()
    async with make_flow(plugins=(observer,)) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o")).payment
        refund = lambda: flow.refund(payment.id, amount=Money.of("5000", "XOF"), idempotency_key="re-1")  # noqa: E731
        await _cancelled_once(observer.hearing, refund)
        committed = [event.kind for event in await flow.list_events(payment.id)]
        assert observer.heard == committed[-len(observer.heard) :]
        assert observer.heard[-2:] == ["refund_status_changed", "status_changed"], "told whole, in order"


class SelfCancellingObserver:
    """An async observer awaiting a future something else cancelled (a client shutting down)."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    @hookimpl
    async def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        self.heard.append(event.kind)
        if _on_asyncio():
            cancelled = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled  # its CancelledError is the observer's failure
        with anyio.CancelScope() as own:  # trio: a scope of its own, cancelled, ends there
            own.cancel()
            await anyio.sleep(1)


async def test_an_observer_that_cancels_itself_is_a_failing_observer_not_a_cancelled_caller(
    make_flow: Callable[..., PaymentFlow], caplog: pytest.LogCaptureFixture
) -> None:
    observer = SelfCancellingObserver()
    async with make_flow(plugins=(observer,)) as flow:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o")
        assert checkout.payment.status is PaymentStatus.SUCCEEDED, "the create went on to the provider"
        assert observer.heard == [event.kind for event in await flow.list_events(checkout.payment.id)]
    if _on_asyncio():
        assert "cancelled by something other than its caller" in caplog.text


class FailingAfterTheCutWrapper:
    """An observer wrapper that adds, to a payment's ``created`` event, an awaitable failing a moment later."""

    def __init__(self) -> None:
        self.hearing = anyio.Event()

    @hookimpl(wrapper=True)
    def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> Any:
        results = yield

        async def audit() -> None:
            self.hearing.set()
            await anyio.sleep(0.05)  # the caller is cancelled here
            raise RuntimeError("the audit sink is down")

        return [*results, audit()] if event.kind == "created" else results


async def test_a_caller_cancelled_while_an_observers_awaitable_fails_stays_cancelled(
    make_flow: Callable[..., PaymentFlow], caplog: pytest.LogCaptureFixture
) -> None:
    observer = FailingAfterTheCutWrapper()
    returned: list[Any] = []
    async with make_flow(plugins=(observer,)) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)

        async def create() -> None:
            returned.append(await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o"))

        await _cancelled_once(observer.hearing, create)
        assert returned == [], "the caller's cancellation outlived the observer's failure"
        assert _count(fake, "initiate") == 0, "nothing was sent for a caller that is gone"
    assert "the audit sink is down" in caplog.text


class SlowToHearItsCall:
    """Hears the event of the write that carries a call (``created``, ``refund_created``) slowly: a caller cut
    there has its call written down and not yet sent."""

    def __init__(self, kind: str) -> None:
        self.kind, self.hearing = kind, anyio.Event()

    @hookimpl
    async def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        if event.kind == self.kind and not self.hearing.is_set():
            self.hearing.set()
            await anyio.sleep(0.05)  # the caller is cancelled here


async def test_a_create_cut_before_its_request_left_is_sent_by_its_retry_at_once(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    observer = SlowToHearItsCall("created")
    async with make_flow(plugins=(observer,)) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        create = lambda: flow.create_payment(  # noqa: E731
            amount=Money.of("5000", "XOF"), provider="fake", order_id="o", idempotency_key="sale-1"
        )
        await _cancelled_once(observer.hearing, create)
        (cut,) = await flow.list_payments()
        assert (cut.status, cut.pending_call, _count(fake, "initiate")) == (PaymentStatus.PENDING, None, 0)
        retried = await create()
        assert (retried.payment.id, retried.payment.status) == (cut.id, PaymentStatus.SUCCEEDED)
        assert _count(fake, "initiate") == 1


async def test_a_refund_cut_before_its_request_left_fails_unsent_and_its_retry_sends_it_once(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    observer = SlowToHearItsCall("refund_created")
    async with make_flow(plugins=(observer,)) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o")).payment
        refund = lambda: flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-1")  # noqa: E731
        await _cancelled_once(observer.hearing, refund)
        cut = await flow.get_payment(payment.id)
        assert cut.pending_call is None, "nothing travels: the payment is not busy"
        assert [r.status for r in cut.refunds] == [RefundStatus.FAILED], "never sent: refundable again"
        assert _count(fake, "refund") == 0
        made = await refund()
        assert made.status is RefundStatus.SUCCEEDED
        assert _count(fake, "refund") == 1
        assert (await flow.get_payment(payment.id)).refundable_amount == Money.of("3000", "XOF")


async def test_a_reaper_cut_while_its_cancels_answer_is_written_still_records_it(
    flow: PaymentFlow, fake: FakeProvider, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o")).payment
    clock.advance(hours=3)
    answered = _writes_slowly_once_answered(monkeypatch, flow, fake, "cancel")
    await _cancelled_once(answered, lambda: flow.expire_stale(timedelta(hours=1)))
    stored = await flow.get_payment(payment.id)
    assert (stored.status, stored.pending_call) == (PaymentStatus.EXPIRED, None), "the provider's cancel was recorded"
    assert _count(fake, "cancel") == 1
