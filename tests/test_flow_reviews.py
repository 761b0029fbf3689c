"""Fraud status and the needs-review flag: set by a provider's report or an operator."""

from __future__ import annotations

from typing import Any

import pytest

from paycore import Money, ProviderUpdate
from paycore.changes import Change
from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.status import FraudStatus, Outcome, PaymentStatus, ReviewReason
from paycore.testing.fake import FakeProvider
from paycore.testing.records import BASE_TIME, make_payment
from paycore.updates import apply_report

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def test_an_operator_review_verdict_flags_the_payment(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    after = await flow.set_fraud_status(payment.id, "review", message="velocity: 5 cards in 1 minute")
    assert after.fraud_status is FraudStatus.REVIEW
    assert after.fraud_message == "velocity: 5 cards in 1 minute"
    assert after.needs_review
    assert after.review_reason is ReviewReason.FRAUD
    assert after.status is PaymentStatus.SUCCEEDED
    (fraud,) = [e for e in await flow.list_events(payment.id) if e.kind == "fraud_status_changed"]
    assert (fraud.from_status, fraud.to_status, fraud.cause) == ("unknown", "review", "operator")


async def test_an_accepted_verdict_does_not_flag(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    after = await flow.set_fraud_status(payment.id, FraudStatus.ACCEPTED)
    assert after.fraud_status is FraudStatus.ACCEPTED
    assert not after.needs_review


async def test_the_same_verdict_twice_changes_nothing(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    first = await flow.set_fraud_status(payment.id, "rejected", message="stolen card")
    assert await flow.set_fraud_status(payment.id, "rejected", message="stolen card") == first


async def test_an_unknown_fraud_status_is_refused(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    with pytest.raises(
        ValidationError, match="fraud status must be one of unknown, accepted, rejected, review; not 'suspicious'"
    ):
        await flow.set_fraud_status(payment.id, "suspicious")
    assert await flow.get_payment(payment.id) == payment


async def test_resolving_a_review_clears_the_flag_and_records_the_note(flow: PaymentFlow, fake: FakeProvider) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, captured=Money.of("4000", "XOF"))
    await flow.handle_webhook("fake", body, headers)
    resolved = await flow.resolve_review(payment.id, note="customer paid the rest in cash")
    assert not resolved.needs_review
    assert resolved.review_reason is None
    assert "4000 XOF" in resolved.review_message, "what the operator was told is kept"
    last = (await flow.list_events(payment.id))[-1]
    assert (last.kind, last.message, last.cause) == ("review_resolved", "customer paid the rest in cash", "operator")


@pytest.mark.parametrize("told", ["amount", "late authorization"])
async def test_a_fact_reported_again_after_its_review_was_resolved_is_not_told_again(
    flow: PaymentFlow, fake: FakeProvider, told: str
) -> None:
    fake.script("initiate", "pending" if told == "amount" else "decline")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    report = (
        {"outcome": Outcome.SUCCEEDED, "captured": Money.of("4000", "XOF")}
        if told == "amount"
        else {"outcome": Outcome.AUTHORIZED, "authorized": XOF_5000}
    )
    await flow.handle_webhook("fake", *fake.webhook(payment.id, **report))
    resolved = await flow.resolve_review(payment.id, note="looked at it")
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    (again,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, **report))  # a new delivery of it
    assert not again.needs_review
    assert (again.status, again.review_message) == (resolved.status, resolved.review_message)
    assert [event.kind for event in await flow.list_events(payment.id)] == kinds
    fake.script("initiate", "pending")
    other = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o2")).payment
    await flow.handle_webhook("fake", *fake.webhook(other.id, outcome=Outcome.SUCCEEDED, captured=XOF_5000))
    await flow.set_fraud_status(payment.id, "review", message="velocity")  # a new fact is told
    flagged = await flow.get_payment(payment.id)
    assert (flagged.needs_review, flagged.review_reason) == (True, ReviewReason.FRAUD)
    assert flagged.review_message.endswith("velocity")


async def test_resolving_a_payment_that_needs_no_review_changes_nothing(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    assert await flow.resolve_review(payment.id, note="nothing to do") == payment


@pytest.mark.parametrize("note", ["", "   ", "\n\t"])
async def test_a_review_is_not_resolved_without_a_word_of_how(flow: PaymentFlow, fake: FakeProvider, note: str) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    fake.settle(payment.id, Outcome.SUCCEEDED, captured=Money.of("4000", "XOF"))
    (flagged,) = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert flagged.needs_review
    with pytest.raises(ValidationError, match="must say what was found"):
        await flow.resolve_review(payment.id, note=note)
    assert await flow.get_payment(payment.id) == flagged


def test_a_providers_fraud_report_is_recorded_and_flags_a_review() -> None:
    change = Change(make_payment(), cause="webhook", now=BASE_TIME)
    apply_report(change, ProviderUpdate(fraud_status=FraudStatus.REVIEW, fraud_message="3-D Secure skipped"))
    payment = change.result()
    assert payment is not None
    assert payment.fraud_status is FraudStatus.REVIEW
    assert payment.review_reason is ReviewReason.FRAUD
    assert [e.kind for e in change.events] == ["fraud_status_changed", "flagged_for_review"]


def _flagged(reason: ReviewReason, message: str) -> Any:
    return make_payment(needs_review=True, review_reason=reason, review_message=message)


def test_a_second_flag_keeps_the_first_facts_and_the_more_pressing_reason() -> None:
    change = Change(_flagged(ReviewReason.FRAUD, "velocity: 5 cards"), cause="webhook", now=BASE_TIME)
    change.flag(ReviewReason.AMOUNT_MISMATCH, "captured amount: expected 5000 XOF, reported 4000 XOF")
    payment = change.result()
    assert payment is not None
    assert payment.review_reason is ReviewReason.FRAUD
    assert payment.review_message == "velocity: 5 cards; captured amount: expected 5000 XOF, reported 4000 XOF"
    (event,) = change.events
    assert event.message == "amount_mismatch: captured amount: expected 5000 XOF, reported 4000 XOF"


def test_an_unknown_outcome_is_the_reason_a_payment_keeps_whatever_else_is_flagged() -> None:
    change = Change(_flagged(ReviewReason.UNKNOWN_OUTCOME, "polling could not settle it"), cause="api", now=BASE_TIME)
    change.flag(ReviewReason.FRAUD, "stolen card")
    first = change.result()
    assert first is not None
    assert first.review_reason is ReviewReason.UNKNOWN_OUTCOME  # the reaper leaves it to the operator still
    later = Change(_flagged(ReviewReason.FRAUD, "stolen card"), cause="reaper", now=BASE_TIME)
    later.flag(ReviewReason.UNKNOWN_OUTCOME, "the provider cannot be polled")
    second = later.result()
    assert second is not None
    assert second.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert second.review_message == "stolen card; the provider cannot be polled"
