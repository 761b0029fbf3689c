"""paycore's provider conformance suite, run against the dummy provider and an in-process gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

import paycore_dummy.plugin
from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore.testing import ProviderConformance
from paycore.testing.provider_suite import CODE
from paycore_dummy import DummyGateway, RetryPolicy, generate_secret, register_gateway, unregister_gateway


class TestDummyProviderConformance(ProviderConformance):
    """The dummy provider passes every conformance test."""

    @pytest.fixture
    async def flow(self) -> AsyncIterator[PaymentFlow]:
        secret, name = generate_secret(), f"conformance-{uuid.uuid4().hex}"
        settings = {
            "type": "dummy",
            "gateway": name,
            "api_key": "sk_test_conformance",
            "webhook_secret": secret,
            "webhook_url": "http://merchant.test/{code}",
        }
        flow = PaymentFlow.from_config({"providers": {CODE: settings}}, plugins=[paycore_dummy.plugin])
        gateway = DummyGateway(
            api_key="sk_test_conformance",
            webhook_secrets=secret,
            webhook_transport=httpx.ASGITransport(app=create_app(flow, manage_flow=False)),
            retry=RetryPolicy(attempts=3, backoff=0.02),
        )
        register_gateway(name, gateway)
        try:
            async with flow, gateway:
                yield flow
        finally:
            unregister_gateway(name)

    async def pay(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        checkout = await flow.create_payment(
            amount=amount, provider=CODE, order_id=order_id, metadata={"dummy_customer": "approve"}
        )
        with anyio.fail_after(5):
            while True:
                payment = await flow.get_payment(checkout.payment.id)
                if payment.status is not PaymentStatus.PROCESSING:
                    return payment
                await anyio.sleep(0.01)
