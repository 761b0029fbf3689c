"""End to end in one process: the flow calls the simulator through the SDK, the simulator posts its
signed webhooks to ``paycore.asgi``; create, pay, webhook, partial refunds and a poll, in both modes."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.money import Money
from paycore.status import PaymentStatus, RefundStatus
from paycore_stripe import StripeProvider, StripeState

CODE = "card"

pytestmark = pytest.mark.anyio


async def test_a_payment_intent_is_paid_by_webhook_refunded_in_parts_and_polled(connected: Any) -> None:
    async with connected("payment_intent") as (flow, simulator):
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider=CODE, order_id="T-1")
        intent_id = checkout.payment.external_id
        assert intent_id is not None
        assert intent_id.startswith("pi_")
        await simulator.pay(intent_id)
        paid = await flow.get_payment(checkout.payment.id)
        assert (paid.status, paid.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("5000", "XOF"))
        first = await flow.refund(paid.id, amount=Money.of("1500", "XOF"))
        second = await flow.refund(paid.id, amount=Money.of("1000", "XOF"))
        assert (first.status, second.status) == (RefundStatus.SUCCEEDED, RefundStatus.SUCCEEDED)
        polled = await flow.refresh(paid.id)
        assert polled.status is PaymentStatus.PARTIALLY_REFUNDED
        assert polled.refunded_amount == Money.of("2500", "XOF")
        keys = [key for method, _, key in simulator.requests if method == "POST"]
        assert keys == [f"paycore-{paid.id}-create", f"paycore-{first.id}-refund", f"paycore-{second.id}-refund"]


async def test_an_authorized_intent_is_captured_in_part(connected: Any) -> None:
    async with connected("payment_intent") as (flow, simulator):
        checkout = await flow.create_payment(
            amount=Money.of("5000", "JPY"), provider=CODE, order_id="T-2", capture=False
        )
        await simulator.pay(checkout.payment.external_id)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.AUTHORIZED
        captured = await flow.capture(checkout.payment.id, amount=Money.of("3000", "JPY"))
        assert (captured.status, captured.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("3000", "JPY"))
        assert simulator.intents[checkout.payment.external_id]["amount_received"] == 3000


async def test_a_checkout_keeps_the_session_then_the_intent_as_references(connected: Any) -> None:
    async with connected("checkout") as (flow, simulator):
        checkout = await flow.create_payment(amount=Money.of("5.120", "KWD"), provider=CODE, order_id="T-3")
        assert checkout.action is not None
        assert checkout.action.kind == "redirect"
        session_id = checkout.payment.external_id
        assert session_id is not None
        assert session_id.startswith("cs_")
        await simulator.pay(session_id)
        paid = await flow.get_payment(checkout.payment.id)
        intent_id = simulator.sessions[session_id]["payment_intent"]
        assert paid.status is PaymentStatus.SUCCEEDED
        assert paid.captured_amount == Money.of("5.120", "KWD")
        assert paid.references == (session_id, intent_id)
        provider = flow.provider(CODE)
        assert isinstance(provider, StripeProvider)
        assert provider.state(paid) == StripeState(mode="checkout", session_id=session_id, payment_intent_id=intent_id)
        refund = await flow.refund(paid.id, amount=Money.of("2.000", "KWD"))
        assert refund.status is RefundStatus.SUCCEEDED
        assert simulator.refunds[refund.external_id or ""]["amount"] == 2000


async def test_an_unpaid_checkout_is_canceled_by_expiring_its_session(connected: Any) -> None:
    async with connected("checkout") as (flow, simulator):
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider=CODE, order_id="T-4")
        canceled = await flow.cancel(checkout.payment.id)
        assert canceled.status is PaymentStatus.CANCELED
        assert simulator.sessions[checkout.payment.external_id or ""]["status"] == "expired"


async def test_a_declined_attempt_leaves_the_payment_open_for_another_card(connected: Any) -> None:
    async with connected("payment_intent") as (flow, simulator):
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider=CODE, order_id="T-5")
        await simulator.decline(checkout.payment.external_id)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        await simulator.pay(checkout.payment.external_id)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.SUCCEEDED


async def test_a_checkout_paid_by_a_delayed_method_that_fails_ends_failed(connected: Any) -> None:
    async with connected("checkout") as (flow, simulator):
        checkout = await flow.create_payment(amount=Money.of("12.34", "EUR"), provider=CODE, order_id="T-6")
        session_id = checkout.payment.external_id
        await simulator.pay(session_id, delayed=True)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        sent = await simulator.settle(session_id, paid=False)
        assert [event.type for event in sent] == [
            "payment_intent.payment_failed",
            "checkout.session.async_payment_failed",
        ]
        failed = await flow.get_payment(checkout.payment.id)
        assert (failed.status, failed.captured_amount) == (PaymentStatus.FAILED, None)
        assert (await flow.refresh(failed.id)).status is PaymentStatus.FAILED


async def test_a_checkout_whose_delayed_method_failed_unseen_is_failed_by_a_poll(
    flow_with: Any, simulator: Any
) -> None:
    """No webhook arrives: the poll sees the completed session's intent back to requires_payment_method."""
    async with flow_with(simulator=simulator, mode="checkout", success_url="https://shop.test/paid") as flow:
        checkout = await flow.create_payment(amount=Money.of("12.34", "EUR"), provider=CODE, order_id="T-7")
        session_id = checkout.payment.external_id
        await simulator.pay(session_id, delayed=True)
        assert (await flow.refresh(checkout.payment.id)).status is PaymentStatus.PROCESSING
        await simulator.settle(session_id, paid=False)
        failed = await flow.refresh(checkout.payment.id)
        assert (failed.status, failed.captured_amount) == (PaymentStatus.FAILED, None)
        (change,) = [e for e in await flow.list_events(failed.id) if e.to_status == "failed"]
        assert (change.cause, change.message) == ("poll", "payment_intent_payment_attempt_failed")


async def test_a_checkout_whose_delayed_method_succeeds_is_paid_by_the_session_event_alone(
    flow_with: Any, simulator: Any
) -> None:
    async with flow_with(simulator=simulator, mode="checkout", success_url="https://shop.test/paid") as flow:
        checkout = await flow.create_payment(amount=Money.of("12.34", "EUR"), provider=CODE, order_id="T-8")
        session_id = checkout.payment.external_id
        for event in await simulator.pay(session_id, delayed=True):
            await flow.handle_webhook(CODE, event.body, event.headers)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        sent = await simulator.settle(session_id)
        (paid_event,) = [e for e in sent if e.type == "checkout.session.async_payment_succeeded"]
        await flow.handle_webhook(CODE, paid_event.body, paid_event.headers)
        paid = await flow.get_payment(checkout.payment.id)
        assert (paid.status, paid.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("12.34", "EUR"))
        assert not paid.needs_review


async def test_a_delayed_method_that_fails_in_payment_intent_mode_leaves_the_payment_open(connected: Any) -> None:
    """Outside Checkout, an intent back to requires_payment_method takes another payment method: not a failure."""
    async with connected("payment_intent") as (flow, simulator):
        checkout = await flow.create_payment(amount=Money.of("12.34", "EUR"), provider=CODE, order_id="T-9")
        intent_id = checkout.payment.external_id
        await simulator.pay(intent_id, delayed=True)
        await simulator.settle(intent_id, paid=False)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        assert (await flow.refresh(checkout.payment.id)).status is PaymentStatus.PROCESSING
        await simulator.pay(intent_id)
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.SUCCEEDED
