"""What a merchant and a customer see of a payment of an odd size, and of a gateway set up oddly: webhooks as
large as their payment and no larger, pages that show any amount, a retry policy refused when built, a webhook
URL's token kept out of the log."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from paycore import Money
from paycore.config import DEFAULT_WEBHOOK_MAX_BYTES
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.inputs import MAX_METADATA_BYTES
from paycore.status import PaymentStatus
from paycore.testing.webhooks import DeliveryInbox
from paycore_dummy import DummyGateway, RetryPolicy

pytestmark = pytest.mark.anyio

Eventually = Callable[..., Awaitable[None]]
API_KEY = "sk_test_direct"


def merchant(status: int = 204) -> DeliveryInbox:
    """A merchant's webhook endpoint that, as ``paycore.asgi`` does, answers 413 to a body above
    ``DEFAULT_WEBHOOK_MAX_BYTES`` and otherwise ``status``; it keeps every delivery it was sent."""
    return DeliveryInbox(status, max_body_bytes=DEFAULT_WEBHOOK_MAX_BYTES)


def direct_gateway(secret: str, inbox: DeliveryInbox, **options: Any) -> DummyGateway:
    options.setdefault("retry", RetryPolicy(attempts=2, backoff=0.01))
    options.setdefault("webhook_url", "http://merchant.test/hook")
    return DummyGateway(
        api_key=API_KEY, webhook_secrets=secret, webhook_transport=httpx.ASGITransport(app=inbox), **options
    )


# -- webhooks weigh what their payment weighs ------------------------------------------------------------------


async def test_a_payment_with_large_non_ascii_metadata_the_gateway_took_is_delivered_to_the_merchant(
    secret: str, eventually: Eventually
) -> None:
    """600 KB of "é" in the create (under the gateway's 1 MiB): the webhook carries them as UTF-8, not as
    ``\\u00e9`` escapes three times their size, so a merchant accepting 1 MiB hears of the payment at once."""
    metadata = {"note": "é" * 300_000}
    endpoint = merchant()
    async with direct_gateway(secret, endpoint) as gateway:
        transport = httpx.ASGITransport(app=gateway)
        headers = {"authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", headers=headers) as client:
            body = {"amount": 5000, "currency": "XOF", "reference": "pay_1", "metadata": metadata}
            created = await client.post("/v1/payments", content=json.dumps(body, ensure_ascii=False).encode())
            assert created.status_code == 201
            gateway.customer_action(created.json()["id"], "approve")
            await eventually(lambda: endpoint.answers)
    assert endpoint.answers == [204]  # delivered at the first attempt, never 413
    delivered, signed = endpoint.deliveries[0].body, dict(endpoint.deliveries[0].headers)
    assert len(delivered) < DEFAULT_WEBHOOK_MAX_BYTES
    assert "é".encode() * 1000 in delivered
    event = Webhook(secret).verify(delivered, signed)  # signed over exactly the bytes sent
    assert event["data"]["metadata"] == metadata


async def test_the_largest_metadata_paycore_keeps_comes_back_by_webhook_at_its_own_size(
    in_process: tuple[PaymentFlow, DummyGateway], wait_for: Callable[..., Awaitable[Any]]
) -> None:
    """Metadata of exactly ``MAX_METADATA_BYTES``, of the characters JSON escapes at the greatest cost (four
    UTF-8 bytes, twelve as ``\\ud83d\\ude00``): the payment is heard of by webhook, whose body is about the
    metadata's size, far under the 1 MiB paycore's endpoint accepts."""
    flow, gateway = in_process
    metadata = {"note": "\N{GRINNING FACE}" * 16381 + "a"}
    assert len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()) == MAX_METADATA_BYTES
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="wave", order_id="o-1", tenant="chez-awa", metadata=metadata
    )
    gateway.customer_action(checkout.payment.external_id, "approve")
    paid = await wait_for(flow, checkout.payment.id, PaymentStatus.SUCCEEDED)  # no poll: the webhook told
    assert dict(paid.metadata) == metadata
    assert [(attempt.attempt, attempt.status_code) for attempt in gateway.deliveries] == [(1, 200)]
    assert len(gateway.events[-1].body()) < MAX_METADATA_BYTES + 8 * 1024 < DEFAULT_WEBHOOK_MAX_BYTES // 8


def test_a_lone_surrogate_the_gateway_was_given_in_python_is_sent_escaped_as_json_writes_it() -> None:
    """UTF-8 cannot carry ``"\\ud800"`` (a payment created in Python, not over the API): the body still encodes,
    with the escape JSON writes, and reads back to the same text."""
    from datetime import UTC, datetime

    from paycore_dummy import GatewayEvent

    event = GatewayEvent(id="evt_1", type="payment.succeeded", data={"note": "é\ud800"}, created_at=datetime.now(UTC))
    body = event.body()
    assert '"note":"é\\ud800"'.encode() in body
    assert json.loads(body)["data"]["note"] == "é\ud800"


# -- the customer's pages show any amount -----------------------------------------------------------------------


@pytest.fixture
async def api(secret: str) -> AsyncIterator[tuple[DummyGateway, httpx.AsyncClient]]:
    async with direct_gateway(secret, merchant()) as gateway:
        transport = httpx.ASGITransport(app=gateway, raise_app_exceptions=False)
        headers = {"authorization": f"Bearer {API_KEY}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test", headers=headers) as client:
            yield gateway, client


@pytest.mark.parametrize("method", ["card", "mobile_money"])
async def test_a_line_whose_total_has_more_digits_than_python_writes_out_is_shown_not_a_500(
    api: tuple[DummyGateway, httpx.AsyncClient], method: str
) -> None:
    """The gateway takes any integers (another client than paycore, over its API): a line of 10**4000 at
    10**4000 totals 8001 digits, past the 4300 Python writes out; its pages say so instead of failing."""
    _, client = api
    items = [{"name": "Bolts", "quantity": 10**4000, "unit_price": 10**4000}]
    body = {"amount": 5000, "currency": "XOF", "reference": "pay_1", "method": method, "items": items}
    created = (await client.post("/v1/payments", json=body)).json()
    page = await client.get(created["next_action"]["url"].removeprefix("http://gateway.test"))
    assert page.status_code == 200
    assert "<li>1" + "0" * 4000 + " x Bolts: a 8001-digit number XOF (minor units)</li>" in page.text
    assert "5000 XOF" in page.text
    assert (await client.get("/")).status_code == 200


# -- a retry policy the gateway cannot deliver with is refused when built --------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"attempts": 0}, "attempts must be at least 1 (delivery attempts in all), not 0"),
        ({"attempts": -3}, "attempts must be at least 1"),
        ({"attempts": 2.0}, "attempts must be at least 1"),
        ({"attempts": True}, "attempts must be at least 1"),
        ({"backoff": -0.5}, "backoff must be a number of seconds, 0 or more, not -0.5"),
        ({"backoff": float("nan")}, "backoff must be a number of seconds"),
        ({"max_backoff": float("inf")}, "max_backoff must be a number of seconds"),
        ({"timeout": 0}, "timeout must be a number of seconds, more than 0, not 0"),
        ({"timeout": "10"}, "timeout must be a number of seconds"),
    ],
)
def test_a_retry_policy_the_gateway_cannot_deliver_with_is_refused_when_built(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        RetryPolicy(**options)


@pytest.mark.parametrize("attempts", [1, 2])
async def test_a_gateway_that_gives_up_says_so_without_the_token_in_its_webhook_url_and_keeps_serving(
    secret: str, eventually: Eventually, caplog: pytest.LogCaptureFixture, attempts: int
) -> None:
    url = "http://merchant.test/hook?token=tok_SECRET123"
    endpoint = merchant(status=503)
    caplog.set_level(logging.INFO, logger="paycore_dummy.delivery")
    options = {"webhook_url": url, "retry": RetryPolicy(attempts=attempts, backoff=0.01)}
    async with direct_gateway(secret, endpoint, **options) as gateway:
        gateway.customer_action(
            gateway.create_payment({"amount": 100, "currency": "XOF", "reference": "r"}).id, "approve"
        )
        await eventually(lambda: f"gave up after {attempts} attempts" in caplog.text)
        assert gateway.create_payment({"amount": 100, "currency": "XOF", "reference": "r2"}).status == "requires_action"
    assert endpoint.answers == [503] * attempts
    assert "tok_SECRET123" not in caplog.text
    assert caplog.text.count("http://merchant.test/hook?token=***") == attempts + 1
