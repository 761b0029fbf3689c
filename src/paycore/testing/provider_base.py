"""The base of :class:`~paycore.testing.provider_suite.ProviderConformance`: its hooks and helpers.

A subclass of the suite implements or overrides the hooks here (the ``flow``
fixture, ``deliveries``, ``sign``, ``edit_amounts``...); the helpers are what the
suite's tests share (delivering, snapshots, assertions).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import pytest

from paycore.errors import (
    InvalidSignature,
)
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.providers import Capabilities
from paycore.records import Payment, PaymentEvent, Refund
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.webhooks import (
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    Delivery,
    generate_standard_webhook_secret,
    sign_standard_webhook,
)

__all__ = ["CODE", "AmountEdit", "AmountKind", "ProviderSuiteBase"]

CODE = "conformance"
"""The provider code the ``flow`` fixture enables the provider under."""


AmountKind = Literal["payment", "refund"]
"""Whose amount a report states: the payment's (authorized, captured) or a refund's."""
AmountEdit = Callable[[AmountKind, int], "int | None"]
"""Maps an amount in minor units to its replacement, or to ``None`` to leave it out."""

_PAID = frozenset(
    {PaymentStatus.AUTHORIZED, PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
_STALE_SECONDS = 3600
T = TypeVar("T")
Snapshot = tuple[Payment, list[PaymentEvent]]


def _edit_json(value: Any, edit: AmountEdit, kind: AmountKind) -> Any:
    if isinstance(value, list):
        return [_edit_json(item, edit, kind) for item in value]
    if not isinstance(value, dict):
        return value
    edited: dict[str, Any] = {}
    for key, item in value.items():
        item_kind: AmountKind = "refund" if "refund" in str(key).lower() else kind
        if str(key).lower().endswith("amount") and isinstance(item, int) and not isinstance(item, bool):
            replaced = edit(item_kind, item)
            if replaced is not None:
                edited[key] = replaced
        else:
            edited[key] = _edit_json(item, edit, item_kind)
    return edited


# -- the suite ---------------------------------------------------------------------------------


class ProviderSuiteBase:
    """Conformance tests for a :class:`~paycore.providers.Provider`, run through the flow."""

    pytestmark = pytest.mark.anyio

    signature_headers: tuple[str, ...] = (STANDARD_SIGNATURE_HEADER,)
    """The headers that carry a delivery's signature (all are left out to forge an unsigned one)."""
    timestamp_header: str | None = STANDARD_TIMESTAMP_HEADER
    """The header that says when a delivery was signed; ``None`` when the scheme has none."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        """Every test runs under asyncio and under trio."""
        return request.param

    @pytest.fixture
    async def flow(self) -> Any:
        """Override: yield a flow with the provider enabled as ``"conformance"``."""
        raise NotImplementedError("subclasses provide the flow fixture")

    @pytest.fixture
    def amount(self) -> Money:
        """The amount paid in the tests (override for providers without XOF)."""
        return Money.of("5000", "XOF")

    # -- hooks a subclass implements or overrides ----------------------------------------------

    async def start_payment(
        self,
        flow: PaymentFlow,
        amount: Money,
        order_id: str,
        *,
        capture: bool = True,
        idempotency_key: str | None = None,
    ) -> Payment:
        """Create a payment through the flow; return it as the provider left it.

        The webhook tests need it awaiting the customer (``processing``):
        override when the provider must be told so (a scripted test provider).
        """
        checkout = await flow.create_payment(
            amount=amount, provider=CODE, order_id=order_id, capture=capture, idempotency_key=idempotency_key
        )
        return checkout.payment

    async def deliveries(self, flow: PaymentFlow, payment: Payment, outcome: Outcome) -> Sequence[Delivery]:
        """Override (providers with webhooks): move ``payment`` to ``outcome`` at the provider; return its deliveries.

        Do what the customer or the gateway does (approve, or capture at the
        gateway for ``SUCCEEDED`` of an authorized payment) and return, in the
        order the provider sends them, the signed deliveries it sends about
        that, *without* delivering them to the flow. ``outcome`` is
        ``SUCCEEDED``, or ``AUTHORIZED`` for a payment created with ``capture=False``.
        """
        raise NotImplementedError("subclasses return the provider's deliveries")

    async def refund_deliveries(self, flow: PaymentFlow, payment: Payment, refund: Refund) -> Sequence[Delivery]:
        """Override (providers with webhooks and refunds): the deliveries the provider sends about ``refund``.

        ``refund`` was made through the flow. Return them undelivered, or an
        empty list if the provider reports refunds only in its answers.
        """
        raise NotImplementedError("subclasses return the provider's refund deliveries")

    async def pay(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        """Create a payment of ``amount`` and complete it as the customer; return it as stored.

        The default starts it and delivers the provider's ``SUCCEEDED``
        deliveries; override it when paying takes something else.
        """
        payment = await self.start_payment(flow, amount, order_id)
        if payment.status is PaymentStatus.PROCESSING:
            await self._deliver(flow, await self._deliveries(flow, payment, Outcome.SUCCEEDED))
        return await flow.get_payment(payment.id)

    async def authorize(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        """Create a ``capture=False`` payment and have the provider authorize it; return it as stored.

        The default starts it and delivers the provider's ``AUTHORIZED`` deliveries.
        """
        payment = await self.start_payment(flow, amount, order_id, capture=False)
        if payment.status is PaymentStatus.PROCESSING:
            await self._deliver(flow, await self._deliveries(flow, payment, Outcome.AUTHORIZED))
        return await flow.get_payment(payment.id)

    async def make_next_call_not_sent(self, flow: PaymentFlow) -> None:
        """Override: the provider's next call fails before its request leaves (``ProviderNotSent``).

        :func:`interrupt_next_call` does it for any provider; better, make the
        provider's own transport refuse the connection. Tests skip without it.
        """
        raise NotImplementedError("subclasses say how a call fails before it is sent")

    async def make_next_call_unknown(self, flow: PaymentFlow) -> None:
        """Override: the provider's next call does its work, then its answer is lost (``ProviderOutcomeUnknown``).

        :func:`interrupt_next_call` does it for any provider. Tests skip without it.
        """
        raise NotImplementedError("subclasses say how a call's answer is lost")

    def signing_secret(self, flow: PaymentFlow) -> str:
        """The secret the provider verifies deliveries with (default: its ``webhook_secret`` setting)."""
        return flow.provider(CODE).settings.secret("webhook_secret")

    def wrong_secret(self, secret: str) -> str:
        """A secret of the same form as ``secret`` that the provider does not hold."""
        if secret.startswith("whsec_"):
            return generate_standard_webhook_secret()
        return "not-" + secret

    def sign(self, body: bytes, headers: Mapping[str, str], *, secret: str, timestamp: int) -> Delivery:
        """``body`` signed with ``secret`` at ``timestamp``, keeping ``headers``' other headers.

        The default signs the Standard Webhooks way and keeps the ``webhook-id``;
        override for the provider's own scheme.
        """
        msg_id = headers.get(STANDARD_ID_HEADER) or f"msg_conformance_{timestamp}"
        return Delivery(body, {**headers, **sign_standard_webhook(secret, body, msg_id, timestamp)})

    def timestamp_of(self, delivery: Delivery) -> str | None:
        """When ``delivery`` says it was signed, as written in it (``None``: it does not say).

        The default reads :attr:`timestamp_header`; override for schemes that keep
        the timestamp inside the signature header (``Stripe-Signature: t=...,v1=...``).
        """
        return delivery.header(self.timestamp_header) if self.timestamp_header is not None else None

    def edit_amounts(self, body: bytes, edit: AmountEdit) -> bytes:
        """``body`` with each amount (minor units) replaced by ``edit(kind, amount)``, left out where it is ``None``.

        The default reads JSON: an integer under a key ending in ``amount`` is
        an amount, a refund's when a key on its path names a refund. Override
        for another format.
        """
        return json.dumps(_edit_json(json.loads(body), edit, "payment"), separators=(",", ":")).encode()

    # -- the suite's own helpers ------------------------------------------------------------

    async def _paid(self, flow: PaymentFlow, amount: Money, order_id: str = "conformance-1") -> Payment:
        payment = await self.pay(flow, amount, order_id)
        return await flow.get_payment(payment.id)

    def _capabilities(self, flow: PaymentFlow) -> Capabilities:
        return flow.provider(CODE).capabilities

    def _require(self, flow: PaymentFlow, capability: str, reason: str) -> None:
        if not getattr(self._capabilities(flow), capability):
            pytest.skip(reason)

    async def _unless_missing(self, hook: Awaitable[T], skip: str) -> T:
        """``await hook``, a call of an optional hook; the test is skipped, saying ``skip``, when the test class does
        not implement it."""
        try:
            return await hook
        except NotImplementedError:
            pytest.skip(skip)

    async def _deliveries(self, flow: PaymentFlow, payment: Payment, outcome: Outcome) -> list[Delivery]:
        try:
            found = list(await self.deliveries(flow, payment, outcome))
        except NotImplementedError:
            if self._capabilities(flow).webhooks:
                pytest.fail("the provider declares webhooks: the test class must implement deliveries()")
            raise NotImplementedError("subclasses say how a customer pays: override pay()") from None
        assert found, f"deliveries() returned no delivery for {outcome.value}"
        return found

    async def _processing(self, flow: PaymentFlow, amount: Money, order_id: str, *, capture: bool = True) -> Payment:
        payment = await self.start_payment(flow, amount, order_id, capture=capture)
        assert payment.status is PaymentStatus.PROCESSING, (
            f"start_payment() must leave the payment awaiting the customer (processing), not {payment.status.value}"
        )
        return payment

    async def _deliver(self, flow: PaymentFlow, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            await flow.handle_webhook(CODE, delivery.body, delivery.headers)

    async def _snapshot(self, flow: PaymentFlow, payment_id: str) -> Snapshot:
        return await flow.get_payment(payment_id), await flow.list_events(payment_id)

    def _resigned(
        self,
        flow: PaymentFlow,
        delivery: Delivery,
        *,
        body: bytes | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Delivery:
        return self.sign(
            delivery.body if body is None else body,
            delivery.headers,
            secret=self.signing_secret(flow) if secret is None else secret,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )

    async def _assert_verifies(self, flow: PaymentFlow, deliveries: Sequence[Delivery]) -> None:
        """A delivery the suite re-signed with the right secret must pass the provider's check."""
        for delivery in deliveries:
            try:
                await flow.provider(CODE).verify_webhook(delivery.body, delivery.headers)
            except InvalidSignature as error:
                pytest.fail(f"the provider refuses a delivery re-signed by the test class's sign(): {error}")

    async def _assert_refused(self, flow: PaymentFlow, payment_id: str, forged: Sequence[Delivery]) -> None:
        before = await self._snapshot(flow, payment_id)
        for delivery in forged:
            with pytest.raises(InvalidSignature):
                await flow.handle_webhook(CODE, delivery.body, delivery.headers)
        assert await self._snapshot(flow, payment_id) == before, "a refused delivery changed the payment"

    async def _assert_settles(
        self, flow: PaymentFlow, payment_id: str, amount: Money, deliveries: Sequence[Delivery]
    ) -> None:
        await self._deliver(flow, deliveries)
        payment = await flow.get_payment(payment_id)
        assert payment.status is PaymentStatus.SUCCEEDED
        assert payment.captured_amount == amount

    async def _settled_refund(
        self, flow: PaymentFlow, payment_id: str, refund_id: str, asked: Money | None = None
    ) -> RefundStatus:
        """The refund's status, once the provider settled it: when it answered "pending", its refund deliveries
        (a provider with webhooks) are delivered, then it is polled once.

        With ``asked`` (the amount the refund asked for), the provider's answer, then a poll (made
        whatever the answer, when the provider can be polled) must report that amount: the refund
        keeps it and the payment does not need review after each.
        """
        payment = await flow.get_payment(payment_id)
        status = payment.refund(refund_id).status
        if asked is not None:
            self._assert_refund_as_asked(payment, refund_id, asked, "the provider's answer to the refund")
        if status is RefundStatus.PENDING and self._capabilities(flow).webhooks:
            deliveries: Sequence[Delivery] = ()
            with contextlib.suppress(NotImplementedError):  # a test class without refund deliveries: polled alone
                deliveries = await self.refund_deliveries(flow, payment, payment.refund(refund_id))
            await self._deliver(flow, deliveries)
            payment = await flow.get_payment(payment_id)
            status = payment.refund(refund_id).status
        if self._capabilities(flow).polling and (status is RefundStatus.PENDING or asked is not None):
            payment = await flow.refresh(payment_id)
            status = payment.refund(refund_id).status
            if asked is not None:
                self._assert_refund_as_asked(payment, refund_id, asked, "a poll of the refunded payment")
        return status

    def _assert_refund_as_asked(self, payment: Payment, refund_id: str, asked: Money, after: str) -> None:
        """``payment``'s refund ``refund_id`` holds the amount asked, and nothing needs review (after ``after``)."""
        reason = payment.review_reason.value if payment.review_reason is not None else None
        assert not payment.needs_review, (
            f"after {after} (of {asked}), the payment needs review ({reason}: {payment.review_message})"
        )
        recorded = payment.refund(refund_id).amount
        assert recorded == asked, f"after {after}, the refund records {recorded}, not the {asked} asked"
