"""Uncaptured money an authorization releases is no refund, and a Checkout payment is canceled as Stripe allows.

Webhook endpoints on API versions before ``2025-03-31.basil`` receive a Refund
(``charge.refunded``, and ``refund.created`` from ``2024-10-28.acacia`` on) for a partial capture's remainder and
for an authorization that expired or was canceled; the simulator's
``api_version`` shapes its events so. In Checkout, a declined card leaves a
PaymentIntent in a session still open, which Stripe cancels only by expiring the
session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import httpx
import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus, RefundStatus
from paycore_stripe import StripeSimulator
from paycore_stripe.simulator import SignedEvent

pytestmark = pytest.mark.anyio

API_KEY = "sk_test_51paycoreSimulated"  # conftest's flows use this key and secret
WEBHOOK_SECRET = "whsec_paycoreSimulatedSigningSecret"
CODE = "card"
BEFORE_BASIL = ["2024-12-18.acacia", "2024-06-20", "2020-08-27"]  # the last lists a charge's refunds in charge.refunded
CHECKOUT = {"mode": "checkout", "success_url": "https://shop.test/paid"}


def older_simulator(api_version: str) -> StripeSimulator:
    """A simulator whose events are shaped for a webhook endpoint on ``api_version``."""
    return StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, api_version=api_version)


def release_events(api_version: str) -> list[str]:
    """What Stripe sends for released money recorded as a Refund: ``refund.created`` only from acacia on."""
    return ["refund.created", "charge.refunded"] if api_version >= "2024-10-28" else ["charge.refunded"]


async def deliver(flow: PaymentFlow, events: Sequence[SignedEvent]) -> None:
    """Deliver each event as Stripe would; a refusal (such as "deliver it again later") fails the test."""
    for event in events:
        await flow.handle_webhook(CODE, event.body, event.headers)


async def authorized(flow: PaymentFlow, simulator: StripeSimulator, amount: Money) -> Payment:
    """A payment of ``amount`` to capture later, authorized by the customer (its webhook delivered)."""
    checkout = await flow.create_payment(amount=amount, provider=CODE, order_id="A-1", capture=False)
    await deliver(flow, await simulator.pay(checkout.payment.external_id or ""))
    payment = await flow.get_payment(checkout.payment.id)
    assert payment.status is PaymentStatus.AUTHORIZED
    return payment


@pytest.mark.parametrize("api_version", BEFORE_BASIL)
async def test_a_partial_captures_released_remainder_is_not_recorded_as_a_refund(
    flow_with: Callable[..., PaymentFlow], api_version: str
) -> None:
    simulator = older_simulator(api_version)
    async with flow_with(simulator=simulator) as flow:
        payment = await authorized(flow, simulator, Money.of("10.000", "KWD"))
        already = len(simulator.events)
        await flow.capture(payment.id, amount=Money.of("6.000", "KWD"))
        sent = simulator.events[already:]
        assert [e.type for e in sent] == ["payment_intent.succeeded", *release_events(api_version)]
        await deliver(flow, sent)
        delivered = await flow.get_payment(payment.id)
        polled = await flow.refresh(payment.id)
        refund = await flow.refund(payment.id, amount=Money.of("6.000", "KWD"))
    for seen in (delivered, polled):
        assert (seen.status, seen.captured_amount, seen.refunds) == (
            PaymentStatus.SUCCEEDED,
            Money.of("6.000", "KWD"),
            (),
        )
        assert not seen.needs_review
    assert refund.status is RefundStatus.SUCCEEDED  # all 6.000 KWD captured can be paid back, as at Stripe


@pytest.mark.parametrize("api_version", BEFORE_BASIL)
async def test_a_partial_captures_events_in_any_order_capture_it_in_part_unflagged(
    flow_with: Callable[..., PaymentFlow], api_version: str
) -> None:
    """The Dashboard's capture of 6.000 of a 10.000 KWD hold, its events delivered in reverse: the release of the
    remainder (``charge.refunded``, a charge captured in part) before the capture, and both before the hold. The
    charge names the hold it was captured from (its ``amount``), so the first event captures the payment in part
    as if all came in order; none flags it as underpaid, and no refund is recorded."""
    simulator = older_simulator(api_version)
    async with flow_with(simulator=simulator) as flow:
        checkout = await flow.create_payment(
            amount=Money.of("10.000", "KWD"), provider=CODE, order_id="A-3", capture=False
        )
        intent_id = checkout.payment.external_id or ""
        held = await simulator.pay(intent_id)
        captured = await simulator.capture_in_dashboard(intent_id, 6000)
        assert [e.type for e in captured] == ["payment_intent.succeeded", *release_events(api_version)]
        await deliver(flow, [*reversed(captured), *reversed(held)])
        delivered = await flow.get_payment(checkout.payment.id)
        polled = await flow.refresh(checkout.payment.id)
    for seen in (delivered, polled):
        assert (seen.status, seen.authorized_amount, seen.captured_amount, seen.refunds) == (
            PaymentStatus.SUCCEEDED,
            Money.of("10.000", "KWD"),
            Money.of("6.000", "KWD"),
            (),
        )
        assert not seen.needs_review


@pytest.mark.parametrize("api_version", BEFORE_BASIL)
async def test_an_authorization_that_expired_uncaptured_cancels_the_payment_without_a_refund(
    flow_with: Callable[..., PaymentFlow], api_version: str
) -> None:
    simulator = older_simulator(api_version)
    async with flow_with(simulator=simulator) as flow:
        payment = await authorized(flow, simulator, Money.of("10.000", "KWD"))
        sent = await simulator.expire_authorization(payment.external_id or "")
        assert [e.type for e in sent] == ["payment_intent.canceled", *release_events(api_version)]
        await deliver(flow, sent)  # every event acknowledged: none is asked again later
        canceled = await flow.get_payment(payment.id)
    assert (canceled.status, canceled.refunds, canceled.needs_review) == (PaymentStatus.CANCELED, (), False)


@pytest.mark.parametrize("api_version", BEFORE_BASIL)
async def test_a_canceled_authorizations_charge_refunded_is_acknowledged_and_refunds_nothing(
    flow_with: Callable[..., PaymentFlow], api_version: str
) -> None:
    simulator = older_simulator(api_version)
    async with flow_with(simulator=simulator) as flow:
        payment = await authorized(flow, simulator, Money.of("10.000", "KWD"))
        already = len(simulator.events)
        assert (await flow.cancel(payment.id)).status is PaymentStatus.CANCELED
        await deliver(flow, [e for e in simulator.events[already:] if e.type == "charge.refunded"])
        canceled = await flow.get_payment(payment.id)
    assert (canceled.status, canceled.refunds, canceled.needs_review) == (PaymentStatus.CANCELED, (), False)


async def test_a_checkout_whose_card_was_declined_is_canceled_by_expiring_its_open_session(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    """The declined attempt left a PaymentIntent in the open session: Stripe refuses to cancel that intent."""
    async with flow_with(simulator=simulator, **CHECKOUT) as flow:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider=CODE, order_id="A-1")
        session_id = checkout.payment.external_id or ""
        await deliver(flow, await simulator.decline(session_id))
        intent_id = simulator.sessions[session_id]["payment_intent"]
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        already = len(simulator.events)
        canceled = await flow.cancel(checkout.payment.id)
        await deliver(flow, simulator.events[already:])
        after_events = await flow.get_payment(checkout.payment.id)
    assert canceled.status is PaymentStatus.CANCELED
    assert (after_events.status, after_events.needs_review) == (PaymentStatus.CANCELED, False)
    assert simulator.sessions[session_id]["status"] == "expired"
    assert simulator.intents[intent_id]["status"] == "canceled"
    assert not [path for method, path, _ in simulator.requests if path.endswith("/cancel")]


async def test_a_checkout_sessions_intent_is_canceled_directly_only_when_authorized(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    """The simulator refuses what Stripe refuses; an authorized Checkout payment is still canceled by its intent."""
    async with flow_with(simulator=simulator, **CHECKOUT) as flow:
        declined = await flow.create_payment(amount=Money.of("5000", "XOF"), provider=CODE, order_id="A-1")
        await simulator.decline(declined.payment.external_id or "")
        authorized_checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider=CODE, order_id="A-2", capture=False
        )
        await deliver(flow, await simulator.pay(authorized_checkout.payment.external_id or ""))
        canceled = await flow.cancel(authorized_checkout.payment.id)
    declined_intent = simulator.sessions[declined.payment.external_id or ""]["payment_intent"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://stripe") as client:
        answer = await client.post(
            f"/v1/payment_intents/{declined_intent}/cancel", headers={"Authorization": f"Bearer {API_KEY}"}
        )
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "payment_intent_unexpected_state")
    assert "you must expire the Checkout Session" in answer.json()["error"]["message"]
    assert canceled.status is PaymentStatus.CANCELED
    authorized_intent = simulator.sessions[authorized_checkout.payment.external_id or ""]["payment_intent"]
    assert simulator.intents[authorized_intent]["status"] == "canceled"


async def test_a_capture_in_part_delivered_before_its_authorization_is_applied_as_in_order(
    flow: PaymentFlow, simulator: StripeSimulator
) -> None:
    """Stripe does not order its deliveries: the Dashboard's capture of 30.00 of a 50.00 hold
    (``payment_intent.succeeded``) came before the hold's ``payment_intent.amount_capturable_updated``. The
    payment stayed processing, flagged as underpaid, and no poll could move it (a succeeded intent reports no
    hold): the intent's ``amount``, captured by hand, is the hold it was captured from."""
    checkout = await flow.create_payment(amount=Money.of("50.00", "EUR"), provider=CODE, order_id="A-2", capture=False)
    intent_id = checkout.payment.external_id or ""
    held = await simulator.pay(intent_id)
    captured = await simulator.capture_in_dashboard(intent_id, 3000)
    await deliver(flow, captured)
    first = await flow.get_payment(checkout.payment.id)
    await deliver(flow, held)
    polled = await flow.refresh(checkout.payment.id)
    for payment in (first, polled):
        assert (payment.status, payment.authorized_amount, payment.captured_amount) == (
            PaymentStatus.SUCCEEDED,
            Money.of("50.00", "EUR"),
            Money.of("30.00", "EUR"),
        )
        assert not payment.needs_review


async def test_a_capture_of_an_authorization_stripe_let_expire_cancels_the_payment(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    """Its hold ended at Stripe and the webhook saying so has not arrived: Stripe refuses the capture
    (``payment_intent_unexpected_state``) naming the canceled intent. The payment stayed authorized, and each capture
    after was refused the same way, until a webhook or a poll told."""
    async with flow_with(simulator=simulator) as flow:
        payment = await authorized(flow, simulator, Money.of("5000", "XOF"))
        await simulator.expire_authorization(payment.external_id or "")  # its events not delivered
        canceled = await flow.capture(payment.id)
    assert (canceled.status, canceled.captured_amount, canceled.pending_call) == (PaymentStatus.CANCELED, None, None)
