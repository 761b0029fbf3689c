"""Disputes (chargebacks) at Stripe: each state told to an operator, no amount of the payment changed."""

from __future__ import annotations

import httpx
import pytest

import paycore_stripe.plugin
from paycore.asgi import create_app
from paycore.errors import PaymentBusy
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus, ReviewReason
from paycore_stripe import StripeSimulator

from .conftest import API_KEY, CODE, WEBHOOK_SECRET

pytestmark = pytest.mark.anyio

EUR_50 = Money.of("50.00", "EUR")


async def test_a_dispute_is_told_at_each_state_and_changes_no_amount(
    flow: PaymentFlow, simulator: StripeSimulator
) -> None:
    payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="D-1")).payment
    for event in await simulator.pay(payment.external_id or ""):
        await flow.handle_webhook(CODE, event.body, event.headers)
    opened = await simulator.dispute(payment.external_id or "")
    assert [event.type for event in opened] == ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    for event in opened:
        (disputed,) = await flow.handle_webhook(CODE, event.body, event.headers)
    assert (disputed.status, disputed.captured_amount, disputed.refunded_amount) == (
        PaymentStatus.SUCCEEDED,
        EUR_50,
        Money.of("0.00", "EUR"),
    )
    assert (disputed.needs_review, disputed.review_reason) == (True, ReviewReason.DISPUTE)
    (dispute_id,) = simulator.disputes
    assert f"dispute {dispute_id} is needs_response, reason fraudulent" in disputed.review_message
    assert f"dispute {dispute_id} is needs_response, funds withdrawn" in disputed.review_message
    for event in opened:  # Stripe delivers again: known facts
        await flow.handle_webhook(CODE, event.body, event.headers)
    for event in await simulator.close_dispute(dispute_id, won=False):
        (lost,) = await flow.handle_webhook(CODE, event.body, event.headers)
    assert f"dispute {dispute_id} is lost" in lost.review_message
    disputes = [event for event in await flow.list_events(payment.id) if event.kind == "dispute"]
    assert [event.amount for event in disputes] == [EUR_50] * 3
    assert (await flow.refresh(payment.id)).captured_amount == EUR_50


async def test_another_tenants_dispute_is_acknowledged_at_this_tenants_door_and_changes_nothing() -> None:
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    card = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    card["simulator"] = simulator
    config = {"tenants": {"t1": {"providers": {CODE: card}}, "t2": {"providers": {CODE: card}}}}
    async with PaymentFlow.from_config(config, plugins=[paycore_stripe.plugin]) as flow:
        payment = (await flow.create_payment(amount=EUR_50, provider=CODE, order_id="D", tenant="t2")).payment
        for event in await simulator.pay(payment.external_id or ""):
            await flow.handle_webhook(CODE, event.body, event.headers, tenant="t2")
        (created, _) = await simulator.dispute(payment.external_id or "")
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as merchant:
            elsewhere = await merchant.post(f"/t1/{CODE}", content=created.body, headers=dict(created.headers))
        assert (elsewhere.status_code, elsewhere.json()["payments"]) == (200, [])
        simulator.refuse_next()  # whose payment it is cannot be asked: Stripe is to send it again
        with pytest.raises(PaymentBusy, match="retrieving"):
            await flow.handle_webhook(CODE, created.body, created.headers, tenant="t2")
        (flagged,) = await flow.handle_webhook(CODE, created.body, created.headers, tenant="t2")
        assert flagged.review_reason is ReviewReason.DISPUTE
