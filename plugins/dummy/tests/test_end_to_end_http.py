"""The provider against the gateway over loopback HTTP, webhooks received by ``paycore.asgi``.

Both sides run on real ASGI servers in the test's event loop: uvicorn under
asyncio, hypercorn under trio.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_dummy import DummyGateway, RetryPolicy, WebhookSecret
from paycore_dummy.signing import signature_headers

pytestmark = pytest.mark.anyio

S = PaymentStatus


async def pay(flow: PaymentFlow, amount: str = "5000", **options: Any) -> Any:
    return await flow.create_payment(
        amount=Money.of(amount, "XOF"), provider="wave", order_id="T7-0001", tenant="chez-awa", **options
    )


async def test_a_customer_approving_on_the_checkout_page_is_confirmed_by_webhook_over_http(
    live: Callable[..., Any], wait_for: Callable[..., Any], eventually: Callable[..., Any]
) -> None:
    async with live() as (flow, gateway, _):
        checkout = await pay(flow)
        assert checkout.action.url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as browser:
            page = await browser.get(checkout.action.url)
            assert "5000 XOF" in page.text
            await browser.post(checkout.action.url, data={"action": "approve"})
        payment = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
        assert payment.captured_amount == Money.of("5000", "XOF")
        await eventually(lambda: gateway.deliveries)
        assert [a.status_code for a in gateway.deliveries] == [200]


async def test_authorize_capture_and_refund_over_http(live: Callable[..., Any], wait_for: Callable[..., Any]) -> None:
    async with live() as (flow, gateway, _):
        checkout = await pay(flow, capture=False, metadata={"dummy_customer": "approve"})
        await wait_for(flow, checkout.payment.id, S.AUTHORIZED)
        await flow.capture(checkout.payment.id, amount=Money.of("4000", "XOF"))
        refund = await flow.refund(checkout.payment.id, amount=Money.of("1500", "XOF"))
        payment = await flow.get_payment(checkout.payment.id)
        assert (payment.status, payment.captured_amount, refund.status.value) == (
            S.PARTIALLY_REFUNDED,
            Money.of("4000", "XOF"),
            "succeeded",
        )
        gateway_payment = gateway.payments[payment.external_id]
        assert (gateway_payment.captured_amount, gateway_payment.refunded_amount) == (4000, 1500)


async def test_a_read_timeout_leaves_the_outcome_unknown_and_polling_over_http_settles_it(
    live: Callable[..., Any],
) -> None:
    async with live(timeout_delay=1.5) as (flow, _, _):
        checkout = await pay(flow, "5003")
        assert checkout.payment.pending_call is not None
        assert checkout.payment.pending_call.unknown
        payment = await flow.refresh(checkout.payment.id)
        assert payment.status is S.SUCCEEDED


async def test_a_forged_webhook_is_refused_by_the_merchant_server(live: Callable[..., Any]) -> None:
    from paycore_dummy import generate_secret

    async with live() as (flow, _, merchant_url):
        checkout = await pay(flow)
        body = b'{"type":"payment.succeeded","data":{}}'
        headers = signature_headers(body, msg_id="evt_x", secrets=[WebhookSecret(generate_secret())])
        async with httpx.AsyncClient() as attacker:
            response = await attacker.post(f"{merchant_url}/hooks/chez-awa/wave", content=body, headers=headers)
        assert response.status_code == 401
        assert (await flow.get_payment(checkout.payment.id)).status is S.PROCESSING


async def test_the_gateway_retries_until_the_merchant_server_is_back(
    server: Callable[..., Any],
    make_gateway: Callable[..., DummyGateway],
    flow_factory: Callable[..., PaymentFlow],
    secret: str,
    unused_port: int,
    eventually: Callable[..., Any],
    wait_for: Callable[..., Any],
) -> None:
    gateway = make_gateway(retry=RetryPolicy(attempts=8, backoff=0.1, max_backoff=0.4))
    async with server(gateway) as gateway_url:
        flow = flow_factory(
            base_url=gateway_url,
            webhook_secret=secret,
            webhook_url=f"http://127.0.0.1:{unused_port}/{{tenant}}/{{code}}",
        )
        async with flow:
            checkout = await pay(flow, metadata={"dummy_customer": "approve"})
            await eventually(lambda: len(gateway.deliveries) >= 2)
            assert all(a.error and "ConnectError" in a.error for a in gateway.deliveries)
            async with server(create_app(flow, manage_flow=False), port=unused_port):
                await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    assert gateway.deliveries[-1].status_code == 200
    assert len({a.event_id for a in gateway.deliveries}) == 1
