"""What the dummy provider reads from a signed delivery or an API answer, and what it refuses.

Every delivery here is signed with the right secret: the signature is not what
is being tested, the body and the headers are.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from paycore.asgi import create_app
from paycore.errors import InvalidSignature, MalformedWebhook, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus
from paycore_dummy import DummyGateway, WebhookSecret
from paycore_dummy.provider import EVENT_STATUSES
from paycore_dummy.records import GatewayPayment
from paycore_dummy.signing import signature_headers

pytestmark = pytest.mark.anyio

Setup = tuple[PaymentFlow, DummyGateway]


@pytest.fixture
async def waiting(in_process: Setup) -> Payment:
    """A 5 000 XOF payment sent to the gateway, awaiting the customer."""
    flow, _ = in_process
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="wave", order_id="T1", tenant="chez-awa"
    )
    return checkout.payment


@pytest.fixture
async def merchant(in_process: Setup) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client posting to paycore's webhook endpoint for the flow."""
    flow, _ = in_process
    transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
        yield client


def event(gateway: DummyGateway, payment: Payment, event_type: str, **data: Any) -> dict[str, Any]:
    """The event the gateway would send about ``payment``, with ``data`` changed."""
    body = gateway.payments[payment.external_id].to_json("")
    body.update({"next_action": None} | data)
    return {"id": "evt_t", "type": event_type, "timestamp": "2026-01-01T00:00:00+00:00", "data": body}


def succeeded(gateway: DummyGateway, payment: Payment, **data: Any) -> dict[str, Any]:
    """A ``payment.succeeded`` event for the full 5 000 XOF, with ``data`` changed."""
    full = {"status": "succeeded", "authorized_amount": 5000, "captured_amount": 5000}
    return event(gateway, payment, "payment.succeeded", **(full | data))


def signed(secret: str, body: bytes, **headers: str) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` signed with ``secret``, then ``headers`` laid over them."""
    return signature_headers(body, msg_id="evt_t", secrets=[WebhookSecret(secret)]) | headers


async def deliver(
    merchant: httpx.AsyncClient, secret: str, body: dict[str, Any] | bytes, **headers: str
) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await merchant.post("/chez-awa/wave", content=raw, headers=signed(secret, raw, **headers))


async def parse(flow: PaymentFlow, secret: str, body: dict[str, Any]) -> Any:
    """The dummy provider's reading of a signed ``body``."""
    raw = json.dumps(body).encode()
    provider = flow.provider("wave", tenant="chez-awa")
    return await provider.parse_webhook(raw, signed(secret, raw))


async def assert_unchanged(flow: PaymentFlow, before: Payment) -> None:
    after = await flow.get_payment(before.id)
    assert (after.status, after.version, after.captured_amount) == (PaymentStatus.PROCESSING, before.version, None)


# -- the signature headers ------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    ["1" + "0" * 309, "9" * 5000, "-1", "-1700000000", "1700000000.5", "1e9", "abc", "", " ", "+1700000000"],
    ids=lambda value: repr(value)[:20],
)
async def test_a_timestamp_that_is_not_whole_unix_seconds_is_answered_401(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, timestamp: str
) -> None:
    flow, gateway = in_process
    response = await deliver(merchant, secret, succeeded(gateway, waiting), **{"webhook-timestamp": timestamp})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    await assert_unchanged(flow, waiting)


@pytest.mark.parametrize(
    "timestamp", ["\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660", "17000000\u00b2"]
)
async def test_a_timestamp_of_digits_other_than_ascii_is_an_invalid_signature(
    in_process: Setup, secret: str, timestamp: str
) -> None:
    flow, _ = in_process
    provider = flow.provider("wave", tenant="chez-awa")
    with pytest.raises(InvalidSignature, match="whole Unix seconds"):
        await provider.verify_webhook(b"{}", signed(secret, b"{}") | {"webhook-timestamp": timestamp})


async def test_a_webhook_id_that_is_not_text_is_an_invalid_signature(in_process: Setup, secret: str) -> None:
    flow, _ = in_process
    provider = flow.provider("wave", tenant="chez-awa")
    headers = signed(secret, b"{}") | {"webhook-id": "evt_\ud800"}
    with pytest.raises(InvalidSignature, match="not text"):
        await provider.verify_webhook(b"{}", headers)


# -- the body -------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 1000, 50_000])
async def test_a_signed_body_nested_deeply_is_answered_400(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, depth: int
) -> None:
    flow, _ = in_process
    response = await deliver(merchant, secret, b'{"a":' * depth + b"1" + b"}" * depth)
    assert response.status_code == 400
    assert "nests deeper" in response.json()["detail"]
    await assert_unchanged(flow, waiting)


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("payment.failed", "succeeded"),
        ("payment.succeeded", "failed"),
        ("payment.authorized", "succeeded"),
        ("payment.pending", "succeeded"),
        ("refund.succeeded", "requires_action"),
        ("payment.succeeded", None),
    ],
)
async def test_a_body_whose_status_contradicts_its_type_is_answered_400(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, event_type: str, status: Any
) -> None:
    flow, gateway = in_process
    body = event(gateway, waiting, event_type, status=status, authorized_amount=5000, captured_amount=5000)
    response = await deliver(merchant, secret, body)
    assert response.status_code == 400
    assert "it must say" in response.json()["detail"]
    await assert_unchanged(flow, waiting)


@pytest.mark.parametrize("event_type", ["payment.refunded", "payment.succeeded.v2", ""])
async def test_an_unknown_event_type_is_answered_400(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, event_type: str
) -> None:
    flow, gateway = in_process
    body = succeeded(gateway, waiting) | {"type": event_type}
    assert (await deliver(merchant, secret, body)).status_code == 400
    await assert_unchanged(flow, waiting)


async def test_every_event_type_stands_for_the_status_the_gateway_gives_it(in_process: Setup, secret: str) -> None:
    flow, _ = in_process
    outcomes = {}
    for event_type, status in EVENT_STATUSES.items():
        data = {"id": "gp_1", "reference": "pay_1", "currency": "XOF", "status": status, "refunds": []}
        if event_type.startswith("refund."):
            data["refund"] = {"id": "gr_1", "reference": None, "amount": 500, "status": "succeeded"}
        [update] = await parse(flow, secret, {"id": "evt_1", "type": event_type, "data": data})
        outcomes[event_type] = update.outcome
    assert outcomes == {
        "payment.pending": Outcome.PENDING,
        "payment.authorized": Outcome.AUTHORIZED,
        "payment.succeeded": Outcome.SUCCEEDED,
        "payment.failed": Outcome.FAILED,
        "payment.canceled": Outcome.CANCELED,
        "payment.expired": Outcome.EXPIRED,
        "refund.succeeded": Outcome.SUCCEEDED,
    }


async def test_a_refund_event_without_its_refund_is_answered_400(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str
) -> None:
    flow, gateway = in_process
    body = event(gateway, waiting, "refund.succeeded", status="succeeded", refund={"status": "failed"})
    assert (await deliver(merchant, secret, body)).status_code == 400
    await assert_unchanged(flow, waiting)


async def test_a_refund_naming_neither_its_id_nor_its_reference_is_malformed(
    in_process: Setup, waiting: Payment, secret: str
) -> None:
    # It could not be told from another refund of the same amount: each delivery would add one.
    flow, gateway = in_process
    refund = {"status": "succeeded", "amount": 1000}
    body = event(gateway, waiting, "refund.succeeded", status="succeeded", refund=refund, refunds=[refund])
    with pytest.raises(MalformedWebhook, match="neither its 'id' nor its 'reference'"):
        await parse(flow, secret, body)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            {"refunds": [{"id": "gr_1", "reference": None, "amount": -3000, "status": "succeeded"}]}, id="refund--3000"
        ),
        pytest.param(
            {"refunds": [{"id": "gr_1", "reference": None, "amount": -1, "status": "succeeded"}]}, id="refund--1"
        ),
        pytest.param({"refunds": [{"id": {"x": 1}, "amount": 500, "status": "succeeded"}]}, id="refund-id-object"),
        pytest.param({"refunds": [{"id": 17, "amount": 500, "status": "succeeded"}]}, id="refund-id-int"),
        pytest.param(
            {"refunds": [{"id": "gr_1", "reference": ["r"], "amount": 500, "status": "succeeded"}]},
            id="refund-ref-list",
        ),
        pytest.param({"refunds": [{"id": "gr_1", "amount": 500, "status": ["succeeded"]}]}, id="refund-status-list"),
        pytest.param({"refunds": [{"amount": 500, "status": "succeeded"}]}, id="refund-without-id-or-reference"),
        pytest.param(
            {"refunds": [{"id": None, "reference": None, "amount": 500, "status": "succeeded"}]}, id="refund-null-ids"
        ),
        pytest.param({"refunds": {"gr_1": 500}}, id="refunds-object"),
        pytest.param({"id": "\ud800"}, id="id-lone-surrogate"),
        pytest.param({"id": "gp_\x00"}, id="id-nul"),
        pytest.param({"id": 12}, id="id-int"),
        pytest.param({"id": "g" * 256}, id="id-256-chars"),
        pytest.param({"reference": 12}, id="reference-int"),
        pytest.param({"currency": "ZZZ"}, id="currency-unknown"),
        pytest.param({"currency": ["XOF"]}, id="currency-list"),
        pytest.param({"captured_amount": 10**19}, id="captured-beyond-bigint"),
        pytest.param({"captured_amount": 10**40}, id="captured-40-digits"),
        pytest.param({"captured_amount": -5000}, id="captured-negative"),
        pytest.param({"captured_amount": "5000"}, id="captured-string"),
        pytest.param({"captured_amount": 5000.0}, id="captured-float"),
        pytest.param({"captured_amount": False}, id="captured-false"),
        pytest.param({"authorized_amount": True}, id="authorized-true"),
        pytest.param({"failure_message": {"text": "x"}}, id="message-object"),
        pytest.param({"failure_message": 5}, id="message-int"),
        pytest.param({"failure_message": "x" * 5000}, id="message-too-long"),
    ],
)
async def test_a_value_paycore_cannot_accept_is_answered_400_and_nothing_is_stored(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, data: dict[str, Any]
) -> None:
    flow, gateway = in_process
    events_before = await flow.list_events(waiting.id)
    response = await deliver(merchant, secret, succeeded(gateway, waiting, **data))
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_webhook"
    await assert_unchanged(flow, waiting)
    assert await flow.list_events(waiting.id) == events_before


@pytest.mark.parametrize("captured", [0, None, "missing"])
async def test_a_success_without_a_captured_amount_is_reported_without_one(
    in_process: Setup, waiting: Payment, secret: str, captured: Any
) -> None:
    flow, gateway = in_process
    body = succeeded(gateway, waiting, captured_amount=captured)
    if captured == "missing":
        del body["data"]["captured_amount"]
    [update] = await parse(flow, secret, body)
    assert update.outcome is Outcome.SUCCEEDED
    assert update.captured is None


async def test_a_zero_authorized_amount_is_reported_as_none_not_as_the_payments_amount(
    in_process: Setup, waiting: Payment, secret: str
) -> None:
    flow, gateway = in_process
    body = event(gateway, waiting, "payment.authorized", status="authorized", authorized_amount=0)
    [update] = await parse(flow, secret, body)
    assert (update.outcome, update.authorized, update.captured) == (Outcome.AUTHORIZED, None, None)


async def test_the_amounts_a_success_reports_are_the_ones_it_carries(
    in_process: Setup, waiting: Payment, secret: str
) -> None:
    flow, gateway = in_process
    [update] = await parse(flow, secret, succeeded(gateway, waiting, captured_amount=3000))
    assert (update.authorized, update.captured) == (Money.of("5000", "XOF"), Money.of("3000", "XOF"))


async def test_a_webhook_never_reports_a_next_action(in_process: Setup, waiting: Payment, secret: str) -> None:
    flow, gateway = in_process
    stale = event(
        gateway,
        waiting,
        "payment.pending",
        status="requires_action",
        next_action={"type": "redirect", "url": "https://elsewhere.example/pay"},
    )
    [update] = await parse(flow, secret, stale)
    assert update.outcome is Outcome.PENDING
    assert update.next_action is None


# -- API answers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"captured_amount": -1}, id="negative-amount"),
        pytest.param({"id": {"x": 1}}, id="id-object"),
        pytest.param({"next_action": {"type": "redirect", "url": 5}}, id="url-int"),
        pytest.param({"next_action": {"type": "redirect", "url": "javascript:alert(1)"}}, id="url-javascript"),
        pytest.param(
            {"next_action": {"type": "approve_on_phone", "url": "https://p.example", "message": {}}},
            id="message-object",
        ),
        pytest.param({"next_action": "redirect"}, id="next-action-string"),
        pytest.param({"status": "paid"}, id="status-unknown"),
    ],
)
async def test_an_api_answer_paycore_cannot_accept_leaves_the_outcome_unknown(
    in_process: Setup, waiting: Payment, answer: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    flow, _ = in_process
    original = GatewayPayment.to_json

    def corrupted(self: GatewayPayment, base_url: str) -> dict[str, Any]:
        return original(self, base_url) | answer

    monkeypatch.setattr(GatewayPayment, "to_json", corrupted)
    provider = flow.provider("wave", tenant="chez-awa")
    with pytest.raises(ProviderOutcomeUnknown, match="unreadable"):
        await provider.check_status(waiting)


async def test_a_provider_reading_a_webhook_refuses_a_body_that_is_not_bytes(in_process: Setup, secret: str) -> None:
    flow, _ = in_process
    provider = flow.provider("wave", tenant="chez-awa")
    with pytest.raises(MalformedWebhook, match="must be bytes"):
        await provider.parse_webhook("{}", {})  # type: ignore[arg-type]
