"""How a provider's report changes a payment: the rules of facts, in one place.

:func:`apply_update` takes a :class:`~paycore.changes.Change` and a
:class:`~paycore.records.ProviderUpdate` and applies what the provider said,
under the correctness rules:

* amounts and currency must match what the payment expects; a mismatch (an
  underpaid mobile-money transfer) is recorded and flags the payment for
  review, and never marks it paid;
* a stale or out-of-order report never moves a payment backwards: a trigger
  the state machine does not allow from the current status is ignored;
* a confirmation of money after the payment expired, failed or was canceled
  here is recorded, moves it to ``succeeded`` (the money is real) and flags it
  for review; a late *authorization* is recorded and flagged, without moving it;
* refunds are settled from the refunds' own reports, and the payment's status
  follows their total.
"""

from __future__ import annotations

from attrs import evolve

from paycore.changes import Change
from paycore.money import Money
from paycore.records import ProviderCall, ProviderUpdate, Refund, RefundUpdate, new_id
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason

__all__ = ["apply_update", "fail_refund", "settles_call"]

_CLOSED = frozenset({PaymentStatus.EXPIRED, PaymentStatus.CANCELED, PaymentStatus.FAILED})
_CAPTURED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
_TRIGGERS = {
    Outcome.FAILED: "fail",
    Outcome.CANCELED: "cancel",
    Outcome.EXPIRED: "expire",
}


def apply_update(change: Change, update: ProviderUpdate, *, capture_amount: Money | None = None) -> None:
    """Apply ``update`` to ``change``.

    ``capture_amount`` is what the flow asked the provider to capture, when the
    update answers that request (a partial capture captures less than the amount).
    """
    payment = change.payment
    if update.external_id and payment.external_id is None:
        change.set(external_id=update.external_id)
    if update.next_action is not None and update.next_action != payment.next_action:
        change.set(next_action=update.next_action)
    if update.fraud_status is not None:
        change.set_fraud(update.fraud_status, update.fraud_message)

    outcome = update.outcome
    if outcome is Outcome.PENDING:
        if change.can("send"):
            change.fire("send", message=update.message)
    elif outcome is Outcome.AUTHORIZED:
        _authorized(change, update)
    elif outcome is Outcome.SUCCEEDED:
        _succeeded(change, update, capture_amount)
    elif outcome is not None:
        trigger = _TRIGGERS[outcome]
        if change.can(trigger):
            change.fire(trigger, message=update.message)

    for refund_update in update.refunds:
        _refund(change, refund_update)
    sync_refund_status(change)


def _mismatch(change: Change, expected: Money, reported: Money, what: str) -> bool:
    if reported.currency == expected.currency and reported == expected:
        return False
    change.event("amount_mismatch", amount=reported, message=f"{what}: expected {expected}, reported {reported}")
    change.flag(ReviewReason.AMOUNT_MISMATCH, f"provider reported {what} {reported}, expected {expected}")
    return True


def _authorized(change: Change, update: ProviderUpdate) -> None:
    payment = change.payment
    reported = update.authorized or payment.amount
    if payment.status in _CLOSED:
        if not change.can("authorize") and payment.review_reason is not ReviewReason.LATE_CONFIRMATION:
            change.event("late_authorization", amount=reported, message=update.message)
            change.flag(
                ReviewReason.LATE_CONFIRMATION,
                f"provider authorized {reported} after the payment was {payment.status.value}",
            )
        return
    if not change.can("authorize"):
        return
    if _mismatch(change, payment.amount, reported, "authorized amount"):
        return
    change.set(authorized_amount=reported)
    change.fire("authorize", amount=reported, message=update.message)


def _succeeded(change: Change, update: ProviderUpdate, capture_amount: Money | None) -> None:
    payment = change.payment
    if payment.status in _CAPTURED:
        return
    if payment.status is PaymentStatus.AUTHORIZED:
        # Captured after an authorization: a partial capture is legitimate, above the hold is not.
        authorized = payment.authorized_amount or payment.amount
        expected = capture_amount or update.captured or authorized
        reported = update.captured or expected
        if reported.currency != authorized.currency or reported > authorized or not reported.is_positive():
            _mismatch(change, authorized, reported, "captured amount")
            return
        if capture_amount is not None and _mismatch(change, capture_amount, reported, "captured amount"):
            return
    else:
        reported = update.captured or payment.amount
        if _mismatch(change, payment.amount, reported, "paid amount"):
            return
    change.set(captured_amount=reported, authorized_amount=payment.authorized_amount or reported)
    if payment.status in _CLOSED:
        before = payment.status.value
        change.fire("confirm_late", amount=reported, message=update.message)
        change.flag(
            ReviewReason.LATE_CONFIRMATION,
            f"provider confirmed {reported} after the payment was {before} here",
        )
    elif change.can("succeed"):
        change.fire("succeed", amount=reported, message=update.message)


def _refund(change: Change, update: RefundUpdate) -> None:
    payment = change.payment
    refund = next(
        (
            r
            for r in payment.refunds
            if (update.refund_id is not None and r.id == update.refund_id)
            or (update.external_id is not None and r.external_id == update.external_id)
        ),
        None,
    )
    if refund is None:
        _refund_made_elsewhere(change, update)
        return
    replaced = refund
    if update.external_id and refund.external_id is None:
        replaced = evolve(replaced, external_id=update.external_id)
    if refund.status is RefundStatus.PENDING and update.status is not RefundStatus.PENDING:
        confirmed = update.amount is not None and update.status is RefundStatus.SUCCEEDED
        if confirmed and _mismatch(change, refund.amount, update.amount, f"refund {refund.id} amount"):  # type: ignore[arg-type]
            return
        replaced = evolve(replaced, status=update.status, updated_at=change.now)
        change.event(
            "refund_status_changed",
            from_status=refund.status.value,
            to_status=update.status.value,
            amount=refund.amount,
            refund_id=refund.id,
        )
    if replaced != refund:
        change.set(refunds=tuple(replaced if r.id == refund.id else r for r in payment.refunds))


def _refund_made_elsewhere(change: Change, update: RefundUpdate) -> None:
    """A refund the provider made without paycore (from its dashboard): record it if it fits."""
    payment = change.payment
    if update.amount is None or update.status is RefundStatus.FAILED or payment.status not in _CAPTURED:
        return
    if update.amount.currency != payment.currency or update.amount > payment.refundable_amount:
        change.event("amount_mismatch", amount=update.amount, message="refund above the refundable amount")
        change.flag(
            ReviewReason.AMOUNT_MISMATCH,
            f"provider reported a refund of {update.amount}; only {payment.refundable_amount} was refundable",
        )
        return
    refund = Refund(
        id=new_id("re"),
        payment_id=payment.id,
        amount=update.amount,
        status=update.status,
        reason="made at the provider",
        external_id=update.external_id,
        created_at=change.now,
        updated_at=change.now,
    )
    change.set(refunds=(*payment.refunds, refund))
    change.event("refund_created", to_status=refund.status.value, amount=refund.amount, refund_id=refund.id)


def sync_refund_status(change: Change) -> None:
    """Move the payment to ``partially_refunded``/``refunded`` as its succeeded refunds say."""
    payment = change.payment
    if payment.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED):
        return
    refunded = payment.refunded_amount
    captured = payment.captured_amount
    if captured is None or not refunded.is_positive():
        return
    if refunded >= captured:
        change.fire("refund_fully", amount=refunded)
    elif payment.status is PaymentStatus.SUCCEEDED:
        change.fire("refund_partially", amount=refunded)


def fail_refund(change: Change, refund: Refund, message: str) -> None:
    """Mark ``refund`` failed (its amount becomes refundable again) and record why."""
    change.set(
        refunds=tuple(
            evolve(r, status=RefundStatus.FAILED, updated_at=change.now) if r.id == refund.id else r
            for r in change.payment.refunds
        )
    )
    change.event(
        "refund_status_changed",
        from_status=refund.status.value,
        to_status=RefundStatus.FAILED.value,
        amount=refund.amount,
        refund_id=refund.id,
        message=message,
    )


def settles_call(call: ProviderCall, update: ProviderUpdate, change: Change, *, polled: bool) -> bool:
    """True when ``update`` answers the recorded ``call`` definitively.

    A poll (``check_status``) that reports the payment but not a refund that
    was sent means the provider never got the refund: that refund is failed.
    """
    if call.operation == "refund":
        refund = next((r for r in change.payment.refunds if r.id == call.refund_id), None)
        if refund is None or refund.status is not RefundStatus.PENDING:
            return True
        mentioned = any(u.refund_id == call.refund_id for u in update.refunds)
        if polled and update.outcome is not None and not mentioned:
            fail_refund(change, refund, "the provider has no record of this refund")
            return True
        return False
    if call.operation == "capture":
        return update.outcome is not None and update.outcome is not Outcome.PENDING
    return update.outcome is not None
