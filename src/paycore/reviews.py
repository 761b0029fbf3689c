"""What a report raises for an operator: an event that says what was seen, and the payment flagged for review.

A report paycore cannot take as it stands (an amount other than expected, money without its
amount, a refund it cannot account for) never moves money: it is recorded as an event, and the
payment is flagged (:attr:`~paycore.records.Payment.needs_review`, with its
:class:`~paycore.status.ReviewReason`). The same fact reported again (another delivery, the
next poll) flags nothing new: an operator is told once of each fact.
"""

from __future__ import annotations

from typing import Any

from paycore.changes import Change
from paycore.disputes import DisputeUpdate
from paycore.money import Money
from paycore.status import ReviewReason

__all__ = ["flag_missing_amount", "flag_once", "flag_other_payments_report", "mismatch", "tell_dispute"]


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
