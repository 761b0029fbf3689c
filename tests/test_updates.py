"""The rules of facts: how one provider report changes a payment (``paycore.updates``)."""

from __future__ import annotations

from typing import Any

from paycore import Money, ProviderUpdate, RefundUpdate
from paycore.changes import Change
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.records import BASE_TIME, make_payment
from paycore.updates import apply_update

XOF_5000 = Money.of("5000", "XOF")


def _apply(payment: Payment, **update: Any) -> Payment:
    change = Change(payment, cause="webhook", now=BASE_TIME)
    apply_update(change, ProviderUpdate(**update))
    return change.result() or payment


def _paid() -> Payment:
    return make_payment(status=PaymentStatus.SUCCEEDED, authorized_amount=XOF_5000, captured_amount=XOF_5000)


def test_a_success_report_without_amounts_captures_the_payments_amount() -> None:
    after = _apply(make_payment(status=PaymentStatus.PROCESSING), outcome=Outcome.SUCCEEDED)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == XOF_5000


def test_a_pending_report_sends_a_pending_payment_and_nothing_more() -> None:
    after = _apply(make_payment(), outcome=Outcome.PENDING, external_id="ext-1")
    assert after.status is PaymentStatus.PROCESSING
    assert after.external_id == "ext-1"


def test_a_report_never_replaces_a_known_external_id() -> None:
    after = _apply(make_payment(external_id="ext-1"), external_id="ext-2")
    assert after.external_id == "ext-1"


def test_a_capture_above_the_authorization_is_a_mismatch() -> None:
    authorized = make_payment(status=PaymentStatus.AUTHORIZED, authorized_amount=XOF_5000)
    after = _apply(authorized, outcome=Outcome.SUCCEEDED, captured=Money.of("5001", "XOF"))
    assert after.status is PaymentStatus.AUTHORIZED
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


def test_a_capture_below_the_authorization_is_a_legitimate_partial_capture() -> None:
    authorized = make_payment(status=PaymentStatus.AUTHORIZED, authorized_amount=XOF_5000)
    after = _apply(authorized, outcome=Outcome.SUCCEEDED, captured=Money.of("4000", "XOF"))
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == Money.of("4000", "XOF")
    assert not after.needs_review


def test_an_authorization_of_another_amount_is_a_mismatch() -> None:
    after = _apply(
        make_payment(status=PaymentStatus.PROCESSING), outcome=Outcome.AUTHORIZED, authorized=Money.of("4999", "XOF")
    )
    assert after.status is PaymentStatus.PROCESSING
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


def test_a_refund_made_at_the_provider_is_recorded_once_however_often_it_is_reported() -> None:
    report = RefundUpdate(RefundStatus.SUCCEEDED, external_id="rf-1", amount=Money.of("1000", "XOF"))
    once = _apply(_paid(), refunds=(report,))
    twice = _apply(once, refunds=(report,))
    assert len(twice.refunds) == 1
    assert twice.refunded_amount == Money.of("1000", "XOF")
    assert twice.status is PaymentStatus.PARTIALLY_REFUNDED


def test_a_refund_above_what_is_refundable_is_flagged_not_recorded() -> None:
    report = RefundUpdate(RefundStatus.SUCCEEDED, external_id="rf-1", amount=Money.of("5001", "XOF"))
    after = _apply(_paid(), refunds=(report,))
    assert after.refunds == ()
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


def test_a_settled_refund_never_changes_again() -> None:
    report = RefundUpdate(RefundStatus.SUCCEEDED, external_id="rf-1", amount=Money.of("1000", "XOF"))
    refunded = _apply(_paid(), refunds=(report,))
    (refund,) = refunded.refunds
    after = _apply(refunded, refunds=(RefundUpdate(RefundStatus.FAILED, refund_id=refund.id),))
    assert after.refund(refund.id).status is RefundStatus.SUCCEEDED
    assert after.status is PaymentStatus.PARTIALLY_REFUNDED


def test_nothing_new_changes_nothing() -> None:
    paid = _paid()
    change = Change(paid, cause="webhook", now=BASE_TIME)
    apply_update(change, ProviderUpdate(outcome=Outcome.SUCCEEDED, captured=XOF_5000))
    assert change.result() is None
