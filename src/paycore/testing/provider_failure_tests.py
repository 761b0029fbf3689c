"""The conformance tests of a provider's reports when something goes wrong: a delivery lost, an answer lost, a refund
declined, a customer who paid short, a signed body the provider cannot read."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import anyio
import pytest

from paycore.errors import InvalidReport, PaycoreError, ProviderError, WebhookError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.provider_base import _PAID, CODE, ProviderSuiteBase
from paycore.testing.scripting import _recorded_calls
from paycore.testing.webhooks import Delivery

__all__ = ["FailureTests"]


class FailureTests(ProviderSuiteBase):
    """Lost deliveries settled by a poll, lost refund answers never sent again, declines, short payments, and
    unreadable deliveries refused as malformed."""

    poll_lag: float = 0.0
    """Seconds the provider's status reads may lag behind what it has sent (a read replica): a poll that still
    finds a paid payment awaiting its customer is made again within them."""

    # -- hooks a subclass may implement (each unlocks its test; without it the test is skipped) --------------------

    async def decline_next_refund(self, flow: PaymentFlow) -> None:
        """Override (providers that refund): the provider declines the next refund it is asked for, and says so (in
        its answer, or in a refund delivery and its polls), as it does for a refund past its window."""
        raise NotImplementedError("subclasses say how the provider declines a refund")

    async def underpaid_deliveries(self, flow: PaymentFlow, payment: Payment, paid: Money) -> Sequence[Delivery]:
        """Override (providers with webhooks): the customer pays only ``paid`` of ``payment`` at the provider (a
        wallet short of funds, a gateway capturing less than asked); return the deliveries it sends, undelivered."""
        raise NotImplementedError("subclasses say how a customer pays less than asked")

    # -- deliveries lost ------------------------------------------------------------------------------------------

    async def test_a_payment_whose_deliveries_were_lost_is_settled_by_a_poll(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        """The customer paid, every delivery about it was lost: the provider's answer to a poll says so, amounts
        included, and the payment succeeds with its whole amount."""
        self._require(flow, "webhooks", "the provider sends no webhooks")
        self._require(flow, "polling", "the provider cannot be polled")
        payment = await self._processing(flow, amount, "lost-deliveries-1")
        await self._deliveries(flow, payment, Outcome.SUCCEEDED)  # sent, never received
        polled = await flow.refresh(payment.id)
        waited = 0.0
        while polled.status is PaymentStatus.PROCESSING and waited < self.poll_lag:  # its reads may lag: ask again
            await anyio.sleep(0.1)
            waited += 0.1
            polled = await flow.refresh(payment.id)
        reason = polled.review_reason.value if polled.review_reason is not None else None
        assert not polled.needs_review, f"the poll flagged the paid payment ({reason}: {polled.review_message})"
        assert polled.status is PaymentStatus.SUCCEEDED, f"a poll of a paid payment left it {polled.status.value}"
        assert polled.captured_amount == amount

    # -- answers lost -------------------------------------------------------------------------------------------

    async def test_a_refund_whose_answer_was_lost_is_never_sent_again(self, flow: PaymentFlow, amount: Money) -> None:
        """Whether or not the provider's polls can settle it: its outcome is unknown, so its retry never sends it
        again (a provider that takes a lost answer for a request never sent pays the refund twice)."""
        self._require(flow, "refund", "the provider cannot refund")
        paid = await self._paid(flow, amount, "unknown-refund-2")
        await self._unless_missing(
            self.make_next_call_unknown(flow), "the test class cannot make the provider's next call's answer get lost"
        )
        with _recorded_calls(flow.provider(CODE)) as calls:
            for _ in range(3):  # asked, then retried twice under its key
                with contextlib.suppress(ProviderError):
                    await flow.refund(paid.id, idempotency_key="unknown-refund-2")
        assert [operation for operation, _ in calls].count("refund") == 1, "the refund was sent to the provider twice"
        after = await flow.get_payment(paid.id)
        assert len(after.refunds) == 1, f"the payment holds {len(after.refunds)} refunds for one refund asked"
        assert after.refunds[0].status is not RefundStatus.FAILED, "a refund whose answer was lost was failed"

    # -- refusals -------------------------------------------------------------------------------------------------

    async def test_a_refund_the_provider_declines_is_failed_and_refundable_again(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        self._require(flow, "refund", "the provider cannot refund")
        paid = await self._paid(flow, amount, "declined-refund-1")
        await self._unless_missing(
            self.decline_next_refund(flow), "the test class cannot make the provider decline a refund"
        )
        with contextlib.suppress(PaycoreError):  # a provider may refuse it in its answer
            await flow.refund(paid.id)
        (refund,) = (await flow.get_payment(paid.id)).refunds
        status = await self._settled_refund(flow, paid.id, refund.id)
        assert status is RefundStatus.FAILED, f"a refund the provider declined is {status.value}"
        after = await flow.get_payment(paid.id)
        assert (after.status, after.refunded_amount) == (PaymentStatus.SUCCEEDED, Money.minor(0, amount.currency)), (
            f"a declined refund left the payment {after.status.value}, {after.refunded_amount} refunded"
        )
        again = await flow.refund(paid.id)  # the whole amount is refundable again
        assert again.amount == amount

    # -- a customer who paid short ---------------------------------------------------------------------------------

    async def test_a_payment_paid_short_is_never_recorded_as_paid_in_full(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        """A report carries what the provider moved, never the amount asked in its place."""
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "paid-short-1")
        paid, _ = amount.allocate([1, 4])
        deliveries = list(
            await self._unless_missing(
                self.underpaid_deliveries(flow, payment, paid),
                "the test class cannot make a customer pay less than asked",
            )
        )
        assert deliveries, "underpaid_deliveries() returned no delivery"
        refused = 0
        for delivery in deliveries:
            try:
                await flow.handle_webhook(CODE, delivery.body, delivery.headers)
            except (ProviderError, WebhookError):
                refused += 1
        assert refused < len(deliveries), "the provider refused every delivery it sent about a short payment"
        after = await flow.get_payment(payment.id)
        assert after.captured_amount in (None, paid), f"{after.captured_amount} captured, but the customer paid {paid}"
        assert after.status not in _PAID or after.needs_review, (
            f"a payment paid {paid} of {amount} is {after.status.value} and needs no review"
        )

    # -- deliveries the provider cannot read -----------------------------------------------------------------------

    async def test_a_signed_delivery_the_provider_cannot_read_is_malformed(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        """Correctly signed bodies that are no report of the provider's: its parse refuses them with a
        :class:`~paycore.errors.WebhookError` (``MalformedWebhook``), or reads nothing in them; never another
        exception (the flow would answer 400, but as for a bug: with a traceback in the log)."""
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "unreadable-1")
        (genuine, *_) = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        provider = flow.provider(CODE)
        before = await self._snapshot(flow, payment.id)
        parsed = 0
        for body in (b"null", b"[]", b"{}", b'"text"', b"\xff\xfe", genuine.body[: len(genuine.body) // 2]):
            delivery = self._resigned(flow, genuine, body=body)
            try:
                await provider.verify_webhook(delivery.body, delivery.headers)
            except Exception:  # refused before it is read (a verifier may read the body too): not this test's
                continue
            parsed += 1
            try:
                await provider.parse_webhook(delivery.body, delivery.headers)
            except (WebhookError, InvalidReport):  # InvalidReport: the flow makes it MalformedWebhook
                pass
            except Exception as error:  # what the test is about: any other exception
                pytest.fail(f"parse_webhook({body[:20]!r}) raised {type(error).__name__}: raise MalformedWebhook")
            with contextlib.suppress(WebhookError):
                await flow.handle_webhook(CODE, delivery.body, delivery.headers)
        assert parsed, "the provider's verifier refused every re-signed body: parse_webhook was never reached"
        assert await self._snapshot(flow, payment.id) == before, "a delivery that is no report changed the payment"
