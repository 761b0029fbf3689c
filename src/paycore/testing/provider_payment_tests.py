"""The conformance tests of what a provider is and how money moves through it: pay, capture, cancel, refund."""

from __future__ import annotations

import pytest

from paycore.errors import (
    CaptureExceedsAuthorized,
    InvalidTransition,
    RefundExceedsCaptured,
    UnsupportedCurrency,
)
from paycore.flow import PaymentFlow
from paycore.fsm import OPEN
from paycore.money import Money, currency_exponent
from paycore.providers import Capabilities
from paycore.records import Payment
from paycore.secrets import SECRET_MARKERS
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.provider_base import (
    CODE,
    ProviderSuiteBase,
)

__all__ = ["PaymentTests"]


class PaymentTests(ProviderSuiteBase):
    """What the provider declares, and every money-moving operation it declares, through the flow."""

    # -- what the provider is --------------------------------------------------------------

    async def test_the_provider_declares_what_it_is(self, flow: PaymentFlow) -> None:
        provider = flow.provider(CODE)
        assert isinstance(provider.name, str)
        assert provider.name
        assert isinstance(provider.capabilities, Capabilities)
        if provider.currencies is not None:
            assert provider.currencies, "a provider accepting no currency can take no payment"
            for code in provider.currencies:
                currency_exponent(code)
        declared = type(provider).secret_settings
        for key, value in provider.settings.items():
            if key in declared or any(marker in key.lower() for marker in SECRET_MARKERS):
                for item in value if isinstance(value, (list, tuple)) else (value,):
                    assert not isinstance(item, str), (
                        f"setting {key!r} is a secret (by its name or the provider's secret_settings), "
                        "yet it is kept as plain text, not a Secret"
                    )

    async def test_a_currency_the_provider_refuses_is_refused_before_anything_is_stored(
        self, flow: PaymentFlow
    ) -> None:
        currencies = flow.provider(CODE).currencies
        if currencies is None:
            pytest.skip("the provider takes any currency")
        candidates = ("XOF", "EUR", "USD", "JPY", "KWD", "XAF", "GBP", "CHF", "BHD", "ISK")
        foreign = next((code for code in candidates if code not in currencies), None)
        if foreign is None:
            pytest.skip(f"the provider takes every currency the suite would try ({', '.join(candidates)})")
        with pytest.raises(UnsupportedCurrency):
            await flow.create_payment(amount=Money.minor(100, foreign), provider=CODE, order_id="foreign")
        assert await flow.list_payments(order_id="foreign") == []

    # -- paying ----------------------------------------------------------------------------

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
        assert refreshed.captured_amount == amount
        assert not refreshed.needs_review, f"{refreshed.review_reason}: {refreshed.review_message}"
        assert refreshed.event_count == payment.event_count
        if not self._capabilities(flow).refund:
            return
        # and a partly refunded one (wholly, for a provider that refunds only in full)
        part = amount.allocate([1, 2])[0] if self._capabilities(flow).partial_refund else amount
        refund = await flow.refund(payment.id, amount=part)
        assert await self._settled_refund(flow, payment.id, refund.id, part) is RefundStatus.SUCCEEDED
        refunded = await flow.get_payment(payment.id)
        refreshed = await flow.refresh(payment.id)
        self._assert_refund_as_asked(refreshed, refund.id, part, "a poll of the settled refund")
        assert refreshed.refunds == refunded.refunds
        assert (refreshed.status, refreshed.refunded_amount) == (refunded.status, part)
        assert refreshed.event_count == refunded.event_count

    async def test_polling_a_payment_the_customer_has_not_paid_leaves_it_unpaid(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        """A poll of a payment still awaiting the customer moves no money: the gateway's "pending" is not paid."""
        self._require(flow, "polling", "the provider cannot be polled")
        captures = (True, False) if self._capabilities(flow).authorize_capture else (True,)
        for capture in captures:
            payment = await self._awaiting_customer(flow, amount, f"unpaid-poll-{capture}", capture=capture)
            refreshed = await flow.refresh(payment.id)
            assert refreshed.status in OPEN, (
                f"a poll of a payment the customer has not paid (capture={capture}) made it {refreshed.status.value}"
            )
            assert (refreshed.captured_amount, refreshed.authorized_amount) == (None, None), (
                f"a poll of a payment the customer has not paid (capture={capture}) recorded money "
                f"(captured {refreshed.captured_amount}, authorized {refreshed.authorized_amount})"
            )
            assert not refreshed.needs_review, f"{refreshed.review_reason}: {refreshed.review_message}"

    async def _awaiting_customer(self, flow: PaymentFlow, amount: Money, order_id: str, *, capture: bool) -> Payment:
        """A payment :meth:`start_payment` left awaiting the customer; skips where the provider leaves none so.

        A provider with webhooks must leave it so (its webhook tests need it); one without may complete
        the payment at once (cash at a drawer).
        """
        if self._capabilities(flow).webhooks:
            return await self._processing(flow, amount, order_id, capture=capture)
        payment = await self.start_payment(flow, amount, order_id, capture=capture)
        if payment.status not in OPEN:
            pytest.skip(f"start_payment() leaves no payment awaiting the customer (it is {payment.status.value})")
        return payment

    # -- capture and cancel ------------------------------------------------------------------

    async def test_a_capture_takes_the_whole_authorized_amount(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "authorize_capture", "the provider does not authorize first and capture later")
        payment = await self.authorize(flow, amount, "capture-1")
        assert payment.status is PaymentStatus.AUTHORIZED
        assert payment.authorized_amount == amount
        captured = await flow.capture(payment.id)
        assert captured.status is PaymentStatus.SUCCEEDED
        assert captured.captured_amount == amount

    async def test_a_partial_capture_captures_less_and_bounds_the_refunds(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        self._require(flow, "partial_capture", "the provider does not capture in part")
        payment = await self.authorize(flow, amount, "capture-part-1")
        part, _ = amount.allocate([2, 1])
        captured = await flow.capture(payment.id, amount=part)
        assert captured.status is PaymentStatus.SUCCEEDED
        assert captured.captured_amount == part
        if self._capabilities(flow).partial_refund:
            with pytest.raises(RefundExceedsCaptured):
                await flow.refund(captured.id, amount=part + Money.minor(1, amount.currency))
            assert await flow.get_payment(captured.id) == captured

    async def test_a_capture_above_the_authorized_amount_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "authorize_capture", "the provider does not authorize first and capture later")
        payment = await self.authorize(flow, amount, "capture-over-1")
        before = await self._snapshot(flow, payment.id)
        with pytest.raises(CaptureExceedsAuthorized):
            await flow.capture(payment.id, amount=amount + Money.minor(1, amount.currency))
        assert await self._snapshot(flow, payment.id) == before

    async def test_a_cancel_voids_an_authorized_payment(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "cancel", "the provider does not cancel")
        self._require(flow, "authorize_capture", "the provider does not authorize first and capture later")
        payment = await self.authorize(flow, amount, "cancel-1")
        canceled = await flow.cancel(payment.id)
        assert canceled.status is PaymentStatus.CANCELED
        assert canceled.captured_amount is None

    async def test_a_captured_payment_cannot_be_canceled(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "cancel", "the provider does not cancel")
        payment = await self._paid(flow, amount)
        before = await self._snapshot(flow, payment.id)
        with pytest.raises(InvalidTransition):
            await flow.cancel(payment.id)
        assert await self._snapshot(flow, payment.id) == before

    # -- refunds ---------------------------------------------------------------------------

    async def test_a_full_refund_refunds_the_payment(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).refund:
            pytest.skip("the provider does not refund")
        payment = await self._paid(flow, amount)
        refund = await flow.refund(payment.id, reason="conformance")
        assert refund.amount == amount
        settled = await self._settled_refund(flow, payment.id, refund.id, amount)
        assert settled is RefundStatus.SUCCEEDED
        assert (await flow.get_payment(payment.id)).status is PaymentStatus.REFUNDED

    async def test_partial_refunds_add_up_to_the_captured_amount(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).partial_refund:
            pytest.skip("the provider does not refund in part")
        payment = await self._paid(flow, amount)
        first, second = amount.allocate([1, 2])
        for part in (first, second):
            refund = await flow.refund(payment.id, amount=part)
            assert await self._settled_refund(flow, payment.id, refund.id, part) is RefundStatus.SUCCEEDED
        final = await flow.get_payment(payment.id)
        assert final.refunded_amount == amount
        assert final.status is PaymentStatus.REFUNDED

    async def test_partial_refunds_never_exceed_the_captured_amount(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "partial_refund", "the provider does not refund in part")
        payment = await self._paid(flow, amount)
        one_unit = Money.minor(1, amount.currency)
        first, rest = amount.allocate([2, 1])
        refund = await flow.refund(payment.id, amount=first)
        assert await self._settled_refund(flow, payment.id, refund.id, first) is RefundStatus.SUCCEEDED
        before = await self._snapshot(flow, payment.id)
        with pytest.raises(RefundExceedsCaptured):
            await flow.refund(payment.id, amount=rest + one_unit)
        assert await self._snapshot(flow, payment.id) == before
        refund = await flow.refund(payment.id, amount=rest)
        assert await self._settled_refund(flow, payment.id, refund.id, rest) is RefundStatus.SUCCEEDED
        before = await self._snapshot(flow, payment.id)
        with pytest.raises((RefundExceedsCaptured, InvalidTransition)):
            await flow.refund(payment.id, amount=one_unit)
        after = await self._snapshot(flow, payment.id)
        assert after == before
        assert after[0].refunded_amount == amount

    async def test_a_refund_above_the_captured_amount_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).refund:
            pytest.skip("the provider does not refund")
        payment = await self._paid(flow, amount)
        one_unit = Money.minor(1, amount.currency)
        with pytest.raises(RefundExceedsCaptured):
            await flow.refund(payment.id, amount=amount + one_unit)
        assert await flow.get_payment(payment.id) == payment
