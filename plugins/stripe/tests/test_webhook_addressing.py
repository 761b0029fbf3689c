"""Events Stripe delivers that are not this provider's to read: another mode, another account, another tenant.

A live Connect endpoint receives its connected accounts' test-mode events too, and every endpoint of an account
every event of it. Read anyway, an event about some other PaymentIntent that carries a copy of a payment's
metadata would pay that payment: each is acknowledged (200) and changes nothing.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import httpx
import pytest
import stripe

import paycore_stripe.plugin
from paycore.asgi import create_app
from paycore.errors import MalformedWebhook, ProviderNotSent
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_stripe import StripeSimulator

from .conftest import API_KEY, CODE, WEBHOOK_SECRET

pytestmark = pytest.mark.anyio

EUR_50 = Money.of("50.00", "EUR")


def signed_event(event_type: str, obj: dict[str, Any], **fields: Any) -> tuple[bytes, dict[str, str]]:
    """An event as Stripe signs it, with ``fields`` (``livemode``, ``account``) at its top level."""
    event = {
        "id": f"evt_{time.time_ns()}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "type": event_type,
        **fields,
    }
    payload = json.dumps(event)
    return payload.encode(), {
        "stripe-signature": stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    }


def flow_on(simulator: StripeSimulator, **settings: Any) -> PaymentFlow:
    provider = {"type": "stripe", "api_key": simulator.api_key, "webhook_secret": WEBHOOK_SECRET}
    provider |= {"max_network_retries": 0, "simulator": simulator, **settings}
    return PaymentFlow.from_config({"providers": {CODE: provider}}, plugins=[paycore_stripe.plugin])


def another_intent_naming(simulator: StripeSimulator, intent_id: str) -> dict[str, Any]:
    """Some other PaymentIntent, paid, carrying a copy of the payment's metadata (as anyone who saw it can make)."""
    other = copy.deepcopy(simulator.intents[intent_id])
    other.update(id="pi_SomeoneElsesIntent00000", status="succeeded", amount_received=other["amount"])
    return {key: value for key, value in other.items() if not key.startswith("_")}


@pytest.mark.parametrize(
    "fields",
    [{"livemode": True}, {"account": "acct_SomeoneElse"}, {"livemode": True, "account": "acct_SomeoneElse"}],
    ids=["live-mode", "connected-account", "both"],
)
async def test_an_event_of_another_mode_or_account_pays_nothing(fields: dict[str, Any]) -> None:
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    async with flow_on(simulator) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="O-1")).payment
        assert payment.external_id is not None
        body, headers = signed_event(
            "payment_intent.succeeded", another_intent_naming(simulator, payment.external_id), **fields
        )
        assert await flow.handle_webhook(CODE, body, headers) == []
        after = await flow.get_payment(payment.id)
        assert (after.status, after.captured_amount, after.version) == (PaymentStatus.PROCESSING, None, payment.version)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(flow)), base_url="http://s") as door:
            answered = await door.post(f"/{CODE}", content=body, headers=headers)
        assert (answered.status_code, answered.json()["payments"]) == (200, [])
        for event in await simulator.pay(payment.external_id):  # its own events, of its mode and account, apply
            await flow.handle_webhook(CODE, event.body, event.headers)
        assert (await flow.get_payment(payment.id)).captured_amount == EUR_50


@pytest.mark.parametrize("api_key", ["sk_live_51paycoreSimulated", "rk_live_51paycoreSimulated", API_KEY])
async def test_events_of_the_keys_own_mode_are_read(api_key: str) -> None:
    simulator = StripeSimulator(api_key=api_key, webhook_secret=WEBHOOK_SECRET)
    async with flow_on(simulator) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="O-1")).payment
        (event, *_) = await simulator.pay(payment.external_id or "")
        assert json.loads(event.body)["livemode"] is api_key.startswith(("sk_live_", "rk_live_"))
        (paid,) = await flow.handle_webhook(CODE, event.body, event.headers)
        assert paid.status is PaymentStatus.SUCCEEDED


async def test_a_provider_acting_for_a_connected_account_reads_that_accounts_events_only() -> None:
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, account="acct_ChezAwa")
    async with flow_on(simulator, stripe_account="acct_ChezAwa") as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="O-1")).payment
        assert payment.external_id is not None
        other = another_intent_naming(simulator, payment.external_id)
        for fields in ({}, {"account": "acct_SomeoneElse"}):  # the platform's own account's, another account's
            body, headers = signed_event("payment_intent.succeeded", other, **fields)
            assert await flow.handle_webhook(CODE, body, headers) == []
        (event, *_) = await simulator.pay(payment.external_id)
        assert json.loads(event.body)["account"] == "acct_ChezAwa"
        (paid,) = await flow.handle_webhook(CODE, event.body, event.headers)
        assert paid.captured_amount == EUR_50


async def test_a_provider_without_the_connected_accounts_header_is_refused_by_the_simulator() -> None:
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, account="acct_ChezAwa")
    async with flow_on(simulator) as flow:
        with pytest.raises(ProviderNotSent, match="403"):
            await flow.create_payment(amount=EUR_50, provider=CODE, order_id="O-1")


async def test_an_event_of_this_mode_and_account_about_another_intent_naming_the_payment_pays_nothing() -> None:
    """Within one account and mode, a payment has one PaymentIntent: another one carrying a copy of its metadata is
    another object, refused at the door (nothing changes), never the payment's money."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    async with flow_on(simulator) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="O-1")).payment
        assert payment.external_id is not None
        body, headers = signed_event("payment_intent.succeeded", another_intent_naming(simulator, payment.external_id))
        with pytest.raises(
            MalformedWebhook, match=f"pi_SomeoneElsesIntent00000, not this payment's {payment.external_id}"
        ):
            await flow.handle_webhook(CODE, body, headers)
        assert await flow.get_payment(payment.id) == payment
        polled = await flow.refresh(payment.id)  # its own intent, unpaid
        assert (polled.status, polled.captured_amount) == (PaymentStatus.PROCESSING, None)


async def test_an_event_about_another_systems_intent_on_the_account_is_acknowledged() -> None:
    """The restaurant's online shop takes Stripe payments of its own on the same account: their events reach
    paycore's endpoint too. Answered 404, each would be sent again for days, and an endpoint that keeps failing
    may be disabled, paycore's own events with it."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    async with flow_on(simulator) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="O-1")).payment
        theirs = {**another_intent_naming(simulator, payment.external_id or ""), "metadata": {"shop_order": "W-88"}}
        body, headers = signed_event("payment_intent.succeeded", theirs)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(flow)), base_url="http://s") as door:
            answered = await door.post(f"/{CODE}", content=body, headers=headers)
        assert (answered.status_code, answered.json()["payments"]) == (200, [])
        assert await flow.get_payment(payment.id) == payment


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("charge.refunded", {"id": "ch_Legacy", "object": "charge", "amount": 5000, "amount_refunded": 5000,
                             "amount_captured": 5000, "captured": True, "currency": "eur", "payment_intent": None,
                             "metadata": {}, "refunds": {"object": "list", "data": []}}),
        ("refund.created", {"id": "re_Legacy", "object": "refund", "amount": 500, "currency": "eur",
                            "charge": "ch_Legacy", "payment_intent": None, "status": "succeeded", "metadata": {}}),
        ("refund.created", {"id": "re_Balance", "object": "refund", "amount": 500, "currency": "eur",
                            "charge": None, "payment_intent": None, "status": "succeeded", "metadata": {}}),
    ],
    ids=["legacy-charge-refunded", "legacy-charge-refund", "customer-balance-refund"],
)  # fmt: skip
async def test_a_charge_or_refund_of_no_payment_intent_is_acknowledged(event_type: str, obj: dict[str, Any]) -> None:
    """Another system on the account charges through the legacy Charges API, or refunds a customer's balance:
    its charge or refund belongs to no PaymentIntent (Stripe's field is nullable), so it is none of paycore's.
    Refused as malformed, it would be sent again for days, and the endpoint may be disabled."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    async with flow_on(simulator) as flow:
        body, headers = signed_event(event_type, obj)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(flow)), base_url="http://s") as door:
            answered = await door.post(f"/{CODE}", content=body, headers=headers)
        assert (answered.status_code, answered.json()["payments"]) == (200, [])
        without_the_field = {key: value for key, value in obj.items() if key != "payment_intent"}
        with pytest.raises(MalformedWebhook):  # a charge or refund that does not say is still unreadable
            await flow.handle_webhook(CODE, *signed_event(event_type, without_the_field))


async def test_two_providers_on_one_account_acknowledge_each_other_s_events() -> None:
    """Stripe.js and Checkout are two providers (``mode``) on one Stripe account, and Stripe sends every event of
    the account to both endpoints: each reads its own payments' events and acknowledges the other's."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    card = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    providers = {"card": {**card, "simulator": simulator}, "tap": {**card, "simulator": simulator}}
    async with PaymentFlow.from_config({"providers": providers}, plugins=[paycore_stripe.plugin]) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider="card", order_id="O-1")).payment
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(flow)), base_url="http://s") as door:
            for event in await simulator.pay(payment.external_id or ""):
                elsewhere = await door.post("/tap", content=event.body, headers=event.headers)
                assert (elsewhere.status_code, elsewhere.json()["payments"]) == (200, [])
                assert (await flow.get_payment(payment.id)).status is PaymentStatus.PROCESSING
                own = await door.post("/card", content=event.body, headers=event.headers)
                assert own.status_code == 200
            # A refund made in the Dashboard names the payment by its intent alone: acknowledged at /tap too.
            for event in await simulator.refund_in_dashboard(payment.external_id or "", 500):
                elsewhere = await door.post("/tap", content=event.body, headers=event.headers)
                assert (elsewhere.status_code, elsewhere.json()["payments"]) == (200, []), event.type
                assert (await door.post("/card", content=event.body, headers=event.headers)).status_code == 200
        paid = await flow.get_payment(payment.id)
        assert (paid.status, paid.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Money.of("5.00", "EUR"))


async def test_refund_events_of_another_tenant_sharing_the_account_are_acknowledged() -> None:
    """paycore writes a payment's id on its refunds, not its tenant, and a Dashboard refund names nothing: at a
    tenant's door such an event's intent is retrieved first, and another tenant's is acknowledged."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    card = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    config = {"tenants": {t: {"providers": {CODE: {**card, "simulator": simulator}}} for t in ("t1", "t2")}}
    async with PaymentFlow.from_config(config, plugins=[paycore_stripe.plugin]) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="B", tenant="t2")).payment
        for event in await simulator.pay(payment.external_id or ""):
            await flow.handle_webhook(CODE, event.body, event.headers, tenant="t2")
        already = len(simulator.events)
        await flow.refund(payment.id, amount=Money.of("10.00", "EUR"), tenant="t2")
        ours = simulator.events[already:]
        theirs = await simulator.refund_in_dashboard(payment.external_id or "", 500)
        refund_events = [event for event in (*ours, *theirs) if event.type.startswith("refund.")]
        assert refund_events
        for event in refund_events:
            assert await flow.handle_webhook(CODE, event.body, event.headers, tenant="t1") == []
            (at_home,) = await flow.handle_webhook(CODE, event.body, event.headers, tenant="t2")
        assert at_home.refunded_amount == Money.of("15.00", "EUR")


async def test_a_thin_event_is_refused_naming_what_the_endpoint_must_send() -> None:
    """An event destination set to thin payloads sends ``v2.core.event`` objects that tell no state: refused, so
    the Dashboard shows the endpoint failing, never acknowledged with its payment left untold."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    thin = {"id": "evt_test_65R1", "object": "v2.core.event", "type": "v1.payment_intent.succeeded",
            "related_object": {"id": "pi_3MtwBwLkdIwHu7ix", "type": "payment_intent"}}  # fmt: skip
    payload = json.dumps(thin)
    headers = {"stripe-signature": stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)}
    async with flow_on(simulator) as flow:
        with pytest.raises(MalformedWebhook, match=r"thin event .* send this endpoint snapshot events"):
            await flow.handle_webhook(CODE, payload.encode(), headers)
