"""``FakeProvider`` passes the provider conformance suite every provider package runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import Outcome
from paycore.testing import FakeProvider, ProviderConformance
from paycore.testing.provider_suite import CODE


class TestFakeProvider(ProviderConformance):
    @pytest.fixture
    async def flow(self) -> AsyncIterator[PaymentFlow]:
        config = {"providers": {CODE: {"type": "fake", "webhook_secret": "whsec-test"}}}
        plugins = [paycore.testing.fake, paycore_memory.plugin]
        async with PaymentFlow.from_config(config, plugins=plugins, entry_points=False, environ={}) as flow:
            yield flow

    async def pay(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        provider = flow.provider(CODE)
        assert isinstance(provider, FakeProvider)
        provider.script("initiate", "pending")
        checkout = await flow.create_payment(amount=amount, provider=CODE, order_id=order_id)
        provider.settle(checkout.payment.id, Outcome.SUCCEEDED)
        body, headers = provider.webhook(checkout.payment.id)
        (payment,) = await flow.handle_webhook(CODE, body, headers)
        return payment
