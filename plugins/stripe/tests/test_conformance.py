"""paycore's provider conformance suite, run against the Stripe provider and the in-process simulator.

The simulator signs its events as Stripe does (``Stripe-Signature``, with the
SDK's helper); the suite delivers them itself, genuine, repeated, reordered and
forged. Both modes run: PaymentIntents confirmed by Stripe.js, and Checkout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

import paycore_stripe.plugin
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment, Refund
from paycore.status import Outcome
from paycore.testing import Delivery, ProviderConformance
from paycore.testing.provider_suite import CODE, AmountEdit
from paycore_stripe import StripeSimulator

API_KEY = "sk_test_conformance"
SECRET = "whsec_conformanceSigningSecret"


def stripe_signature(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Stripe-Signature`` header, built as Stripe documents it (HMAC-SHA256 of ``t.body``)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _edit(value: Any, edit: AmountEdit, kind: str) -> Any:
    if isinstance(value, list):
        return [_edit(item, edit, kind) for item in value]
    if not isinstance(value, dict):
        return value
    kind = "refund" if value.get("object") == "refund" else kind
    edited: dict[str, Any] = {}
    for key, item in value.items():
        item_kind = "refund" if "refund" in key else kind
        if key.startswith("amount") and type(item) is int:
            replaced = edit(item_kind, item)  # type: ignore[arg-type]
            if replaced is not None:
                edited[key] = replaced
        else:
            edited[key] = _edit(item, edit, item_kind)
    return edited


class StripeConformance(ProviderConformance):
    """What both modes share: the simulator, Stripe's signature scheme and amount fields.

    A declined refund is one Stripe answers ``pending`` and then fails (``refund.failed``, the card expired or
    canceled), as card refunds do. ``underpaid_deliveries`` is left out: the suite's payments are captured
    automatically, and Stripe then captures the whole amount or nothing (a PaymentIntent succeeds with
    ``amount_received`` equal to its ``amount``; the simulator has no partial authorization either).
    """

    mode = "payment_intent"
    signature_headers = ("stripe-signature",)
    timestamp_header = None  # Stripe's timestamp is inside Stripe-Signature: see timestamp_of
    _declining = False
    _refund_status_before = "succeeded"
    """Set by :meth:`decline_next_refund`: the next refund, made pending, fails once its deliveries are asked for."""

    @pytest.fixture
    def amount(self) -> Money:
        return Money.of("5000", "XOF")

    @pytest.fixture
    async def flow(self) -> AsyncIterator[PaymentFlow]:
        self.simulator = StripeSimulator(api_key=API_KEY, webhook_secret=SECRET)
        settings = {
            "type": "stripe",
            "api_key": API_KEY,
            "webhook_secret": SECRET,
            "mode": self.mode,
            "success_url": "https://shop.test/paid",
            "simulator": self.simulator,
            "max_network_retries": 0,
        }
        flow = PaymentFlow.from_config({"providers": {CODE: settings}}, plugins=[paycore_stripe.plugin])
        async with flow:
            yield flow

    def _pay_target(self, payment: Payment) -> str:
        assert payment.external_id is not None
        return payment.external_id

    async def deliveries(self, flow: PaymentFlow, payment: Payment, outcome: Outcome) -> Sequence[Delivery]:
        stored = await flow.get_payment(payment.id)
        intent_id = next((r for r in (stored.external_id, *stored.references) if r and r.startswith("pi_")), None)
        session = self.simulator.sessions.get(stored.external_id or "")
        intent_id = intent_id or (session or {}).get("payment_intent")
        if intent_id and self.simulator.intents[intent_id]["status"] == "requires_capture":
            events = await self.simulator.capture_in_dashboard(intent_id)
        else:
            events = await self.simulator.pay(self._pay_target(stored))
        return [Delivery(e.body, e.headers) for e in events]

    async def refund_deliveries(self, flow: PaymentFlow, payment: Payment, refund: Refund) -> Sequence[Delivery]:
        stripe_refund = next(
            r for r in self.simulator.refunds.values() if r["metadata"].get("paycore_refund_id") == refund.id
        )
        if self._declining and stripe_refund["status"] == "pending":  # the bank refuses it: Stripe fails it
            self._declining, self.simulator.refund_status = False, self._refund_status_before
            await self.simulator.settle_refund(stripe_refund["id"], "failed")
        return [Delivery(e.body, e.headers) for e in self.simulator.events_about(stripe_refund["id"])]

    async def decline_next_refund(self, flow: PaymentFlow) -> None:
        """Stripe accepts the next refund ``pending``; its deliveries then say it failed (:meth:`refund_deliveries`)."""
        self._refund_status_before = self.simulator.refund_status
        self.simulator.refund_status = "pending"
        self._declining = True

    async def make_next_call_not_sent(self, flow: PaymentFlow) -> None:
        self.simulator.refuse_next()

    async def make_next_call_unknown(self, flow: PaymentFlow) -> None:
        self.simulator.drop_next_answer()

    def sign(self, body: bytes, headers: Mapping[str, str], *, secret: str, timestamp: int) -> Delivery:
        return Delivery(body, {**headers, "stripe-signature": stripe_signature(body, secret, timestamp)})

    def timestamp_of(self, delivery: Delivery) -> str | None:
        """Stripe writes the timestamp into its signature header: ``t=...,v1=...``."""
        for part in (delivery.header("stripe-signature") or "").split(","):
            name, _, value = part.strip().partition("=")
            if name == "t":
                return value
        return None

    def edit_amounts(self, body: bytes, edit: AmountEdit) -> bytes:
        return json.dumps(_edit(json.loads(body), edit, "payment"), separators=(",", ":")).encode()


class TestPaymentIntentMode(StripeConformance):
    """The provider in ``payment_intent`` mode (Stripe.js confirms the intent)."""

    mode = "payment_intent"


class TestCheckoutMode(StripeConformance):
    """The provider in ``checkout`` mode (the customer pays on Stripe's hosted page)."""

    mode = "checkout"
