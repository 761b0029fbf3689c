"""The provider against Stripe's API answers (shaped as Stripe's API reference shows them), served by respx.

No network: respx answers every request the SDK's httpx client makes to
``https://api.stripe.com``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import respx

from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus, RefundStatus, ReviewReason
from paycore_stripe import AmountNotAccepted, StripeProvider

pytestmark = pytest.mark.anyio

API = "https://api.stripe.com/v1"


def intent(status: str = "requires_payment_method", **fields: Any) -> dict[str, Any]:
    data = {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 5000,
        "amount_capturable": 0,
        "amount_received": 0,
        "capture_method": "automatic",
        "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "currency": "xof",
        "metadata": {},
        "status": status,
    }
    return {**data, **fields}


def refund(ident: str, amount: int, status: str = "succeeded") -> dict[str, Any]:
    return {
        "id": ident,
        "object": "refund",
        "amount": amount,
        "currency": "xof",
        "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "status": status,
        "metadata": {},
    }


def error(kind: str, code: str, **fields: Any) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": "Stripe says no.", **fields}}


@pytest.fixture
async def flow(flow_with: Callable[..., PaymentFlow]) -> AsyncIterator[PaymentFlow]:
    async with flow_with() as opened:
        yield opened


async def test_a_payment_intent_is_created_with_an_idempotency_key_and_the_client_secret_as_next_action(
    flow: PaymentFlow,
) -> None:
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"{API}/payment_intents").respond(200, json=intent())
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="card", order_id="A-1", capture=False
        )
    request = route.calls.last.request
    sent = httpx.QueryParams(request.content.decode())
    assert (sent["amount"], sent["currency"], sent["capture_method"]) == ("5000", "xof", "manual")
    assert sent["metadata[paycore_payment_id]"] == checkout.payment.id
    assert request.headers["idempotency-key"] == f"paycore-{checkout.payment.id}-create"
    assert checkout.payment.status is PaymentStatus.PROCESSING
    assert checkout.payment.external_id == "pi_3MtwBwLkdIwHu7ix28a3tqPa"
    assert checkout.action is not None
    assert (checkout.action.kind, checkout.action.data) == ("display", intent()["client_secret"])
    with respx.mock:  # the customer confirmed: the client secret is no one's to use any more, nor kept
        respx.get(f"{API}/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa").respond(
            200, json=intent("requires_capture", capture_method="manual", amount_capturable=5000)
        )
        respx.get(f"{API}/refunds").respond(200, json={"object": "list", "data": [], "has_more": False})
        authorized = await flow.refresh(checkout.payment.id)
    assert (authorized.status, authorized.next_action) == (PaymentStatus.AUTHORIZED, None)
    assert intent()["client_secret"] not in repr(await flow.get_payment(checkout.payment.id))


async def test_a_card_decline_is_a_definitive_failure(flow: PaymentFlow) -> None:
    declined = error(
        "card_error",
        "card_declined",
        decline_code="insufficient_funds",
        payment_intent=intent("requires_payment_method"),
    )
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(402, json=declined)
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="card", order_id="A-1")
    assert checkout.payment.status is PaymentStatus.FAILED
    assert checkout.payment.pending_call is None


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, error("invalid_request_error", "parameter_invalid_integer")),
        (401, error("invalid_request_error", "api_key_invalid")),
        (429, error("invalid_request_error", "rate_limit")),
    ],
)
async def test_a_request_stripe_refused_was_not_sent_and_may_be_retried(
    flow: PaymentFlow, status: int, body: dict[str, Any]
) -> None:
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(status, json=body)
        with pytest.raises(ProviderNotSent, match=str(status)):
            await flow.create_payment(
                amount=Money.of("5000", "XOF"), provider="card", order_id="A-1", idempotency_key="k"
            )
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=intent())
        retried = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="card", order_id="A-1", idempotency_key="k"
        )
    assert retried.payment.status is PaymentStatus.PROCESSING


async def test_a_refused_connection_was_not_sent(flow: PaymentFlow) -> None:
    with respx.mock:
        respx.post(f"{API}/payment_intents").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(ProviderNotSent, match="not reached"):
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="card", order_id="A-1")


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("connection reset"),
        httpx.Response(500, json=error("api_error", "internal")),
        httpx.Response(409, json=error("idempotency_error", "idempotency_key_in_use")),
        httpx.Response(200, json=intent("succeeded", amount_received=-1)),
        httpx.Response(200, json=intent("succeeded", amount_received=5000, currency="iqd")),
        httpx.Response(200, json=intent("succeeded", amount=50050, amount_received=50050, currency="isk")),
    ],
)
async def test_a_request_without_a_usable_answer_has_an_unknown_outcome(flow: PaymentFlow, answer: Any) -> None:
    with respx.mock:
        route = respx.post(f"{API}/payment_intents")
        route.mock(side_effect=answer) if isinstance(answer, Exception) else route.mock(return_value=answer)
        with contextlib.suppress(ProviderOutcomeUnknown):  # the flow keeps the call as unknown
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="card", order_id="A-1")
    (payment,) = await flow.list_payments(order_id="A-1")
    assert payment.status is PaymentStatus.PROCESSING
    assert payment.pending_call is not None
    assert payment.pending_call.unknown


async def test_a_three_decimal_amount_stripe_cannot_take_is_refused_before_anything_is_sent(flow: PaymentFlow) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{API}/payment_intents")
        with pytest.raises(AmountNotAccepted):
            await flow.create_payment(amount=Money.of("5.125", "KWD"), provider="card", order_id="K-1")
    assert not route.called
    assert await flow.list_payments(order_id="K-1") == []


async def test_a_three_decimal_amount_is_sent_with_its_trailing_zero(flow: PaymentFlow) -> None:
    with respx.mock:
        route = respx.post(f"{API}/payment_intents").respond(200, json=intent(amount=5120, currency="kwd"))
        await flow.create_payment(amount=Money.of("5.12", "KWD"), provider="card", order_id="K-1")
    sent = httpx.QueryParams(route.calls.last.request.content.decode())
    assert (sent["amount"], sent["currency"]) == ("5120", "kwd")


async def test_an_idr_amount_of_more_than_eight_digits_is_sent_as_stripe_allows_up_to_twelve(
    flow: PaymentFlow,
) -> None:
    with respx.mock:
        route = respx.post(f"{API}/payment_intents").respond(200, json=intent(amount=100_000_000, currency="idr"))
        await flow.create_payment(amount=Money.of("1000000.00", "IDR"), provider="card", order_id="I-1")
    sent = httpx.QueryParams(route.calls.last.request.content.decode())
    assert (sent["amount"], sent["currency"]) == ("100000000", "idr")


@pytest.mark.parametrize(
    ("amount", "digits"), [(Money.of("10000000000.00", "IDR"), "twelve"), (Money.of("1000000.00", "EUR"), "eight")]
)
async def test_an_amount_of_more_digits_than_stripe_takes_is_refused_before_anything_is_sent(
    flow: PaymentFlow, amount: Money, digits: str
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        route = mock.post(f"{API}/payment_intents")
        with pytest.raises(AmountNotAccepted, match=f"at most {digits} digits"):
            await flow.create_payment(amount=amount, provider="card", order_id="I-2")
    assert not route.called
    assert await flow.list_payments(order_id="I-2") == []


async def test_a_poll_lists_every_refund_page_by_page(flow: PaymentFlow) -> None:
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=intent())
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="card", order_id="A-1")
    pages = [
        {"object": "list", "data": [refund("re_2", 1000)], "has_more": True, "url": "/v1/refunds"},
        {"object": "list", "data": [refund("re_1", 1500)], "has_more": False, "url": "/v1/refunds"},
    ]
    with respx.mock:
        respx.get(f"{API}/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa").respond(
            200, json=intent("succeeded", amount_received=5000)
        )
        listed = respx.get(f"{API}/refunds").mock(side_effect=[httpx.Response(200, json=page) for page in pages])
        provider = flow.provider("card")
        assert isinstance(provider, StripeProvider)
        update = await provider.check_status(await flow.get_payment(checkout.payment.id))
    assert listed.calls[1].request.url.params["starting_after"] == "re_2"
    assert [(r.external_id, r.status, r.amount) for r in update.refunds] == [
        ("re_2", RefundStatus.SUCCEEDED, Money.of("1000", "XOF")),
        ("re_1", RefundStatus.SUCCEEDED, Money.of("1500", "XOF")),
    ]
    assert update.captured == Money.of("5000", "XOF")


async def test_a_poll_of_an_intent_stripe_made_and_no_longer_knows_flags_the_payment(flow: PaymentFlow) -> None:
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=intent())
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="card", order_id="A-1")
    with respx.mock:
        respx.get(f"{API}/payment_intents/pi_3MtwBwLkdIwHu7ix28a3tqPa").respond(
            404, json=error("invalid_request_error", "resource_missing")
        )
        payment = await flow.refresh(checkout.payment.id)
    # Stripe made that intent: an unknown id now is a key of another account or mode, not a payment never made
    assert (payment.status, payment.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    assert "no record of pi_3MtwBwLkdIwHu7ix28a3tqPa" in payment.review_message


async def test_secrets_never_appear_in_a_repr(flow: PaymentFlow) -> None:
    provider = flow.provider("card")
    shown = repr(provider.settings) + repr(provider)
    assert "sk_test_" not in shown
    assert "whsec_" not in shown


HELD = intent("requires_capture", capture_method="manual", amount_capturable=5000)


async def _authorized(flow: PaymentFlow) -> str:
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=HELD)
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="card", order_id="A-1", capture=False
        )
    assert checkout.payment.status is PaymentStatus.AUTHORIZED
    return checkout.payment.id


async def test_a_capture_declined_by_a_card_error_leaves_the_authorization_to_capture_or_cancel(
    flow: PaymentFlow,
) -> None:
    """A 402 ``card_error`` to a capture refuses that capture alone: the hold stands at Stripe. It made the payment
    ``failed``, which could then be neither captured nor canceled while Stripe held the customer's money."""
    payment_id = await _authorized(flow)
    declined = error("card_error", "card_declined", payment_intent=HELD)
    capture = f"{API}/payment_intents/{HELD['id']}/capture"
    with respx.mock:
        respx.post(capture).respond(402, json=declined)
        with pytest.raises(ProviderNotSent, match="402 CardError"):
            await flow.capture(payment_id, amount=Money.of("3000", "XOF"))
    held = await flow.get_payment(payment_id)
    assert (held.status, held.pending_call, held.needs_review) == (PaymentStatus.AUTHORIZED, None, False)
    captured = intent("succeeded", capture_method="manual", amount_received=3000)
    with respx.mock:
        respx.post(capture).respond(200, json=captured)
        paid = await flow.capture(payment_id, amount=Money.of("3000", "XOF"))
    assert (paid.status, paid.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("3000", "XOF"))


async def test_a_cancel_declined_by_a_card_error_was_not_sent(flow: PaymentFlow) -> None:
    payment_id = await _authorized(flow)
    with respx.mock:
        respx.post(f"{API}/payment_intents/{HELD['id']}/cancel").respond(402, json=error("card_error", "card_declined"))
        with pytest.raises(ProviderNotSent, match="402 CardError"):
            await flow.cancel(payment_id)
    held = await flow.get_payment(payment_id)
    assert (held.status, held.pending_call) == (PaymentStatus.AUTHORIZED, None)


async def test_a_refund_declined_by_a_card_error_was_not_sent_and_leaves_the_money_refundable(
    flow: PaymentFlow,
) -> None:
    """A 402 to a refund escaped the provider as the SDK's own exception: its outcome was recorded as unknown."""
    with respx.mock:
        respx.post(f"{API}/payment_intents").respond(200, json=intent("succeeded", amount_received=5000))
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="card", order_id="A-1")
    assert checkout.payment.status is PaymentStatus.SUCCEEDED
    with respx.mock:
        respx.post(f"{API}/refunds").respond(402, json=error("card_error", "card_declined"))
        with pytest.raises(ProviderNotSent, match="402 CardError"):
            await flow.refund(checkout.payment.id, amount=Money.of("2000", "XOF"))
    after = await flow.get_payment(checkout.payment.id)
    assert (after.status, after.pending_call, after.needs_review) == (PaymentStatus.SUCCEEDED, None, False)
    assert [refund.status for refund in after.refunds] == [RefundStatus.FAILED]
    assert after.refundable_amount == Money.of("5000", "XOF")


async def test_a_capture_declined_because_stripe_canceled_the_authorization_cancels_the_payment(
    flow: PaymentFlow,
) -> None:
    """The hold ended at Stripe (released, or expired after its days): the decline names the canceled intent. The
    payment stayed authorized, and each capture after was refused, until a webhook or a poll said so."""
    payment_id = await _authorized(flow)
    gone = intent("canceled", capture_method="manual", cancellation_reason="automatic")
    with respx.mock:
        respx.post(f"{API}/payment_intents/{HELD['id']}/capture").respond(
            402, json=error("card_error", "card_declined", payment_intent=gone)
        )
        canceled = await flow.capture(payment_id, amount=Money.of("3000", "XOF"))
    assert (canceled.status, canceled.pending_call, canceled.captured_amount) == (PaymentStatus.CANCELED, None, None)
