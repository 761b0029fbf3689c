"""How a provider's report about a refund changes the payment's refunds: the rules of refund facts.

:func:`apply_refund_update` applies one :class:`~paycore.records.RefundUpdate` of a report
(:func:`paycore.updates.apply_report` calls it for each), under the correctness rules:

* a refund is matched by paycore's id for it, else by the provider's (its external id); a report naming
  a refund by a reference the provider gave another of its refunds (or another than it gave this one)
  changes neither, and flags the payment;
* a pending refund settles as reported; succeeded needs its amount, which must be the refund's;
* a refund reported failed after it succeeded keeps its record (a status never moves
  backwards) and flags the payment: the customer was not paid back after all;
* a refund that failed here (declined, or not found by a poll) and is reported succeeded after
  all succeeds, if it still fits what was captured, and flags the payment; if it no longer fits
  (it was made again meanwhile), nothing is recorded beyond the captured amount, and the payment
  is flagged: the money went back twice;
* a refund the provider made on its own (from its dashboard) is recorded if it fits what is
  refundable and names itself; one reported before the capture it refunds waits for that report,
  and one that fits only if a refund of paycore's still pending fails waits for that refund's report
  (a report's refunds that paycore knows are applied before those made without it).

:func:`sync_refund_status` then moves the payment to ``partially_refunded`` or ``refunded`` as
its succeeded refunds say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from paycore import fsm
from paycore.changes import Change, replace_refund
from paycore.money import Money
from paycore.records import PaymentEvent, Refund, RefundUpdate, new_id
from paycore.reviews import flag_once, mismatch, tell_refund_of_refused_capture, tell_refund_of_uncaptured
from paycore.status import PaymentStatus, RefundStatus, ReviewReason

if TYPE_CHECKING:
    from paycore.calls import ProviderCall
    from paycore.updates import Applied

__all__ = [
    "MADE_ELSEWHERE",
    "NEVER_ARRIVED",
    "NOT_SENT",
    "apply_refund_update",
    "fail_refund",
    "made_elsewhere",
    "names_refund",
    "never_reached",
    "reported_refund",
    "succeed_refund",
    "sync_refund_status",
    "tell_possible_twin",
    "tell_twins_of_lost_call",
]


NOT_SENT: Final = "not sent: the request never reached the provider"
"""Why a refund whose request could not be sent failed (:meth:`~paycore.provider_calls.ProviderCalls.undo`)."""
NEVER_ARRIVED: Final = "the provider has no record of this refund"
"""Why a refund that a fresh poll of a provider listing every refund omits failed: it never arrived."""
MADE_ELSEWHERE: Final = "made at the provider"
"""The reason of a refund the provider reported that paycore did not make (from its dashboard)."""


def never_reached(events: Sequence[PaymentEvent], refund_id: str) -> bool:
    """True when the refund ``refund_id`` last failed, in the payment's ``events``, for never reaching its provider
    (:data:`NOT_SENT`, :data:`NEVER_ARRIVED`: not sent, omitted by a fresh poll of a provider listing every refund,
    or reported :attr:`~paycore.records.RefundUpdate.never_arrived`), not for its decline or an operator's word."""
    for event in reversed(events):
        if event.kind == "refund_status_changed" and event.refund_id == refund_id:
            return event.to_status == RefundStatus.FAILED.value and event.message in (NOT_SENT, NEVER_ARRIVED)
    return False


def names_refund(update: RefundUpdate, refund_id: str | None, change: Change) -> bool:
    """True when ``update`` reports the refund ``refund_id`` of the payment (by its id or its external id)."""
    if refund_id is None:
        return False
    if update.refund_id == refund_id:
        return True
    external = next((r.external_id for r in change.value("refunds") if r.id == refund_id), None)
    return external is not None and update.external_id == external


def reported_refund(refunds: tuple[Refund, ...], update: RefundUpdate) -> Refund | None:
    """The refund of ``refunds`` that ``update`` reports; ``None``: one the provider made without paycore."""
    refund = None  # paycore's own id for it names it first: a provider may give two refunds one reference
    if update.refund_id is not None:
        refund = next((r for r in refunds if r.id == update.refund_id), None)
    if refund is None and update.external_id is not None:
        refund = next((r for r in refunds if r.external_id == update.external_id), None)
    if refund is None and update.external_id is None and update.refund_id is not None:  # see _refund_made_elsewhere
        refund = next((r for r in refunds if r.external_id == update.refund_id), None)
    return refund


def apply_refund_update(
    change: Change,
    update: RefundUpdate,
    applied: Applied,
    *,
    may_wait: bool = False,
    lists_refunds: bool = False,
    capture_refused: bool = False,
) -> bool:
    """Apply what ``update`` says of one refund; True when it reported money without its amount. ``may_wait``:
    the payment's pending refunds will be reported settled on their own, so a refund made elsewhere that fits
    only once they fail may wait for that (see :func:`_refund_made_elsewhere`); ``lists_refunds``: the
    provider's polls list every refund, so one it reports of a payment without its capture may be told now
    and found again by a poll; ``capture_refused``: the report carrying ``update`` reported the payment's capture,
    and it was refused (flagged), so a refund of an uncaptured payment has no capture to wait for."""
    refunds: tuple[Refund, ...] = change.value("refunds")
    refund = reported_refund(refunds, update)
    if refund is None:
        if capture_refused and update.status is not RefundStatus.FAILED:
            tell_refund_of_refused_capture(change, update)
            return False
        return _refund_made_elsewhere(change, update, applied, may_wait=may_wait, lists_refunds=lists_refunds)
    applied.named.add(refund.id)
    if (
        update.external_id is not None
        and refund.external_id != update.external_id
        and _reference_reused(change, refunds, refund, update.external_id)
    ):
        return False
    if refund.status is RefundStatus.SUCCEEDED and update.status is RefundStatus.FAILED:
        _refund_reversed(change, refund)
        return False
    if refund.status is RefundStatus.FAILED and update.status is RefundStatus.SUCCEEDED:
        return _refund_confirmed_late(change, refund, update)
    if (
        refund.status is RefundStatus.SUCCEEDED
        and update.amount is not None
        and mismatch(change, refund.amount, update.amount, f"refund {refund.id} amount")  # told once
    ):
        return False
    changes: dict[str, Any] = {}
    if update.external_id and refund.external_id is None:
        changes["external_id"] = update.external_id
    still_pending = refund.status is RefundStatus.PENDING and update.status is RefundStatus.PENDING
    if still_pending and refund.updated_at < change.now:
        changes["updated_at"] = change.now  # heard of: a refund the provider holds pending is asked about later again
    if refund.status is RefundStatus.PENDING and update.status is not RefundStatus.PENDING:
        if update.status is RefundStatus.SUCCEEDED:
            if update.amount is None:
                return True
            if mismatch(change, refund.amount, update.amount, f"refund {refund.id} amount"):
                return False
        changes["status"] = update.status
        changes["updated_at"] = change.now
        change.event(
            "refund_status_changed",
            from_status=refund.status._value_,  # the member's value, without Enum.value's Python-level call
            to_status=update.status._value_,
            amount=refund.amount,
            refund_id=refund.id,
            message=NEVER_ARRIVED if update.never_arrived else "",
        )
    if changes:
        replaced = replace_refund(refund, changes)
        change.set(refunds=tuple(replaced if r.id == refund.id else r for r in refunds))
    return False


def _reference_reused(change: Change, refunds: tuple[Refund, ...], refund: Refund, reference: str) -> bool:
    """True, with the payment flagged (once), when the provider names ``refund`` by a reference it gave
    another of its refunds, or another one than it gave it: which refund moved is not certain, so none is."""
    holder = next((r for r in refunds if r.external_id == reference and r.id != refund.id), None)
    if holder is None and refund.external_id is None:
        return False
    if holder is not None:
        message = f"the provider reports refund {refund.id} under reference {reference!r}, refund {holder.id}'s"
    else:
        message = f"the provider reports refund {refund.id} under reference {reference!r}, not {refund.external_id!r}"
    flag_once(
        change, ReviewReason.AMOUNT_MISMATCH, "refund_reference_mismatch", message, unique=True, refund_id=refund.id
    )
    return True


def _refund_reversed(change: Change, refund: Refund) -> None:
    """A refund the provider reports failed after it succeeded (a card that could not take it back).

    Its record stays as it was, and with it the payment's refunded amount and status, which never
    move backwards; an operator is told, once, that the customer was not paid back after all."""
    message = f"the provider reports refund {refund.id} of {refund.amount} failed after it succeeded"
    flag_once(
        change,
        ReviewReason.REFUND_REVERSED,
        "refund_reversed",
        message,
        unique=True,
        amount=refund.amount,
        refund_id=refund.id,
    )


def _refund_confirmed_late(change: Change, refund: Refund, update: RefundUpdate) -> bool:
    """A refund that failed here (declined, or not found by a poll) the provider reports succeeded after all.

    The customer was paid back: the refund succeeds, if it still fits what is refundable, and an operator
    is told. If it no longer fits (it was made again meanwhile), the money went back twice at the provider:
    nothing is recorded beyond what was captured, and an operator is told, once."""
    if update.amount is None:
        return True
    if mismatch(change, refund.amount, update.amount, f"refund {refund.id} amount"):
        return False
    if refund.amount > change.payment.refundable_amount:  # as changed so far: the failed refund holds nothing
        message = f"provider confirmed refund {refund.id} of {refund.amount} after it failed here, beyond the captured"
        flag_once(
            change,
            ReviewReason.LATE_CONFIRMATION,
            "late_refund",
            message,
            unique=True,
            amount=refund.amount,
            refund_id=refund.id,
        )
        return False
    replaced = replace_refund(refund, {"status": RefundStatus.SUCCEEDED, "updated_at": change.now})
    change.set(refunds=tuple(replaced if r.id == refund.id else r for r in change.value("refunds")))
    change.event(
        "refund_status_changed", from_status="failed", to_status="succeeded", amount=refund.amount, refund_id=refund.id
    )
    change.flag(
        ReviewReason.LATE_CONFIRMATION, f"provider confirmed refund {refund.id} of {refund.amount} after it failed here"
    )
    return False


def _refund_made_elsewhere(
    change: Change, update: RefundUpdate, applied: Applied, *, may_wait: bool, lists_refunds: bool
) -> bool:
    """A refund the provider made without paycore (from its dashboard): recorded if it fits, under the
    provider's id for it (its external id, else the refund id it gave), which its later reports match.

    One that fits only once refunds of paycore's still pending fail is flagged; when those will be reported
    settled on their own (``may_wait``), a delivery of it also waits for that report (answered 503)."""
    payment = change.payment
    if update.status is RefundStatus.FAILED:
        return False
    if payment.status in fsm.CLOSED:  # no capture will come but a late one: told, whatever follows
        tell_refund_of_uncaptured(change, update)
        if not lists_refunds:  # no poll will find it: it waits for the late capture, told meanwhile
            applied.deferred = True
            applied.told += (update,)
        return False
    if payment.status not in fsm.CAPTURED:  # reported before the capture it refunds: it waits for that report
        applied.deferred = True
        return False
    if update.amount is None:
        return update.status is RefundStatus.SUCCEEDED
    if update.external_id is None and update.refund_id is None:  # no later report could match it: told, not kept
        message = f"provider reported a refund of {update.amount} without its id: not recorded"
        flag_once(change, ReviewReason.AMOUNT_MISMATCH, "amount_mismatch", message, amount=update.amount)
        return False
    if (
        update.amount.currency != payment.currency
        or not update.amount.is_positive()
        or update.amount > payment.refundable_amount
    ):
        message = f"provider reported a refund of {update.amount}; only {payment.refundable_amount} was refundable"
        if update.amount.currency == payment.currency and update.amount <= (
            payment.refundable_amount + payment.pending_refund_amount
        ):  # it fits if a refund of paycore's still pending fails
            message += f" while {payment.pending_refund_amount} of refunds are pending"
            applied.deferred = may_wait
        flag_once(change, ReviewReason.AMOUNT_MISMATCH, "amount_mismatch", message, amount=update.amount)
        return False
    refund = Refund(
        id=new_id("re"),
        payment_id=payment.id,
        amount=update.amount,
        status=update.status,
        reason=MADE_ELSEWHERE,
        external_id=update.external_id or update.refund_id,
        created_at=change.now,
        updated_at=change.now,
    )
    change.set(refunds=(*payment.refunds, refund))
    change.event("refund_created", to_status=refund.status.value, amount=refund.amount, refund_id=refund.id)
    if not lists_refunds:
        travelling = payment.pending_call  # its answer names its refund, or is lost: then tell_twins_of_lost_call
        for ours in payment.refunds:
            answering = travelling is not None and ours.id == travelling.refund_id and travelling.in_flight(change.now)
            if not answering and ours.id not in applied.named:
                tell_possible_twin(change, ours.id, refund)
    return False


def tell_twins_of_lost_call(change: Change, call: ProviderCall, *, lists_refunds: bool) -> None:
    """Once the answer to a refund ``call`` is lost (or no one will hear it), tell of each refund the provider
    reported meanwhile that paycore did not make (:func:`tell_possible_twin`). Only at a provider whose polls do not
    list every refund (``lists_refunds`` false): one that does settles the call by its poll."""
    if call.refund_id is None or lists_refunds:
        return
    for made in change.value("refunds"):
        if made_elsewhere(made) and made.created_at >= call.started_at:
            tell_possible_twin(change, call.refund_id, made)


def tell_possible_twin(change: Change, ours_id: str, made: Refund) -> None:
    """Flag the payment when paycore's refund ``ours_id``, still pending and never named by the provider, and
    ``made``, a refund the provider reports that paycore did not make, may be one refund: at a provider whose
    polls do not list every refund, nothing else would tell (the provider named the refund its own way). Told
    once per pair."""
    ours = next((r for r in change.value("refunds") if r.id == ours_id), None)
    if ours is None or made_elsewhere(ours) or ours.status is not RefundStatus.PENDING or ours.external_id:
        return
    if made.status is RefundStatus.FAILED:
        return
    message = (
        f"provider reported a refund of {made.amount} paycore did not make while the answer to refund "
        f"{ours.id} was lost: check they are not the same before refunding again"
    )
    if message not in change.value("review_message"):
        change.flag(ReviewReason.UNKNOWN_OUTCOME, message)


def made_elsewhere(refund: Refund) -> bool:
    """True for a refund the provider reported that paycore did not make (from its dashboard)."""
    return refund.reason == MADE_ELSEWHERE


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
    _settle_refund(change, refund, RefundStatus.FAILED, message)


def succeed_refund(change: Change, refund: Refund, message: str) -> None:
    """Mark the pending ``refund`` succeeded (an operator found it done at the provider) and record why; the
    payment's status follows from :func:`sync_refund_status`."""
    _settle_refund(change, refund, RefundStatus.SUCCEEDED, message)


def _settle_refund(change: Change, refund: Refund, status: RefundStatus, message: str) -> None:
    change.set(
        refunds=tuple(
            replace_refund(r, {"status": status, "updated_at": change.now}) if r.id == refund.id else r
            for r in change.value("refunds")
        )
    )
    change.event(
        "refund_status_changed",
        from_status=refund.status.value,
        to_status=status.value,
        amount=refund.amount,
        refund_id=refund.id,
        message=message,
    )
