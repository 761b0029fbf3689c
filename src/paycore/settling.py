"""How reports settle a written-down provider call: the rules of :mod:`paycore.calls` applied to a payment.

A money-moving call is written on its payment before it is sent
(:class:`~paycore.calls.ProviderCall`); once it is out of its owner's hands
(its outcome unknown, or its lease run out), a report may settle it.
:func:`settles_call` says when one does: a poll asked after the call's lease ran
out with any definitive answer, any other report (a webhook, an older poll) only
by what no earlier state could say; :func:`apply_under_call` applies a report
under those rules. The other helpers read a report as the answer to a
call (:func:`answer_to`, :func:`capture_of`) or mark a call unknown
(:func:`mark_unknown`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

from attrs import evolve

from paycore import fsm
from paycore.calls import CallOperation, CallState, ProviderCall, Unknown
from paycore.changes import Change
from paycore.money import Money
from paycore.providers import Capabilities
from paycore.records import Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.refund_reports import NEVER_ARRIVED, fail_refund, names_refund, reported_refund, tell_twins_of_lost_call
from paycore.reviews import flag_missing_amount, flag_other_payments_report
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.updates import NEGATIVE_OUTCOMES, Applied, about_another, apply_report, lost_by_provider, provider_ids

__all__ = [
    "CAPTURED_UNRECORDED",
    "abandoned",
    "answer_to",
    "apply_answer",
    "apply_poll",
    "apply_under_call",
    "asks_again",
    "capture_of",
    "capture_unrecorded",
    "create_reached",
    "fail_omitted_refund",
    "held_by_another",
    "mark_unknown",
    "settles_call",
]


def apply_under_call(
    change: Change,
    update: ProviderUpdate,
    *,
    capabilities: Capabilities,
    asked_after: ProviderCall | None = None,
    asked_on: Payment | None = None,
    resending_create: bool = False,
) -> Applied:
    """Apply a poll's or a webhook's ``update`` under the rules of the call the payment carries, and clear
    the call if the report settles it (:func:`settles_call`).

    ``capabilities``: the provider's (whether its polls list every refund, whether it names a payment by one id);
    ``asked_after``: the call whose lease had run out when a poll was asked (what makes it fresh);
    ``asked_on``: the payment as a poll was asked on it. Once written since, the poll may have read the provider's
    books before what that write recorded reached them (the call the payment carried, settled since by its owner's
    answer or by a retry that sent it again; a call written down, sent and answered since, as a retried create's),
    fresh or not: it proves no decline, its negative outcome waits as it would under a call, and it settles no
    call the payment carries now. A payment that carried one call from the question to the answer sent nothing
    else meanwhile (a call keeps it busy): its other writes (a fraud verdict, a webhook's receipt) do not make
    the poll older;
    ``resending_create``: the poll is a retried create's, which sends its create again if it never arrived."""
    call: ProviderCall | None = change.value("pending_call")
    in_flight = call is not None and call.in_flight(change.now)
    fresh = call is not None and asked_after is not None and call.is_the_same(asked_after)
    older = (
        asked_on is not None and asked_on.version != change.original.version and not _carried_throughout(call, asked_on)
    )
    lists_refunds = capabilities.polls_report_refunds
    if older and asked_on is not None and update.refunds:
        update = _stale_failures_held_back(update, asked_on, change.value("refunds"))
    if (
        fresh
        and call is not None
        and call.refund_id is not None
        and about_another(
            change.original.id,
            provider_ids(change.value("external_id"), change.value("references")),
            update,
            one_id=capabilities.one_id_per_payment,
            per_kind=capabilities.one_id_per_kind,
        )
        is None
    ):  # before the report's refunds: one made elsewhere may fit only once this one failed
        fail_omitted_refund(call, update, change, lists_refunds=lists_refunds, fresh=fresh)
    applied = apply_report(
        change,
        update if call is None or in_flight else answer_to(call, update, fresh=fresh, resending=resending_create),
        settle=not (in_flight or older),
        expected_capture=capture_of(call),
        protected_refund=call.refund_id if call is not None and in_flight else None,
        one_id=capabilities.one_id_per_payment,
        per_kind=capabilities.one_id_per_kind,
        lists_refunds=lists_refunds,
        canceled_since_asked=older
        and asked_on is not None
        and asked_on.status not in fsm.CLOSED
        and change.status is PaymentStatus.CANCELED,
    )
    if (
        call is not None
        and not in_flight
        and applied.whole
        and not (older and update.outcome in NEGATIVE_OUTCOMES)  # held back: it proves no call's end either
        and settles_call(call, update, change, lists_refunds=lists_refunds, fresh=fresh)
    ):
        change.set(pending_call=None)
    elif call is not None and not in_flight and not call.unknown and capture_unrecorded(call, update, change):
        # its owner gone (it would have marked it so on the answer): in doubt, for an operator to resolve
        mark_unknown(change, call, CAPTURED_UNRECORDED)
    return applied


def _stale_failures_held_back(update: ProviderUpdate, asked_on: Payment, refunds: tuple[Refund, ...]) -> ProviderUpdate:
    """``update``, a poll asked on ``asked_on`` and written since, without the failures it reports of refunds that
    changed since it was asked (sent again under their id by a keyed retry, settled by another report): it read
    the provider's books before that, so it proves none of them failed; a poll asked now tells."""
    before = {refund.id: refund for refund in asked_on.refunds}

    def changed_since(told: RefundUpdate) -> bool:
        refund = reported_refund(refunds, told)
        return refund is not None and before.get(refund.id) != refund

    return _failures_held_back(update, changed_since)


def _carried_throughout(call: ProviderCall | None, asked_on: Payment) -> bool:
    """True when the payment carries now the very call it carried when a poll was asked on it (``asked_on``):
    while a call is carried no other is written down or sent, so the poll read what that call left."""
    asked_under = asked_on.pending_call
    return call is not None and asked_under is not None and call.is_the_same(asked_under)


def apply_answer(
    payment: Payment,
    *,
    call: ProviderCall,
    answer: ProviderUpdate | Unknown,
    capabilities: Capabilities,
    clock: Callable[[], datetime],
) -> Change | None:
    """The change the answer to ``call`` (or its lack, :class:`Unknown`) makes to ``payment``
    (:meth:`~paycore.provider_calls.ProviderCalls.finish`): applied and the call cleared if the payment still
    carries it; else applied as any report would be, the payment's current call left alone. An answer that
    named another payment, or no amount, leaves the call unknown: only asking the provider settles it."""
    change = Change(payment, cause=call.cause, now=clock())  # the reaper's own cancel: "reaper"
    current = payment.pending_call
    if current is None or current.id != call.id:
        if isinstance(answer, Unknown):
            return None
        apply_under_call(change, _failure_held_back(answer, call, current), capabilities=capabilities)
        return change
    if isinstance(answer, Unknown):
        create_reached(change, call, "sent; the provider's answer was lost")
        mark_unknown(change, current, answer.reason)
        tell_twins_of_lost_call(change, call, lists_refunds=capabilities.polls_report_refunds)
        return change
    applied = apply_report(
        change,
        answer_to(call, answer),
        expected_capture=capture_of(call),
        one_id=capabilities.one_id_per_payment,
        per_kind=capabilities.one_id_per_kind,
    )
    if answer.outcome is None or applied.foreign is not None:
        create_reached(change, call)
    if not applied.whole:
        why = "the answer named another payment" if applied.foreign is not None else "the answer did not say how much"
        mark_unknown(change, current, why)
    elif capture_unrecorded(call, answer, change):
        mark_unknown(change, current, CAPTURED_UNRECORDED)
    else:
        change.set(pending_call=None)
    return change


def _failure_held_back(answer: ProviderUpdate, call: ProviderCall, current: ProviderCall | None) -> ProviderUpdate:
    """``answer`` to refund ``call``, settled by someone else meanwhile, without its refund's failure if another
    call sends that refund again now (a keyed retry, under its id): that failure was of the attempt before."""
    if call.refund_id is None or current is None or current.refund_id != call.refund_id:
        return answer
    return _failures_held_back(answer, lambda told: told.refund_id == call.refund_id)


def _failures_held_back(update: ProviderUpdate, held: Callable[[RefundUpdate], bool]) -> ProviderUpdate:
    """``update`` without the refund failures it reports that ``held`` holds back."""
    kept = tuple(told for told in update.refunds if told.status is not RefundStatus.FAILED or not held(told))
    return update if len(kept) == len(update.refunds) else evolve(update, refunds=kept)


def apply_poll(
    current: Payment,
    *,
    answer: ProviderUpdate | Unknown,
    cause: str,
    clock: Callable[[], datetime],
    capabilities: Capabilities,
    confirming: bool,
    asked_after: ProviderCall | None,
    asked_on: Payment,
    resending_create: bool,
) -> Change:
    """The change a poll's ``answer`` makes to ``current`` (:meth:`~paycore.provider_calls.ProviderCalls.poll`):
    applied under the call the payment carries (:func:`apply_under_call`); an answer that says nothing flags a call
    no report can settle any more (unless the reaper asks, which flags by its own rule). ``confirming``: the poll
    asks what a report of money left unsaid, and an answer that the payment did not pay only flags it."""
    change = Change(current, cause=cause, now=clock())
    if confirming and isinstance(answer, ProviderUpdate) and answer.outcome in NEGATIVE_OUTCOMES:
        flag_missing_amount(change, f"money was reported without its amount, then {answer.outcome.value}")
        return change
    call = current.pending_call
    if isinstance(answer, Unknown):
        if (
            call is not None
            and cause != "reaper"  # which flags by its own rule: a read not served is asked again first
            and call.settled_by_reports(change.now)
            and current.review_reason is not ReviewReason.UNKNOWN_OUTCOME
        ):
            change.flag(ReviewReason.UNKNOWN_OUTCOME, f"polling could not settle it: {answer.reason}")
        return change
    applied = apply_under_call(
        change,
        answer,
        capabilities=capabilities,
        asked_after=asked_after,
        asked_on=asked_on,
        resending_create=resending_create,
    )
    if applied.missing_amount:
        flag_missing_amount(change, "the provider's status named no amount for the money it reports")
    return change


def settles_call(
    call: ProviderCall, update: ProviderUpdate, change: Change, *, lists_refunds: bool, fresh: bool
) -> bool:
    """True when a report (a poll or a webhook) answers the recorded ``call`` definitively.

    Only for a call reports may settle (:meth:`ProviderCall.settled_by_reports`). A ``fresh`` report is a
    poll asked once the call's lease had run out. Any other (a webhook, an older poll) may
    predate the call, so it settles it only by what no earlier state says: the refund named, the capture
    or cancel shown done or made impossible; else the call would be sent again. A refund call is answered
    once its refund is no longer pending or is reported at all; a fresh poll of a provider that lists
    every refund (``lists_refunds``) and omits it means it never arrived: failed, refundable again.

    That a request never arrived is known only once the call's lease has run out: until then it may still
    be on its way (its owner stopped waiting, the network did not). So only a poll *asked* after the lease
    ran out is fresh (one asked before and answered after read the provider's books too early).
    """
    if lost_by_provider(update, change):  # it contradicts what the provider said: no call's end, none's failure
        return False
    if capture_unrecorded(call, update, change):
        return False
    if call.operation is CallOperation.REFUND:
        refund = next((r for r in change.value("refunds") if r.id == call.refund_id), None)
        if refund is None or refund.status is not RefundStatus.PENDING:
            return True
        if any(names_refund(u, call.refund_id, change) for u in update.refunds):
            return True
        if update.outcome is None or not fresh:
            return False
        if not fail_omitted_refund(call, update, change, lists_refunds=lists_refunds, fresh=fresh):
            # The status cannot say: the refund stays pending (reserved) until its own report; an operator is told.
            change.flag(ReviewReason.UNKNOWN_OUTCOME, f"the outcome of refund {refund.id} is unknown")
            tell_twins_of_lost_call(change, call, lists_refunds=lists_refunds)
        return True
    outcome = update.outcome
    if call.operation is CallOperation.INITIATE or outcome is None:
        # any report of the payment: the provider has it; that it has none is known only once it is fresh
        return outcome is not None and (outcome is not Outcome.NOT_FOUND or fresh)
    if fresh:
        return call.operation is not CallOperation.CAPTURE or outcome is not Outcome.PENDING
    return outcome is Outcome.SUCCEEDED or outcome in NEGATIVE_OUTCOMES


def fail_omitted_refund(
    call: ProviderCall, update: ProviderUpdate, change: Change, *, lists_refunds: bool, fresh: bool
) -> bool:
    """Fail the pending refund of a refund ``call`` that a ``fresh`` poll of a provider that lists every refund
    (``lists_refunds``) omits: it never arrived, and is refundable again. True when it did."""
    if call.operation is not CallOperation.REFUND or not (fresh and lists_refunds) or update.outcome is None:
        return False
    if lost_by_provider(update, change):
        return False
    refund = next((r for r in change.value("refunds") if r.id == call.refund_id), None)
    if refund is None or refund.status is not RefundStatus.PENDING:
        return False
    if any(names_refund(u, call.refund_id, change) for u in update.refunds):
        return False
    fail_refund(change, refund, NEVER_ARRIVED)
    return True


def answer_to(
    call: ProviderCall, update: ProviderUpdate, *, fresh: bool = True, resending: bool = False
) -> ProviderUpdate:
    """``update`` read as the answer to ``call``: the reaper's cancel, once done, means "expired"; a
    create the provider has no record of may be on its way, unless a ``fresh`` poll says so (see
    :func:`settles_call`): no fact yet. Nor is it one when its create is ``resending``: it never arrived,
    and the create retried under its key sends it now, so the payment stays pending."""
    if call.closes_abandoned_payment and update.outcome is Outcome.CANCELED:
        return evolve(update, outcome=Outcome.EXPIRED, message=update.message or "abandoned; canceled at the provider")
    if update.outcome is Outcome.NOT_FOUND and call.operation is CallOperation.INITIATE and (resending or not fresh):
        return evolve(update, outcome=None)
    return update


CAPTURED_UNRECORDED: Final = "the provider captured what could not be recorded (flagged)"
"""Why a capture call is left unknown by a report of money its payment could not record (:func:`capture_unrecorded`)."""


def capture_unrecorded(call: ProviderCall, update: ProviderUpdate, change: Change) -> bool:
    """True when ``update`` says a capture ``call`` took the money but the payment could not record it (another
    amount than asked, more than the hold, another currency: flagged, never paid). The call is not settled by it:
    it stays, unknown, so no capture or cancel is sent again before an operator resolves the payment
    (:meth:`~paycore.flow.PaymentFlow.resolve_payment`, with what the provider captured)."""
    return (
        call.operation is CallOperation.CAPTURE
        and update.outcome is Outcome.SUCCEEDED
        and update.captured is not None
        and change.status not in fsm.CAPTURED
    )


def capture_of(call: ProviderCall | None) -> Money | None:
    """What ``call`` asked to capture, when it is a capture (a report of less is a partial capture's answer)."""
    if call is not None and call.operation is CallOperation.CAPTURE:
        return call.amount
    return None


def held_by_another(call: ProviderCall | None, message: str, payment: Payment, *, now: datetime, cause: str) -> Change:
    """The change that records a report of ``payment`` the store refused, for it gave a reference another
    payment holds: nothing of it is kept, ``call`` (the one it answered) is marked unknown if the payment
    still carries it, and the payment is flagged (:func:`~paycore.reviews.flag_other_payments_report`)."""
    change = Change(payment, cause=cause, now=now)
    current = payment.pending_call
    if call is not None and current is not None and current.id == call.id and not current.unknown:
        create_reached(change, call, "sent; the provider's answer could not be recorded")
        mark_unknown(change, current, message)
    flag_other_payments_report(change, message)
    return change


def create_reached(change: Change, call: ProviderCall, message: str = "") -> None:
    """When ``call`` is a create that reached the provider, the payment is pending there: ``processing`` here
    (unless it moved on already); any other call changes no status."""
    if call.operation is CallOperation.INITIATE and change.can("send"):
        change.fire("send", message=message)


def abandoned(call: ProviderCall, now: datetime, lists_refunds: bool, payment: Payment) -> Change | None:
    """The change that marks ``call`` unknown once its caller was cancelled while its request travelled, if the
    payment still carries it in flight: no one will hear its answer, so only asking the provider settles it. It
    may or may not have reached the provider: a create's payment stays as it was (``pending``)."""
    current = payment.pending_call
    if current is None or not current.is_the_same(call) or current.state is not CallState.SUBMITTING:
        return None
    change = Change(payment, cause=call.cause, now=now)
    mark_unknown(change, current, "its caller was cancelled before the provider answered")
    tell_twins_of_lost_call(change, current, lists_refunds=lists_refunds)
    return change


def mark_unknown(change: Change, call: ProviderCall, reason: str) -> None:
    """Mark ``call`` (the payment's) unknown, and record why: only asking the provider settles it now. Marked so
    already for the same reason (an answer applied again), nothing changes: no event is told twice."""
    if call.state is CallState.UNKNOWN and call.reason == reason:
        return
    change.set(pending_call=evolve(call, state=CallState.UNKNOWN, reason=reason))
    change.event("provider_call_unknown", refund_id=call.refund_id, message=f"{call.operation.value}: {reason}")


def asks_again(payment: Payment, call: ProviderCall, answer: ProviderUpdate | Unknown) -> bool:
    """True when the answer to ``call`` named no amount (its owner wrote the call down unknown): the provider is
    asked again at once."""
    mine = payment.pending_call
    return mine is not None and mine.id == call.id and mine.unknown and not isinstance(answer, Unknown)
