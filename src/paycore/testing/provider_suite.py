"""``ProviderConformance``: what every payment provider must do through ``PaymentFlow``.

Subclass it and provide:

* an async fixture ``flow``: a :class:`~paycore.flow.PaymentFlow` with the
  provider enabled under the code ``"conformance"`` (no tenant);
* an ``amount`` fixture if the provider does not take XOF;
* :meth:`ProviderConformance.pay`: create a payment of ``amount`` and do what
  the customer does until the provider has the money (approve on the hosted
  page and deliver the webhook, tender cash at an open drawer...).

Tests that need a capability the provider does not declare are skipped, and say so.
"""

from __future__ import annotations

from typing import Any

import pytest

from paycore.errors import RefundExceedsCaptured, UnsupportedCurrency, WebhookError
from paycore.flow import PaymentFlow
from paycore.money import Money, currency_exponent
from paycore.providers import Capabilities
from paycore.records import Payment
from paycore.status import PaymentStatus, RefundStatus

__all__ = ["CODE", "ProviderConformance"]

CODE = "conformance"
"""The provider code the ``flow`` fixture enables the provider under."""


class ProviderConformance:
    """Conformance tests for a :class:`~paycore.providers.Provider`, run through the flow."""

    pytestmark = pytest.mark.anyio

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

    async def pay(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        """Override: create a payment and complete it as the customer; return it as stored."""
        raise NotImplementedError("subclasses say how a customer pays")

    async def _paid(self, flow: PaymentFlow, amount: Money, order_id: str = "conformance-1") -> Payment:
        payment = await self.pay(flow, amount, order_id)
        return await flow.get_payment(payment.id)

    def _capabilities(self, flow: PaymentFlow) -> Capabilities:
        return flow.provider(CODE).capabilities

    async def test_the_provider_declares_what_it_is(self, flow: PaymentFlow) -> None:
        provider = flow.provider(CODE)
        assert isinstance(provider.name, str)
        assert provider.name
        assert isinstance(provider.capabilities, Capabilities)
        if provider.currencies is not None:
            assert provider.currencies, "a provider accepting no currency can take no payment"
            for code in provider.currencies:
                currency_exponent(code)
        assert "Secret('***')" in repr(provider.settings) or not any(
            marker in key for key in provider.settings for marker in ("secret", "key", "token", "password")
        )

    async def test_a_paid_payment_succeeds_with_its_whole_amount_captured(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        payment = await self._paid(flow, amount)
        assert payment.status is PaymentStatus.SUCCEEDED
        assert payment.captured_amount == amount
        assert not payment.needs_review
        kinds = [(e.kind, e.to_status) for e in await flow.list_events(payment.id)]
        assert ("status_changed", "succeeded") in kinds

    async def test_polling_a_settled_payment_changes_nothing(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).polling:
            pytest.skip("the provider cannot be polled")
        payment = await self._paid(flow, amount)
        refreshed = await flow.refresh(payment.id)
        assert refreshed.status is PaymentStatus.SUCCEEDED
        assert refreshed.event_count == payment.event_count

    async def test_a_full_refund_refunds_the_payment(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).refund:
            pytest.skip("the provider does not refund")
        payment = await self._paid(flow, amount)
        refund = await flow.refund(payment.id, reason="conformance")
        assert refund.amount == amount
        settled = await self._settled_refund(flow, payment.id, refund.id)
        assert settled is RefundStatus.SUCCEEDED
        assert (await flow.get_payment(payment.id)).status is PaymentStatus.REFUNDED

    async def test_partial_refunds_add_up_to_the_captured_amount(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).partial_refund:
            pytest.skip("the provider does not refund in part")
        payment = await self._paid(flow, amount)
        first, second = amount.allocate([1, 2])
        for part in (first, second):
            refund = await flow.refund(payment.id, amount=part)
            assert await self._settled_refund(flow, payment.id, refund.id) is RefundStatus.SUCCEEDED
        final = await flow.get_payment(payment.id)
        assert final.refunded_amount == amount
        assert final.status is PaymentStatus.REFUNDED

    async def test_a_refund_above_the_captured_amount_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).refund:
            pytest.skip("the provider does not refund")
        payment = await self._paid(flow, amount)
        one_unit = Money.minor(1, amount.currency)
        with pytest.raises(RefundExceedsCaptured):
            await flow.refund(payment.id, amount=amount + one_unit)
        assert await flow.get_payment(payment.id) == payment

    async def test_an_unsigned_webhook_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).webhooks:
            pytest.skip("the provider sends no webhooks")
        payment = await self._paid(flow, amount)
        body = b'{"id": "evt_forged", "payment_id": "%s", "outcome": "failed"}' % payment.id.encode()
        with pytest.raises(WebhookError):
            await flow.handle_webhook(CODE, body, {"content-type": "application/json"})
        assert await flow.get_payment(payment.id) == payment

    async def test_a_currency_the_provider_refuses_is_refused_before_anything_is_stored(
        self, flow: PaymentFlow
    ) -> None:
        currencies = flow.provider(CODE).currencies
        if currencies is None:
            pytest.skip("the provider takes any currency")
        foreign = next(code for code in ("XOF", "EUR", "USD", "JPY", "KWD") if code not in currencies)
        with pytest.raises(UnsupportedCurrency):
            await flow.create_payment(amount=Money.minor(100, foreign), provider=CODE, order_id="foreign")
        assert await flow.list_payments(order_id="foreign") == []

    async def _settled_refund(self, flow: PaymentFlow, payment_id: str, refund_id: str) -> RefundStatus:
        """The refund's status, polling once if the provider answered "pending"."""
        payment = await flow.get_payment(payment_id)
        status = payment.refund(refund_id).status
        if status is RefundStatus.PENDING and self._capabilities(flow).polling:
            payment = await flow.refresh(payment_id)
            status = payment.refund(refund_id).status
        return status
