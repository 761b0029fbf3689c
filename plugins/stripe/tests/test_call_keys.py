"""The idempotency keys of captures and cancels name paycore's call, and the request they are for.

A key spent on a request Stripe refused is never sent again with another request
(Stripe refuses the key for a day) or for a new call (Stripe replays the refusal):
a cancel after an expire that lost the race with the customer, a capture after
one Stripe refused, reach Stripe as new requests.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

import pytest

from paycore.errors import ProviderNotSent
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_stripe import StripeSimulator

pytestmark = pytest.mark.anyio

CHECKOUT = {"mode": "checkout", "success_url": "https://shop.test/paid"}


@pytest.mark.parametrize("idempotency_key", [None, "cancel-A-1"])
async def test_an_authorization_the_customer_made_as_its_session_was_expired_is_voided_by_the_next_cancel(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator, idempotency_key: str | None
) -> None:
    """The customer pays just before the expire lands: Stripe refuses the expire (the session is complete),
    and the next cancel (a new one, or the same one retried under its key) cancels the intent."""

    async def customer_pays_first(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/expire"):
            await simulator.pay(scope["path"].split("/")[-2])
        await simulator(scope, receive, send)

    async with flow_with(simulator=customer_pays_first, **CHECKOUT) as flow:
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="card", order_id="A-1", capture=False
        )
        with pytest.raises(ProviderNotSent, match="checkout_session_unexpected_state"):
            await flow.cancel(checkout.payment.id, idempotency_key=idempotency_key)
        canceled = await flow.cancel(checkout.payment.id, idempotency_key=idempotency_key)
    (intent,) = simulator.intents.values()
    assert (intent["status"], intent["amount_capturable"]) == ("canceled", 0)
    assert canceled.status is PaymentStatus.CANCELED
    expire_key, cancel_key = [key for method, path, key in simulator.requests if path.endswith(("/expire", "/cancel"))]
    assert expire_key != cancel_key
    assert (expire_key or "").startswith(f"paycore-{checkout.payment.id}-call_")
    assert (cancel_key or "").startswith(f"paycore-{checkout.payment.id}-call_")


async def test_a_capture_stripe_refused_while_the_intent_was_busy_is_made_by_the_next_call(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    """Stripe refuses the first capture (the intent is processing an update) and keeps that refusal
    under its key; the next capture of the same amount is a new call with a new key, and captures."""
    busy = [True]

    async def intent_busy_once(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        intent_id = scope["path"].split("/")[-2] if scope["type"] == "http" else ""
        if busy[0] and scope["method"] == "POST" and scope["path"].endswith("/capture"):
            busy[0] = False
            simulator.intents[intent_id]["status"] = "processing"
            await simulator(scope, receive, send)
            simulator.intents[intent_id]["status"] = "requires_capture"
            return
        await simulator(scope, receive, send)

    async with flow_with(simulator=intent_busy_once) as flow:
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="card", order_id="A-1", capture=False
        )
        await simulator.pay(checkout.payment.external_id)
        assert (await flow.refresh(checkout.payment.id)).status is PaymentStatus.AUTHORIZED
        with pytest.raises(ProviderNotSent, match="payment_intent_unexpected_state"):
            await flow.capture(checkout.payment.id, amount=Money.of("3000", "XOF"))
        captured = await flow.capture(checkout.payment.id, amount=Money.of("3000", "XOF"))
    assert simulator.intents[checkout.payment.external_id or ""]["amount_received"] == 3000
    assert (captured.status, captured.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("3000", "XOF"))
