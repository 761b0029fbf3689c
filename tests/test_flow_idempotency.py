"""Idempotency keys: replay, refusal of reuse, in-progress refusal, takeover after a crash."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

import paycore.actions
import paycore.idempotency
from paycore import Money, hookimpl
from paycore.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    InvalidTransition,
    PaycoreError,
    PaymentBusy,
    PaymentRejected,
    ProviderNotSent,
    StorageUnavailable,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.keys import KeyBinding, derived_id
from paycore.records import Payment, Refund, RefundUpdate
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider, Outcome
from paycore_memory import MemoryIdempotencyStore

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


def _reached(provider: FakeProvider, operation: str) -> anyio.Event:
    """An event set once ``operation`` of ``provider`` has been called."""
    reached = anyio.Event()
    original = getattr(provider, operation)

    async def call(*args: Any) -> Any:
        reached.set()
        return await original(*args)

    setattr(provider, operation, call)
    return reached


def _create(flow: PaymentFlow, key: str = "order-42", **changes: Any) -> Any:
    request: dict[str, Any] = {"amount": XOF_5000, "provider": "fake", "order_id": "T-42", "idempotency_key": key}
    request.update(changes)
    return flow.create_payment(**request)


async def test_the_same_request_replays_the_stored_result_without_calling_the_provider(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    first = await _create(flow)
    replay = await _create(flow)
    assert replay == first
    assert fake.calls == [("initiate", first.payment.id)]
    assert len(await flow.list_payments()) == 1


async def test_a_definitive_decline_is_replayed_not_retried(flow: PaymentFlow, fake: FakeProvider) -> None:
    fake.script("initiate", "decline")
    first = await _create(flow)
    replay = await _create(flow)
    assert replay.payment.status is PaymentStatus.FAILED
    assert replay == first
    assert len(fake.calls) == 1


@pytest.mark.parametrize(
    "changes",
    [{"amount": Money.of("5001", "XOF")}, {"order_id": "T-43"}, {"metadata": {"table": 2}}, {"capture": False}],
)
async def test_the_same_key_with_another_request_is_refused_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider, changes: dict[str, Any]
) -> None:
    first = await _create(flow)
    with pytest.raises(IdempotencyKeyReused, match="'order-42'"):
        await _create(flow, **changes)
    assert await flow.list_payments() == [first.payment]
    assert len(fake.calls) == 1


async def test_a_key_whose_first_request_is_running_is_refused_and_never_runs_twice(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    async with make_flow(provider_timeout=0.3, idempotency_lease=5) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        fake.script("initiate", "hang")
        sent = _reached(fake, "initiate")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_create, flow)
            await sent.wait()
            with pytest.raises(IdempotencyInProgress, match="still running"):
                await _create(flow)
        assert len(fake.calls) == 1
        replay = await _create(flow)
        assert replay.payment.status is PaymentStatus.PROCESSING
        assert len(fake.calls) == 1


async def test_a_request_refused_by_validation_stores_no_key(make_flow: Callable[..., PaymentFlow]) -> None:
    class RefuseOnce:
        refused = False

        @hookimpl
        def paycore_validate_payment(self, payment: Payment) -> None:
            if not self.refused:
                self.refused = True
                raise PaymentRejected("the till is closed")

    async with make_flow(plugins=(RefuseOnce(),)) as flow:
        with pytest.raises(PaymentRejected):
            await _create(flow)
        assert await flow.list_payments() == []
        other = await _create(flow, amount=Money.of("100", "XOF"))
        assert other.payment.status is PaymentStatus.SUCCEEDED


async def test_bad_input_stores_no_key(flow: PaymentFlow) -> None:
    with pytest.raises(ValueError, match="positive"):
        await _create(flow, amount=Money.of("0", "XOF"))
    assert (await _create(flow)).payment.status is PaymentStatus.SUCCEEDED


async def test_keys_are_per_operation_request_a_capture_key_cannot_replay_a_refund(
    flow: PaymentFlow, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    await flow.capture(payment.id, idempotency_key="op-1")
    with pytest.raises(IdempotencyKeyReused):
        await flow.refund(payment.id, idempotency_key="op-1")


async def test_a_capture_replays_without_capturing_again(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    first = await flow.capture(payment.id, amount=Money.of("3000", "XOF"), idempotency_key="cap-1")
    replay = await flow.capture(payment.id, amount=Money.of("3000", "XOF"), idempotency_key="cap-1")
    assert replay == first
    assert [op for op, _ in fake.calls].count("capture") == 1


async def test_a_refund_replays_without_refunding_again(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    first = await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="re-1")
    replay = await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="re-1")
    assert replay == first
    after = await flow.get_payment(payment.id)
    assert len(after.refunds) == 1
    assert after.refunded_amount == Money.of("1000", "XOF")
    assert [op for op, _ in fake.calls].count("refund") == 1


async def test_a_cancel_replays_without_canceling_again(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    first = await flow.cancel(payment.id, idempotency_key="void-1")
    assert await flow.cancel(payment.id, idempotency_key="void-1") == first
    assert [op for op, _ in fake.calls].count("cancel") == 1


class MonotonicClock:
    """A settable monotonic clock for the idempotency store's leases."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ProcessDied(BaseException):
    """The process stops where this is raised: nothing after it runs, nothing is cleaned up."""


async def _create_dying_once_sent(flow: PaymentFlow) -> FakeProvider:
    """A keyed create whose process dies once the provider has it: its key stays held, its call in flight."""
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    initiate = fake.initiate

    async def die_once_the_provider_has_it(payment: Payment) -> Any:
        await initiate(payment)
        raise ProcessDied

    fake.initiate = die_once_the_provider_has_it  # type: ignore[method-assign]
    try:
        with pytest.raises(ProcessDied):
            await _create(flow)
    finally:
        fake.initiate = initiate  # type: ignore[method-assign]
    return fake


async def test_a_crashed_holders_key_is_taken_over_after_its_lease_and_settled_by_asking(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    async with make_flow(idempotency_lease=120) as flow:
        leases = MonotonicClock()
        flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
        fake = await _create_dying_once_sent(flow)
        (crashed,) = await flow.list_payments()
        assert crashed.pending_call is not None
        assert not crashed.pending_call.unknown

        with pytest.raises(IdempotencyInProgress):
            await _create(flow)
        leases.now += 121
        clock.advance(seconds=121)
        resumed = await _create(flow)
        assert resumed.payment.id == crashed.id
        assert resumed.payment.status is PaymentStatus.SUCCEEDED
        assert [op for op, _ in fake.calls] == ["initiate", "check_status"]


async def test_a_retry_after_an_upgrade_finds_the_payment_its_first_attempt_stored_under_an_earlier_release(
    make_flow: Callable[..., PaymentFlow], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until December 2026 a keyed payment's id named no window of the key's ttl: a process of that release
    died with its create sent, the upgraded one takes the retry. It must find that payment, not pay again."""
    async with make_flow(idempotency_lease=120) as flow:
        leases = MonotonicClock()
        flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
        earlier_release = {"pay": derived_id("pay", "", "order-42")}  # the key without a window
        with monkeypatch.context() as patched:
            patched.setattr(KeyBinding, "new_id", lambda binding, prefix, within="": earlier_release[prefix])
            fake = await _create_dying_once_sent(flow)
        (crashed,) = await flow.list_payments()
        assert crashed.id == earlier_release["pay"]

        leases.now += 121
        clock.advance(seconds=121)
        resumed = await _create(flow)
        assert (resumed.payment.id, resumed.payment.status) == (crashed.id, PaymentStatus.SUCCEEDED)
        assert [op for op, _ in fake.calls] == ["initiate", "check_status"]
        assert len(await flow.list_payments()) == 1


async def test_a_refund_keyed_under_an_earlier_release_is_replayed_after_the_upgrade(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until December 2026 a refund's request was fingerprinted without its metadata (it had none): the same
    request now carries it empty, and its retry must replay the refund, not be refused as another request."""
    payment = await pay()
    earlier_release = partial(_fingerprint_without_metadata, paycore.idempotency.fingerprint)
    with monkeypatch.context() as patched:
        patched.setattr(paycore.idempotency, "fingerprint", earlier_release)
        first = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
    again = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
    assert again == first
    assert [op for op, _ in fake.calls].count("refund") == 1
    with pytest.raises(IdempotencyKeyReused):  # another request still is one
        await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9", metadata={"a": 1})
    assert (await flow.get_payment(payment.id)).refunded_amount == Money.of("2000", "XOF")


@pytest.mark.parametrize(
    "named",
    [
        pytest.param(lambda binding, within: binding.key, id="november"),
        pytest.param(lambda binding, within: f"{binding.key}\x00{binding._window}\x00{within}", id="december"),
    ],
)
async def test_a_refund_keyed_without_its_tenant_under_an_earlier_release_is_found_after_the_upgrade(
    make_flow: Callable[..., PaymentFlow], monkeypatch: pytest.MonkeyPatch, named: Callable[[KeyBinding, str], str]
) -> None:
    """Until December 2026 a refund asked without ``tenant=`` was keyed in no tenant's key space, whatever its
    payment's tenant, and named after the key alone; now it is keyed in its payment's tenant's. Its retry after
    the upgrade must find that refund among the payment's, not send a second one."""
    shop = {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-shop"}}}
    async with make_flow(tenants={"shop": shop}) as flow:
        fake = flow.provider("fake", tenant="shop")
        assert isinstance(fake, FakeProvider)
        checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T-1", tenant="shop")
        fake.settle(checkout.payment.id, Outcome.SUCCEEDED)
        await flow.handle_webhook("fake", *fake.webhook(checkout.payment.id), tenant="shop")
        with monkeypatch.context() as earlier_release:
            earlier_release.setattr(paycore.actions, "scope_of", lambda tenant: "")
            earlier_release.setattr(
                KeyBinding, "new_id", lambda b, prefix, within="": derived_id(prefix, "", named(b, within))
            )
            first = await flow.refund(checkout.payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
        with pytest.raises(IdempotencyKeyReused):  # another request under the key is one still
            await flow.refund(checkout.payment.id, amount=Money.of("3000", "XOF"), idempotency_key="re-9")
        again = await flow.refund(checkout.payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
        assert again.id == first.id
        assert [op for op, _ in fake.calls].count("refund") == 1
        assert (await flow.get_payment(checkout.payment.id)).refunded_amount == Money.of("2000", "XOF")


def _fingerprint_without_metadata(fingerprint: Callable[..., str], operation: str, arguments: Any) -> str:
    return fingerprint(operation, {name: value for name, value in arguments.items() if name != "metadata"})


async def test_a_caller_cancelled_while_the_provider_has_its_create_frees_its_key_and_its_retry_asks_at_once(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    """Cancelled (a client gone, a till's timeout): no one will hear the answer, so the call is marked unknown
    and the key let go. The retry asks the provider at once, finds the payment paid and sends nothing twice."""
    async with make_flow(idempotency_lease=120) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        fake.script("initiate", "hang")
        sent = _reached(fake, "initiate")
        with anyio.move_on_after(5) as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_create, flow)
                await sent.wait()
                await anyio.lowlevel.checkpoint()
                tasks.cancel_scope.cancel()
        assert not scope.cancelled_caught
        (cut,) = await flow.list_payments()
        assert cut.status is PaymentStatus.PENDING
        assert cut.pending_call is not None
        assert cut.pending_call.unknown
        assert "cancelled" in cut.pending_call.reason
        resumed = await _create(flow)
        assert (resumed.payment.id, resumed.payment.status) == (cut.id, PaymentStatus.SUCCEEDED)
        assert resumed.payment.pending_call is None
        assert [op for op, _ in fake.calls] == ["initiate", "check_status"]
        assert await _create(flow) == resumed


async def test_a_caller_cancelled_while_its_refund_travels_frees_its_key_and_its_retry_refunds_nothing_twice(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    await _refund_cut_short(flow, fake, payment, lease_runs_out=False)
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
    assert refund.status is RefundStatus.SUCCEEDED
    after = await flow.get_payment(payment.id)
    assert (after.refunded_amount, after.pending_call) == (Money.of("2000", "XOF"), None)
    assert [op for op, _ in fake.calls].count("refund") == 1


async def test_a_create_whose_holder_crashed_before_sending_is_sent_by_its_retry_not_expired(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    async with make_flow(idempotency_lease=120) as flow:
        leases = MonotonicClock()
        flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        original = fake.initiate
        reached = anyio.Event()

        async def crash_before_sending(payment: Payment) -> Any:
            reached.set()
            await anyio.sleep_forever()  # the process dies before the request leaves

        fake.initiate = crash_before_sending  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_create, flow)
            await reached.wait()
            tasks.cancel_scope.cancel()
        fake.initiate = original  # type: ignore[method-assign]
        (crashed,) = await flow.list_payments()
        assert crashed.pending_call is not None

        waited = 120 + flow.config.provider_timeout + 1  # a poll now says for sure the create never arrived
        leases.now += waited
        clock.advance(seconds=waited)
        resumed = await _create(flow)
        assert resumed.payment.id == crashed.id
        assert resumed.payment.status is not PaymentStatus.EXPIRED
        assert resumed.payment.pending_call is None
        assert [op for op, _ in fake.calls] == ["check_status", "initiate"]
        assert await _create(flow) == resumed  # replayed: sent once


async def test_a_create_sent_whose_answer_was_lost_and_never_arrived_expires_on_its_retry(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    async with make_flow(idempotency_lease=120) as flow:
        leases = MonotonicClock()
        store = MemoryIdempotencyStore(clock=leases)
        flow.idempotency_store = store
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        fake.script("initiate", "lost")

        async def crash(**_: Any) -> None:  # the process dies before it keeps the key's result
            raise ProcessDied

        store.complete_record = crash  # type: ignore[method-assign]
        store.complete = crash  # type: ignore[method-assign]
        with pytest.raises(ProcessDied):
            await _create(flow)
        del store.complete_record, store.complete
        (sent,) = await flow.list_payments()
        assert sent.status is PaymentStatus.PROCESSING
        fake.ledger.clear()  # it never reached the provider after all
        waited = 120 + flow.config.provider_timeout + 1
        leases.now += waited
        clock.advance(seconds=waited)
        retried = await _create(flow)
        assert (retried.payment.id, retried.payment.status) == (sent.id, PaymentStatus.EXPIRED), "a true, final state"
        assert [op for op, _ in fake.calls].count("initiate") == 1


async def test_a_refund_resumed_after_a_crash_is_settled_not_sent_again(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Any
) -> None:
    payment = await pay()
    leases = MonotonicClock()
    flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
    original = fake.refund

    async def crash_after_sending(paid: Payment, refund: Any) -> Any:
        await original(paid, refund)
        raise ProcessDied

    fake.refund = crash_after_sending  # type: ignore[method-assign]
    with pytest.raises(ProcessDied):
        await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
    fake.refund = original  # type: ignore[method-assign]
    with pytest.raises(IdempotencyInProgress):
        await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
    leases.now += flow.config.idempotency_lease + 1
    clock.advance(seconds=flow.config.idempotency_lease + 1)
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-9")
    assert refund.status is RefundStatus.SUCCEEDED
    after = await flow.get_payment(payment.id)
    assert after.refunded_amount == Money.of("2000", "XOF")
    assert [op for op, _ in fake.calls].count("refund") == 1


async def _refund_cut_short(
    flow: PaymentFlow, fake: FakeProvider, payment: Payment, amount: str = "2000", *, lease_runs_out: bool = True
) -> None:
    """A keyed refund (2 000 XOF, key ``re-7``) whose caller is cancelled once the provider has it, before its
    answer is kept; then (``lease_runs_out``) its key's lease runs out (on a store of leases the test moves)."""
    leases = MonotonicClock()
    flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
    original = fake.refund
    sent = anyio.Event()

    async def answer_late(paid: Payment, refund: Any) -> Any:
        answer = await original(paid, refund)
        sent.set()
        await anyio.sleep_forever()
        return answer

    fake.refund = answer_late  # type: ignore[method-assign]
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: flow.refund(payment.id, amount=Money.of(amount, "XOF"), idempotency_key="re-7"))
        await sent.wait()
        tasks.cancel_scope.cancel()
    fake.refund = original  # type: ignore[method-assign]
    if lease_runs_out:
        leases.now += flow.config.idempotency_lease + 1


@pytest.mark.parametrize("polled_first", [False, True], ids=["retried", "polled-then-retried"])
async def test_a_refund_the_provider_declined_is_the_keys_answer_even_when_its_caller_was_cut_short(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Any, polled_first: bool
) -> None:
    payment = await pay()
    fake.script("refund", "decline")
    await _refund_cut_short(flow, fake, payment)
    clock.advance(seconds=flow.config.idempotency_lease + 1)
    if polled_first:
        await flow.refresh(payment.id)
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
    assert refund.status is RefundStatus.FAILED, "declined: the same answer as for a caller that lived to hear it"
    assert [op for op, _ in fake.calls].count("refund") == 1, "never sent again"
    after = await flow.get_payment(payment.id)
    assert [r.status for r in after.refunds] == [RefundStatus.FAILED]
    assert after.refunded_amount.is_zero()


async def test_a_refund_that_never_arrived_is_sent_again_by_the_retry_under_its_key(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Any
) -> None:
    payment = await pay()
    await _refund_cut_short(flow, fake, payment)
    fake.ledger[payment.id].refunds.clear()  # it never reached the provider after all
    clock.advance(seconds=flow.config.idempotency_lease + flow.config.provider_timeout + 1)  # a poll now settles it
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
    assert refund.status is RefundStatus.SUCCEEDED
    assert [op for op, _ in fake.calls].count("refund") == 2, "the lost request, then the one that arrived"
    assert (await flow.get_payment(payment.id)).refunded_amount == Money.of("2000", "XOF")


async def _taken_for_never_arrived(
    flow: PaymentFlow, fake: FakeProvider, payment: Payment, clock: Any, amount: str = "2000"
) -> tuple[Refund, RefundUpdate]:
    """A keyed refund cut short that the provider then shows no record of, so a fresh poll fails it as never
    arrived; the refund, and what the provider had made of it (for a test to show later)."""
    await _refund_cut_short(flow, fake, payment, amount)
    made = fake.ledger[payment.id].refunds
    (lost,) = made.values()
    made.clear()
    clock.advance(seconds=flow.config.idempotency_lease + flow.config.provider_timeout + 1)
    (failed,) = (await flow.refresh(payment.id)).refunds
    assert failed.status is RefundStatus.FAILED
    return failed, lost


@pytest.mark.parametrize("amount", ["2000", "5000"], ids=["in-part", "whole"])
async def test_a_refund_reported_made_while_its_retry_decides_is_the_keys_answer_never_sent_again(
    flow: PaymentFlow,
    fake: FakeProvider,
    pay: Callable[..., Any],
    clock: Any,
    monkeypatch: pytest.MonkeyPatch,
    amount: str,
) -> None:
    payment = await pay()
    failed, lost = await _taken_for_never_arrived(flow, fake, payment, clock, amount)  # so the retry may send it
    read_events = flow.writer.repository.list_events

    async def late_report_as_the_retry_decides(payment_id: str) -> Any:
        events = await read_events(payment_id)
        fake.ledger[payment.id].refunds[failed.id] = lost  # the provider had it after all, and says so now
        await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[lost]))
        return events

    monkeypatch.setattr(flow.writer.repository, "list_events", late_report_as_the_retry_decides)
    refund = await flow.refund(payment.id, amount=Money.of(amount, "XOF"), idempotency_key="re-7")
    assert (refund.id, refund.status) == (failed.id, RefundStatus.SUCCEEDED), "whole: it once raised InvalidTransition"
    assert [op for op, _ in fake.calls].count("refund") == 1, "never sent again"
    after = await flow.get_payment(payment.id)
    assert [r.status for r in after.refunds] == [RefundStatus.SUCCEEDED]
    assert after.refunded_amount == Money.of(amount, "XOF")
    assert await flow.refund(payment.id, amount=Money.of(amount, "XOF"), idempotency_key="re-7") == refund


@pytest.mark.parametrize("reported", [RefundStatus.FAILED, RefundStatus.PENDING], ids=["declined", "held-pending"])
async def test_a_refund_taken_for_never_arrived_that_the_provider_names_after_all_is_not_sent_again(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Any, reported: RefundStatus
) -> None:
    payment = await pay()
    failed, lost = await _taken_for_never_arrived(flow, fake, payment, clock)
    late = attrs.evolve(lost, status=reported)
    fake.ledger[payment.id].refunds[failed.id] = late  # it was on its way all the same, and the provider names it
    await flow.refresh(payment.id)
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
    assert (refund.id, refund.status, refund.external_id) == (failed.id, RefundStatus.FAILED, late.external_id)
    assert [op for op, _ in fake.calls].count("refund") == 1, "it reached the provider: never sent again"


async def test_a_refund_the_provider_names_declined_while_its_retry_decides_is_the_keys_answer(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await pay()
    failed, lost = await _taken_for_never_arrived(flow, fake, payment, clock)
    read_events = flow.writer.repository.list_events

    async def declined_as_the_retry_decides(payment_id: str) -> Any:
        events = await read_events(payment_id)
        fake.ledger[payment.id].refunds[failed.id] = attrs.evolve(lost, status=RefundStatus.FAILED)
        await flow.refresh(payment.id)  # it reached the provider after all, which declined it and names it
        return events

    monkeypatch.setattr(flow.writer.repository, "list_events", declined_as_the_retry_decides)
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
    assert (refund.id, refund.status, refund.external_id) == (failed.id, RefundStatus.FAILED, lost.external_id)
    assert [op for op, _ in fake.calls].count("refund") == 1, "declined: never sent again"


async def test_a_retry_that_took_the_key_over_from_a_slow_first_attempt_waits_for_its_call(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await pay()
    leases = MonotonicClock()
    flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
    first_checks, second_checks, first_sent = anyio.Event(), anyio.Event(), anyio.Event()
    first_goes_on, retry_goes_on, answer = anyio.Event(), anyio.Event(), anyio.Event()
    retried = anyio.Event()
    checks = 0

    async def slow_check(*_: Any) -> None:
        nonlocal checks
        checks += 1
        (first_checks if checks == 1 else second_checks).set()
        await (first_goes_on if checks == 1 else retry_goes_on).wait()

    refund = fake.refund

    async def slow_answer(*arguments: Any) -> Any:
        first_sent.set()
        await answer.wait()
        return await refund(*arguments)

    monkeypatch.setattr(fake, "check_refund", slow_check)
    monkeypatch.setattr(fake, "refund", slow_answer)
    answers: dict[str, Any] = {}

    async def attempt(name: str) -> None:
        try:
            answers[name] = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
        except PaycoreError as refused:
            answers[name] = refused
        if name == "retry":
            retried.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(attempt, "first")
        await first_checks.wait()
        leases.now += flow.config.idempotency_lease + 1  # the first attempt is slow, not gone: its key is taken over
        tasks.start_soon(attempt, "retry")
        await second_checks.wait()  # the retry read the payment before the first attempt wrote its refund
        first_goes_on.set()
        await first_sent.wait()  # the first attempt's refund and call are written; it waits for the provider
        retry_goes_on.set()
        with anyio.fail_after(5):
            await retried.wait()
        answer.set()
    assert isinstance(answers["retry"], PaymentBusy), "its call under way: busy, never its answer of the moment"
    final = await flow.refund(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="re-7")
    assert final.status is RefundStatus.SUCCEEDED
    assert (await flow.get_payment(payment.id)).refunds == (final,)
    assert [op for op, _ in fake.calls].count("refund") == 1


async def test_a_key_the_store_has_forgotten_still_names_the_same_payment(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    leases = MonotonicClock()
    flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
    first = await _create(flow)
    leases.now += flow.config.idempotency_ttl + 1  # the completed record is past its retention
    again = await _create(flow)
    assert again.payment.id == first.payment.id
    assert len(fake.calls) == 1
    assert len(await flow.list_payments()) == 1


async def test_a_forgotten_key_reused_for_another_payment_is_refused(flow: PaymentFlow, fake: FakeProvider) -> None:
    leases = MonotonicClock()
    flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
    first = await _create(flow)
    leases.now += flow.config.idempotency_ttl + 1
    with pytest.raises(IdempotencyKeyReused):
        await _create(flow, amount=Money.of("100", "XOF"))
    assert await flow.list_payments() == [first.payment]
    assert len(fake.calls) == 1


async def test_a_storage_failure_before_anything_was_sent_frees_the_key_for_the_retry(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await authorized()
    repository = flow.repository
    failures = iter([StorageUnavailable("the database went away")])

    def failing_once(write: Callable[..., Any]) -> Callable[..., Any]:
        async def attempt(*args: Any, **kwargs: Any) -> Any:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return await write(*args, **kwargs)

        return attempt

    for name in ("update", "save"):  # whichever write the capture's call goes down with
        monkeypatch.setattr(repository, name, failing_once(getattr(repository, name)))
    with pytest.raises(StorageUnavailable):
        await flow.capture(payment.id, idempotency_key="cap-1")
    assert await flow.get_payment(payment.id) == payment
    captured = await flow.capture(payment.id, idempotency_key="cap-1")  # at once: no lease to wait out
    assert captured.status is PaymentStatus.SUCCEEDED
    assert [call for call in fake.calls if call[0] == "capture"] == [("capture", payment.id)]


class SlowToComplete:
    """An idempotency store that keeps results as data, apart from the payments (a remote store), and takes
    ``delay`` seconds to write one."""

    def __init__(self, delay: float = 0.05) -> None:
        self.store = MemoryIdempotencyStore()
        self.delay = delay

    async def claim(self, **claim: Any) -> Any:
        return await self.store.claim(**claim)

    async def complete(self, **completion: Any) -> None:
        if self.delay:
            await anyio.sleep(self.delay)
        await self.store.complete(**completion)

    async def release(self, **release: Any) -> None:
        await self.store.release(**release)

    async def aclose(self) -> None:
        await self.store.aclose()


class SlowToKeep(SlowToComplete):
    """:class:`SlowToComplete` keeping paycore's own records as they are (a ``RecordKeepingStore``), slowly."""

    async def complete_record(self, **completion: Any) -> None:
        await anyio.sleep(self.delay)
        await self.store.complete_record(**completion)


@pytest.mark.parametrize("store", [SlowToComplete, SlowToKeep])
async def test_a_caller_cancelled_while_its_key_is_completed_leaves_the_key_completed(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], store: type[SlowToComplete]
) -> None:
    payment = await authorized()
    flow.idempotency_store = store()  # type: ignore[assignment]
    with anyio.move_on_after(0.01) as waited:  # lands while the capture's result is being kept
        await flow.capture(payment.id, idempotency_key="cap-1")
    assert waited.cancel_called
    replay = await flow.capture(payment.id, idempotency_key="cap-1")  # at once: the key holds the result
    assert replay.status is PaymentStatus.SUCCEEDED
    assert [call for call in fake.calls if call[0] == "capture"] == [("capture", payment.id)]


@pytest.mark.parametrize("operation", ["capture", "cancel", "refund"])
async def test_a_caller_cancelled_as_its_answer_is_written_gets_the_settled_result_on_retry(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], operation: str
) -> None:
    payment = await authorized()
    if operation == "refund":
        payment = await flow.capture(payment.id)
    flow.idempotency_store = SlowToComplete(delay=0)  # type: ignore[assignment]
    repository: Any = flow.repository
    write = repository.update
    writes = 0

    async def slow_second_write(*args: Any, **kwargs: Any) -> Any:
        nonlocal writes
        writes += 1
        written = await write(*args, **kwargs)
        if writes == 2:  # the answer's write has landed; the caller's deadline falls now
            await anyio.sleep(0.05)
        return written

    repository.update = slow_second_write
    with anyio.move_on_after(0.01) as waited:
        await getattr(flow, operation)(payment.id, idempotency_key="op-1")
    assert waited.cancel_called
    retried = await getattr(flow, operation)(payment.id, idempotency_key="op-1")
    expected = {"capture": PaymentStatus.SUCCEEDED, "cancel": PaymentStatus.CANCELED, "refund": RefundStatus.SUCCEEDED}
    assert retried.status is expected[operation]
    assert [call for call in fake.calls if call[0] == operation] == [(operation, payment.id)]


def _held_after_first_write(flow: PaymentFlow, clock: Any, *, seconds: float) -> anyio.Event:
    """Hold up the caller whose write comes next, after it (a slow observer, a paused process): the flow's clock
    moves ``seconds`` on, and the caller sleeps a little longer than that in real time. Set once it slept."""
    repository: Any = flow.repository
    write = repository.update
    woke = anyio.Event()
    held = False

    async def slow(*args: Any, **kwargs: Any) -> Any:
        nonlocal held
        written = await write(*args, **kwargs)
        if not held:
            held = True
            clock.advance(seconds=seconds)
            await anyio.sleep(seconds + 0.2)
            woke.set()
        return written

    repository.update = slow
    return woke


async def test_a_caller_held_up_past_its_calls_lease_never_sends_it(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    async with make_flow(provider_timeout=0.2, idempotency_lease=0.5) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await _create(flow, capture=True)).payment
        _held_after_first_write(flow, clock, seconds=0.5)
        with pytest.raises(ProviderNotSent, match="held up past its call's lease"):
            await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="refund-1")
        assert [call for call in fake.calls if call[0] == "refund"] == []
        (refund,) = (await flow.get_payment(payment.id)).refunds
        assert refund.status is RefundStatus.FAILED  # not sent: its amount is refundable again
        retried = await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="refund-1")
        assert retried.status is RefundStatus.SUCCEEDED
        assert [call for call in fake.calls if call[0] == "refund"] == [("refund", payment.id)]


async def test_a_retry_that_takes_over_a_held_up_callers_key_sends_once(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    async with make_flow(provider_timeout=0.2, idempotency_lease=0.5) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await _create(flow, capture=True)).payment
        woke = _held_after_first_write(flow, clock, seconds=0.8)  # past the lease by more than a timeout
        outcomes: list[object] = []

        async def first() -> None:
            try:
                outcomes.append(await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r-1"))
            except PaycoreError as error:
                outcomes.append(error)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            await anyio.sleep(0.9)  # the key's lease ran out while its first holder is held up
            retried = await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r-1")
            await woke.wait()
        assert retried.status is RefundStatus.SUCCEEDED
        assert [call for call in fake.calls if call[0] == "refund"] == [("refund", payment.id)]
        # told its key was taken over, never "not sent" (which would invite a retry under a new key)
        (told,) = outcomes
        assert isinstance(told, IdempotencyLeaseLost)
        assert "retry with the same idempotency key" in str(told)
        after = await flow.get_payment(payment.id)
        assert after.refunded_amount == Money.of("1000", "XOF")
        assert await flow.refund(payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r-1") == retried


@pytest.mark.parametrize(
    ("operation", "done"), [("capture", PaymentStatus.SUCCEEDED), ("cancel", PaymentStatus.CANCELED)]
)
async def test_a_retry_that_takes_over_a_held_up_capture_or_cancel_sends_it_once(
    make_flow: Callable[..., PaymentFlow], clock: Any, operation: str, done: PaymentStatus
) -> None:
    async with make_flow(provider_timeout=0.2, idempotency_lease=0.5) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await _create(flow, capture=False)).payment
        assert payment.status is PaymentStatus.AUTHORIZED
        woke = _held_after_first_write(flow, clock, seconds=0.8)  # past the lease by more than a timeout
        outcomes: list[object] = []

        async def first() -> None:
            try:
                outcomes.append(await getattr(flow, operation)(payment.id, idempotency_key="op-1"))
            except PaycoreError as error:
                outcomes.append(error)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            await anyio.sleep(0.9)  # the key's lease ran out while its first holder, its call written, is held up
            retried = await getattr(flow, operation)(payment.id, idempotency_key="op-1")
            await woke.wait()
        assert retried.status is done, "the held-up call never left: the retry sends it"
        assert [call for call in fake.calls if call[0] == operation] == [(operation, payment.id)]
        (told,) = outcomes
        assert isinstance(told, IdempotencyLeaseLost)
        assert await getattr(flow, operation)(payment.id, idempotency_key="op-1") == retried


async def test_a_key_let_go_by_the_request_that_took_it_over_keeps_its_first_holders_result(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    async with make_flow(provider_timeout=0.4, idempotency_lease=0.5) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
        repository: Any = flow.repository
        write, capture = repository.update, fake.capture
        slowed = False

        async def slow_first_write(*args: Any, **kwargs: Any) -> Any:
            nonlocal slowed
            if not slowed:
                slowed = True
                await anyio.sleep(0.4)  # the key was claimed; its call is written late
            return await write(*args, **kwargs)

        async def slow_capture(*args: Any) -> Any:
            await anyio.sleep(0.3)  # answered within the timeout, after the key's lease ran out
            return await capture(*args)

        repository.update, fake.capture = slow_first_write, slow_capture
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(flow.capture, payment.id, idempotency_key="cap-1"))
            await anyio.sleep(0.58)  # the key's lease ran out; the capture is on its way
            with pytest.raises(PaymentBusy):  # the retry took the key over, then let it go
                await flow.capture(payment.id, idempotency_key="cap-1")
        replay = await flow.capture(payment.id, idempotency_key="cap-1")  # the first holder's result, kept
        assert replay.status is PaymentStatus.SUCCEEDED
        assert [call for call in fake.calls if call[0] == "capture"] == [("capture", payment.id)]


class SlowToAnswerClaims(SlowToComplete):
    """A remote store whose next claims answer late, by ``delays`` seconds each (the claim itself is made at once)."""

    def __init__(self, *delays: float) -> None:
        super().__init__(delay=0)
        self.delays = list(delays)

    async def claim(self, **claim: Any) -> Any:
        answer = await self.store.claim(**claim)
        if self.delays:
            await anyio.sleep(self.delays.pop(0))
        return answer


async def test_a_key_still_held_by_the_request_that_took_it_over_keeps_its_first_holders_result_once_let_go(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    async with make_flow(provider_timeout=0.3, idempotency_lease=0.5) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
        flow.idempotency_store = SlowToAnswerClaims(0.3, 0.15)  # type: ignore[assignment]
        capture = fake.capture

        async def slow_capture(*args: Any) -> Any:
            await anyio.sleep(0.25)
            return await capture(*args)

        fake.capture = slow_capture  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(flow.capture, payment.id, idempotency_key="cap-1"))
            await anyio.sleep(0.52)  # the key's lease ran out; the first holder is about to finish
            with pytest.raises(InvalidTransition):  # the first holder finished while this one held the key
                await flow.capture(payment.id, idempotency_key="cap-1")
        replay = await flow.capture(payment.id, idempotency_key="cap-1")  # kept once the key was let go
        assert replay.status is PaymentStatus.SUCCEEDED
        assert [call for call in fake.calls if call[0] == "capture"] == [("capture", payment.id)]


class UnreachableOnRelease(SlowToComplete):
    """A remote store that claims and completes keys but does not answer when one is let go."""

    def __init__(self) -> None:
        super().__init__(delay=0)

    async def release(self, **release: Any) -> None:
        raise StorageUnavailable("the idempotency store did not answer")


async def test_a_key_the_store_cannot_let_go_leaves_the_caller_told_its_own_error(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A refund refused before it left (not sent) is told as such, not as the store's failure to let its key go;
    the error says the key is held until its lease, and a retry under it is refused meanwhile."""
    paid = await pay()
    flow.idempotency_store = UnreachableOnRelease()  # type: ignore[assignment]
    fake.script("refund", "not_sent")
    with caplog.at_level("WARNING", logger="paycore.idempotency"), pytest.raises(ProviderNotSent) as refused:
        await flow.refund(paid.id, amount=Money.of("500", "XOF"), idempotency_key="refund-1")
    (note,) = refused.value.__notes__
    assert note.startswith("its idempotency key could not be released (the idempotency store did not answer)")
    assert "could not be released" in caplog.text
    (failed,) = (await flow.get_payment(paid.id)).refunds
    assert failed.status is RefundStatus.FAILED
    with pytest.raises(IdempotencyInProgress):  # the retry never reaches the provider while the key is held
        await flow.refund(paid.id, amount=Money.of("500", "XOF"), idempotency_key="refund-1")
    assert [call for call in fake.calls if call[0] == "refund"] == [("refund", paid.id)]  # the one refused


async def test_a_key_too_long_is_refused_quoting_it_shortened(flow: PaymentFlow) -> None:
    with pytest.raises(ValidationError, match="idempotency_key must be") as refused:
        await _create(flow, key="k" * 10_000)
    assert len(str(refused.value)) < 200


async def test_a_released_refund_key_used_again_for_another_payment_names_another_refund(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    first, second = await pay(), await pay()
    fake.script("refund", "not_sent")
    with pytest.raises(ProviderNotSent):  # refused: its key is free again
        await flow.refund(first.id, amount=Money.of("500", "XOF"), idempotency_key="refund-1")
    refund = await flow.refund(second.id, amount=Money.of("500", "XOF"), idempotency_key="refund-1")
    (failed,) = (await flow.get_payment(first.id)).refunds
    assert refund.id != failed.id, "one refund id on two payments: a report of one could settle the other"
    assert (await flow.get_payment(second.id)).refunded_amount == Money.of("500", "XOF")


async def test_a_poll_asked_after_a_lease_ran_out_settles_no_call_made_since_and_no_capture_is_sent_twice(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    """A create's holder dies before sending; once its lease ran out, a refresh reads "not found" (true then) and
    answers slowly. Meanwhile the key's retry sends the create (authorized) and a capture is sent whose answer is
    lost. The old "not found" is older than both: the capture's call stays the provider's to tell, and the next
    capture asks the provider instead of capturing again."""
    async with make_flow(idempotency_lease=120) as flow:
        leases = MonotonicClock()
        flow.idempotency_store = MemoryIdempotencyStore(clock=leases)
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        initiate, check_status = fake.initiate, fake.check_status
        reached, read, release = anyio.Event(), anyio.Event(), anyio.Event()

        async def crash_before_sending(payment: Payment) -> Any:
            reached.set()
            await anyio.sleep_forever()

        fake.initiate = crash_before_sending  # type: ignore[method-assign]
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(partial(_create, flow, capture=False))
            await reached.wait()
            tasks.cancel_scope.cancel()
        fake.initiate = initiate  # type: ignore[method-assign]
        (crashed,) = await flow.list_payments()
        waited = 120 + flow.config.provider_timeout + 1
        leases.now += waited
        clock.advance(seconds=waited)

        async def answer_the_first_poll_late(payment: Payment) -> Any:
            answer = await check_status(payment)
            if not read.is_set():
                read.set()
                await release.wait()
            return answer

        fake.check_status = answer_the_first_poll_late  # type: ignore[method-assign]

        async def retry_then_capture() -> None:
            await read.wait()
            assert (await _create(flow, capture=False)).payment.status is PaymentStatus.AUTHORIZED
            fake.script("capture", "lost")
            lost = await flow.capture(crashed.id)
            assert lost.pending_call is not None
            assert lost.pending_call.unknown
            release.set()

        async with anyio.create_task_group() as group:
            group.start_soon(flow.refresh, crashed.id)
            group.start_soon(retry_then_capture)
        fake.check_status = check_status  # type: ignore[method-assign]
        stored = await flow.get_payment(crashed.id)
        assert stored.pending_call is not None
        assert stored.pending_call.unknown, "the lost capture's call is still the provider's to tell"
        with pytest.raises(InvalidTransition, match="succeeded"):  # asks first: the provider captured
            await flow.capture(crashed.id)
        assert [op for op, _ in fake.calls].count("capture") == 1


class UnreachableAtCompletion:
    """A store kept apart from the payments whose server stops answering once an operation is done, as its result
    is kept."""

    def __init__(self) -> None:
        self.store = MemoryIdempotencyStore()

    async def claim(self, **claim: Any) -> Any:
        return await self.store.claim(**claim)

    async def complete(self, **completion: Any) -> None:
        raise StorageUnavailable("the idempotency store is unavailable (TimeoutError)")

    async def release(self, **release: Any) -> None:
        await self.store.release(**release)

    async def aclose(self) -> None:
        await self.store.aclose()


async def test_an_operation_done_whose_result_cannot_be_kept_still_returns_it(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The capture is made and stored: a caller told "nothing was committed" would be told wrong."""
    payment = await authorized()
    flow.idempotency_store = UnreachableAtCompletion()  # type: ignore[assignment]
    captured = await flow.capture(payment.id, idempotency_key="cap-1")
    assert captured.status is PaymentStatus.SUCCEEDED
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED
    assert [op for op, _ in fake.calls].count("capture") == 1
    assert "its result could not be kept" in caplog.text


async def test_a_large_whole_float_in_metadata_is_kept_as_its_integer_and_fingerprinted_as_given(
    flow: PaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept as the integer it is (so it reads back equal from PostgreSQL's jsonb too); fingerprinted as the caller
    gave it, as releases before kept it: a faithful retry across an upgrade still replays."""
    import paycore.idempotency

    fingerprinted: list[Any] = []
    fingerprint = paycore.idempotency.fingerprint

    def watching(operation: str, arguments: Any) -> str:
        fingerprinted.append(arguments.get("metadata"))
        return fingerprint(operation, arguments)

    monkeypatch.setattr(paycore.idempotency, "fingerprint", watching)
    first = await _create(flow, metadata={"fx": 1e23, "rate": 0.5})
    assert first.payment.metadata == {"fx": 10**23 - 8388608, "rate": 0.5}  # the float 1e23's own integer
    assert type(first.payment.metadata["fx"]) is int
    assert type(fingerprinted[0]["fx"]) is float, "the request as given"
    again = await _create(flow, metadata={"fx": 1e23, "rate": 0.5})
    assert again.payment == first.payment


class TakenOverThenUnreachable(UnreachableAtCompletion):
    """Its key taken over while the operation ran; then the store stops answering."""

    async def complete(self, **completion: Any) -> None:
        raise IdempotencyLeaseLost("the key was taken over")

    async def claim(self, **claim: Any) -> Any:
        if getattr(self, "answered_once", False):
            raise StorageUnavailable("the idempotency store is unavailable (TimeoutError)")
        self.answered_once = True
        return await self.store.claim(**claim)


async def test_an_operation_done_whose_key_was_taken_over_and_cannot_be_kept_still_returns_it(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    flow.idempotency_store = TakenOverThenUnreachable()  # type: ignore[assignment]
    captured = await flow.capture(payment.id, idempotency_key="cap-1")
    assert captured.status is PaymentStatus.SUCCEEDED
    assert [op for op, _ in fake.calls].count("capture") == 1
