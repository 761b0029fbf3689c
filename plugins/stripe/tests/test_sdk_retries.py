"""The SDK's own retries (``max_network_retries``): it raises only its last attempt's error.

Once an attempt may have reached Stripe (a 5xx, a read timeout, a reset), a
later attempt that could not connect or that Stripe refused says nothing of the
first: the call's outcome is unknown (only a poll tells), never "not sent"
(a retry under a new key would move the money again).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
import respx
import stripe

from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus, RefundStatus, ReviewReason
from paycore_stripe import StripeSimulator

pytestmark = pytest.mark.anyio

API = "https://api.stripe.com/v1"
PI = "pi_3MtwBwLkdIwHu7ix28a3tqPa"
XOF = Money.of("5000", "XOF")


def intent(status: str = "requires_payment_method", **fields: Any) -> dict[str, Any]:
    data = {
        "id": PI,
        "object": "payment_intent",
        "amount": 5000,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic",
        "client_secret": f"{PI}_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "currency": "xof",
        "metadata": {},
        "status": status,
    }
    return {**data, **fields}


def failed(status: int, kind: str, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"type": kind, "code": code, "message": "Stripe says no."}})


REFUND = {
    "id": "re_1",
    "object": "refund",
    "amount": 5000,
    "currency": "xof",
    "payment_intent": PI,
    "status": "succeeded",
}
SERVER_ERROR = failed(500, "api_error", "internal")
RATE_LIMITED = failed(429, "invalid_request_error", "rate_limit")


def refused() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


def timed_out() -> httpx.ReadTimeout:
    return httpx.ReadTimeout("sent, no answer")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK retries at once (it sleeps half a second and more between attempts otherwise)."""
    monkeypatch.setattr(stripe.HTTPClient, "INITIAL_DELAY", 0)
    monkeypatch.setattr(stripe.HTTPClient, "MAX_DELAY", 0)


@pytest.fixture
async def flow(flow_with: Callable[..., PaymentFlow]) -> AsyncIterator[PaymentFlow]:
    async with flow_with(max_network_retries=2) as opened:  # the setting's default
        yield opened


async def _paid(flow: PaymentFlow, *, capture: bool = True) -> Payment:
    """A payment Stripe holds 5000 XOF of (authorized only unless ``capture``)."""
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=intent())
        checkout = await flow.create_payment(amount=XOF, provider="card", order_id="A-1", capture=capture)
    held = intent("succeeded", amount_received=5000) if capture else intent("requires_capture", amount_capturable=5000)
    with respx.mock:
        respx.get(f"{API}/payment_intents/{PI}").respond(200, json=held)
        respx.get(f"{API}/refunds").respond(200, json={"object": "list", "data": [], "has_more": False})
        return await flow.refresh(checkout.payment.id)


@pytest.mark.parametrize(
    "attempts",
    [
        pytest.param(lambda: [SERVER_ERROR, refused(), refused()], id="500-then-refused-connections"),
        pytest.param(lambda: [timed_out(), refused(), refused()], id="read-timeout-then-refused-connections"),
        pytest.param(lambda: [timed_out(), RATE_LIMITED], id="read-timeout-then-429"),
    ],
)
async def test_a_refund_whose_first_attempt_may_have_reached_stripe_stays_pending_not_failed(
    flow: PaymentFlow, attempts: Callable[[], list[Any]]
) -> None:
    paid = await _paid(flow)
    with respx.mock:
        route = respx.post(f"{API}/refunds").mock(side_effect=attempts())
        refund = await flow.refund(paid.id, amount=XOF)
    assert route.call_count == len(attempts())  # the SDK retried, under the one key
    assert len({call.request.headers["idempotency-key"] for call in route.calls}) == 1
    assert refund.status is RefundStatus.PENDING  # not FAILED: the merchant must not refund again
    after = await flow.get_payment(paid.id)
    assert after.pending_call is not None
    assert after.pending_call.unknown
    assert "may have reached Stripe" in after.pending_call.reason


async def test_a_capture_whose_first_attempt_may_have_reached_stripe_has_an_unknown_outcome(
    flow: PaymentFlow,
) -> None:
    authorized = await _paid(flow, capture=False)
    assert authorized.status is PaymentStatus.AUTHORIZED
    with respx.mock:
        route = respx.post(f"{API}/payment_intents/{PI}/capture").mock(side_effect=[SERVER_ERROR, refused(), refused()])
        after = await flow.capture(authorized.id)
    assert route.call_count == 3
    assert after.status is PaymentStatus.AUTHORIZED
    assert after.pending_call is not None
    assert after.pending_call.unknown


async def test_a_create_whose_first_attempt_may_have_reached_stripe_has_an_unknown_outcome(
    flow: PaymentFlow,
) -> None:
    with respx.mock:
        route = respx.post(f"{API}/payment_intents").mock(side_effect=[timed_out(), refused(), refused()])
        with contextlib.suppress(ProviderOutcomeUnknown):  # the flow keeps the call as unknown
            await flow.create_payment(amount=XOF, provider="card", order_id="A-1")
    assert route.call_count == 3
    (payment,) = await flow.list_payments(order_id="A-1")
    assert payment.status is PaymentStatus.PROCESSING
    assert payment.pending_call is not None
    assert payment.pending_call.unknown


async def test_a_first_attempt_that_could_not_connect_casts_no_doubt_on_the_answer_of_a_retry(
    flow: PaymentFlow,
) -> None:
    paid = await _paid(flow)
    with respx.mock:
        respx.post(f"{API}/refunds").mock(side_effect=[refused(), httpx.Response(200, json=REFUND)])
        refund = await flow.refund(paid.id, amount=XOF)
    assert refund.status is RefundStatus.SUCCEEDED
    assert (await flow.get_payment(paid.id)).pending_call is None


async def test_a_refund_no_attempt_of_which_could_connect_was_not_sent(flow: PaymentFlow) -> None:
    paid = await _paid(flow)
    with respx.mock:
        route = respx.post(f"{API}/refunds").mock(side_effect=[refused(), refused(), refused()])
        with pytest.raises(ProviderNotSent, match="not reached"):
            await flow.refund(paid.id, amount=XOF)
    assert route.call_count == 3
    after = await flow.get_payment(paid.id)
    assert [r.status for r in after.refunds] == [RefundStatus.FAILED]
    assert after.pending_call is None


async def test_a_read_stripe_answered_with_a_5xx_then_a_404_is_still_stripes_word_not_found(flow: PaymentFlow) -> None:
    """A retrieve changes nothing at Stripe: its earlier attempts cast no doubt on a later 404."""
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=intent())
        checkout = await flow.create_payment(amount=XOF, provider="card", order_id="A-1")
    missing = failed(404, "invalid_request_error", "resource_missing")
    with respx.mock:
        respx.get(f"{API}/payment_intents/{PI}").mock(side_effect=[SERVER_ERROR, missing])
        polled = await flow.refresh(checkout.payment.id)
    assert (polled.status, polled.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    assert f"no record of {PI}" in polled.review_message  # Stripe's word, not an unknown outcome


async def test_a_refund_stripe_made_before_the_sdk_retry_failed_is_never_made_twice(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    """Stripe makes the refund, the connection resets before its answer, and each retry of the SDK
    cannot connect: the refund is pending until a poll finds it; Stripe holds it once."""
    faulty = [False]

    async def stripe_with_a_bad_network(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if faulty[0] and scope["type"] == "http" and (scope["method"], scope["path"]) == ("POST", "/v1/refunds"):
            simulator.refuse_next() if simulator.refunds else simulator.drop_next_answer()
        await simulator(scope, receive, send)

    async with flow_with(simulator=stripe_with_a_bad_network, max_network_retries=2) as flow:
        checkout = await flow.create_payment(amount=XOF, provider="card", order_id="A-1")
        await simulator.pay(checkout.payment.external_id)
        paid = await flow.refresh(checkout.payment.id)
        assert paid.status is PaymentStatus.SUCCEEDED
        faulty[0] = True
        try:
            refund = await flow.refund(paid.id, amount=Money.of("2500", "XOF"))
        except ProviderNotSent:  # "nothing was sent": what a merchant does next is refund again
            faulty[0] = False
            refund = await flow.refund(paid.id, amount=Money.of("2500", "XOF"))
        faulty[0] = False
        polled = await flow.refresh(paid.id)
    assert [r["amount"] for r in simulator.refunds.values()] == [2500]
    assert refund.status is RefundStatus.PENDING  # until the poll found it
    assert [(r.id, r.status) for r in polled.refunds] == [(refund.id, RefundStatus.SUCCEEDED)]
    assert (polled.status, polled.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, Money.of("2500", "XOF"))
    refund_posts = [key for method, path, key in simulator.requests if (method, path) == ("POST", "/v1/refunds")]
    assert refund_posts == [f"paycore-{refund.id}-refund"]  # the SDK's retries never reached Stripe
