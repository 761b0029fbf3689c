"""An operator's word on an open payment its provider's reports cannot settle (``resolve_payment``).

The first case is mobile money's: a customer sent 8 000 XOF of a 10 000 XOF bill. The report is flagged
(``amount_mismatch``) and never pays the payment; without the operator's word the 8 000 the provider holds
could be neither kept nor refunded, and the reaper asked about the payment on every run.
"""

from __future__ import annotations

from typing import Any

import pytest

from paycore import Money
from paycore.errors import (
    CurrencyMismatch,
    InvalidAmount,
    InvalidTransition,
    PaymentBusy,
    PaymentNotFound,
    RefundExceedsCaptured,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, ReviewReason
from paycore.testing.fake import FakeProvider

from .conftest import Clock

pytestmark = pytest.mark.anyio

XOF_10000 = Money.of("10000", "XOF")
XOF_8000 = Money.of("8000", "XOF")


async def _processing(flow: PaymentFlow, fake: FakeProvider, order_id: str = "T7", **options: Any) -> Payment:
    fake.script("initiate", "pending")
    checkout = await flow.create_payment(amount=XOF_10000, provider="fake", order_id=order_id, **options)
    return checkout.payment


async def _underpaid(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    payment = await _processing(flow, fake)
    fake.settle(payment.id, Outcome.SUCCEEDED, captured=XOF_8000)
    (flagged,) = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert flagged.status is PaymentStatus.PROCESSING
    assert flagged.review_reason is ReviewReason.AMOUNT_MISMATCH
    return flagged


async def test_an_underpaid_payment_resolved_as_paid_records_what_the_provider_holds_and_can_be_refunded(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _underpaid(flow, fake)
    note = "the customer sent 8 000; the rest was paid in cash"
    resolved = await flow.resolve_payment(payment.id, outcome="succeeded", amount=XOF_8000, note=note)
    assert resolved.status is PaymentStatus.SUCCEEDED
    assert resolved.captured_amount == XOF_8000
    assert resolved.needs_review, "the flag stays until the operator closes it: a report that came meanwhile shows"
    (event,) = (await flow.list_events(payment.id))[-1:]
    assert (event.kind, event.cause, event.message, event.amount) == ("status_changed", "operator", note, XOF_8000)
    closed = await flow.resolve_review(payment.id, note="kept; the rest was paid in cash")
    assert not closed.needs_review
    with pytest.raises(RefundExceedsCaptured):
        await flow.refund(payment.id, amount=Money.of("8001", "XOF"))
    refund = await flow.refund(payment.id)
    assert refund.amount == XOF_8000
    # The provider's report said 8 000 all along: told again, it is a known fact.
    assert await flow.handle_webhook("fake", *fake.webhook(payment.id)) == [await flow.get_payment(payment.id)]


async def test_an_open_payment_resolved_as_failed_takes_a_later_payment_as_a_late_confirmation(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _processing(flow, fake)
    failed = await flow.resolve_payment(payment.id, outcome="failed", note="nothing at the provider after 2 days")
    assert failed.status is PaymentStatus.FAILED
    fake.settle(payment.id, Outcome.SUCCEEDED)
    (late,) = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert late.status is PaymentStatus.SUCCEEDED
    assert late.captured_amount == XOF_10000
    assert late.review_reason is ReviewReason.LATE_CONFIRMATION


async def test_a_partial_authorization_resolved_as_authorized_is_captured_or_released_as_usual(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    # A card-like provider held 8 000 of 10 000 (flagged): "succeeded" would record money never captured.
    payment = await _processing(flow, fake, capture=False)
    fake.settle(payment.id, Outcome.AUTHORIZED)
    (flagged,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, authorized=XOF_8000))
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.AMOUNT_MISMATCH)
    held = await flow.resolve_payment(payment.id, outcome="authorized", amount=XOF_8000, note="8 000 held on the card")
    assert (held.status, held.authorized_amount, held.captured_amount) == (PaymentStatus.AUTHORIZED, XOF_8000, None)
    captured = await flow.capture(payment.id)
    assert (captured.status, captured.captured_amount) == (PaymentStatus.SUCCEEDED, XOF_8000)


async def test_a_report_that_comes_while_the_operator_decides_is_not_hidden(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    # The operator saw nothing at the provider and resolves "failed"; the customer's 8 000 arrived just before.
    payment = await _underpaid(flow, fake)
    failed = await flow.resolve_payment(payment.id, outcome="failed", note="nothing in the dashboard")
    assert failed.status is PaymentStatus.FAILED
    assert failed.needs_review
    assert failed.review_message == payment.review_message


async def test_resolved_as_paid_without_an_amount_records_the_whole_amount(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _processing(flow, fake)
    resolved = await flow.resolve_payment(payment.id, outcome=PaymentStatus.SUCCEEDED, note="seen in the dashboard")
    assert resolved.captured_amount == XOF_10000


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        ({"outcome": "refunded", "note": "n"}, ValidationError),
        ({"outcome": "sideways", "note": "n"}, ValidationError),
        ({"outcome": "failed", "note": "n", "amount": XOF_8000}, ValidationError),
        ({"outcome": "succeeded", "note": "  "}, ValidationError),
        ({"outcome": "succeeded", "note": "n", "amount": Money.of("8000", "EUR")}, CurrencyMismatch),
        ({"outcome": "succeeded", "note": "n", "amount": Money.of("0", "XOF")}, InvalidAmount),
        ({"outcome": "succeeded", "note": "n", "amount": Money.of("-1", "XOF")}, InvalidAmount),
        ({"outcome": "succeeded", "note": "n", "amount": Money.of("10001", "XOF")}, InvalidAmount),
        ({"outcome": "succeeded", "note": "n", "amount": 8000}, InvalidAmount),
        ({"outcome": "succeeded", "note": "n", "tenant": "chez-awa"}, PaymentNotFound),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
async def test_a_wrong_resolution_is_refused_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider, arguments: dict[str, Any], refusal: type[Exception]
) -> None:
    payment = await _underpaid(flow, fake)
    with pytest.raises(refusal):
        await flow.resolve_payment(payment.id, **arguments)
    assert await flow.get_payment(payment.id) == payment


@pytest.mark.parametrize("capture", [True, False], ids=["paid", "authorized"])
async def test_a_payment_no_longer_open_is_not_resolved(flow: PaymentFlow, fake: FakeProvider, capture: bool) -> None:
    payment = (await flow.create_payment(amount=XOF_10000, provider="fake", order_id="T8", capture=capture)).payment
    with pytest.raises(InvalidTransition, match="only a pending or processing payment is resolved"):
        await flow.resolve_payment(payment.id, outcome="succeeded", note="n")
    assert await flow.get_payment(payment.id) == payment


async def test_a_payment_whose_cancel_may_still_reach_the_provider_is_not_resolved_as_paid(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    # A cancel arriving after the operator's "paid" would take the money back: the operator refreshes first.
    payment = await _processing(flow, fake)
    fake.script("cancel", "lost")
    unknown = await flow.cancel(payment.id)  # its answer lost: the call stays, its outcome unknown
    assert unknown.pending_call is not None
    assert unknown == await flow.get_payment(payment.id)
    with pytest.raises(PaymentBusy, match="may still reach the provider"):
        await flow.resolve_payment(payment.id, outcome="succeeded", note="n")
    assert await flow.get_payment(payment.id) == unknown
    clock.advance(days=1)
    resolved = await flow.resolve_payment(payment.id, outcome="succeeded", note="paid; the dashboard shows no cancel")
    assert resolved.status is PaymentStatus.SUCCEEDED
    assert resolved.pending_call is None


async def test_a_resolved_review_of_an_unrecordable_report_is_flagged_again_and_no_longer_holds_up_the_reaper(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    underpaid = await _underpaid(flow, fake)
    await flow.resolve_review(underpaid.id, note="looked at it")  # and left it open: the report still cannot be taken
    clock.advance(minutes=5)
    walked_away = await _processing(flow, fake, order_id="T9")
    fake.script("cancel", *["approve"] * 4)
    clock.advance(hours=2)
    first = await flow.expire_stale(limit=1)
    assert [p.id for p in first] == [underpaid.id]
    flagged = await flow.get_payment(underpaid.id)
    assert flagged.needs_review
    assert flagged.review_message.endswith("settle it with resolve_payment")
    clock.advance(hours=1)
    second = await flow.expire_stale(limit=1)
    assert [p.id for p in second] == [walked_away.id]
    assert second[0].status is PaymentStatus.EXPIRED
    assert (await flow.get_payment(underpaid.id)).version == flagged.version
