"""paycore's provider conformance suite, run against the dummy provider and an in-process gateway.

The gateway's webhooks go to a :class:`~paycore.testing.DeliveryInbox` instead of
the flow: the suite takes the deliveries the gateway really signed and delivers
them itself (as they are, twice, out of order, or forged).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, MutableMapping, Sequence
from typing import Any

import httpx
import pytest

import paycore_dummy.plugin
from paycore.flow import PaymentFlow
from paycore.records import Payment, Refund
from paycore.status import Outcome
from paycore.testing import Delivery, DeliveryInbox, ProviderConformance
from paycore.testing.provider_suite import CODE
from paycore_dummy import DummyGateway, GatewayEvent, RetryPolicy, generate_secret, register_gateway, unregister_gateway

API_KEY = "sk_test_conformance"


async def _discard(message: MutableMapping[str, Any]) -> None:
    """An ASGI ``send`` that drops the response: the answer never reaches the provider."""


class FlakyGateway(DummyGateway):
    """A dummy gateway whose next API request can be refused or lose its answer.

    ``refuse_next()``: the connection is refused, the request never reaches the
    gateway (the provider reports ``ProviderNotSent``). ``drop_next_answer()``:
    the gateway does the work, then the connection resets before the answer
    (``ProviderOutcomeUnknown``).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._fault: str | None = None

    def refuse_next(self) -> None:
        """Refuse the next API request's connection."""
        self._fault = "refuse"

    def drop_next_answer(self) -> None:
        """Do the next API request's work, then lose its answer."""
        self._fault = "drop"

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Any],
        send: Callable[[MutableMapping[str, Any]], Any],
    ) -> None:
        fault = self._fault if scope["type"] == "http" else None
        if fault is not None:
            self._fault = None
        if fault == "refuse":
            raise httpx.ConnectError("connection refused")
        if fault == "drop":
            await super().__call__(scope, receive, _discard)
            raise httpx.ReadError("connection reset by peer")
        await super().__call__(scope, receive, send)


class TestDummyProviderConformance(ProviderConformance):
    """The dummy provider passes every conformance test.

    ``decline_next_refund`` and ``underpaid_deliveries`` are left out: the dummy gateway makes every refund of a
    captured payment ``succeeded`` at once (it has no declined refund: its refund webhook is ``refund.succeeded``
    only), and an approved ``capture=True`` payment is captured in full (``captured_amount`` is its ``amount``).
    """

    @pytest.fixture
    async def flow(self) -> AsyncIterator[PaymentFlow]:
        secret, name = generate_secret(), f"conformance-{uuid.uuid4().hex}"
        settings = {
            "type": "dummy",
            "gateway": name,
            "api_key": API_KEY,
            "webhook_secret": secret,
            "webhook_url": "http://merchant.test/{code}",
        }
        flow = PaymentFlow.from_config({"providers": {CODE: settings}}, plugins=[paycore_dummy.plugin])
        self.inbox = DeliveryInbox()
        self.gateway = FlakyGateway(
            api_key=API_KEY,
            webhook_secrets=secret,
            webhook_transport=httpx.ASGITransport(app=self.inbox),
            retry=RetryPolicy(attempts=3, backoff=0.02),
        )
        register_gateway(name, self.gateway)
        try:
            async with flow, self.gateway:
                yield flow
        finally:
            unregister_gateway(name)

    async def _sent(self, events: Sequence[GatewayEvent]) -> list[Delivery]:
        """The signed deliveries of ``events``, once the gateway has sent them all."""
        await self.inbox.wait(lambda: all(self.inbox.with_header("webhook-id", event.id) for event in events))
        return [self.inbox.with_header("webhook-id", event.id)[0] for event in events]

    async def deliveries(self, flow: PaymentFlow, payment: Payment, outcome: Outcome) -> Sequence[Delivery]:
        assert payment.external_id is not None
        already = len(self.gateway.events)
        if outcome is Outcome.SUCCEEDED and self.gateway.payments[payment.external_id].status == "authorized":
            self.gateway.capture(payment.external_id, None)  # captured from the gateway's dashboard
        else:
            self.gateway.customer_action(payment.external_id, "approve")
        return await self._sent(self.gateway.events[already:])

    async def refund_deliveries(self, flow: PaymentFlow, payment: Payment, refund: Refund) -> Sequence[Delivery]:
        events = [
            event
            for event in self.gateway.events
            if event.type.startswith("refund.") and event.data.get("refund", {}).get("reference") == refund.id
        ]
        return await self._sent(events)

    async def make_next_call_not_sent(self, flow: PaymentFlow) -> None:
        self.gateway.refuse_next()

    async def make_next_call_unknown(self, flow: PaymentFlow) -> None:
        self.gateway.drop_next_answer()
