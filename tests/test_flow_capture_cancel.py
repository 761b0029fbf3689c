"""Capturing and canceling: full or partial capture of an authorization, cancel before capture."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from paycore import Money
from paycore.errors import (
    CaptureExceedsAuthorized,
    CurrencyMismatch,
    InvalidAmount,
    InvalidTransition,
    PaymentBusy,
    ProviderNotSent,
    ProviderOutcomeUnknown,
)
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def test_capturing_an_authorization_captures_all_of_it(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    captured = await flow.capture(payment.id)
    assert captured.status is PaymentStatus.SUCCEEDED
    assert captured.captured_amount == XOF_5000
    assert ("capture", payment.id) in fake.calls
    assert captured.pending_call is None


async def test_a_partial_capture_captures_less_and_only_that_can_be_refunded(
    flow: PaymentFlow, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    captured = await flow.capture(payment.id, amount=Money.of("3000", "XOF"))
    assert captured.status is PaymentStatus.SUCCEEDED
    assert captured.captured_amount == Money.of("3000", "XOF")
    assert captured.authorized_amount == XOF_5000
    assert captured.refundable_amount == Money.of("3000", "XOF")
    refund = await flow.refund(payment.id)
    assert refund.amount == Money.of("3000", "XOF")
    assert refund.status is RefundStatus.SUCCEEDED
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.REFUNDED


async def test_capturing_more_than_authorized_is_refused_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    with pytest.raises(CaptureExceedsAuthorized, match="cannot capture 5001 XOF: only 5000 XOF is authorized"):
        await flow.capture(payment.id, amount=Money.of("5001", "XOF"))
    assert await flow.get_payment(payment.id) == payment
    assert ("capture", payment.id) not in fake.calls


@pytest.mark.parametrize(
    ("amount", "error"),
    [(Money.of("10", "EUR"), CurrencyMismatch), (Money.of("0", "XOF"), InvalidAmount)],
)
async def test_a_capture_of_another_currency_or_nothing_is_refused(
    flow: PaymentFlow, authorized: Callable[..., Any], amount: Money, error: type[Exception]
) -> None:
    payment = await authorized()
    with pytest.raises(error):
        await flow.capture(payment.id, amount=amount)
    assert await flow.get_payment(payment.id) == payment


async def test_a_payment_that_is_not_authorized_cannot_be_captured(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    with pytest.raises(InvalidTransition, match="it is succeeded, not authorized"):
        await flow.capture(payment.id)
    assert await flow.get_payment(payment.id) == payment


async def test_a_declined_capture_leaves_the_payment_authorized(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    fake.script("capture", "decline")
    after = await flow.capture(payment.id)
    assert after.status is PaymentStatus.AUTHORIZED
    assert after.captured_amount is None
    assert after.pending_call is None


async def test_canceling_an_authorization_asks_the_provider_and_cancels(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    canceled = await flow.cancel(payment.id)
    assert canceled.status is PaymentStatus.CANCELED
    assert ("cancel", payment.id) in fake.calls


async def test_a_payment_never_sent_is_canceled_here_without_asking_the_provider(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "not_sent")
    with pytest.raises(ProviderNotSent, match="connection refused"):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    (payment,) = await flow.list_payments()
    canceled = await flow.cancel(payment.id)
    assert canceled.status is PaymentStatus.CANCELED
    assert [operation for operation, _ in fake.calls] == ["initiate"]


async def test_a_captured_payment_cannot_be_canceled(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    with pytest.raises(InvalidTransition, match=r"cannot cancel payment .*: it is succeeded"):
        await flow.cancel(payment.id)
    assert await flow.get_payment(payment.id) == payment


async def test_a_canceled_payment_cannot_be_captured(flow: PaymentFlow, authorized: Callable[..., Any]) -> None:
    payment = await authorized()
    await flow.cancel(payment.id)
    with pytest.raises(InvalidTransition):
        await flow.capture(payment.id)


async def test_a_capture_the_provider_refuses_beforehand_writes_nothing(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await authorized()

    async def refuse(payment: Payment, amount: Money) -> None:
        raise InvalidAmount(f"the gateway cannot capture {amount}")

    monkeypatch.setattr(fake, "check_capture", refuse)
    with pytest.raises(InvalidAmount, match="cannot capture"):
        await flow.capture(payment.id, amount=Money.of("2000", "XOF"), idempotency_key="capture-1")
    assert await flow.get_payment(payment.id) == payment
    assert ("capture", payment.id) not in fake.calls


@pytest.mark.parametrize("how", ["answered", "lost, then reported by webhook"])
async def test_a_capture_the_provider_made_of_another_amount_is_never_sent_again_until_an_operator_resolves_it(
    flow: PaymentFlow,
    fake: FakeProvider,
    authorized: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    clock: Any,
    how: str,
) -> None:
    """Asked to capture 3 000 XOF, the provider took the whole 5 000: the payment was flagged but left authorized
    with no call under way, and the till's retry sent a second capture, which moved money again."""
    payment = await authorized()
    asked = Money.of("3000", "XOF")
    takes_all = FakeProvider.capture
    monkeypatch.setattr(fake, "capture", lambda paid, amount: takes_all(fake, paid, paid.amount))
    if how == "answered":
        after = await flow.capture(payment.id, amount=asked)
    else:
        fake.script("capture", "lost")
        await flow.capture(payment.id, amount=asked)
        await flow.handle_webhook("fake", *fake.webhook(payment.id))
        after = await flow.get_payment(payment.id)
    assert (after.status, after.captured_amount) == (PaymentStatus.AUTHORIZED, None)  # a mismatch never pays
    assert after.needs_review
    assert "captured amount: expected 3000 XOF, reported 5000 XOF" in after.review_message
    assert after.pending_call is not None
    assert after.pending_call.unknown
    for again in (flow.capture(payment.id, amount=asked), flow.capture(payment.id), flow.cancel(payment.id)):
        with pytest.raises(ProviderOutcomeUnknown, match="the outcome of its capture call is still unknown"):
            await again
    assert fake.calls.count(("capture", payment.id)) == 1
    assert fake.calls.count(("cancel", payment.id)) == 0
    with pytest.raises(InvalidTransition, match="resolved as succeeded, with what the provider captured"):
        await flow.resolve_payment(payment.id, outcome="failed", note="checked the dashboard")
    with pytest.raises(PaymentBusy, match="may still reach the provider"):  # a request on its way, as any unknown
        await flow.resolve_payment(payment.id, outcome="succeeded", note="too soon")
    clock.advance(minutes=5)
    with pytest.raises(InvalidAmount, match="cannot record 5001 XOF held"):
        await flow.resolve_payment(payment.id, outcome="succeeded", amount=Money.of("5001", "XOF"), note="?")
    resolved = await flow.resolve_payment(payment.id, outcome="succeeded", amount=XOF_5000, note="took it all")
    assert (resolved.status, resolved.captured_amount, resolved.pending_call) == (
        PaymentStatus.SUCCEEDED,
        XOF_5000,
        None,
    )
    assert resolved.refundable_amount == XOF_5000
    assert fake.calls.count(("capture", payment.id)) == 1


class OwnerDied(BaseException):
    """The process stops where this is raised: nothing after it runs, nothing is cleaned up."""


async def test_a_capture_of_another_amount_whose_owner_died_is_in_doubt_for_an_operator_to_resolve(
    flow: PaymentFlow,
    fake: FakeProvider,
    authorized: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    clock: Any,
) -> None:
    """Its process gone after the request left, the capture's call stayed "submitting" once the webhook said the
    provider took the whole hold: never settled, never unknown, and resolve_payment refused it: stuck for good."""
    payment = await authorized()

    async def takes_all_and_dies(paid: Payment, amount: Money) -> Any:
        fake.ledger[paid.id].outcome, fake.ledger[paid.id].captured = Outcome.SUCCEEDED, paid.amount
        raise OwnerDied

    monkeypatch.setattr(fake, "capture", takes_all_and_dies)
    with pytest.raises(OwnerDied):
        await flow.capture(payment.id, amount=Money.of("3000", "XOF"))
    clock.advance(minutes=5)  # past the call's lease: its owner is gone
    (reported,) = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert isinstance(reported, Payment)
    assert (reported.status, reported.captured_amount) == (PaymentStatus.AUTHORIZED, None)
    assert reported.pending_call is not None
    assert reported.pending_call.unknown
    with pytest.raises(ProviderOutcomeUnknown):
        await flow.capture(payment.id)
    resolved = await flow.resolve_payment(payment.id, outcome="succeeded", amount=XOF_5000, note="took it all")
    assert (resolved.status, resolved.captured_amount, resolved.pending_call) == (
        PaymentStatus.SUCCEEDED,
        XOF_5000,
        None,
    )
