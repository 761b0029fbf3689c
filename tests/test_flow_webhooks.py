"""Webhooks: verified before parsed, deduplicated by event id, never moving a payment backwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from paycore import Money
from paycore.errors import InvalidSignature, MalformedWebhook, PaymentNotFound, ProviderNotEnabled
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, ReviewReason
from paycore.testing.fake import SIGNATURE_HEADER, FakeProvider, sign

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def _processing(flow: PaymentFlow, fake: FakeProvider, amount: Money = XOF_5000) -> Payment:
    fake.script("initiate", "pending")
    return (await flow.create_payment(amount=amount, provider="fake", order_id="o")).payment


async def test_a_signed_confirmation_succeeds_the_payment(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = fake.webhook(payment.id, event_id="evt_paid")
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == XOF_5000
    (event,) = [e for e in await flow.list_events(payment.id) if e.to_status == "succeeded"]
    assert (event.cause, event.provider_event_id) == ("webhook", "evt_paid")


async def test_header_names_are_matched_case_insensitively(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    shouting = {name.upper(): value for name, value in headers.items()}
    (after,) = await flow.handle_webhook("fake", body, shouting)
    assert after.status is PaymentStatus.SUCCEEDED


async def test_a_webhook_signed_with_another_secret_is_refused_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, secret="forged")
    with pytest.raises(InvalidSignature, match="does not match"):
        await flow.handle_webhook("fake", body, headers)
    assert await flow.get_payment(payment.id) == payment


async def test_an_unsigned_webhook_is_refused(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    body, _ = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    with pytest.raises(InvalidSignature, match="missing x-fake-signature"):
        await flow.handle_webhook("fake", body, {})
    assert await flow.get_payment(payment.id) == payment


@pytest.mark.parametrize("given", ["\u00e9" * 64, "\ud800"], ids=["accented", "lone-surrogate"])
async def test_a_signature_that_is_not_ascii_is_refused_as_a_wrong_one(
    flow: PaymentFlow, fake: FakeProvider, caplog: pytest.LogCaptureFixture, given: str
) -> None:
    """The fake provider's comparison raised TypeError (or UnicodeEncodeError) on it: a warning that the delivery
    could not be verified."""
    payment = await _processing(flow, fake)
    body, _ = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    with pytest.raises(InvalidSignature, match="does not match"):
        await flow.handle_webhook("fake", body, {SIGNATURE_HEADER: given})
    assert "could not verify" not in caplog.text
    assert await flow.get_payment(payment.id) == payment


async def test_the_signature_is_checked_before_the_body_is_parsed(flow: PaymentFlow) -> None:
    with pytest.raises(InvalidSignature):
        await flow.handle_webhook("fake", b"not json at all", {SIGNATURE_HEADER: "0" * 64})


async def test_a_signed_but_unreadable_body_is_refused(flow: PaymentFlow) -> None:
    body = b'{"id": "evt_1"}'
    with pytest.raises(MalformedWebhook):
        await flow.handle_webhook("fake", body, {SIGNATURE_HEADER: sign(body, "whsec-test")})


async def test_a_webhook_for_an_unknown_payment_is_not_found(flow: PaymentFlow) -> None:
    report = {"id": "evt_1", "payment_id": "pay_unknown", "outcome": "succeeded", "captured": [5000, "XOF"]}
    body = json.dumps(report).encode()
    with pytest.raises(PaymentNotFound):
        await flow.handle_webhook("fake", body, {SIGNATURE_HEADER: sign(body, "whsec-test")})


async def test_a_webhook_for_a_provider_not_enabled_is_refused(flow: PaymentFlow) -> None:
    with pytest.raises(ProviderNotEnabled):
        await flow.handle_webhook("wave", b"{}", {})


async def test_a_repeated_delivery_is_a_no_op(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, event_id="evt_once")
    (first,) = await flow.handle_webhook("fake", body, headers)
    (second,) = await flow.handle_webhook("fake", body, headers)
    assert second == first
    assert len(await flow.list_events(payment.id)) == first.event_count


async def test_a_repeated_event_id_is_a_no_op_even_with_another_report(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.FAILED, event_id="evt_7")
    (first,) = await flow.handle_webhook("fake", body, headers)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, event_id="evt_7")
    (second,) = await flow.handle_webhook("fake", body, headers)
    assert second == first
    assert second.status is PaymentStatus.FAILED


@pytest.mark.parametrize("stale", [Outcome.PENDING, Outcome.AUTHORIZED, Outcome.FAILED, Outcome.EXPIRED])
async def test_a_stale_report_after_success_never_moves_the_payment_backwards(
    flow: PaymentFlow, fake: FakeProvider, stale: Outcome
) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    await flow.handle_webhook("fake", body, headers)
    body, headers = fake.webhook(payment.id, outcome=stale)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert not after.needs_review


async def test_a_success_report_after_a_full_refund_leaves_the_payment_refunded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    await flow.refund(payment.id)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.REFUNDED


async def test_an_authorization_then_a_late_pending_report_stays_authorized(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.AUTHORIZED)
    await flow.handle_webhook("fake", body, headers)
    body, headers = fake.webhook(payment.id, outcome=Outcome.PENDING)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.AUTHORIZED


@pytest.mark.parametrize("reported", [Money.of("4000", "XOF"), Money.of("5000", "XAF"), Money.of("6000", "XOF")])
async def test_an_amount_mismatch_flags_the_payment_and_never_marks_it_paid(
    flow: PaymentFlow, fake: FakeProvider, reported: Money
) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED, captured=reported)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.PROCESSING
    assert after.captured_amount is None
    assert after.needs_review
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH
    assert str(reported) in after.review_message
    kinds = [e.kind for e in await flow.list_events(payment.id)]
    assert "amount_mismatch" in kinds
    assert "flagged_for_review" in kinds


async def test_a_confirmation_after_a_local_cancel_succeeds_the_payment_and_flags_it(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _processing(flow, fake)
    await flow.cancel(payment.id)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = fake.webhook(payment.id)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == XOF_5000
    assert after.needs_review
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION


async def test_a_confirmation_after_a_failure_is_recorded_not_dropped(flow: PaymentFlow, fake: FakeProvider) -> None:
    payment = await _processing(flow, fake)
    body, headers = fake.webhook(payment.id, outcome=Outcome.FAILED)
    await flow.handle_webhook("fake", body, headers)
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION


async def test_a_late_authorization_is_flagged_without_moving_the_payment(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = await _processing(flow, fake)
    await flow.cancel(payment.id)
    body, headers = fake.webhook(payment.id, outcome=Outcome.AUTHORIZED)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.CANCELED
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION


async def test_a_confirmation_settles_a_call_whose_answer_was_lost(flow: PaymentFlow, fake: FakeProvider) -> None:
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    assert payment.pending_call is not None
    assert payment.pending_call.unknown
    body, headers = fake.webhook(payment.id, outcome=Outcome.SUCCEEDED)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.pending_call is None


@pytest.mark.parametrize("named_by", ["id", "reference"])
async def test_a_report_about_another_provider_s_payment_on_the_same_gateway_is_acknowledged_and_changes_nothing(
    make_flow: Callable[..., PaymentFlow], named_by: str
) -> None:
    """Two providers on one gateway account (Stripe.js and Checkout) each get every event of the account: each
    acknowledges the other's without touching it, instead of refusing it for the gateway to retry for days, whether
    the report names the payment by its id or by the gateway's reference alone (a refund made in the gateway's
    dashboard, a dispute). A provider of another gateway is still told there is no such payment."""
    providers = {
        "card": {"type": "fake", "webhook_secret": "whsec-card"},
        "hosted": {"type": "fake", "webhook_secret": "whsec-hosted"},
        "limited": {"type": "limited", "webhook_secret": "whsec-limited"},
    }
    async with make_flow({"providers": providers}) as flow:
        card = flow.provider("card")
        assert isinstance(card, FakeProvider)
        card.script("initiate", "pending")
        payment = (await flow.create_payment(amount=XOF_5000, provider="card", order_id="T4-0031")).payment
        assert payment.external_id is not None
        card.settle(payment.id, Outcome.SUCCEEDED)
        body, _ = card.webhook(payment.id, event_id="evt_paid")
        if named_by == "reference":
            body = json.dumps({**json.loads(body), "payment_id": None}).encode()
        for _ in range(2):  # every delivery of it, again and again
            assert await flow.handle_webhook("hosted", body, {SIGNATURE_HEADER: sign(body, "whsec-hosted")}) == []
        assert (await flow.get_payment(payment.id)).status is PaymentStatus.PROCESSING
        with pytest.raises(PaymentNotFound):
            await flow.handle_webhook("limited", body, {SIGNATURE_HEADER: sign(body, "whsec-limited")})
        (paid,) = await flow.handle_webhook("card", body, {SIGNATURE_HEADER: sign(body, "whsec-card")})
        assert paid.status is PaymentStatus.SUCCEEDED
        assert [e.kind for e in await flow.list_events(payment.id)].count("status_changed") == 2
