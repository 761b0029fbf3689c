"""paycore's provider conformance suite, run against the Wave provider and the Wave simulator.

The simulator signs its webhooks as Wave does; the suite takes those deliveries
and delivers them itself (as they are, twice, forged). Wave reports refunds in
its answers only (it sends no refund webhook). Wave's timestamp travels inside
the ``Wave-Signature`` header rather than a header of its own, so the suite's
stale-timestamp case is covered by ``test_webhooks.py`` instead.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pytest

from paycore.flow import PaymentFlow
from paycore.records import Payment, Refund
from paycore.status import Outcome
from paycore.testing import Delivery, ProviderConformance
from paycore.testing.provider_suite import CODE, AmountEdit
from paycore_wave import WaveSimulator


class TestWaveProviderConformance(ProviderConformance):
    """The Wave provider passes every conformance test that applies to what it declares.

    ``decline_next_refund`` and ``underpaid_deliveries`` are left out: the simulator refunds every paid session
    at once (``checkout-refund-failed`` only for a session not paid), and a session completes for its own
    amount or fails (a wallet short of funds is ``payment_failed``, never a session paid short).
    """

    signature_headers = ("wave-signature",)
    timestamp_header = None

    @pytest.fixture
    async def flow(
        self,
        simulator: WaveSimulator,
        flow_factory: Callable[..., PaymentFlow],
        wave_signature: Callable[[str, int, bytes], str],
    ) -> AsyncIterator[PaymentFlow]:
        self.simulator = simulator
        self.wave_signature = wave_signature
        async with flow_factory(simulator, code=CODE) as flow:
            yield flow

    async def deliveries(self, flow: PaymentFlow, payment: Payment, outcome: Outcome) -> Sequence[Delivery]:
        assert outcome is Outcome.SUCCEEDED, "Wave captures at once: it never reports an authorization"
        assert payment.external_id is not None
        return [self.simulator.pay(payment.external_id)]

    async def refund_deliveries(self, flow: PaymentFlow, payment: Payment, refund: Refund) -> Sequence[Delivery]:
        return []

    async def make_next_call_not_sent(self, flow: PaymentFlow) -> None:
        self.simulator.refuse_next_request()

    async def make_next_call_unknown(self, flow: PaymentFlow) -> None:
        self.simulator.drop_next_answer()

    def sign(self, body: bytes, headers: Mapping[str, str], *, secret: str, timestamp: int) -> Delivery:
        return Delivery(body, {**headers, "wave-signature": self.wave_signature(secret, timestamp, body)})

    def timestamp_of(self, delivery: Delivery) -> str | None:
        """Wave writes the timestamp into its signature header: ``t=...,v1=...``."""
        for part in delivery.header("wave-signature").split(","):
            name, _, value = part.strip().partition("=")
            if name == "t":
                return value
        return None

    def edit_amounts(self, body: bytes, edit: AmountEdit) -> bytes:
        """Wave's amount is a string of whole francs under ``data.amount``."""
        event: dict[str, Any] = json.loads(body)
        data = event["data"]
        replaced = edit("payment", int(data["amount"]))
        if replaced is None:
            del data["amount"]
        else:
            data["amount"] = str(replaced)
        return json.dumps(event).encode()
