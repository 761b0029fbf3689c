"""``FakeProvider`` passes the provider conformance suite every provider package runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money
from paycore.flow import PaymentFlow
from paycore.records import Payment, Refund
from paycore.status import Outcome
from paycore.testing import Delivery, FakeProvider, ProviderConformance, interrupt_next_call
from paycore.testing.fake import SIGNATURE_HEADER, sign
from paycore.testing.provider_suite import CODE, AmountEdit


class FakeConformance(ProviderConformance):
    """The suite's hooks for ``FakeProvider`` (``x-fake-signature``: an HMAC of the body, no timestamp)."""

    signature_headers = (SIGNATURE_HEADER,)
    timestamp_header = None

    @pytest.fixture
    async def flow(self) -> AsyncIterator[PaymentFlow]:
        config = {"providers": {CODE: {"type": self.provider_type, "webhook_secret": "whsec-test"}}}
        plugins = [paycore.testing.fake, paycore_memory.plugin, *self.extra_plugins]
        async with PaymentFlow.from_config(config, plugins=plugins, entry_points=False, environ={}) as flow:
            yield flow

    provider_type = "fake"
    extra_plugins: tuple[object, ...] = ()

    def fake(self, flow: PaymentFlow) -> FakeProvider:
        provider = flow.provider(CODE)
        assert isinstance(provider, FakeProvider)
        return provider

    async def start_payment(
        self,
        flow: PaymentFlow,
        amount: Money,
        order_id: str,
        *,
        capture: bool = True,
        idempotency_key: str | None = None,
    ) -> Payment:
        self.fake(flow).script("initiate", "pending")
        return await super().start_payment(flow, amount, order_id, capture=capture, idempotency_key=idempotency_key)

    async def authorize(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        checkout = await flow.create_payment(amount=amount, provider=CODE, order_id=order_id, capture=False)
        return checkout.payment

    async def deliveries(self, flow: PaymentFlow, payment: Payment, outcome: Outcome) -> Sequence[Delivery]:
        entry = self.fake(flow).settle(payment.id, outcome)
        return [Delivery(*self.fake(flow).webhook(payment.id, captured=entry.captured))]

    async def refund_deliveries(self, flow: PaymentFlow, payment: Payment, refund: Refund) -> Sequence[Delivery]:
        provider = self.fake(flow)
        entry = provider.ledger[payment.id]
        return [Delivery(*provider.webhook(payment.id, captured=entry.captured, refunds=[entry.refunds[refund.id]]))]

    async def decline_next_refund(self, flow: PaymentFlow) -> None:
        self.fake(flow).script("refund", "decline")

    async def underpaid_deliveries(self, flow: PaymentFlow, payment: Payment, paid: Money) -> Sequence[Delivery]:
        self.fake(flow).settle(payment.id, Outcome.SUCCEEDED, captured=paid)
        return [Delivery(*self.fake(flow).webhook(payment.id, captured=paid))]

    async def make_next_call_not_sent(self, flow: PaymentFlow) -> None:
        interrupt_next_call(self.fake(flow), sent=False)

    async def make_next_call_unknown(self, flow: PaymentFlow) -> None:
        interrupt_next_call(self.fake(flow), sent=True)

    def sign(self, body: bytes, headers: Mapping[str, str], *, secret: str, timestamp: int) -> Delivery:
        return Delivery(body, {**headers, SIGNATURE_HEADER: sign(body, secret)})

    def edit_amounts(self, body: bytes, edit: AmountEdit) -> bytes:
        data = json.loads(body)
        for key in ("captured", "authorized"):
            if data.get(key):
                minor = edit("payment", data[key][0])
                data[key] = None if minor is None else [minor, data[key][1]]
        for refund in data.get("refunds", ()):
            minor = edit("refund", refund.pop("minor_units"))
            if minor is not None:
                refund["minor_units"] = minor
        return json.dumps(data).encode()


class TestFakeProvider(FakeConformance):
    """``FakeProvider`` as shipped passes every conformance test."""
