"""Forged, replayed or broken webhooks are refused with a clear error and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

import paycore_dummy.plugin
from paycore.asgi import create_app
from paycore.errors import ConfigurationError, InvalidSignature, MalformedWebhook
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore_dummy import DummyGateway, WebhookSecret, generate_secret
from paycore_dummy.signing import signature_headers

pytestmark = pytest.mark.anyio

Setup = tuple[PaymentFlow, DummyGateway]


@pytest.fixture
async def waiting(in_process: Setup) -> Payment:
    """A payment sent to the gateway, awaiting the customer."""
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


def success_event(gateway: DummyGateway, payment: Payment) -> bytes:
    """The body the gateway would send when ``payment`` succeeded."""
    data = gateway.payments[payment.external_id].to_json("")
    data.update(status="succeeded", authorized_amount=5000, captured_amount=5000, next_action=None)
    return json.dumps({"id": "evt_forged", "type": "payment.succeeded", "data": data}).encode()


async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/chez-awa/wave", content=body, headers=headers)


async def assert_unchanged(flow: PaymentFlow, before: Payment) -> None:
    after = await flow.get_payment(before.id)
    assert (after.status, after.version) == (PaymentStatus.PROCESSING, before.version)


async def test_a_correctly_signed_event_is_accepted(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str
) -> None:
    flow, gateway = in_process
    body = success_event(gateway, waiting)
    response = await post(merchant, body, signature_headers(body, msg_id="evt_1", secrets=[WebhookSecret(secret)]))
    assert response.status_code == 200
    assert (await flow.get_payment(waiting.id)).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("msg_id", ["evt_\u00e9", "evt_\u20ac"])
async def test_an_event_with_a_utf8_id_signed_by_the_reference_library_is_accepted_under_that_id(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, msg_id: str
) -> None:
    flow, gateway = in_process
    body = success_event(gateway, waiting)
    now = int(time.time())
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(now, UTC), body.decode())
    headers = [
        (b"webhook-id", msg_id.encode("utf-8")),
        (b"webhook-timestamp", str(now).encode()),
        (b"webhook-signature", signature.encode()),
    ]
    response = await merchant.post("/chez-awa/wave", content=body, headers=headers)
    assert response.status_code == 200
    assert (await flow.get_payment(waiting.id)).status is PaymentStatus.SUCCEEDED
    assert msg_id in {event.provider_event_id for event in await flow.list_events(waiting.id)}


async def test_a_tampered_body_is_refused_with_401(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str
) -> None:
    flow, gateway = in_process
    body = success_event(gateway, waiting)
    headers = signature_headers(body.replace(b"5000", b"50"), msg_id="evt_1", secrets=[WebhookSecret(secret)])
    response = await post(merchant, body, headers)
    assert response.status_code == 401
    assert "no signature matches" in response.json()["detail"]
    await assert_unchanged(flow, waiting)


async def test_an_event_signed_with_another_secret_is_refused(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient
) -> None:
    flow, gateway = in_process
    body = success_event(gateway, waiting)
    headers = signature_headers(body, msg_id="evt_1", secrets=[WebhookSecret(generate_secret())])
    response = await post(merchant, body, headers)
    assert response.status_code == 401
    await assert_unchanged(flow, waiting)


async def test_a_replayed_event_outside_the_tolerance_is_refused(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str
) -> None:
    flow, gateway = in_process
    body = success_event(gateway, waiting)
    stale = int(time.time()) - 3600
    headers = signature_headers(body, msg_id="evt_1", secrets=[WebhookSecret(secret)], timestamp=stale)
    response = await post(merchant, body, headers)
    assert response.status_code == 401
    assert "outside the tolerance" in response.json()["detail"]
    await assert_unchanged(flow, waiting)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_an_event_missing_a_signature_header_is_refused(
    in_process: Setup, waiting: Payment, merchant: httpx.AsyncClient, secret: str, missing: str
) -> None:
    flow, gateway = in_process
    body = success_event(gateway, waiting)
    headers = signature_headers(body, msg_id="evt_1", secrets=[WebhookSecret(secret)])
    del headers[missing]
    response = await post(merchant, body, headers)
    assert response.status_code == 401
    assert missing in response.json()["detail"]
    await assert_unchanged(flow, waiting)


async def test_the_signature_is_checked_before_the_body_is_read(in_process: Setup, waiting: Payment) -> None:
    flow, _ = in_process
    with pytest.raises(InvalidSignature):
        await flow.handle_webhook("wave", b"not json at all", {}, tenant="chez-awa")
    await assert_unchanged(flow, waiting)


async def test_a_signed_body_that_is_not_an_event_is_refused_as_malformed(
    in_process: Setup, waiting: Payment, secret: str
) -> None:
    flow, _ = in_process
    body = b'{"hello": "world"}'
    headers = signature_headers(body, msg_id="evt_1", secrets=[WebhookSecret(secret)])
    with pytest.raises(MalformedWebhook, match="'type' and 'data'"):
        await flow.handle_webhook("wave", body, headers, tenant="chez-awa")
    await assert_unchanged(flow, waiting)


async def test_a_provider_holding_old_and_new_secrets_accepts_both_during_rotation(
    flow_factory: Callable[..., PaymentFlow], make_gateway: Callable[..., DummyGateway], secret: str
) -> None:
    new_secret = generate_secret()
    flow = flow_factory(base_url="http://unused.invalid", webhook_secret=f"{secret} {new_secret}")
    provider = flow.provider("wave", tenant="chez-awa")
    for signing in (secret, new_secret):
        headers = signature_headers(b"{}", msg_id="evt_1", secrets=[WebhookSecret(signing)])
        await provider.verify_webhook(b"{}", headers)
    headers = signature_headers(b"{}", msg_id="evt_1", secrets=[WebhookSecret(generate_secret())])
    with pytest.raises(InvalidSignature):
        await provider.verify_webhook(b"{}", headers)
    await flow.aclose()


def test_the_providers_secrets_never_show_in_reprs(flow_factory: Callable[..., PaymentFlow], secret: str) -> None:
    rotated_in = generate_secret()
    flow = flow_factory(base_url="http://unused.invalid", webhook_secret=f"{secret} {rotated_in}")
    provider = flow.provider("wave", tenant="chez-awa")
    shown = repr(provider) + repr(provider.settings) + repr(flow) + repr(vars(provider))
    assert secret[6:] not in shown
    assert rotated_in[6:] not in shown
    assert "sk_test_dummy" not in shown


@pytest.mark.parametrize("setting", ["webhook_tolerance", "timeout"])
@pytest.mark.parametrize("value", ["nan", float("inf"), -300, 0, True, "soon"])
def test_a_setting_of_seconds_that_is_not_a_usable_number_is_a_configuration_error(setting: str, value: object) -> None:
    # NaN would turn the replay window off: every old delivery would pass the timestamp check.
    with pytest.raises(ConfigurationError, match=f"'{setting}' must be a (positive )?number of seconds"):
        PaymentFlow.from_config(
            {
                "providers": {
                    "wave": {
                        "type": "dummy",
                        "api_key": "sk_test_chez_awa",
                        "base_url": "http://127.0.0.1:9",
                        "webhook_secret": generate_secret(),
                        setting: value,
                    }
                }
            },
            plugins=[paycore_dummy.plugin],
        )


def test_an_api_key_with_a_trailing_newline_is_refused_at_start_up_unshown() -> None:
    settings = {
        "type": "dummy",
        "api_key": "sk_test_chez_awa\n",
        "base_url": "http://127.0.0.1:9",
        "webhook_secret": generate_secret(),
    }
    with pytest.raises(ConfigurationError, match="secret 'api_key' must be") as refused:
        PaymentFlow.from_config({"providers": {"pay": settings}}, plugins=[paycore_dummy.plugin], environ={})
    assert "chez_awa" not in str(refused.value)
