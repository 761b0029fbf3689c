"""How a provider's report changes a payment: the rules of facts, in one place.

:func:`apply_report` takes a :class:`~paycore.changes.Change` and a
:class:`~paycore.records.ProviderUpdate` and applies what the provider said,
under the correctness rules:

* **reports carry their amounts**: an outcome that moves money (authorized,
  succeeded, a refund succeeded) without its amount never moves the payment;
  the report says so (:attr:`Applied.missing_amount`) and the caller flags the
  payment (a poll's answer) or refuses the report (a webhook's, at the door:
  :func:`paycore.webhooks.money_without_amount`);
* amounts and currency must match what the payment expects; a mismatch (an
  underpaid mobile-money transfer) is recorded and flags the payment for
  review, and never marks it paid;
* a stale or out-of-order report never moves a payment backwards: a trigger
  the state machine does not allow from the current status is ignored; the
  customer's next action is kept only while the payment awaits the customer;
* while another caller's provider call is in flight (``settle=False``), facts of money are
  recorded, but negative outcomes (failed, canceled, expired, not found) and the failure of
  that call's refund wait, as does a refund reported before its capture (:attr:`Applied.deferred`);
* a confirmation of money after the payment expired, failed or was canceled
  here moves it to ``succeeded`` (the money is real) and flags it for review;
  a late *authorization* is recorded and flagged, without moving it;
* refunds are settled from the refunds' own reports, and the payment's status
  follows their total; a refund reported failed after it succeeded flags the payment.

Whether a report settles a written-down provider call is :mod:`paycore.settling`'s.
"""

from __future__ import annotations

from typing import Any, Final

from attrs import define

from paycore import fsm
from paycore.changes import Change, replace_refund
from paycore.money import Money
from paycore.records import MAX_REFERENCES, ProviderUpdate, Refund, RefundUpdate, new_id
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason

__all__ = [
    "NEGATIVE_OUTCOMES",
    "Applied",
    "apply_report",
    "fail_refund",
    "flag_missing_amount",
    "names_refund",
    "sync_refund_status",
]

NEGATIVE_OUTCOMES: Final = frozenset({Outcome.FAILED, Outcome.CANCELED, Outcome.EXPIRED, Outcome.NOT_FOUND})
"""What a provider reports of a payment that did not pay."""
_TRIGGERS = {
    Outcome.FAILED: "fail",
    Outcome.CANCELED: "cancel",
    Outcome.EXPIRED: "expire",
}


@define
class Applied:
    """What :func:`apply_report` could not apply, for its caller to act on."""

    missing_amount: bool = False
    """A money outcome came without its amount: flag the payment, or refuse the report."""
    deferred: bool = False
    """A fact waited: a negative outcome for the call in flight, or a refund for its capture's report."""


def apply_report(
    change: Change,
    update: ProviderUpdate,
    *,
    settle: bool = True,
    expected_capture: Money | None = None,
    protected_refund: str | None = None,
) -> Applied:
    """Apply ``update`` to ``change``; return what was left unapplied.

    ``settle=False`` while another caller's provider call is in flight (see
    :mod:`paycore.calls`); ``expected_capture`` is what was asked to be
    captured when a capture call is outstanding (a partial capture captures
    less than authorized); ``protected_refund`` is the refund of the call in
    flight, which only its owner may fail.
    """
    applied = Applied()
    # Fields are read from the change (``change.value``), never from a copy of the payment as changed so far:
    # the unit of work copies the payment once, when it builds the version to store.
    if update.external_id is not None or update.references:
        _record_references(change, update)
    if update.provider_state is not None and update.provider_state != change.value("provider_state"):
        change.set(provider_state=update.provider_state)
    if (
        update.next_action is not None
        and change.status in fsm.OPEN
        and update.next_action != change.value("next_action")
    ):
        change.set(next_action=update.next_action)
    if update.fraud_status is not None:
        change.set_fraud(update.fraud_status, update.fraud_message)

    outcome = update.outcome
    if outcome in NEGATIVE_OUTCOMES and not settle and change.can(_TRIGGERS.get(outcome, "expire")):  # could apply
        applied.deferred = True
    elif outcome is Outcome.PENDING:
        if change.can("send"):
            change.fire("send", message=update.message)
    elif outcome is Outcome.AUTHORIZED:
        applied.missing_amount |= _authorized(change, update)
    elif outcome is Outcome.SUCCEEDED:
        applied.missing_amount |= _succeeded(change, update, expected_capture)
    elif outcome is Outcome.NOT_FOUND:
        _not_found(change, update)
    elif outcome is not None:
        trigger = _TRIGGERS[outcome]
        if change.can(trigger):
            change.fire(trigger, message=update.message)

    for refund_update in update.refunds:
        if (
            not settle
            and refund_update.status is RefundStatus.FAILED
            and names_refund(refund_update, protected_refund, change)
        ):
            applied.deferred = True
            continue
        applied.missing_amount |= _refund(change, refund_update, applied)
    sync_refund_status(change)
    return applied


def _record_references(change: Change, update: ProviderUpdate) -> None:
    """Keep every reference the provider reported; the first one stays the payment's ``external_id``."""
    external_id: str | None = change.value("external_id")
    known: tuple[str, ...] = change.value("references") or ((external_id,) if external_id else ())
    reported = [r for r in (update.external_id, *update.references) if r]
    new: list[str] = []
    for reference in reported:
        if reference not in known and reference not in new:
            new.append(reference)
    if external_id is None and reported:
        change.set(external_id=reported[0])
    if new:
        change.set(references=(*known, *new)[:MAX_REFERENCES])


def names_refund(update: RefundUpdate, refund_id: str | None, change: Change) -> bool:
    """True when ``update`` reports the refund ``refund_id`` of the payment (by its id or its external id)."""
    if refund_id is None:
        return False
    if update.refund_id == refund_id:
        return True
    external = next((r.external_id for r in change.value("refunds") if r.id == refund_id), None)
    return external is not None and update.external_id == external


def flag_missing_amount(change: Change, message: str) -> None:
    """Flag the payment: the provider reported money without saying how much."""
    if change.value("review_reason") is ReviewReason.AMOUNT_MISMATCH and change.value("needs_review"):
        return
    change.event("amount_missing", message=message)
    change.flag(ReviewReason.AMOUNT_MISMATCH, message)


def _mismatch(change: Change, expected: Money, reported: Money, what: str) -> bool:
    if reported.currency == expected.currency and reported == expected:
        return False
    change.event("amount_mismatch", amount=reported, message=f"{what}: expected {expected}, reported {reported}")
    change.flag(ReviewReason.AMOUNT_MISMATCH, f"provider reported {what} {reported}, expected {expected}")
    return True


def _authorized(change: Change, update: ProviderUpdate) -> bool:
    payment = change.payment
    reported = update.authorized
    if payment.status in fsm.CLOSED:
        if not change.can("authorize") and payment.review_reason is not ReviewReason.LATE_CONFIRMATION:
            change.event("late_authorization", amount=reported, message=update.message)
            change.flag(
                ReviewReason.LATE_CONFIRMATION,
                f"provider authorized {reported or 'an unknown amount'} after the payment was {payment.status.value}",
            )
        return False
    if not change.can("authorize"):
        return False
    if reported is None:
        return True
    if _mismatch(change, payment.amount, reported, "authorized amount"):
        return False
    change.set(authorized_amount=reported)
    change.fire("authorize", amount=reported, message=update.message)
    return False


def _succeeded(change: Change, update: ProviderUpdate, expected_capture: Money | None) -> bool:
    status = change.status
    if status in fsm.CAPTURED:
        return False
    reported = update.captured
    if reported is None:
        return True
    amount: Money = change.value("amount")
    authorized_amount: Money | None = change.value("authorized_amount")
    if status is PaymentStatus.AUTHORIZED:
        # Captured after an authorization: a partial capture is legitimate, above the hold is not.
        authorized = authorized_amount or amount
        if reported.currency != authorized.currency or reported > authorized or not reported.is_positive():
            _mismatch(change, authorized, reported, "captured amount")
            return False
        if expected_capture is not None and _mismatch(change, expected_capture, reported, "captured amount"):
            return False
        change.set(captured_amount=reported)
        change.fire("capture", amount=reported, message=update.message)
        return False
    if _mismatch(change, amount, reported, "paid amount"):
        return False
    change.set(captured_amount=reported, authorized_amount=authorized_amount or reported)
    if status in fsm.CLOSED:
        before = status.value
        change.fire("confirm_late", amount=reported, message=update.message)
        change.flag(
            ReviewReason.LATE_CONFIRMATION,
            f"provider confirmed {reported} after the payment was {before} here",
        )
    elif change.can("succeed"):
        change.fire("succeed", amount=reported, message=update.message)
    return False


def _not_found(change: Change, update: ProviderUpdate) -> None:
    """The provider has no record of the payment (and no call of ours is in flight)."""
    if change.status in fsm.OPEN and change.can("expire"):
        change.fire("expire", message=update.message or "the provider has no record of this payment")


def _refund(change: Change, update: RefundUpdate, applied: Applied) -> bool:
    refunds: tuple[Refund, ...] = change.value("refunds")
    refund = None
    for candidate in refunds:
        if (update.refund_id is not None and candidate.id == update.refund_id) or (
            update.external_id is not None and candidate.external_id == update.external_id
        ):
            refund = candidate
            break
    if refund is None and update.external_id is None and update.refund_id is not None:  # see _refund_made_elsewhere
        refund = next((r for r in refunds if r.external_id == update.refund_id), None)
    if refund is None:
        return _refund_made_elsewhere(change, update, applied)
    if refund.status is RefundStatus.SUCCEEDED and update.status is RefundStatus.FAILED:
        _refund_reversed(change, refund)
        return False
    changes: dict[str, Any] = {}
    if update.external_id and refund.external_id is None:
        changes["external_id"] = update.external_id
    if refund.status is RefundStatus.PENDING and update.status is not RefundStatus.PENDING:
        if update.status is RefundStatus.SUCCEEDED:
            if update.amount is None:
                return True
            if _mismatch(change, refund.amount, update.amount, f"refund {refund.id} amount"):
                return False
        changes["status"] = update.status
        changes["updated_at"] = change.now
        change.event(
            "refund_status_changed",
            from_status=refund.status._value_,  # the member's value, without Enum.value's Python-level call
            to_status=update.status._value_,
            amount=refund.amount,
            refund_id=refund.id,
        )
    if changes:
        replaced = replace_refund(refund, changes)
        change.set(refunds=tuple(replaced if r.id == refund.id else r for r in refunds))
    return False


def _refund_reversed(change: Change, refund: Refund) -> None:
    """A refund the provider reports failed after it succeeded (a card that could not take it back).

    Its record stays as it was, and with it the payment's refunded amount and status, which never
    move backwards; an operator is told, once, that the customer was not paid back after all."""
    if change.value("needs_review") and change.value("review_reason") is ReviewReason.REFUND_REVERSED:
        return
    message = f"the provider reports refund {refund.id} of {refund.amount} failed after it succeeded"
    change.event("refund_reversed", amount=refund.amount, refund_id=refund.id, message=message)
    change.flag(ReviewReason.REFUND_REVERSED, message)


def _refund_made_elsewhere(change: Change, update: RefundUpdate, applied: Applied) -> bool:
    """A refund the provider made without paycore (from its dashboard): recorded if it fits, under the
    provider's id for it (its external id, else the refund id it gave), which its later reports match."""
    payment = change.payment
    if update.status is RefundStatus.FAILED:
        return False
    if payment.status not in fsm.CAPTURED:  # reported before the capture it refunds: it waits for that report
        applied.deferred = True
        return False
    if update.amount is None:
        return update.status is RefundStatus.SUCCEEDED
    if (
        update.amount.currency != payment.currency
        or not update.amount.is_positive()
        or update.amount > payment.refundable_amount
    ):
        change.event("amount_mismatch", amount=update.amount, message="refund above the refundable amount")
        change.flag(
            ReviewReason.AMOUNT_MISMATCH,
            f"provider reported a refund of {update.amount}; only {payment.refundable_amount} was refundable",
        )
        return False
    refund = Refund(
        id=new_id("re"),
        payment_id=payment.id,
        amount=update.amount,
        status=update.status,
        reason="made at the provider",
        external_id=update.external_id or update.refund_id,
        created_at=change.now,
        updated_at=change.now,
    )
    change.set(refunds=(*payment.refunds, refund))
    change.event("refund_created", to_status=refund.status.value, amount=refund.amount, refund_id=refund.id)
    return False


def sync_refund_status(change: Change) -> None:
    """Move the payment to ``partially_refunded``/``refunded`` as its succeeded refunds say."""
    if not change.can("refund_partially"):
        return
    captured: Money | None = change.value("captured_amount")
    succeeded = [r.amount for r in change.value("refunds") if r.status is RefundStatus.SUCCEEDED]
    if captured is None or not succeeded:
        return
    refunded = Money.sum(succeeded, change.original.currency)
    if not refunded.is_positive():
        return
    if refunded >= captured:
        change.fire("refund_fully", amount=refunded)
    elif change.status is PaymentStatus.SUCCEEDED:
        change.fire("refund_partially", amount=refunded)


def fail_refund(change: Change, refund: Refund, message: str) -> None:
    """Mark ``refund`` failed (its amount becomes refundable again) and record why."""
    change.set(
        refunds=tuple(
            replace_refund(r, {"status": RefundStatus.FAILED, "updated_at": change.now}) if r.id == refund.id else r
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
