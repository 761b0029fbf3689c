"""A refund left pending at the provider ends somewhere: the reaper asks, or an operator settles it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from paycore import Money, RefundUpdate
from paycore.errors import (
    InvalidTransition,
    PaymentBusy,
    ProviderNotEnabled,
    ProviderOutcomeUnknown,
    RefundNotFound,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.records import Payment, Refund
from paycore.status import PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.fake import FakeProvider

if TYPE_CHECKING:
    from .conftest import Clock

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)


def xof(amount: int) -> Money:
    return Money.minor(amount, "XOF")


async def test_a_refund_whose_report_was_lost_is_settled_by_the_reapers_poll(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))
    pending = fake.ledger[payment.id].refunds[refund.id]
    fake.ledger[payment.id].refunds[refund.id] = attrs.evolve(pending, status=RefundStatus.SUCCEEDED)  # webhook lost
    clock.advance(minutes=30)
    assert await flow.expire_stale(HOUR) == [], "within the deadline its report may still come"
    clock.advance(minutes=31)
    (settled,) = await flow.expire_stale(HOUR)
    assert (settled.id, settled.refunded_amount, settled.status) == (
        payment.id,
        xof(2000),
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    assert not settled.needs_review
    events = await flow.list_events(payment.id)
    assert [(e.kind, e.cause) for e in events][-2:] == [
        ("refund_status_changed", "reaper"),
        ("status_changed", "reaper"),
    ]


async def test_a_refund_the_provider_still_holds_pending_is_asked_about_again_and_never_flagged(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    await flow.refund(payment.id, amount=xof(2000))
    for _ in range(3):
        clock.advance(hours=2)
        await flow.expire_stale(HOUR)
    after = await flow.get_payment(payment.id)
    assert (after.refunds[0].status, after.needs_review) == (RefundStatus.PENDING, False), "known, and the provider's"
    assert [op for op, _ in fake.calls].count("check_status") == 3


async def test_a_pending_refund_no_one_can_ask_about_is_flagged_past_twice_the_deadline_then_settled_by_an_operator(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, polls_report_refunds=False))
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))
    clock.advance(minutes=90)
    await flow.expire_stale(HOUR)
    assert not (await flow.get_payment(payment.id)).needs_review, "its webhook may still come"
    clock.advance(minutes=31)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.needs_review, flagged.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)
    assert refund.id in (flagged.review_message or "")
    assert await flow.expire_stale(HOUR) == [], "flagged once: an operator has it"
    resolved = await flow.resolve_refund(payment.id, refund.id, outcome="succeeded", note="done, per the dashboard")
    assert (resolved.refunded_amount, resolved.status) == (xof(2000), PaymentStatus.PARTIALLY_REFUNDED)
    event = (await flow.list_events(payment.id))[-2]
    assert (event.kind, event.cause, event.message) == ("refund_status_changed", "operator", "done, per the dashboard")
    assert not (await flow.resolve_review(payment.id, note="refund checked")).needs_review


async def test_an_operator_fails_a_refund_whose_outcome_is_unknown_and_it_is_refundable_again(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, clock: Clock
) -> None:
    """Only once its request can no longer reach the provider: failed before, it would be asked again and the
    customer paid twice."""
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, polls_report_refunds=False))
    payment = await pay()
    refund_at_provider = fake.refund

    async def lost(asked: Payment, refund: Refund) -> RefundUpdate:
        raise ProviderOutcomeUnknown("connection reset after the request was sent")

    monkeypatch.setattr(fake, "refund", lost)
    refund = await flow.refund(payment.id)  # the whole amount, outcome unknown
    assert refund.status is RefundStatus.PENDING
    with pytest.raises(ProviderOutcomeUnknown):  # nothing more is refunded while one's outcome is unknown
        await flow.refund(payment.id, amount=xof(1000))
    monkeypatch.setattr(fake, "refund", refund_at_provider)
    unknown = await flow.get_payment(payment.id)
    assert unknown.pending_call is not None
    with pytest.raises(PaymentBusy, match="may still reach the provider"):
        await flow.resolve_refund(payment.id, refund.id, outcome="failed", note="not on the dashboard yet")
    assert await flow.get_payment(payment.id) == unknown, "nothing changed"
    clock.advance(seconds=flow.config.idempotency_lease + flow.config.provider_timeout)
    configured = flow._parts.providers
    monkeypatch.setattr(flow._parts, "providers", {})  # a back office that does not configure the refund's provider
    with pytest.raises(ProviderNotEnabled, match="resolved failed only by a flow that configures its provider"):
        await flow.resolve_refund(payment.id, refund.id, outcome="failed", note="never reached the gateway")
    monkeypatch.setattr(flow._parts, "providers", configured)
    assert await flow.get_payment(payment.id) == unknown, "nothing changed"
    failed = await flow.resolve_refund(payment.id, refund.id, outcome="failed", note="never reached the gateway")
    assert (failed.refunds[0].status, failed.pending_call, failed.refundable_amount) == (
        RefundStatus.FAILED,
        None,
        xof(5000),
    )
    again = await flow.refund(payment.id, amount=xof(1000))
    assert again.status is RefundStatus.SUCCEEDED


async def test_only_a_pending_refund_is_resolved_and_only_as_succeeded_or_failed(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    done = await flow.refund(payment.id, amount=xof(1000))
    fake.script("refund", "pending")
    pending = await flow.refund(payment.id, amount=xof(1000))
    before = await flow.get_payment(payment.id)
    with pytest.raises(InvalidTransition, match="succeeded"):
        await flow.resolve_refund(payment.id, done.id, outcome="failed", note="n")
    with pytest.raises(ValidationError, match="succeeded or failed"):
        await flow.resolve_refund(payment.id, pending.id, outcome="pending", note="n")
    with pytest.raises(ValidationError, match="outcome"):
        await flow.resolve_refund(payment.id, pending.id, outcome="refunded", note="n")
    with pytest.raises(RefundNotFound):
        await flow.resolve_refund(payment.id, "re_unknown", outcome="failed", note="n")
    for blank in ("", "   ", "\n\t", "\u200b", "\u3164 \u2800", "\u034f", "\ufe0f\U000e0100", "\u17b4"):
        with pytest.raises(ValidationError, match="must say what was found"):
            await flow.resolve_refund(payment.id, pending.id, outcome="failed", note=blank)
    assert await flow.get_payment(payment.id) == before, "nothing changed"
    late = RefundUpdate(RefundStatus.FAILED, pending.id, amount=xof(1000))
    resolved = await flow.resolve_refund(payment.id, pending.id, outcome="succeeded", note="seen done")
    (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[late]))  # the provider disagrees
    assert (after.refunded_amount, after.review_reason) == (resolved.refunded_amount, ReviewReason.REFUND_REVERSED)


async def test_refunds_the_provider_holds_pending_for_days_never_starve_the_others_of_their_poll(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    fake.script("refund", "pending", "pending", "pending")
    held = [await pay(order_id=f"held-{n}") for n in range(2)]
    for payment in held:
        await flow.refund(payment.id, amount=xof(1000))  # a slow refund method: pending at the provider for days
    clock.advance(minutes=1)
    last = await pay(order_id="last")
    refund = await flow.refund(last.id, amount=xof(1000))
    done = fake.ledger[last.id].refunds[refund.id]
    fake.ledger[last.id].refunds[refund.id] = attrs.evolve(done, status=RefundStatus.SUCCEEDED)  # its webhook lost
    for _ in range(3):
        clock.advance(days=1)
        await flow.expire_stale(HOUR, limit=2)
    after = await flow.get_payment(last.id)
    assert (after.refunded_amount, after.needs_review) == (xof(1000), False), "asked about within a few runs"


async def test_one_failed_status_read_never_hands_a_refund_the_provider_holds_pending_to_an_operator(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))
    clock.advance(days=3)
    await flow.expire_stale(HOUR)  # asked: still pending at the provider, heard of now
    fake.poll_answer = "lost"
    clock.advance(minutes=61)
    await flow.expire_stale(HOUR)  # one read times out
    assert not (await flow.get_payment(payment.id)).needs_review, "heard of an hour ago: asked again next run"
    fake.poll_answer = None
    held = fake.ledger[payment.id].refunds[refund.id]
    fake.ledger[payment.id].refunds[refund.id] = attrs.evolve(held, status=RefundStatus.SUCCEEDED)  # webhook lost
    clock.advance(minutes=15)
    (settled,) = await flow.expire_stale(HOUR)
    assert (settled.refunded_amount, settled.needs_review) == (xof(2000), False)


async def test_a_refund_at_a_provider_never_reached_again_is_flagged_once_unheard_of_for_twice_the_deadline(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))
    fake.poll_answer = "not_sent"  # the provider down for good
    clock.advance(minutes=90)
    await flow.expire_stale(HOUR)
    assert not (await flow.get_payment(payment.id)).needs_review
    clock.advance(minutes=31)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.review_reason, flagged.refunds[0].status) == (ReviewReason.UNKNOWN_OUTCOME, RefundStatus.PENDING)
    assert refund.id in (flagged.review_message or "")


async def test_a_refund_the_providers_poll_stops_listing_is_flagged_once_unheard_of_for_twice_the_deadline(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))  # acknowledged pending, with the provider's id
    del fake.ledger[payment.id].refunds[refund.id]  # then lost at the provider: its polls answer, without it
    clock.advance(minutes=90)
    await flow.expire_stale(HOUR)
    assert not (await flow.get_payment(payment.id)).needs_review, "its report may still come"
    clock.advance(minutes=31)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.review_reason, flagged.refunds[0].status) == (ReviewReason.UNKNOWN_OUTCOME, RefundStatus.PENDING)
    assert refund.id in (flagged.review_message or "")
    assert "left it out" in (flagged.review_message or "")
    polls = [op for op, _ in fake.calls].count("check_status")
    assert await flow.expire_stale(HOUR) == [], "flagged once: an operator has it"
    assert [op for op, _ in fake.calls].count("check_status") == polls, "and it is not asked about run after run"


async def test_a_refund_is_flagged_once_unheard_of_for_twice_the_deadline_while_the_reads_of_other_payments_fail(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))  # acknowledged pending; its webhook is then lost
    fake.poll_answer = "not_sent"  # status reads down, payments still made: abandoned checkouts keep coming
    for number in range(18):  # three hours, a run every ten minutes: each run takes the provider for down first
        fake.script("initiate", "pending")
        await flow.create_payment(amount=xof(1000), provider="fake", order_id=f"abandoned-{number}")
        clock.advance(minutes=10)
        await flow.expire_stale(HOUR)
    flagged = await flow.get_payment(payment.id)
    assert (flagged.review_reason, flagged.refunds[0].status) == (ReviewReason.UNKNOWN_OUTCOME, RefundStatus.PENDING)
    assert refund.id in (flagged.review_message or "")


async def test_refunds_whose_reads_keep_failing_never_keep_their_providers_other_refunds_from_being_asked(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script("refund", *["pending"] * 5)
    failing = [await pay(order_id=f"failing-{n}") for n in range(3)]
    for payment in failing:
        await flow.refund(payment.id, amount=xof(1000))
    clock.advance(minutes=1)
    behind = [await pay(order_id=f"behind-{n}") for n in range(2)]
    for payment in behind:
        refund = await flow.refund(payment.id, amount=xof(1000))
        held = fake.ledger[payment.id].refunds[refund.id]
        fake.ledger[payment.id].refunds[refund.id] = attrs.evolve(held, status=RefundStatus.SUCCEEDED)  # lost
    read = fake.check_status
    unreadable = {payment.id for payment in failing}

    async def failing_for_some(payment: Payment) -> Any:
        if payment.id in unreadable:
            raise ProviderOutcomeUnknown("the gateway answered 500")
        return await read(payment)

    monkeypatch.setattr(fake, "check_status", failing_for_some)
    for _ in range(3):  # the second run is the first they are overdue in: the third starts behind the failing ones
        clock.advance(minutes=45)
        await flow.expire_stale(HOUR)
    for payment in behind:
        assert (await flow.get_payment(payment.id)).refunded_amount == xof(1000), "asked behind the failing ones"


@pytest.mark.parametrize("every", [60, 10], ids=["hourly-runs", "runs-every-10-minutes"])
async def test_a_cancel_that_never_reaches_the_provider_is_not_sent_run_after_run(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider="fake", order_id="o")).payment

    async def lost_on_the_way(asked: Payment) -> Any:
        fake.calls.append(("cancel", asked.id))
        raise ProviderOutcomeUnknown("the load balancer answered 504")  # the gateway never got it

    monkeypatch.setattr(fake, "cancel", lost_on_the_way)
    for _ in range(24 * 60 // every):
        clock.advance(minutes=every)
        await flow.expire_stale(HOUR)
    after = await flow.get_payment(payment.id)
    assert (after.status, after.needs_review, after.review_reason) == (
        PaymentStatus.PROCESSING,
        True,
        ReviewReason.UNKNOWN_OUTCOME,
    )
    assert [op for op, _ in fake.calls].count("cancel") <= 2, "an operator is told instead of a cancel every run"
