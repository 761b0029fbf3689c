"""Refunds told to webhook endpoints on Stripe's older API versions, and refunds that fail at the simulator.

Before ``2024-10-28.acacia`` Stripe sends no ``refund.*`` event for a refund of a
charge: a refund made in the Dashboard comes with ``charge.refunded`` alone, and
a pending refund's outcome with ``charge.refund.updated``. From ``2022-11-15`` on,
the charge of ``charge.refunded`` lists no refunds, so the provider lists them
through the API. A refund that failed gives its money back: it may be refunded
again, at Stripe as at the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import httpx
import pytest
import stripe

import paycore_stripe.plugin
from paycore.asgi import create_app
from paycore.errors import PaymentBusy
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
EUR = "EUR"


def simulator_on(api_version: str, *, refund_status: str = "succeeded") -> StripeSimulator:
    """A simulator whose events are shaped for a webhook endpoint on ``api_version``."""
    return StripeSimulator(
        api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, api_version=api_version, refund_status=refund_status
    )


async def deliver(flow: PaymentFlow, events: Sequence[SignedEvent]) -> None:
    """Deliver each event as Stripe would; a refusal (such as "deliver it again later") fails the test."""
    for event in events:
        await flow.handle_webhook(CODE, event.body, event.headers)


async def paid(flow: PaymentFlow, simulator: StripeSimulator, amount: str = "100.00") -> Payment:
    """A payment of ``amount`` EUR the customer paid, its webhooks delivered."""
    checkout = await flow.create_payment(amount=Money.of(amount, EUR), provider=CODE, order_id="A-1")
    await deliver(flow, await simulator.pay(checkout.payment.external_id or ""))
    return await flow.get_payment(checkout.payment.id)


def resigned(event: SignedEvent, body: bytes) -> SignedEvent:
    """``event`` with another body, signed again now as Stripe signs."""
    header = stripe.WebhookSignature.generate_signature_header(body.decode(), WEBHOOK_SECRET)
    return SignedEvent(event.id, event.type, body, {**event.headers, "stripe-signature": header})


@pytest.mark.parametrize("api_version", ["2024-06-20", "2020-08-27"])  # the charge lists no refunds, or lists them
async def test_a_dashboard_refund_told_by_charge_refunded_alone_refunds_the_payment(
    flow_with: Callable[..., PaymentFlow], api_version: str
) -> None:
    simulator = simulator_on(api_version)
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        sent = await simulator.refund_in_dashboard(payment.external_id or "")
        assert [e.type for e in sent] == ["charge.refunded"]
        await deliver(flow, sent)
        refunded = await flow.get_payment(payment.id)
    (refund,) = refunded.refunds
    assert (refunded.status, refunded.refunded_amount, refunded.needs_review) == (
        PaymentStatus.REFUNDED,
        Money.of("100.00", EUR),
        False,
    )
    assert (refund.status, refund.external_id) == (RefundStatus.SUCCEEDED, next(iter(simulator.refunds)))


async def test_a_charge_refunded_listing_only_its_first_refunds_reports_every_refund(
    flow_with: Callable[..., PaymentFlow],
) -> None:
    """Before 2022-11-15 a charge lists one page of its refunds: the others are listed through the API."""
    simulator = simulator_on("2020-08-27")
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        await simulator.refund_in_dashboard(payment.external_id or "", 3000)
        (sent,) = await simulator.refund_in_dashboard(payment.external_id or "", 7000)
        event = json.loads(sent.body)
        listed = event["data"]["object"]["refunds"]
        listed.update(data=listed["data"][-1:], has_more=True)  # the newest refund only, and more to come
        await deliver(flow, [resigned(sent, json.dumps(event).encode())])
        refunded = await flow.get_payment(payment.id)
    assert (refunded.status, refunded.refunded_amount) == (PaymentStatus.REFUNDED, Money.of("100.00", EUR))
    assert sorted(r.amount for r in refunded.refunds) == [Money.of("30.00", EUR), Money.of("70.00", EUR)]


async def test_a_charge_refunded_whose_refunds_cannot_be_listed_is_answered_503_and_read_when_sent_again(
    flow_with: Callable[..., PaymentFlow],
) -> None:
    """Stripe cannot be asked for the refunds: the delivery is refused for Stripe to send it again, never read as
    refunding nothing."""
    simulator = simulator_on("2024-06-20")
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        (sent,) = await simulator.refund_in_dashboard(payment.external_id or "")
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as merchant:
            simulator.refuse_next()
            refused = await merchant.post(f"/{CODE}", content=sent.body, headers=dict(sent.headers))
            unchanged = await flow.get_payment(payment.id)
            again = await merchant.post(f"/{CODE}", content=sent.body, headers=dict(sent.headers))
        refunded = await flow.get_payment(payment.id)
    assert (refused.status_code, refused.json()["error"]) == (503, "busy")
    assert unchanged == payment
    assert again.status_code == 200
    assert (refunded.status, refunded.refunded_amount) == (PaymentStatus.REFUNDED, Money.of("100.00", EUR))


async def test_a_charge_refunded_of_a_payment_not_paycores_asks_stripe_nothing_and_is_not_found(
    flow_with: Callable[..., PaymentFlow],
) -> None:
    """A charge another system made on the same Stripe account: its event is answered 404 at once, even while
    Stripe cannot be asked, instead of listing its refunds (and answering 503 until Stripe can be asked)."""
    simulator = simulator_on("2024-06-20")
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        (sent,) = await simulator.refund_in_dashboard(payment.external_id or "")
        event = json.loads(sent.body)
        event["data"]["object"]["metadata"] = {}  # no paycore payment: another system's charge
        event["data"]["object"]["payment_intent"] = "pi_of_another_system"
        foreign = resigned(sent, json.dumps(event).encode())
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as merchant:
            simulator.refuse_next()  # had it asked Stripe, it would have been refused
            answer = await merchant.post(f"/{CODE}", content=foreign.body, headers=dict(foreign.headers))
        assert answer.status_code == 404
        assert await flow.get_payment(payment.id) == payment


async def test_a_charge_refunded_of_another_tenants_payment_asks_stripe_nothing_at_this_tenants_door() -> None:
    """Two restaurants on one Stripe account: Stripe sends every event to both doors. One's event at the other's door
    is acknowledged and changes nothing, at once, even while Stripe cannot be asked (it used to list that payment's
    refunds with this tenant's key, or answer 503; then 404, which Stripe retried for days)."""
    simulator = simulator_on("2024-06-20")
    card = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    card["simulator"] = simulator
    config = {"tenants": {"t1": {"providers": {CODE: card}}, "t2": {"providers": {CODE: card}}}}
    async with PaymentFlow.from_config(config, plugins=[paycore_stripe.plugin]) as flow:
        checkout = await flow.create_payment(amount=Money.of("50.00", EUR), provider=CODE, order_id="B", tenant="t2")
        for event in await simulator.pay(checkout.payment.external_id or ""):
            await flow.handle_webhook(CODE, event.body, event.headers, tenant="t2")
        (sent,) = await simulator.refund_in_dashboard(checkout.payment.external_id or "")
        asked = len(simulator.requests)
        simulator.refuse_next()  # had it asked Stripe, it would have been refused
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as merchant:
            elsewhere = await merchant.post(f"/t1/{CODE}", content=sent.body, headers=dict(sent.headers))
        assert (elsewhere.status_code, elsewhere.json()["payments"], simulator.requests[asked:]) == (200, [], [])
        with pytest.raises(PaymentBusy):  # at its own door it asks Stripe: the refusal not used above meets it
            await flow.handle_webhook(CODE, sent.body, sent.headers, tenant="t2")
        (refunded,) = await flow.handle_webhook(CODE, sent.body, sent.headers, tenant="t2")
    assert refunded.refunded_amount == Money.of("50.00", EUR), "at its own door, every refund is listed"


async def test_a_pending_refund_that_fails_told_by_charge_refund_updated_may_be_refunded_again(
    flow_with: Callable[..., PaymentFlow],
) -> None:
    simulator = simulator_on("2024-06-20", refund_status="pending")
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        already = len(simulator.events)
        first = await flow.refund(payment.id)
        await deliver(flow, simulator.events[already:])
        assert (await flow.get_payment(payment.id)).pending_refund_amount == Money.of("100.00", EUR)
        sent = await simulator.settle_refund(first.external_id or "", "failed")
        assert [e.type for e in sent] == ["charge.refund.updated"]
        await deliver(flow, sent)
        failed = await flow.get_payment(payment.id)
        simulator.refund_status = "succeeded"
        second = await flow.refund(payment.id)
        refunded = await flow.get_payment(payment.id)
    assert (failed.status, failed.refunds[0].status, failed.refundable_amount) == (
        PaymentStatus.SUCCEEDED,
        RefundStatus.FAILED,
        Money.of("100.00", EUR),
    )
    assert (second.status, second.amount) == (RefundStatus.SUCCEEDED, Money.of("100.00", EUR))
    assert (refunded.status, refunded.refunded_amount) == (PaymentStatus.REFUNDED, Money.of("100.00", EUR))


@pytest.mark.parametrize("settled", ["failed", "canceled"])
async def test_a_refund_that_failed_at_the_simulator_gives_its_money_back_to_refund_again(
    flow_with: Callable[..., PaymentFlow], settled: str
) -> None:
    """As at Stripe (the failed refund's failure_balance_transaction reverses it), the charge may be refunded again."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, refund_status="pending")
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        first = await flow.refund(payment.id, amount=Money.of("40.00", EUR))
        await deliver(flow, await simulator.settle_refund(first.external_id or "", settled))
        second = await flow.refund(payment.id)
    assert (second.amount, second.status) == (Money.of("100.00", EUR), RefundStatus.PENDING)
    assert [(r["amount"], r["status"]) for r in simulator.refunds.values()] == [(4000, settled), (10000, "pending")]


@pytest.mark.parametrize(
    ("api_version", "settled", "sent"),
    [
        ("2025-03-31.basil", "succeeded", ["refund.updated"]),
        ("2024-10-28.acacia", "failed", ["refund.failed"]),
        ("2024-10-28.acacia", "canceled", ["refund.failed"]),
        ("2024-06-20", "succeeded", ["charge.refund.updated"]),
        ("2024-06-20", "failed", ["charge.refund.updated"]),
    ],
)
async def test_the_simulator_settles_a_refund_with_the_events_of_its_api_version(
    flow_with: Callable[..., PaymentFlow], api_version: str, settled: str, sent: list[str]
) -> None:
    simulator = simulator_on(api_version, refund_status="pending")
    async with flow_with(simulator=simulator) as flow:
        payment = await paid(flow, simulator)
        made = await simulator.refund_in_dashboard(payment.external_id or "", 2000)
        settled_events = await simulator.settle_refund(next(iter(simulator.refunds)), settled)
    made_sent = ["refund.created", "charge.refunded"] if api_version >= "2024-10-28" else ["charge.refunded"]
    assert [e.type for e in made] == made_sent
    assert [e.type for e in settled_events] == sent
    assert json.loads(settled_events[0].body)["data"]["object"]["status"] == settled
