"""The conformance tests of a provider's deliveries and failed calls: genuine, repeated, forged, incomplete."""

from __future__ import annotations

import contextlib
import time

import pytest

from paycore.errors import (
    MalformedWebhook,
    ProviderError,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    WebhookError,
)
from paycore.flow import PaymentFlow
from paycore.fsm import OPEN
from paycore.money import Money
from paycore.records import Payment, ProviderUpdate
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.provider_base import (
    _PAID,
    _STALE_SECONDS,
    CODE,
    ProviderSuiteBase,
)
from paycore.testing.scripting import _recorded_calls
from paycore.testing.webhooks import (
    Delivery,
)

__all__ = ["DeliveryTests"]


class DeliveryTests(ProviderSuiteBase):
    """Webhooks verified before parsed and deduplicated, reports that must carry amounts, calls without an answer."""

    # -- genuine deliveries ------------------------------------------------------------------

    async def test_a_genuine_delivery_settles_the_payment(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "webhook-1")
        await self._deliver(flow, await self._deliveries(flow, payment, Outcome.SUCCEEDED))
        settled = await flow.get_payment(payment.id)
        assert settled.status is PaymentStatus.SUCCEEDED
        assert settled.captured_amount == amount
        assert not settled.needs_review
        changes = [e for e in await flow.list_events(payment.id) if e.kind == "status_changed"]
        assert (changes[-1].cause, changes[-1].to_status) == ("webhook", "succeeded")

    async def test_a_repeated_delivery_is_a_quiet_no_op(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "webhook-twice-1")
        deliveries = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        await self._deliver(flow, deliveries)
        before = await self._snapshot(flow, payment.id)
        assert before[0].status is PaymentStatus.SUCCEEDED
        await self._deliver(flow, deliveries)
        assert await self._snapshot(flow, payment.id) == before

    async def test_an_earlier_status_delivered_late_never_moves_the_payment_back(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        self._require(flow, "authorize_capture", "the provider does not authorize first and capture later")
        payment = await self._processing(flow, amount, "webhook-order-1", capture=False)
        authorized = await self._deliveries(flow, payment, Outcome.AUTHORIZED)
        captured = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        await self._deliver(flow, captured)
        settled, events = await self._snapshot(flow, payment.id)
        assert settled.status is PaymentStatus.SUCCEEDED
        await self._deliver(flow, authorized)
        after, later_events = await self._snapshot(flow, payment.id)
        assert after.status is PaymentStatus.SUCCEEDED
        assert after.captured_amount == settled.captured_amount == amount
        assert [e for e in later_events[len(events) :] if e.kind == "status_changed"] == []

    # -- forged deliveries -------------------------------------------------------------------

    async def test_a_delivery_with_a_flipped_byte_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "forged-byte-1")
        genuine = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        await self._assert_refused(flow, payment.id, [d.with_flipped_byte() for d in genuine])
        await self._assert_settles(flow, payment.id, amount, genuine)

    async def test_a_delivery_signed_with_the_wrong_secret_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "forged-secret-1")
        genuine = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        wrong = self.wrong_secret(self.signing_secret(flow))
        await self._assert_refused(flow, payment.id, [self._resigned(flow, d, secret=wrong) for d in genuine])
        resigned = [self._resigned(flow, d) for d in genuine]
        await self._assert_verifies(flow, resigned)
        await self._assert_settles(flow, payment.id, amount, resigned)

    async def test_a_delivery_without_its_signature_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "forged-unsigned-1")
        genuine = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        for delivery in genuine:
            assert any(delivery.header(name) for name in self.signature_headers), (
                f"the deliveries carry none of signature_headers {self.signature_headers}"
            )
        await self._assert_refused(flow, payment.id, [d.without_headers(*self.signature_headers) for d in genuine])
        await self._assert_settles(flow, payment.id, amount, genuine)

    async def test_a_delivery_with_a_stale_timestamp_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "forged-stale-1")
        genuine = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        stale = int(time.time()) - _STALE_SECONDS
        if any(self.timestamp_of(d) is None for d in genuine):
            pytest.skip("the provider's signatures carry no timestamp")
        forged = [self._resigned(flow, d, timestamp=stale) for d in genuine]
        for delivery in forged:
            assert self.timestamp_of(delivery) == str(stale), "sign() does not write the timestamp timestamp_of() reads"
        await self._assert_refused(flow, payment.id, forged)
        resigned = [self._resigned(flow, d) for d in genuine]
        await self._assert_verifies(flow, resigned)
        await self._assert_settles(flow, payment.id, amount, resigned)

    async def test_an_unsigned_webhook_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        if not self._capabilities(flow).webhooks:
            pytest.skip("the provider sends no webhooks")
        payment = await self._paid(flow, amount)
        body = b'{"id": "evt_forged", "payment_id": "%s", "outcome": "failed"}' % payment.id.encode()
        with pytest.raises(WebhookError):
            await flow.handle_webhook(CODE, body, {"content-type": "application/json"})
        assert await flow.get_payment(payment.id) == payment

    # -- what a report must carry --------------------------------------------------------------

    async def _without_amounts(self, flow: PaymentFlow, payment: Payment) -> list[Delivery]:
        """Genuine ``SUCCEEDED`` deliveries of ``payment`` with their amounts left out, re-signed."""
        genuine = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        forged = [self._resigned(flow, d, body=self.edit_amounts(d.body, lambda kind, minor: None)) for d in genuine]
        assert all(f.body != d.body for f, d in zip(forged, genuine, strict=True)), (
            "edit_amounts() found no amount in the provider's deliveries"
        )
        await self._assert_verifies(flow, forged)
        return forged

    async def test_a_report_without_amounts_never_marks_the_payment_paid_by_itself(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "amountless-1")
        forged = await self._without_amounts(flow, payment)
        if self._capabilities(flow).polling:
            # the provider cannot confirm the amounts either
            await self._unless_missing(
                self.make_next_call_unknown(flow), "the test class cannot make the provider's next call unknown"
            )
        with contextlib.suppress(ProviderError, WebhookError):
            await self._deliver(flow, forged)
        after = await flow.get_payment(payment.id)
        assert after.status not in _PAID, f"a report without amounts made the payment {after.status.value}"
        assert after.captured_amount is None

    async def test_a_report_without_amounts_is_malformed_where_the_providers_notices_carry_them(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        if not self._capabilities(flow).webhook_amounts:
            pytest.skip("the provider's notifications carry no amounts: the flow asks the provider for them")
        payment = await self._processing(flow, amount, "amountless-3")
        forged = await self._without_amounts(flow, payment)
        before = await self._snapshot(flow, payment.id)
        for delivery in forged:
            with pytest.raises(MalformedWebhook):
                await self._deliver(flow, [delivery])
        assert await self._snapshot(flow, payment.id) == before

    async def test_a_report_without_amounts_is_confirmed_only_by_the_providers_own_answer(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        self._require(flow, "polling", "the provider cannot be polled")
        payment = await self._processing(flow, amount, "amountless-2")
        forged = await self._without_amounts(flow, payment)
        with _recorded_calls(flow.provider(CODE)) as calls, contextlib.suppress(ProviderError, WebhookError):
            await self._deliver(flow, forged)
        after = await flow.get_payment(payment.id)
        if after.status not in _PAID:
            assert after.captured_amount is None
            return
        polls = [answer for operation, answer in calls if operation == "check_status"]
        assert polls, f"a report without amounts made the payment {after.status.value} without asking the provider"
        answer = polls[-1]
        assert isinstance(answer, ProviderUpdate)
        held = answer.captured if after.status is not PaymentStatus.AUTHORIZED else answer.authorized
        assert held is not None, "the payment was marked paid although the provider's answer carried no amount"
        recorded = after.captured_amount if after.status is not PaymentStatus.AUTHORIZED else after.authorized_amount
        assert recorded == held

    async def test_a_report_with_a_negative_amount_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        payment = await self._processing(flow, amount, "negative-1")
        genuine = await self._deliveries(flow, payment, Outcome.SUCCEEDED)
        forged = [
            self._resigned(flow, d, body=self.edit_amounts(d.body, lambda kind, m: -m if kind == "payment" else m))
            for d in genuine
        ]
        await self._assert_verifies(flow, forged)
        before = await self._snapshot(flow, payment.id)
        for delivery in forged:
            with pytest.raises(MalformedWebhook):
                await flow.handle_webhook(CODE, delivery.body, delivery.headers)
        assert await self._snapshot(flow, payment.id) == before, "a refused report changed the payment"

    async def test_a_report_with_a_negative_refund_amount_is_refused(self, flow: PaymentFlow, amount: Money) -> None:
        self._require(flow, "webhooks", "the provider sends no webhooks")
        self._require(flow, "partial_refund", "the provider does not refund in part")
        payment = await self._paid(flow, amount)
        first, _ = amount.allocate([1, 2])
        refund = await flow.refund(payment.id, amount=first)
        try:
            genuine = list(await self.refund_deliveries(flow, await flow.get_payment(payment.id), refund))
        except NotImplementedError:
            pytest.fail("the provider declares webhooks and refunds: the test class must implement refund_deliveries()")
        if not genuine:
            pytest.skip("the provider reports refunds only in its answers")
        forged = [
            self._resigned(flow, d, body=self.edit_amounts(d.body, lambda kind, m: -m if kind == "refund" else m))
            for d in genuine
        ]
        assert all(f.body != d.body for f, d in zip(forged, genuine, strict=True)), (
            "edit_amounts() found no refund amount in the provider's refund deliveries"
        )
        await self._assert_verifies(flow, forged)
        before = await self._snapshot(flow, payment.id)
        for delivery in forged:
            with pytest.raises(MalformedWebhook):
                await flow.handle_webhook(CODE, delivery.body, delivery.headers)
        assert await self._snapshot(flow, payment.id) == before, "a refused report changed the payment"

    # -- calls without an answer -----------------------------------------------------------

    async def test_a_call_that_was_not_sent_changes_nothing_and_may_be_retried(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        await self._unless_missing(
            self.make_next_call_not_sent(flow),
            "the test class cannot make the provider's next call fail before it is sent",
        )
        with pytest.raises(ProviderNotSent):
            await self.start_payment(flow, amount, "not-sent-1", idempotency_key="not-sent-1")
        for stored in await flow.list_payments(order_id="not-sent-1"):
            assert stored.status is PaymentStatus.PENDING
            assert stored.pending_call is None
            assert stored.external_id is None
        retried = await self.start_payment(flow, amount, "not-sent-1", idempotency_key="not-sent-1")
        assert retried.status is not PaymentStatus.PENDING
        assert retried.pending_call is None
        assert [p.id for p in await flow.list_payments(order_id="not-sent-1")] == [retried.id]

    async def test_a_call_with_an_unknown_outcome_is_settled_by_asking_never_by_sending_again(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        """A payment whose creation lost its answer is settled by a poll, never created twice; where the gateway
        holds it awaiting the customer (as it holds one started the same way), the poll leaves it unpaid."""
        self._require(flow, "polling", "the provider cannot be polled")
        answered = await self.start_payment(flow, amount, "unknown-0")  # started the same way, its answer kept
        await self._unless_missing(
            self.make_next_call_unknown(flow), "the test class cannot make the provider's next call's answer get lost"
        )
        with _recorded_calls(flow.provider(CODE)) as calls:
            with contextlib.suppress(ProviderOutcomeUnknown):
                await self.start_payment(flow, amount, "unknown-1", idempotency_key="unknown-1")
            (payment,) = await flow.list_payments(order_id="unknown-1")
            assert payment.status in OPEN
            assert payment.pending_call is not None
            assert payment.pending_call.unknown
            refreshed = await flow.refresh(payment.id)
            assert refreshed.pending_call is None
            if answered.status in OPEN:
                # the gateway holds this payment as it holds the other: awaiting the customer, unpaid
                assert refreshed.status not in _PAID, (
                    f"a poll made a payment the customer has not paid {refreshed.status.value}"
                )
                assert (refreshed.captured_amount, refreshed.authorized_amount) == (None, None), (
                    "a poll recorded money for a payment the customer has not paid"
                )
            with contextlib.suppress(ProviderError):
                await self.start_payment(flow, amount, "unknown-1", idempotency_key="unknown-1")
        assert [operation for operation, _ in calls].count("initiate") == 1, (
            "the payment was sent to the provider twice"
        )
        assert [p.id for p in await flow.list_payments(order_id="unknown-1")] == [payment.id]

    async def test_a_refund_whose_answer_was_lost_is_settled_by_asking_never_by_sending_again(
        self, flow: PaymentFlow, amount: Money
    ) -> None:
        """The provider's poll names the caller's refund, so the poll settles it: one refund, paid once."""
        self._require(flow, "refund", "the provider cannot refund")
        self._require(flow, "polls_report_refunds", "the provider's polls do not report refunds")
        paid = await self._paid(flow, amount, "unknown-refund-1")
        await self._unless_missing(
            self.make_next_call_unknown(flow), "the test class cannot make the provider's next call's answer get lost"
        )
        with _recorded_calls(flow.provider(CODE)) as calls:
            with contextlib.suppress(ProviderOutcomeUnknown):
                await flow.refund(paid.id, idempotency_key="unknown-refund-1")
            (refund,) = (await flow.get_payment(paid.id)).refunds
            refreshed = await flow.refresh(paid.id)
            again = await flow.refund(paid.id, idempotency_key="unknown-refund-1")
        assert [operation for operation, _ in calls].count("refund") == 1, "the refund was sent to the provider twice"
        assert [(r.id, r.status, r.amount) for r in refreshed.refunds] == [
            (refund.id, RefundStatus.SUCCEEDED, refund.amount)
        ], "the poll did not settle the caller's own refund (does it report paycore's refund id?)"
        assert refreshed.pending_call is None
        assert again.id == refund.id, "a retry under the refund's key made another refund"
