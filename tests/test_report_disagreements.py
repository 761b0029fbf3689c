"""Reports that disagree with what paycore recorded: checked, flagged for an operator once, never paid.

A report that repeats a recorded fact is a quiet no-op. One whose amount or currency differs from
what was recorded (an authorization, a capture, a refund) flags the payment, whatever state it is in.
A refund that failed here and is reported succeeded after all is money that went back: recorded if it
fits what was captured, flagged either way. A refund the provider made without an id can never be
matched by a later report: it is flagged, not recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio
import attrs
import pytest

from paycore import Money
from paycore.errors import MalformedWebhook, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.records import NextAction, Payment, ProviderUpdate, RefundUpdate
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.fake import FakeProvider

from .conftest import alter_reports

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def _deliver(flow: PaymentFlow, fake: FakeProvider, payment_id: str, **report: Any) -> Payment:
    (payment,) = await flow.handle_webhook("fake", *fake.webhook(payment_id, **report))
    return payment


async def _kinds(flow: PaymentFlow, payment_id: str) -> list[str]:
    return [event.kind for event in await flow.list_events(payment_id)]


def _unlisted(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake's polls no longer list every refund (as Wave's and the cash drawer's do not)."""
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, polls_report_refunds=False))


async def _paid_where_polls_list_no_refunds(
    flow: PaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> tuple[FakeProvider, Payment]:
    """``flow``'s fake provider, its polls listing no refunds, and a payment of 5 000 XOF paid by webhook."""
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    _unlisted(fake, monkeypatch)
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    fake.settle(payment.id, Outcome.SUCCEEDED)
    return fake, await _deliver(flow, fake, payment.id)


# -- a recorded amount reported otherwise -----------------------------------------------------


@pytest.mark.parametrize(
    "captured", [Money.of("4000", "XOF"), Money.of("5000", "EUR")], ids=["other-amount", "other-currency"]
)
async def test_a_captured_payment_reported_captured_otherwise_is_flagged_once(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], captured: Money
) -> None:
    payment = await pay()
    before = await _kinds(flow, payment.id)
    for _ in range(2):  # two deliveries of the same disagreement
        after = await _deliver(flow, fake, payment.id, outcome=Outcome.SUCCEEDED, captured=captured)
    assert (after.status, after.captured_amount) == (PaymentStatus.SUCCEEDED, XOF_5000)
    assert after.needs_review
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH
    assert (await _kinds(flow, payment.id))[len(before) :] == ["amount_mismatch", "flagged_for_review"]


async def test_a_captured_payment_reported_captured_again_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    before = await _kinds(flow, payment.id)
    again = await _deliver(flow, fake, payment.id, outcome=Outcome.SUCCEEDED, captured=XOF_5000)
    assert (again.status, again.captured_amount, again.needs_review) == (PaymentStatus.SUCCEEDED, XOF_5000, False)
    assert await _kinds(flow, payment.id) == before


async def test_an_authorized_payment_reported_authorized_for_another_amount_is_flagged(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    before = await _kinds(flow, payment.id)
    same = await _deliver(flow, fake, payment.id, outcome=Outcome.AUTHORIZED, authorized=XOF_5000)
    assert (same.status, same.needs_review) == (PaymentStatus.AUTHORIZED, False)
    assert await _kinds(flow, payment.id) == before
    other = await _deliver(flow, fake, payment.id, outcome=Outcome.AUTHORIZED, authorized=Money.of("7000", "XOF"))
    assert (other.status, other.authorized_amount) == (PaymentStatus.AUTHORIZED, XOF_5000)
    assert other.review_reason is ReviewReason.AMOUNT_MISMATCH


@pytest.mark.parametrize(
    "told", [Money.of("1", "XOF"), Money.of("50.00", "EUR")], ids=["other-amount", "other-currency"]
)
async def test_a_paid_report_whose_authorization_contradicts_it_is_flagged_and_never_paid(
    flow: PaymentFlow, fake: FakeProvider, told: Money
) -> None:
    fake.script("initiate", "pending")
    waiting = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T4-17")).payment
    after = await _deliver(flow, fake, waiting.id, outcome=Outcome.SUCCEEDED, captured=XOF_5000, authorized=told)
    assert (after.status, after.captured_amount) == (PaymentStatus.PROCESSING, None)
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH
    assert f"authorized amount: expected 5000 XOF, reported {told}" in after.review_message
    agreeing = await _deliver(flow, fake, waiting.id, outcome=Outcome.SUCCEEDED, captured=XOF_5000, authorized=XOF_5000)
    assert (agreeing.status, agreeing.captured_amount) == (PaymentStatus.SUCCEEDED, XOF_5000)


@pytest.mark.parametrize("then_the_hold", [False, True], ids=["hold-report-lost", "hold-report-late"])
async def test_a_capture_in_part_reported_before_its_hold_is_applied_as_in_order(
    flow: PaymentFlow, fake: FakeProvider, then_the_hold: bool
) -> None:
    """A hold of the whole amount, captured in part at the provider (its dashboard), whose capture report
    came before the hold's: the payment stayed processing, flagged as underpaid, for ever if the hold's report
    never came. The report names the hold it was captured from: applied as the two reports in order."""
    fake.script("initiate", "pending")
    waiting = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T4-18", capture=False)).payment
    part = Money.of("3000", "XOF")
    after = await _deliver(flow, fake, waiting.id, outcome=Outcome.SUCCEEDED, captured=part, authorized=XOF_5000)
    if then_the_hold:
        after = await _deliver(flow, fake, waiting.id, outcome=Outcome.AUTHORIZED, authorized=XOF_5000)
    assert (after.status, after.authorized_amount, after.captured_amount) == (PaymentStatus.SUCCEEDED, XOF_5000, part)
    assert not after.needs_review


@pytest.mark.parametrize(
    "told",
    [{}, {"authorized": XOF_5000}, {"authorized": XOF_5000, "captured": Money.of("30.00", "EUR")}],
    ids=["no-hold-named", "captured-at-once", "another-currency"],
)
async def test_a_payment_captured_at_once_reported_paid_in_part_is_an_underpayment_flagged_never_paid(
    flow: PaymentFlow, fake: FakeProvider, told: dict[str, Money]
) -> None:
    """Less than the amount reported paid, even naming a hold of the whole amount, of a payment made to be
    captured at once (or in another currency): an underpayment, flagged, never marked paid."""
    fake.script("initiate", "pending")
    waiting = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T4-19")).payment
    report = {"captured": Money.of("3000", "XOF"), **told}
    underpaid = await _deliver(flow, fake, waiting.id, outcome=Outcome.SUCCEEDED, **report)
    assert (underpaid.status, underpaid.captured_amount) == (PaymentStatus.PROCESSING, None)
    assert underpaid.review_reason is ReviewReason.AMOUNT_MISMATCH


async def test_a_capture_report_whose_authorization_contradicts_the_recorded_one_is_flagged_and_never_paid(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    after = await _deliver(
        flow, fake, payment.id, outcome=Outcome.SUCCEEDED, captured=XOF_5000, authorized=Money.of("9000", "XOF")
    )
    assert (after.status, after.captured_amount) == (PaymentStatus.AUTHORIZED, None)
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


async def test_a_late_repeat_of_a_recorded_authorization_is_no_news_after_a_cancel(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    late = fake.webhook(payment.id, outcome=Outcome.AUTHORIZED, authorized=XOF_5000)  # sent before the cancel
    await flow.cancel(payment.id)
    before = await _kinds(flow, payment.id)
    (after,) = await flow.handle_webhook("fake", *late)
    assert (after.status, after.needs_review) == (PaymentStatus.CANCELED, False)
    assert await _kinds(flow, payment.id) == before


async def test_a_succeeded_refund_reported_for_another_amount_is_flagged(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    refund = await flow.refund(payment.id, amount=Money.of("3000", "XOF"))
    other = RefundUpdate(RefundStatus.SUCCEEDED, refund.id, amount=Money.of("4000", "XOF"))
    after = await _deliver(flow, fake, payment.id, refunds=[other])
    assert after.refunded_amount == Money.of("3000", "XOF")
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


# -- a refund that failed here, reported succeeded after all ----------------------------------


async def test_a_declined_refund_reported_succeeded_after_all_is_recorded_and_flagged(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "decline")
    declined = await flow.refund(payment.id, amount=XOF_5000)
    assert declined.status is RefundStatus.FAILED
    succeeded = RefundUpdate(RefundStatus.SUCCEEDED, declined.id, amount=XOF_5000)
    for _ in range(2):
        after = await _deliver(flow, fake, payment.id, refunds=[succeeded])
    assert after.refund(declined.id).status is RefundStatus.SUCCEEDED
    assert (after.status, after.refunded_amount) == (PaymentStatus.REFUNDED, XOF_5000)
    assert after.refundable_amount.is_zero()  # the customer is not paid back a second time
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION
    (late,) = [e for e in await flow.list_events(payment.id) if e.from_status == "failed"]
    assert (late.kind, late.to_status, late.refund_id) == ("refund_status_changed", "succeeded", declined.id)


async def test_a_failed_refund_reported_succeeded_once_refunded_again_is_flagged_not_recorded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "decline")
    declined = await flow.refund(payment.id, amount=XOF_5000)
    again = await flow.refund(payment.id, amount=XOF_5000)  # the operator refunds again: it succeeds
    assert again.status is RefundStatus.SUCCEEDED
    before = await _kinds(flow, payment.id)
    succeeded = RefundUpdate(RefundStatus.SUCCEEDED, declined.id, amount=XOF_5000)
    for _ in range(2):
        after = await _deliver(flow, fake, payment.id, refunds=[succeeded])
    assert after.refund(declined.id).status is RefundStatus.FAILED
    assert after.refunded_amount == XOF_5000  # never more than was captured
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION
    assert (await _kinds(flow, payment.id))[len(before) :] == ["late_refund", "flagged_for_review"]


# -- a refund made at the provider without an id ----------------------------------------------


async def test_a_refund_made_at_the_provider_without_an_id_is_flagged_not_recorded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    nameless = RefundUpdate(RefundStatus.SUCCEEDED, amount=Money.of("1000", "XOF"))
    before = await _kinds(flow, payment.id)
    for _ in range(3):  # three deliveries of the same state: never three refunds
        after = await _deliver(flow, fake, payment.id, refunds=[nameless])
    assert after.refunds == ()
    assert after.refundable_amount == XOF_5000
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH
    assert (await _kinds(flow, payment.id))[len(before) :] == ["amount_mismatch", "flagged_for_review"]


async def test_a_refund_made_elsewhere_while_a_refunds_answer_is_lost_is_recorded_and_flagged(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No poll lists every refund: nothing would tell whether the caller's lost refund and the reported one are one.
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, polls_report_refunds=False))
    payment = await pay()
    fake.script("refund", "lost")
    lost = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    assert lost.status is RefundStatus.PENDING
    theirs = RefundUpdate(RefundStatus.SUCCEEDED, "gw_refund_77", amount=Money.of("2000", "XOF"))
    after = await _deliver(flow, fake, payment.id, refunds=[theirs])
    assert [r.external_id for r in after.refunds if r.id != lost.id] == ["gw_refund_77"]
    assert after.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert f"while the answer to refund {lost.id} was lost" in after.review_message


async def test_a_refund_made_elsewhere_reported_while_a_refund_travels_whose_answer_is_then_lost_is_flagged(
    make_flow: Callable[..., PaymentFlow], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other order: the provider's webhook names the refund its own way before the connection drops.
    async with make_flow(provider_timeout=0.5, idempotency_lease=5) as flow:
        fake, payment = await _paid_where_polls_list_no_refunds(flow, monkeypatch)
        fake.script("refund", "hang")
        theirs = RefundUpdate(RefundStatus.SUCCEEDED, "gw_refund_77", amount=Money.of("2000", "XOF"))
        async with anyio.create_task_group() as refunding:
            refunding.start_soon(functools.partial(flow.refund, payment.id, amount=Money.of("2000", "XOF")))
            await anyio.wait_all_tasks_blocked()  # the refund sent, its answer awaited
            assert ("refund", payment.id) in fake.calls
            travelling = await _deliver(flow, fake, payment.id, refunds=[theirs])
            assert not travelling.needs_review, "its answer may yet come and name it"
        after = await flow.get_payment(payment.id)
    (ours,) = [r for r in after.refunds if r.external_id != "gw_refund_77"]
    assert ours.status is RefundStatus.PENDING
    assert after.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert f"while the answer to refund {ours.id} was lost" in after.review_message


async def test_a_report_naming_the_lost_refund_and_another_apart_flags_nothing(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, polls_report_refunds=False))
    payment = await pay()
    fake.script("refund", "lost")
    ours = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    named = RefundUpdate(RefundStatus.SUCCEEDED, ours.id, amount=Money.of("2000", "XOF"))
    theirs = RefundUpdate(RefundStatus.SUCCEEDED, "gw_refund_78", amount=Money.of("1000", "XOF"))
    after = await _deliver(flow, fake, payment.id, refunds=[named, theirs])
    assert after.refunded_amount == Money.of("3000", "XOF")
    assert not after.needs_review


async def test_a_report_naming_the_lost_refund_pending_beside_another_flags_nothing(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _unlisted(fake, monkeypatch)
    payment = await pay()
    fake.script("refund", "lost")
    ours = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    named = RefundUpdate(RefundStatus.PENDING, ours.id, amount=Money.of("2000", "XOF"))
    theirs = RefundUpdate(RefundStatus.SUCCEEDED, "gw_refund_79", amount=Money.of("1000", "XOF"))
    after = await _deliver(flow, fake, payment.id, refunds=[theirs, named])
    assert not after.needs_review, "the report named them apart"


async def test_a_refund_made_elsewhere_after_the_lost_refunds_call_was_settled_unknown_is_flagged(
    make_flow: Callable[..., PaymentFlow], clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_flow(provider_timeout=1.0, idempotency_lease=2.0) as flow:
        fake, payment = await _paid_where_polls_list_no_refunds(flow, monkeypatch)
        fake.script("refund", "lost")
        ours = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
        fake.ledger[payment.id].refunds.pop(ours.id)  # the provider's poll says nothing of it
        clock.advance(seconds=60)
        polled = await flow.refresh(payment.id)
        assert polled.pending_call is None
        assert polled.refund(ours.id).status is RefundStatus.PENDING
        theirs = RefundUpdate(RefundStatus.SUCCEEDED, "gw_refund_80", amount=Money.of("2000", "XOF"))
        after = await _deliver(flow, fake, payment.id, refunds=[theirs])
    assert f"while the answer to refund {ours.id} was lost" in after.review_message


async def test_a_refund_made_elsewhere_while_a_refunds_caller_is_cut_off_is_flagged_once_cut(
    make_flow: Callable[..., PaymentFlow], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with make_flow(provider_timeout=30, idempotency_lease=60) as flow:
        fake, payment = await _paid_where_polls_list_no_refunds(flow, monkeypatch)
        fake.script("refund", "hang")
        theirs = RefundUpdate(RefundStatus.SUCCEEDED, "gw_refund_81", amount=Money.of("2000", "XOF"))
        async with anyio.create_task_group() as refunding:
            refunding.start_soon(functools.partial(flow.refund, payment.id, amount=Money.of("2000", "XOF")))
            await anyio.wait_all_tasks_blocked()
            assert not (await _deliver(flow, fake, payment.id, refunds=[theirs])).needs_review
            refunding.cancel_scope.cancel()  # the caller goes: no one will hear the answer
        after = await flow.get_payment(payment.id)
    (ours,) = [r for r in after.refunds if r.external_id != "gw_refund_81"]
    assert after.pending_call is not None
    assert after.pending_call.unknown
    assert f"while the answer to refund {ours.id} was lost" in after.review_message
    kinds = [e.message for e in await flow.list_events(payment.id) if e.kind == "flagged_for_review"]
    assert len(kinds) == 1


# -- an operator is told of each fact, once -------------------------------------------------


async def test_two_facts_for_one_reason_are_both_told_and_neither_twice(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    first = await flow.refund(payment.id, amount=Money.of("3000", "XOF"))
    second = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    for refund in (first, second, first, second):  # one event per refund, each delivered twice
        reversed_ = RefundUpdate(RefundStatus.FAILED, refund.id, amount=refund.amount)
        after = await _deliver(flow, fake, payment.id, refunds=[reversed_])
    told = [e.refund_id for e in await flow.list_events(payment.id) if e.kind == "refund_reversed"]
    assert told == [first.id, second.id]
    assert after.review_reason is ReviewReason.REFUND_REVERSED
    assert first.id in after.review_message
    assert second.id in after.review_message


async def test_a_report_with_two_disagreements_delivered_again_tells_nothing_new(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    refund = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
    reversed_ = RefundUpdate(RefundStatus.FAILED, refund.id, amount=refund.amount)
    report = {"outcome": Outcome.SUCCEEDED, "captured": Money.of("4000", "XOF"), "refunds": [reversed_]}
    await _deliver(flow, fake, payment.id, **report)
    told = await _kinds(flow, payment.id)
    assert told[-4:] == ["amount_mismatch", "flagged_for_review", "refund_reversed", "flagged_for_review"]
    await _deliver(flow, fake, payment.id, **report)  # the same state, under a new event id
    assert await _kinds(flow, payment.id) == told


async def test_a_late_authorization_delivered_again_is_told_once_beside_another_review(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    await flow.set_fraud_status(payment.id, "review", message="velocity: 5 cards")
    await flow.cancel(payment.id)
    for _ in range(2):  # two deliveries of an authorization the payment never had here
        after = await _deliver(flow, fake, payment.id, outcome=Outcome.AUTHORIZED, authorized=XOF_5000)
    assert [e.kind for e in await flow.list_events(payment.id)].count("late_authorization") == 1
    assert after.review_reason is ReviewReason.FRAUD  # the more pressing reason is kept
    assert "velocity: 5 cards" in after.review_message
    assert "provider authorized 5000 XOF after the payment was canceled" in after.review_message


async def test_a_refund_reported_under_another_refunds_reference_is_flagged_and_neither_moves(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await pay()
    first = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
    fake.script("refund", "pending")
    second = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
    assert (first.status, second.status) == (RefundStatus.SUCCEEDED, RefundStatus.PENDING)
    reused = RefundUpdate(
        RefundStatus.SUCCEEDED, refund_id=second.id, external_id=first.external_id, amount=Money.of("1000", "XOF")
    )

    async def reports(body: bytes, headers: Any) -> list[ProviderUpdate]:
        return [ProviderUpdate(provider_event_id="evt_reused", payment_id=payment.id, refunds=(reused,))]

    monkeypatch.setattr(fake, "parse_webhook", reports)
    for _ in range(2):  # delivered again: told once
        (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert [(r.id, r.status) for r in after.refunds] == [
        (first.id, RefundStatus.SUCCEEDED),
        (second.id, RefundStatus.PENDING),
    ], "which refund moved is not certain: neither is changed"
    assert (after.refunded_amount, after.refundable_amount) == (Money.of("1000", "XOF"), Money.of("3000", "XOF"))
    assert after.needs_review
    assert second.id in after.review_message
    assert first.id in after.review_message
    assert (await _kinds(flow, payment.id)).count("refund_reference_mismatch") == 1


# -- a report about another payment -----------------------------------------------------------


async def _pending(flow: PaymentFlow, fake: FakeProvider, order_id: str) -> Payment:
    fake.script("initiate", "pending")
    return (await flow.create_payment(amount=XOF_5000, provider="fake", order_id=order_id)).payment


async def test_a_poll_answered_for_another_payment_is_not_recorded_and_flags_the_payment(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked, other = await _pending(flow, fake, "o-1"), await _pending(flow, fake, "o-2")

    async def about_the_other(payment: Payment) -> ProviderUpdate:
        return ProviderUpdate(outcome=Outcome.SUCCEEDED, payment_id=other.id, captured=XOF_5000)

    monkeypatch.setattr(fake, "check_status", about_the_other)
    for _ in range(2):
        polled = await flow.refresh(asked.id)
    assert (polled.status, polled.captured_amount) == (asked.status, None)
    assert (polled.needs_review, polled.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)
    assert f"names payment {other.id}" in (polled.review_message or "")
    assert (await _kinds(flow, asked.id)).count("report_of_another_payment") == 1
    assert await flow.get_payment(other.id) == other


async def test_a_create_answered_for_another_payment_leaves_its_call_unknown_and_flags_it(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = await _pending(flow, fake, "o-1")

    async def about_the_other(payment: Payment) -> ProviderUpdate:
        return ProviderUpdate(outcome=Outcome.SUCCEEDED, payment_id=other.id, captured=XOF_5000)

    monkeypatch.setattr(fake, "initiate", about_the_other)
    monkeypatch.setattr(fake, "check_status", about_the_other)
    created = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-2")).payment
    assert created.status is PaymentStatus.PROCESSING, "the create reached the provider"
    assert created.pending_call is not None
    assert created.pending_call.unknown
    assert (created.needs_review, created.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)
    assert created.captured_amount is None


async def test_a_create_answered_with_another_payment_s_page_sends_the_customer_nowhere(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = await _pending(flow, fake, "o-1")
    page = NextAction(kind="redirect", url="https://pay.example/c/the-other-one")

    async def the_other_s_page(payment: Payment) -> ProviderUpdate:
        return ProviderUpdate(outcome=Outcome.PENDING, payment_id=other.id, next_action=page)

    monkeypatch.setattr(fake, "initiate", the_other_s_page)
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-2")
    assert checkout.payment.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert (checkout.action, checkout.payment.next_action) == (None, None)


async def test_a_create_answered_with_its_own_page_sends_the_customer_there(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = NextAction(kind="redirect", url="https://pay.example/c/its-own")

    async def its_own_page(payment: Payment) -> ProviderUpdate:
        return ProviderUpdate(outcome=Outcome.PENDING, payment_id=payment.id, external_id="fk_own", next_action=page)

    monkeypatch.setattr(fake, "initiate", its_own_page)
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-2")
    assert (checkout.payment.status, checkout.payment.needs_review) == (PaymentStatus.PROCESSING, False)
    assert checkout.action == checkout.payment.next_action == page


async def test_an_answer_giving_a_reference_another_payment_holds_is_not_recorded_and_flags_the_payment(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = await _pending(flow, fake, "o-1")
    assert holder.external_id is not None

    async def its_reference(payment: Payment) -> ProviderUpdate:
        return ProviderUpdate(outcome=Outcome.SUCCEEDED, external_id=holder.external_id, captured=XOF_5000)

    monkeypatch.setattr(fake, "initiate", its_reference)
    monkeypatch.setattr(fake, "check_status", its_reference)
    with pytest.raises(ProviderOutcomeUnknown, match="reference another payment holds"):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-2", idempotency_key="k-2")
    (created,) = [p for p in await flow.list_payments() if p.id != holder.id]
    assert created.pending_call is not None
    assert created.pending_call.unknown, "the provider is asked again before anything else"
    assert (created.needs_review, created.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)
    assert (created.status, created.external_id) == (PaymentStatus.PROCESSING, None), "it reached the provider"
    with pytest.raises(ProviderOutcomeUnknown):
        await flow.refresh(created.id)
    assert (await _kinds(flow, created.id)).count("report_of_another_payment") == 1
    assert await flow.get_payment(holder.id) == holder


async def test_a_report_of_another_object_at_a_provider_with_one_id_per_payment_is_not_recorded(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _pending(flow, fake, "o-1")
    assert payment.external_id is not None
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, one_id_per_payment=True))
    parse = fake.parse_webhook
    alter_reports(fake, monkeypatch, lambda report: attrs.evolve(report, external_id="fk_second_checkout"))
    fake.settle(payment.id, Outcome.SUCCEEDED)
    with pytest.raises(MalformedWebhook, match="fk_second_checkout"):  # at the door: refused, nothing changes
        await _deliver(flow, fake, payment.id)
    assert await flow.get_payment(payment.id) == payment
    after = await flow.refresh(payment.id)  # a poll's answer: not recorded, the payment flagged for an operator
    assert (after.status, after.captured_amount, after.external_id) == (payment.status, None, payment.external_id)
    assert "fk_second_checkout" not in after.references
    assert (after.needs_review, after.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)
    monkeypatch.setattr(fake, "parse_webhook", parse)
    assert (await _deliver(flow, fake, payment.id)).status is PaymentStatus.SUCCEEDED, "its own id: recorded"


@pytest.mark.parametrize(
    ("reported", "foreign"),
    [("fk_another", True), ("cs_checkout", False), ("nokind", False)],
    ids=["another-id-of-a-kind-it-holds", "an-id-of-another-kind", "an-id-of-no-kind"],
)
async def test_a_report_of_another_object_of_a_kind_the_payment_holds_is_not_recorded(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, reported: str, foreign: bool
) -> None:
    """At a provider naming a payment by one id of each kind (Stripe: one session, one intent), a report about
    another intent that carries the payment's id (a copy of its metadata) must not pay it."""
    payment = await _pending(flow, fake, "o-1")
    assert payment.external_id is not None
    assert payment.external_id.startswith("fk_")
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, one_id_per_kind=True))
    alter_reports(fake, monkeypatch, lambda report: attrs.evolve(report, external_id=reported))
    fake.settle(payment.id, Outcome.SUCCEEDED)
    if not foreign:  # another kind of id (a checkout session of the intent), or one of no kind: recorded
        paid = await _deliver(flow, fake, payment.id)
        assert (paid.status, paid.references) == (PaymentStatus.SUCCEEDED, (payment.external_id, reported))
        return
    with pytest.raises(MalformedWebhook, match=f"about {reported}, not this payment's {payment.external_id}"):
        await _deliver(flow, fake, payment.id)
    assert await flow.get_payment(payment.id) == payment
    after = await flow.refresh(payment.id)
    assert (after.status, after.captured_amount, after.references) == (payment.status, None, payment.references)
    assert (after.needs_review, after.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)


async def test_a_delivery_whose_later_report_is_about_another_object_than_an_earlier_one_gives_is_refused_whole(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script("initiate", "lost")  # the create's answer is lost: the payment holds no provider id yet
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1")).payment
    assert (payment.status, payment.external_id) == (PaymentStatus.PROCESSING, None)
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, one_id_per_payment=True))

    async def two_checkouts(body: bytes, headers: Any) -> list[ProviderUpdate]:
        return [
            ProviderUpdate(outcome=Outcome.PENDING, payment_id=payment.id, external_id="fk_first"),
            ProviderUpdate(
                outcome=Outcome.SUCCEEDED, payment_id=payment.id, external_id="fk_second", captured=XOF_5000
            ),
        ]

    monkeypatch.setattr(fake, "parse_webhook", two_checkouts)
    with pytest.raises(MalformedWebhook, match="fk_second"):
        await _deliver(flow, fake, payment.id)
    assert await flow.get_payment(payment.id) == payment, "refused whole: the first report was not written either"


@pytest.mark.parametrize("asked", ["before-the-cancel", "after-the-cancel", "before-the-operator-failed-it"])
async def test_a_hold_a_poll_saw_before_the_payment_was_canceled_is_not_told_as_late(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, asked: str
) -> None:
    """The customer authorized at the provider; a poll reads that, the cancel commits (voiding the hold), then the
    poll's answer lands. The hold came before the cancel: nothing to tell. A poll asked after the cancel that still
    reports a hold is told (the provider authorized after the payment was canceled here), and so is one a poll saw
    before an operator's word closed the payment: that voided nothing at the provider."""
    payment = await _pending(flow, fake, "o-1")
    fake.settle(payment.id, Outcome.AUTHORIZED)
    check_status, answered = fake.check_status, anyio.Event()
    held = await check_status(payment)  # what the provider says now: authorized

    async def slow_poll(asked_on: Payment) -> ProviderUpdate:
        await answered.wait()
        return held

    monkeypatch.setattr(fake, "check_status", slow_poll)
    if asked.startswith("before"):
        async with anyio.create_task_group() as group:
            group.start_soon(flow.refresh, payment.id)
            await anyio.sleep(0.05)  # the poll is asked, its answer on its way
            monkeypatch.setattr(fake, "check_status", check_status)
            if asked == "before-the-cancel":
                canceled = await flow.cancel(payment.id)
            else:
                canceled = await flow.resolve_payment(payment.id, outcome="failed", note="the customer walked away")
            answered.set()
    else:
        monkeypatch.setattr(fake, "check_status", check_status)
        canceled = await flow.cancel(payment.id)
        monkeypatch.setattr(fake, "check_status", slow_poll)
        answered.set()
        await flow.refresh(payment.id)
    after = await flow.get_payment(payment.id)
    assert after.status is canceled.status
    assert after.status in (PaymentStatus.CANCELED, PaymentStatus.FAILED)
    assert after.needs_review is (asked != "before-the-cancel")
