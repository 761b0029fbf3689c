"""The rules of facts: how one provider report changes a payment (``paycore.updates``)."""

from __future__ import annotations

from typing import Any

import pytest
from attrs import evolve

from paycore import Money, ProviderUpdate, RefundUpdate
from paycore.changes import Change
from paycore.records import NextAction, Payment, Refund
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.records import BASE_TIME, make_payment
from paycore.updates import apply_report

XOF_5000 = Money.of("5000", "XOF")


def _apply(payment: Payment, **update: Any) -> Payment:
    change = Change(payment, cause="webhook", now=BASE_TIME)
    apply_report(change, ProviderUpdate(**update))
    return change.result() or payment


def _paid() -> Payment:
    return make_payment(status=PaymentStatus.SUCCEEDED, authorized_amount=XOF_5000, captured_amount=XOF_5000)


@pytest.mark.parametrize("outcome", [Outcome.SUCCEEDED, Outcome.AUTHORIZED])
def test_a_money_report_without_its_amount_never_moves_the_payment(outcome: Outcome) -> None:
    payment = make_payment(status=PaymentStatus.PROCESSING)
    change = Change(payment, cause="webhook", now=BASE_TIME)
    applied = apply_report(change, ProviderUpdate(outcome=outcome))
    assert applied.missing_amount
    assert change.result() is None


def test_a_success_report_with_its_amount_captures_it() -> None:
    after = _apply(make_payment(status=PaymentStatus.PROCESSING), outcome=Outcome.SUCCEEDED, captured=XOF_5000)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == XOF_5000


def test_a_refund_success_without_its_amount_leaves_the_refund_pending() -> None:
    payment = evolve(_paid(), refunds=(Refund(id="re_1", payment_id="pay_1", amount=Money.of("1000", "XOF")),))
    change = Change(payment, cause="webhook", now=BASE_TIME)
    applied = apply_report(change, ProviderUpdate(refunds=(RefundUpdate(RefundStatus.SUCCEEDED, refund_id="re_1"),)))
    assert applied.missing_amount
    assert change.result() is None


def test_a_negative_outcome_waits_while_a_call_is_in_flight() -> None:
    change = Change(make_payment(status=PaymentStatus.PROCESSING), cause="poll", now=BASE_TIME)
    applied = apply_report(change, ProviderUpdate(outcome=Outcome.FAILED), settle=False)
    assert applied.deferred
    assert change.result() is None


def test_a_next_action_is_kept_only_while_the_payment_awaits_the_customer() -> None:
    action = NextAction("redirect", url="https://pay.example.test/x")
    after = _apply(_paid(), outcome=Outcome.PENDING, next_action=action)
    assert after.next_action is None


@pytest.mark.parametrize(
    ("report", "status"),
    [
        ({"outcome": Outcome.SUCCEEDED, "captured": XOF_5000}, PaymentStatus.SUCCEEDED),
        ({"outcome": Outcome.AUTHORIZED, "authorized": XOF_5000}, PaymentStatus.AUTHORIZED),
        ({"outcome": Outcome.FAILED}, PaymentStatus.FAILED),
        ({"outcome": Outcome.EXPIRED}, PaymentStatus.EXPIRED),
    ],
)
def test_a_next_action_goes_once_the_payment_awaits_the_customer_no_more(
    report: dict[str, Any], status: PaymentStatus
) -> None:
    """A client secret or a checkout page is the customer's to use while they are awaited, and no one's after."""
    action = NextAction("redirect", url="https://pay.example.test/x")
    awaiting = make_payment(status=PaymentStatus.PROCESSING, next_action=action)
    assert _apply(awaiting, outcome=Outcome.PENDING).next_action == action  # still awaited: kept
    after = _apply(awaiting, **report)
    assert (after.status, after.next_action) == (status, None)


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
    apply_report(change, ProviderUpdate(outcome=Outcome.SUCCEEDED, captured=XOF_5000))
    assert change.result() is None


def test_a_call_marked_unknown_again_for_the_same_reason_changes_nothing() -> None:
    """The same answer applied twice (its write run again after a cancel) tells no second ``provider_call_unknown``."""
    from datetime import timedelta

    from paycore.calls import CallOperation, ProviderCall
    from paycore.settling import mark_unknown

    call = ProviderCall.start(CallOperation.CAPTURE, now=BASE_TIME, lease=timedelta(seconds=30))
    first = Change(make_payment(status=PaymentStatus.AUTHORIZED, pending_call=call), cause="api", now=BASE_TIME)
    mark_unknown(first, call, "the answer did not say how much")
    marked = first.result()
    assert marked is not None
    assert marked.pending_call is not None
    again = Change(marked, cause="api", now=BASE_TIME)
    mark_unknown(again, marked.pending_call, "the answer did not say how much")
    assert (again.result(), again.events) == (None, [])
    other = Change(marked, cause="api", now=BASE_TIME)
    mark_unknown(other, marked.pending_call, "no answer within 30s")
    assert [event.kind for event in other.events] == ["provider_call_unknown"]
