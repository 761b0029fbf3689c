"""What an admin action did to one payment, read from what the flow returned.

The flow does not raise when a provider declines a capture, a cancel or a
refund, nor when the provider's answer is lost: it returns the payment still
authorized (a lost answer leaves the call written down as unknown), or the
refund failed or pending. So the admin counts an action done only when its
result says so, and tells the operator what happened to each other payment:
declined, outcome unknown (it will be checked with the provider), awaiting
the provider, or flagged for review. Settling a pending refund is told per
refund: settled, no longer pending (settled meanwhile), or left pending for
not having been on the confirmation page. Settling an open payment leaves a
flag for review as it was: the operator is told to resolve it once checked.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen
from django.contrib import messages

from paycore.calls import CallOperation, ProviderCall
from paycore.records import Payment, Refund
from paycore.status import PaymentStatus, RefundStatus

__all__ = [
    "DONE",
    "ActionOutcome",
    "cancel_outcome",
    "capture_outcome",
    "completed",
    "payment_settled_outcome",
    "refund_not_listed",
    "refund_not_pending",
    "refund_outcome",
    "settle_outcome",
]

CAPTURED_STATUSES: Final = frozenset(
    {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)
"""Statuses of a payment whose money was captured (a partial capture is ``succeeded`` too)."""


@frozen
class ActionOutcome:
    """What one admin action did to one payment.

    ``done`` counts it in the "Captured N payment(s)." line; ``message``, when
    not empty, is told to the operator on its own, at ``level``; ``change``,
    when not empty, is what the audit trail records the staff user did to the
    payment (:mod:`paycore_django.admin_audit`): empty when the payment was not
    changed.
    """

    done: bool
    message: str = ""
    level: int = messages.SUCCESS
    change: str = ""
    change_id: str = ""
    """What names ``change`` in the payment's history (the number of its events once changed, the refund made):
    two requests that report one change (a form submitted twice at once, the second replaying the first) record it
    once. Empty: the change is recorded as it is reported."""


DONE: Final = ActionOutcome(done=True)
"""The action did what it was asked, with nothing more to say."""


def completed(result: object) -> ActionOutcome:
    """:data:`DONE`, whatever ``result``: for the actions whose call either acts or raises (refresh, review)."""
    return DONE


def capture_outcome(payment: Payment) -> ActionOutcome:
    """What a capture did, from the payment it returned: done only once its money is captured."""
    if payment.status in CAPTURED_STATUSES:
        return _done(payment, "captured")
    return _not_done(payment, CallOperation.CAPTURE, "Not captured")


ENDED_UNPAID: Final = frozenset({PaymentStatus.EXPIRED, PaymentStatus.FAILED})
"""Final statuses of a payment that took no money: a cancel that finds one ended has nothing left to do."""


def cancel_outcome(payment: Payment) -> ActionOutcome:
    """What a cancel did, from the payment it returned: done once the payment is canceled, or found ended
    without money (expired or failed at the provider: nothing to cancel, which the operator is told)."""
    if payment.status is PaymentStatus.CANCELED:
        return _done(payment, "canceled")
    if payment.status in ENDED_UNPAID and payment.pending_call is None:
        return ActionOutcome(True, f"Nothing to cancel: payment {payment.id} is {payment.status.value}.", messages.INFO)
    return _not_done(payment, CallOperation.CANCEL, "Not canceled")


def refund_outcome(refund: Refund, payment: Payment | None) -> ActionOutcome:
    """What a refund did, from the refund it returned and its payment read afterwards (``None``: unread).

    Done only once the refund succeeded; a pending refund was sent and awaits
    the provider, or its answer was lost and it will be checked.
    """
    amount = refund.amount.display()
    if refund.status is RefundStatus.SUCCEEDED:
        return DONE if payment is None else _done(payment, "refunded")
    if refund.status is RefundStatus.FAILED:
        return ActionOutcome(
            False,
            f"Not refunded: {refund.payment_id}: the provider declined the refund of {amount}.",
            messages.ERROR,
        )
    call = None if payment is None else _call_of(payment, CallOperation.REFUND, refund.id)
    if call is not None and call.unknown:
        return _unknown(f"The refund of {amount} of {refund.payment_id}", call)
    return ActionOutcome(
        False, f"The refund of {amount} of {refund.payment_id} was sent, awaiting the provider.", messages.WARNING
    )


def settle_outcome(payment: Payment, refund_id: str) -> ActionOutcome:
    """What settling the pending refund ``refund_id`` did, from the payment the flow returned: done (the flow
    settles it or raises); with a warning when the payment still needs review, which settling does not clear."""
    if not payment.needs_review:
        return DONE
    return ActionOutcome(
        True,
        f"Refund {refund_id} of {payment.id} was settled, but the payment still needs review: {_review(payment)} "
        "(Resolve the review of selected payments… clears it).",
        messages.WARNING,
    )


def payment_settled_outcome(payment: Payment) -> ActionOutcome:
    """What settling an open payment did, from the payment the flow returned: done (the flow settles it or raises);
    with a warning when the payment still needs review, which settling leaves for the operator to close (a report
    that came while they decided stays seen)."""
    if not payment.needs_review:
        return DONE
    return ActionOutcome(
        True,
        f"Payment {payment.id} was settled as {payment.status.value}, but it still needs review: {_review(payment)} "
        "(Resolve the review of selected payments… clears it once checked).",
        messages.WARNING,
    )


def refund_not_pending(payment_id: str, refund_id: str, status: str) -> ActionOutcome:
    """A refund the confirmation page listed as pending that is ``status`` by Apply (a webhook or a refresh
    settled it meanwhile): left as it is."""
    return ActionOutcome(
        False,
        f"Not settled: refund {refund_id} of {payment_id} is {status}, no longer pending: left as it is.",
        messages.WARNING,
    )


def refund_not_listed(payment_id: str, refund_id: str) -> ActionOutcome:
    """A refund pending by Apply that the confirmation page did not list (it was made since): left pending."""
    return ActionOutcome(
        False,
        f"Left pending: refund {refund_id} of {payment_id} was not on the confirmation page; "
        "select the payment again to settle it.",
        messages.WARNING,
    )


def _done(payment: Payment, verb: str) -> ActionOutcome:
    """Done; with a warning when the payment is flagged for review."""
    if not payment.needs_review:
        return DONE
    return ActionOutcome(
        True, f"Payment {payment.id} was {verb} but needs review: {_review(payment)}.", messages.WARNING
    )


def _not_done(payment: Payment, operation: CallOperation, refusal: str) -> ActionOutcome:
    """Why ``operation`` left ``payment`` as it was: its answer was lost, it needs review, or it was declined."""
    call = _call_of(payment, operation)
    if call is not None:
        return _unknown(f"The {operation.value} of {payment.id}", call)
    if payment.needs_review:
        return ActionOutcome(False, f"{refusal}: {payment.id}: it needs review: {_review(payment)}.", messages.ERROR)
    return ActionOutcome(
        False,
        f"{refusal}: {payment.id}: the provider declined the {operation.value}; the payment is {payment.status.value}.",
        messages.ERROR,
    )


def _unknown(what: str, call: ProviderCall) -> ActionOutcome:
    """A call sent whose answer did not come back: nothing is known yet, and paycore will ask."""
    why = f" ({call.reason})" if call.reason else ""
    return ActionOutcome(
        False,
        f"{what} was sent, but its outcome is unknown{why}: it will be checked with the provider "
        "(Refresh selected payments checks now).",
        messages.WARNING,
    )


def _call_of(payment: Payment, operation: CallOperation, refund_id: str | None = None) -> ProviderCall | None:
    """The call of ``operation`` (for ``refund_id``, if given) that ``payment`` still carries, if any."""
    call = payment.pending_call
    if call is None or call.operation is not operation:
        return None
    if refund_id is not None and call.refund_id != refund_id:
        return None
    return call


def _review(payment: Payment) -> str:
    """Why ``payment`` is flagged for review, as the flow said it."""
    reason = payment.review_reason.value.replace("_", " ") if payment.review_reason else "flagged"
    return payment.review_message or reason
