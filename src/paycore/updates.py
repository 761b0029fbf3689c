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
  follows their total; a refund reported failed after it succeeded flags the payment;
* a report about another payment (its ``payment_id``), or at a provider that names a
  payment by one id about another object there, is not applied at all: the payment is
  flagged (:attr:`Applied.foreign` says why).

Whether a report settles a written-down provider call is :mod:`paycore.settling`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from attrs import Factory, define

from paycore import fsm
from paycore.changes import Change
from paycore.money import Money
from paycore.records import MAX_REFERENCES, ProviderUpdate, RefundUpdate
from paycore.refund_reports import apply_refund_update, names_refund, reported_refund, sync_refund_status
from paycore.reviews import flag_once, flag_other_payments_report, mismatch, tell_dispute
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason

__all__ = [
    "NEGATIVE_OUTCOMES",
    "Applied",
    "about_another",
    "apply_report",
    "id_kind",
    "lost_by_provider",
    "provider_ids",
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
    foreign: str | None = None
    """Why the report is about another payment (:func:`about_another`): nothing of it was applied, and the
    payment was flagged."""
    told: tuple[RefundUpdate, ...] = ()
    """Refunds of a payment that ended without its money, flagged for an operator while they wait for its late
    capture: a caller that refuses the report (a webhook answered 503) still writes the flag on its own."""
    named: set[str] = Factory(set)
    """The ids of paycore's refunds the report named (those of refunds paycore knows are applied first)."""

    @property
    def whole(self) -> bool:
        """True when every fact of the report was applied or waited: it may settle a provider call."""
        return not self.missing_amount and self.foreign is None


def apply_report(
    change: Change,
    update: ProviderUpdate,
    *,
    settle: bool = True,
    expected_capture: Money | None = None,
    protected_refund: str | None = None,
    one_id: bool = False,
    per_kind: bool = False,
    lists_refunds: bool = False,
    canceled_since_asked: bool = False,
) -> Applied:
    """Apply ``update`` to ``change``; return what was left unapplied.

    ``settle=False`` while another caller's provider call is in flight (see
    :mod:`paycore.calls`); ``expected_capture`` is what was asked to be
    captured when a capture call is outstanding (a partial capture captures
    less than authorized); ``protected_refund`` is the refund of the call in
    flight, which only its owner may fail; ``one_id``: the provider names a payment by one id all its life
    (:attr:`~paycore.providers.Capabilities.one_id_per_payment`), ``per_kind`` by one id of each kind
    (:attr:`~paycore.providers.Capabilities.one_id_per_kind`); ``canceled_since_asked``: a poll asked while
    the payment was open, canceled (its hold voided at the provider) before the answer came: a hold it reports came
    before; ``lists_refunds``: its polls list every refund
    (:attr:`~paycore.providers.Capabilities.polls_report_refunds`).
    """
    applied = Applied()
    if one_id or per_kind or update.payment_id is not None:
        known = provider_ids(change.value("external_id"), change.value("references"))
        applied.foreign = about_another(change.original.id, known, update, one_id=one_id, per_kind=per_kind)
        if applied.foreign is not None:
            flag_other_payments_report(change, applied.foreign)
            return applied
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
    if update.dispute is not None:
        tell_dispute(change, update.dispute)

    outcome = update.outcome
    if outcome in NEGATIVE_OUTCOMES and not settle and change.can(_TRIGGERS.get(outcome, "expire")):  # could apply
        applied.deferred = True
    elif outcome is Outcome.PENDING:
        if change.can("send"):
            change.fire("send", message=update.message)
    elif outcome is Outcome.AUTHORIZED:
        applied.missing_amount |= _authorized(change, update, canceled_since_asked=canceled_since_asked)
    elif outcome is Outcome.SUCCEEDED:
        applied.missing_amount |= _succeeded(change, update, expected_capture)
    elif outcome is Outcome.NOT_FOUND:
        _not_found(change, update)
    elif outcome is not None:
        trigger = _TRIGGERS[outcome]
        if change.can(trigger):
            change.fire(trigger, message=update.message)

    refund_updates = update.refunds
    may_wait = bool(refund_updates) and _refunds_settle_themselves(change, lists_refunds=lists_refunds)
    # The report's own capture was refused (flagged) for good: the capture a refund it carries waits for would be this
    # report's, refused again at every delivery.
    capture_refused = (
        outcome is Outcome.SUCCEEDED
        and update.captured is not None
        and change.status not in fsm.CAPTURED
        and not _hold_may_come(change, update.captured, update.authorized)
    )
    if len(refund_updates) > 1:  # those of refunds paycore knows first: one failing leaves room for one made elsewhere
        refunds = change.value("refunds")
        refund_updates = tuple(sorted(refund_updates, key=lambda told: reported_refund(refunds, told) is None))
    for refund_update in refund_updates:
        if (
            not settle
            and refund_update.status is RefundStatus.FAILED
            and names_refund(refund_update, protected_refund, change)
        ):
            applied.deferred = True
            continue
        applied.missing_amount |= apply_refund_update(
            change,
            refund_update,
            applied,
            may_wait=may_wait,
            lists_refunds=lists_refunds,
            capture_refused=capture_refused,
        )
    sync_refund_status(change)
    return applied


def _hold_may_come(change: Change, captured: Money, authorized: Money | None) -> bool:
    """True when a capture in part refused as an underpayment may be taken once a hold is heard of: the payment,
    open and made to be captured later, awaits a hold report that ``authorized`` did not name (the report came
    first): that capture, reported again after the hold, is then the hold's capture in part."""
    amount: Money = change.value("amount")
    return (
        authorized is None
        and change.status in fsm.OPEN
        and not change.value("capture")
        and captured.currency == amount.currency
        and captured.is_positive()
        and captured < amount
    )


def _refunds_settle_themselves(change: Change, *, lists_refunds: bool) -> bool:
    """True when each of the payment's pending refunds will be reported settled without an operator: the provider
    acknowledged it (gave its id: a report follows), or it is the refund of the call the payment carries, in flight
    or one a poll that lists every refund settles (``lists_refunds``). One whose request was lost at a provider that
    cannot be asked about it stays pending until an operator acts: a fact waiting on it would wait for ever."""
    call = change.value("pending_call")
    for refund in change.value("refunds"):
        if refund.status is not RefundStatus.PENDING or refund.external_id is not None:
            continue
        if call is None or call.refund_id != refund.id or not (lists_refunds or call.in_flight(change.now)):
            return False
    return True


def about_another(
    payment_id: str, known: Sequence[str], update: ProviderUpdate, *, one_id: bool, per_kind: bool = False
) -> str | None:
    """Why ``update`` is not about payment ``payment_id`` (whose provider ids are ``known``, its ``external_id``
    first: :func:`provider_ids`) but another, or another object at a provider that names a payment by one id
    (``one_id``) or by one id of each kind (``per_kind``: :func:`id_kind`); ``None``: it is about this one."""
    named = update.payment_id
    if named is not None and named != payment_id:
        return f"the provider's report names payment {named}"
    if one_id and known and update.external_id is not None and update.external_id != known[0]:
        return f"the provider's report is about {update.external_id}, not this payment's {known[0]}"
    if per_kind:
        for reported in (update.external_id, *update.references):
            kind = id_kind(reported) if reported and reported not in known else None
            held = next((held for held in known if id_kind(held) == kind), None) if kind else None
            if held is not None:
                return f"the provider's report is about {reported}, not this payment's {held}"
    return None


def provider_ids(external_id: str | None, references: Sequence[str]) -> tuple[str, ...]:
    """A payment's ids at its provider, its ``external_id`` first (its ``references`` hold it once they are kept)."""
    return tuple(references) or ((external_id,) if external_id else ())


def id_kind(identifier: str) -> str | None:
    """The kind of a provider's id: what comes before its first ``_`` (``pi`` of ``pi_3Mtw...``); ``None``: none."""
    kind, underscore, _ = identifier.partition("_")
    return kind if underscore and kind.isalnum() else None


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


def _authorized(change: Change, update: ProviderUpdate, *, canceled_since_asked: bool) -> bool:
    payment = change.payment
    reported = update.authorized
    recorded: Money | None = change.value("authorized_amount")
    if recorded is not None and not change.can("authorize"):  # authorized here before: a known fact, or a mismatch
        if reported is not None:
            mismatch(change, recorded, reported, "authorized amount")
        return False
    if payment.status in fsm.CLOSED:
        # told once, whatever else the payment awaits review for; not of a hold the poll saw before the cancel
        if not change.can("authorize") and not canceled_since_asked:
            message = f"provider authorized {reported or 'an unknown amount'} after the payment was {payment.status}"
            flag_once(
                change, ReviewReason.LATE_CONFIRMATION, "late_authorization", message, unique=True, amount=reported
            )
        return False
    if not change.can("authorize"):
        return False
    if reported is None:
        return True
    if mismatch(change, payment.amount, reported, "authorized amount"):
        return False
    change.set(authorized_amount=reported)
    change.fire("authorize", amount=reported, message=update.message)
    return False


def _succeeded(change: Change, update: ProviderUpdate, expected_capture: Money | None) -> bool:
    status = change.status
    if status in fsm.CAPTURED:
        _captured_again(change, update.captured)
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
            mismatch(change, authorized, reported, "captured amount")
            return False
        if expected_capture is not None and mismatch(change, expected_capture, reported, "captured amount"):
            return False
        if update.authorized is not None and mismatch(change, authorized, update.authorized, "authorized amount"):
            return False  # the report contradicts itself: told, never paid
        change.set(captured_amount=reported)
        change.fire("capture", amount=reported, message=update.message)
        return False
    told = update.authorized
    if (
        told is not None
        and not change.value("capture")  # made to be captured later: a capture in part is no underpayment
        and reported.currency == amount.currency
        and told == (authorized_amount or amount)
        and reported < amount
        and status not in fsm.CLOSED
        and change.can("authorize")
    ):
        # Captured in part after a hold of the whole amount not heard of yet (its report late, or lost):
        # the hold first, then the capture, as if the reports had come in order.
        change.set(authorized_amount=told)
        change.fire("authorize", amount=told, message=update.message)
        return _succeeded(change, update, expected_capture)
    if mismatch(change, amount, reported, "paid amount"):
        return False
    if told is not None and mismatch(change, authorized_amount or amount, told, "authorized amount"):
        return False  # the report contradicts itself: told, never paid
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


def _captured_again(change: Change, reported: Money | None) -> None:
    """A captured payment reported captured again: the same amount is a known fact, another one is flagged, once."""
    captured: Money | None = change.value("captured_amount")
    if reported is not None and captured is not None:
        mismatch(change, captured, reported, "captured amount")


def lost_by_provider(update: ProviderUpdate, change: Change) -> bool:
    """Whether ``update`` says the provider has no record of a payment it named by an id of its own: that
    contradicts it (a key of another account or mode, a purge, a fault), so it proves nothing of any call, a
    refund's arrival included, and the payment is flagged instead (:func:`_not_found`)."""
    return update.outcome is Outcome.NOT_FOUND and change.value("external_id") is not None


def _not_found(change: Change, update: ProviderUpdate) -> None:
    """The provider has no record of the payment (and no call of ours is in flight).

    Of a payment the provider named by an id of its own, whatever its status, this contradicts what it said before
    (:func:`lost_by_provider`): another account's or mode's key, an object purged, a fault at the provider.
    Expiring an open one would leave it payable there with no one told, and a call whose answer was lost would be
    read as never arrived, so the payment is flagged for an operator instead (the reaper leaves it to them)."""
    if lost_by_provider(update, change):
        call = change.value("pending_call")
        if change.status in fsm.OPEN:
            then = "settle it with resolve_payment"
        elif call is not None and call.refund_id is not None:
            then = "settle its refund with resolve_refund"
        else:  # its capture's or cancel's outcome waits for the provider's own word
            then = "refresh it once the provider answers for it again"
        known: str = change.value("external_id")
        message = f"the provider reports no record of {known}, its own id for this payment: check its account and keys"
        flag_once(change, ReviewReason.UNKNOWN_OUTCOME, "provider_lost_payment", f"{message}, then {then}", unique=True)
    elif change.status in fsm.OPEN and change.can("expire"):
        change.fire("expire", message=update.message or "the provider has no record of this payment")
