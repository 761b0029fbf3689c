"""Uncaptured money released before basil, as Stripe records it: Refunds with reason null, the API lists none.

Before ``2025-03-31.basil`` Stripe records the remainder of a partial capture and
an authorization canceled by a request as a Refund whose reason is null (its
published ``Refund.reason`` enum has no value for them), sent to the webhook
endpoint with ``charge.refunded`` (and ``refund.created`` from acacia on). The
API, on the version the SDK pins, never lists them. paycore must record none of
them as a refund (the money was never captured), still record a Dashboard refund
made on top, and acknowledge every delivery.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

import paycore_stripe.plugin
from paycore.asgi import create_app
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
VERSIONS = [
    "2024-06-20",
    "2024-12-18.acacia",
    "2020-08-27",
    "2024-12-18.acacia; checkout_server_update_beta=v1",
    "2025-03-31.basil",
]
"""No refund.* event for a charge's refund; refund.created for each; the charge lists its refunds; an endpoint with
a beta flag (its events name the version with the flag after a ``;``); basil (control)."""
PUBLISHED_REASONS = {None, "duplicate", "expired_uncaptured_charge", "fraudulent", "requested_by_customer"}
"""Stripe's Refund.reason enum: what a Refund in an event may say."""


def euros(amount: str) -> Money:
    return Money.of(amount, EUR)


@asynccontextmanager
async def stripe_on(api_version: str) -> AsyncIterator[tuple[PaymentFlow, StripeSimulator, httpx.AsyncClient]]:
    """A flow reaching a simulator whose events are shaped for ``api_version``, and the merchant's webhook door."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, api_version=api_version)
    card = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    flow = PaymentFlow.from_config(
        {"providers": {CODE: {**card, "simulator": simulator}}}, plugins=[paycore_stripe.plugin]
    )
    async with flow:
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as door:
            yield flow, simulator, door


async def deliver(door: httpx.AsyncClient, events: Sequence[SignedEvent], path: str = f"/{CODE}") -> list[int]:
    """Post each event to the merchant's webhook door as Stripe does; the HTTP statuses answered."""
    return [(await door.post(path, content=e.body, headers=dict(e.headers))).status_code for e in events]


async def listed_by_the_api(simulator: StripeSimulator, intent_id: str) -> list[dict[str, Any]]:
    """The refunds of ``intent_id`` as Stripe's API lists them."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url="http://stripe") as api:
        answer = await api.get(
            "/v1/refunds", params={"payment_intent": intent_id}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
    listed: list[dict[str, Any]] = answer.json()["data"]
    return listed


def refunds_shown(events: Sequence[SignedEvent]) -> list[dict[str, Any]]:
    """Every Refund object the events show: a refund event's own, and those a charge lists."""
    shown: list[dict[str, Any]] = []
    for event in events:
        obj = json.loads(event.body)["data"]["object"]
        shown += [obj] if obj["object"] == "refund" else obj.get("refunds", {}).get("data", [])
    return shown


async def as_stripe_sends_it(simulator: StripeSimulator, intent_id: str, events: Sequence[SignedEvent]) -> None:
    """What Stripe sent for released money: a Refund (before basil) with a published reason, none in the API."""
    assert all(refund.get("reason") in PUBLISHED_REASONS for refund in refunds_shown(events))
    assert await listed_by_the_api(simulator, intent_id) == []


async def authorized(flow: PaymentFlow, simulator: StripeSimulator, door: httpx.AsyncClient) -> Payment:
    """A payment of 100.00 EUR to capture later, authorized by the customer (its webhook delivered)."""
    checkout = await flow.create_payment(amount=euros("100.00"), provider=CODE, order_id="A-1", capture=False)
    assert await deliver(door, await simulator.pay(checkout.payment.external_id or "")) == [200]
    return await flow.get_payment(checkout.payment.id)


async def captured_in_part(
    flow: PaymentFlow, simulator: StripeSimulator, door: httpx.AsyncClient, *, via: str
) -> Payment:
    """The authorized 100.00 EUR captured for 60.00 only; what the merchant then sees ``via`` webhooks or a poll."""
    payment = await authorized(flow, simulator, door)
    already = len(simulator.events)
    await flow.capture(payment.id, amount=euros("60.00"))
    sent = simulator.events[already:]
    released = [e.type for e in sent if e.type != "payment_intent.succeeded"]
    assert released == ([] if simulator.api_version >= "2025-03-31" else [*refund_events(simulator), "charge.refunded"])
    await as_stripe_sends_it(simulator, payment.external_id or "", sent)
    if via == "webhook":
        assert await deliver(door, sent) == [200] * len(sent)
        return await flow.get_payment(payment.id)
    return await flow.refresh(payment.id)


def refund_events(simulator: StripeSimulator) -> list[str]:
    """``refund.created`` for a refund of a charge, sent from acacia on."""
    return ["refund.created"] if simulator.api_version >= "2024-10-28" else []


@pytest.mark.parametrize("via", ["webhook", "poll"])
@pytest.mark.parametrize("api_version", VERSIONS)
async def test_a_partial_capture_refunds_nothing_and_leaves_all_it_captured_refundable(
    api_version: str, via: str
) -> None:
    async with stripe_on(api_version) as (flow, simulator, door):
        payment = await captured_in_part(flow, simulator, door, via=via)
        polled = await flow.refresh(payment.id)
        refund = await flow.refund(payment.id, amount=euros("60.00"))
    for seen in (payment, polled):
        assert (seen.status, seen.captured_amount, seen.refunded_amount, seen.refunds) == (
            PaymentStatus.SUCCEEDED,
            euros("60.00"),
            euros("0.00"),
            (),
        )
        assert (seen.refundable_amount, seen.needs_review) == (euros("60.00"), False)
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, euros("60.00"))


@pytest.mark.parametrize("via", ["webhook", "poll"])
@pytest.mark.parametrize("api_version", VERSIONS)
async def test_a_dashboard_refund_after_a_partial_capture_is_recorded_as_one(api_version: str, via: str) -> None:
    async with stripe_on(api_version) as (flow, simulator, door):
        payment = await captured_in_part(flow, simulator, door, via=via)
        sent = await simulator.refund_in_dashboard(payment.external_id or "", 1000)
        assert [e.type for e in sent] == [*refund_events(simulator), "charge.refunded"]
        if via == "webhook":
            assert await deliver(door, sent) == [200] * len(sent)
            seen = await flow.get_payment(payment.id)
        else:
            seen = await flow.refresh(payment.id)
        polled = await flow.refresh(payment.id)
    for after in (seen, polled):
        (refund,) = after.refunds
        assert (after.status, after.refunded_amount, after.refundable_amount) == (
            PaymentStatus.PARTIALLY_REFUNDED,
            euros("10.00"),
            euros("50.00"),
        )
        assert (refund.status, refund.amount, after.needs_review) == (RefundStatus.SUCCEEDED, euros("10.00"), False)


@pytest.mark.parametrize("api_version", ["2024-12-18.acacia", "2025-03-31.basil"])
async def test_a_canceled_authorizations_events_are_acknowledged_and_refund_nothing(api_version: str) -> None:
    """On acacia, the canceled authorization's Refund comes with refund.created: acknowledged, not answered 503."""
    async with stripe_on(api_version) as (flow, simulator, door):
        payment = await authorized(flow, simulator, door)
        already = len(simulator.events)
        assert (await flow.cancel(payment.id)).status is PaymentStatus.CANCELED
        sent = simulator.events[already:]
        released = ["refund.created", "charge.refunded"] if api_version < "2025-03-31" else []
        assert [e.type for e in sent] == ["payment_intent.canceled", *released]
        await as_stripe_sends_it(simulator, payment.external_id or "", sent)
        answered = await deliver(door, sent)
        again = await deliver(door, sent)  # Stripe sending them again changes nothing
        delivered = await flow.get_payment(payment.id)
        polled = await flow.refresh(payment.id)
    assert answered == again == [200] * len(sent)
    for seen in (delivered, polled):
        assert (seen.status, seen.refunds, seen.refunded_amount, seen.needs_review) == (
            PaymentStatus.CANCELED,
            (),
            euros("0.00"),
            False,
        )


async def test_a_released_authorizations_refund_event_is_refused_while_stripe_cannot_be_asked() -> None:
    """Its Refund is not trusted: Stripe is asked for the intent's refunds, and meanwhile the delivery waits (503)."""
    async with stripe_on("2024-12-18.acacia") as (flow, simulator, door):
        payment = await authorized(flow, simulator, door)
        already = len(simulator.events)
        await flow.cancel(payment.id)
        (created,) = [e for e in simulator.events[already:] if e.type == "refund.created"]
        simulator.refuse_next()
        refused = await deliver(door, [created])
        acknowledged = await deliver(door, [created])
        canceled = await flow.get_payment(payment.id)
    assert (refused, acknowledged) == ([503], [200])
    assert (canceled.status, canceled.refunds) == (PaymentStatus.CANCELED, ())


async def test_a_refund_event_is_trusted_when_paycore_made_the_refund_and_checked_with_stripe_otherwise() -> None:
    """On acacia: paycore's refund is read from refund.created; a Dashboard refund's is listed through the API."""
    async with stripe_on("2024-12-18.acacia") as (flow, simulator, door):
        checkout = await flow.create_payment(amount=euros("100.00"), provider=CODE, order_id="A-1")
        await deliver(door, await simulator.pay(checkout.payment.external_id or ""))
        already = len(simulator.events)
        await flow.refund(checkout.payment.id, amount=euros("30.00"))
        (ours,) = [e for e in simulator.events[already:] if e.type == "refund.created"]
        asked = len(simulator.requests)
        assert await deliver(door, [ours]) == [200]
        asked_for_ours = simulator.requests[asked:]
        (dashboard, _) = await simulator.refund_in_dashboard(checkout.payment.external_id or "", 2000)
        asked = len(simulator.requests)
        assert await deliver(door, [dashboard]) == [200]
        asked_for_dashboards = [(method, path) for method, path, _ in simulator.requests[asked:]]
        refunded = await flow.get_payment(checkout.payment.id)
    assert asked_for_ours == []
    intent_id = checkout.payment.external_id
    assert asked_for_dashboards == [("GET", f"/v1/payment_intents/{intent_id}"), ("GET", "/v1/refunds")]
    assert sorted(r.amount for r in refunded.refunds) == [euros("20.00"), euros("30.00")]
    assert refunded.refunded_amount == euros("50.00")


async def test_a_dashboard_refund_event_of_another_tenants_payment_lists_no_refunds_at_this_tenants_door() -> None:
    """Two restaurants on one Stripe account, an endpoint on acacia: the Dashboard refund's event names no tenant,
    so its intent is retrieved; another tenant's is acknowledged at this door (changing nothing, and not sent
    again for days as a 404 would be), and has its refunds listed only at its own door."""
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET, api_version="2024-12-18.acacia")
    card = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    config = {"tenants": {t: {"providers": {CODE: {**card, "simulator": simulator}}} for t in ("t1", "t2")}}
    async with PaymentFlow.from_config(config, plugins=[paycore_stripe.plugin]) as flow:
        checkout = await flow.create_payment(amount=euros("50.00"), provider=CODE, order_id="B", tenant="t2")
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as door:
            await deliver(door, await simulator.pay(checkout.payment.external_id or ""), f"/t2/{CODE}")
            (created, _) = await simulator.refund_in_dashboard(checkout.payment.external_id or "", 1500)
            asked = len(simulator.requests)
            elsewhere = await deliver(door, [created], f"/t1/{CODE}")
            asked_elsewhere = [path for _, path, _ in simulator.requests[asked:]]
            at_home = await deliver(door, [created], f"/t2/{CODE}")
        refunded = await flow.get_payment(checkout.payment.id)
    assert (elsewhere, at_home) == ([200], [200])
    assert asked_elsewhere == [f"/v1/payment_intents/{checkout.payment.external_id}"]
    assert refunded.refunded_amount == euros("15.00")
