"""What a report raises for an operator: an event that says what was seen, and the payment flagged for review.

A report paycore cannot take as it stands (an amount other than expected, money without its
amount, a refund it cannot account for) never moves money: it is recorded as an event, and the
payment is flagged (:attr:`~paycore.records.Payment.needs_review`, with its
:class:`~paycore.status.ReviewReason`). The same fact reported again (another delivery, the
next poll) flags nothing new: an operator is told once of each fact.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from paycore.changes import Change
from paycore.disputes import DisputeUpdate
from paycore.money import Money
from paycore.records import RefundUpdate
from paycore.status import ReviewReason

__all__ = [
    "flag_missing_amount",
    "flag_once",
    "flag_other_payments_report",
    "mismatch",
    "tell_dispute",
    "tell_refund_of_refused_capture",
    "tell_refund_of_uncaptured",
]


def flag_once(
    change: Change, reason: ReviewReason, kind: str, message: str, *, unique: bool = False, **event: Any
) -> None:
    """The event ``kind`` (with ``message`` and ``event``'s fields) and a flag for ``reason``, unless the
    payment awaits review for this very fact already (its ``message`` is in the review's).

    ``unique``: the message names a fact that can happen once to the payment (its captured amount,
    refund ``re_...``'s): told once ever, a review resolved since included. Any other message
    (money reported without its amount) may be a new fact in the same words, told again once
    the review it was told in is resolved. A payment flagged for another fact meanwhile keeps it
    (see :meth:`~paycore.changes.Change.flag`)."""
    if message in change.value("review_message") and (unique or change.value("needs_review")):
        return
    change.event(kind, message=message, **event)
    change.flag(reason, message)


def flag_missing_amount(change: Change, message: str) -> None:
    """Flag the payment: the provider reported money without saying how much."""
    flag_once(change, ReviewReason.AMOUNT_MISMATCH, "amount_missing", message)


def flag_other_payments_report(change: Change, message: str) -> None:
    """Flag the payment: the provider's report names another payment, or a reference another payment holds."""
    flag_once(change, ReviewReason.UNKNOWN_OUTCOME, "report_of_another_payment", message, unique=True)


def mismatch(change: Change, expected: Money, reported: Money, what: str) -> bool:
    """True, with an ``amount_mismatch`` event and the payment flagged (once), when ``reported`` is not ``expected``."""
    if reported.currency == expected.currency and reported == expected:
        return False
    message = f"{what}: expected {expected}, reported {reported}"
    flag_once(change, ReviewReason.AMOUNT_MISMATCH, "amount_mismatch", message, unique=True, amount=reported)
    return True


def tell_dispute(change: Change, dispute: DisputeUpdate) -> None:
    """Record what the provider says of a dispute of the payment and flag it for an operator, once for each state of
    each dispute; no amount or status of the payment changes (see :mod:`paycore.disputes`)."""
    disputed = f"{dispute.amount} " if dispute.amount is not None else ""
    why = f", reason {dispute.reason}" if dispute.reason else ""
    message = (
        f"the payer disputed {disputed}with their bank: dispute {dispute.dispute_id} is {dispute.status}{why}; "
        "answer it at the provider (paycore's amounts do not change)"
    )
    flag_once(change, ReviewReason.DISPUTE, "dispute", message, unique=True, amount=dispute.amount)


def tell_refund_of_uncaptured(change: Change, update: RefundUpdate, *, told_before: Collection[str] = ()) -> None:
    """Tell an operator, once per refund, of a refund the provider reports of a payment that ended here without
    its money (expired, failed, canceled): the provider may have taken the money after all. Nothing is recorded.

    Waiting silently for the capture it refunds could mean waiting for ever (a delivery refused again and
    again). At a provider whose polls list every refund, the report is acknowledged: a late confirmation, when
    it comes, records the capture, and the poll that follows it the refund. At another, nothing else would
    record the refund, so the report still waits for the capture, told meanwhile
    (:attr:`~paycore.updates.Applied.told`). ``told_before``: the messages of the payment's earlier
    ``refund_of_uncaptured`` events, for a caller that tells again at each delivery of the report."""
    payment = change.payment
    named = update.external_id or update.refund_id
    message = (
        f"provider reported refund {named or '(no id)'} of {update.amount or 'an unknown amount'} of a payment "
        f"{payment.status.value} here, whose capture it never reported: not recorded"
    )
    if message in told_before:
        return
    flag_once(
        change,
        ReviewReason.LATE_CONFIRMATION,
        "refund_of_uncaptured",
        message,
        unique=named is not None,
        amount=update.amount,
    )


def tell_refund_of_refused_capture(change: Change, update: RefundUpdate) -> None:
    """Tell an operator, once per refund, of a refund reported with a capture of the payment that was refused
    (another amount or currency than the payment's: flagged): nothing is recorded, since paycore knows of no capture
    it refunds, and the delivery is acknowledged. Waiting for the capture would wait for this very report, refused
    again at every delivery; once an operator settled the payment, a poll finds the refund at a provider whose
    polls list refunds, and the operator records it at another."""
    named = update.external_id or update.refund_id
    message = (
        f"provider reported refund {named or '(no id)'} of {update.amount or 'an unknown amount'} with a capture "
        f"that does not match the payment: not recorded"
    )
    flag_once(
        change,
        ReviewReason.AMOUNT_MISMATCH,
        "refund_of_uncaptured",
        message,
        unique=named is not None,
        amount=update.amount,
    )
