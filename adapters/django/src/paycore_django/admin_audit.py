"""The audit trail of the admin actions: which staff user did what to which payment.

For every payment an action changed, the admin writes a Django admin
:class:`~django.contrib.admin.models.LogEntry` (flag ``CHANGE``) naming the
user and saying what was done ("Refunded 2 500 XOF (refund re_…): cold soup",
"Resolved review: called the customer"), through
:meth:`~django.contrib.admin.ModelAdmin.log_change`: the payment's History page
and the admin's "Recent actions" show it. A payment the action did not change
gets none: refused, a form submitted twice (the second replays), a refresh
that found nothing new, a review resolved on a payment no longer flagged.

The entry is written once the flow has acted. Writing it may fail (the
database of the admin's log unavailable): that never undoes nor hides what was
done to the money. The failure is logged as a warning naming the payment, the
user and the entry, and the action goes on.

A change is recorded once, by the request that made it. A form submitted twice
at once reads the payment twice before either request acts: the second replays
the first's answer, which is a change from what it read. So the request that
is to record a change first claims its recording in the flow's idempotency
store, under a key naming the change (the payment, what the change says and
the number of its events once changed, or the refund made); a request that
finds it claimed records nothing. A store that cannot be reached leaves the
change recorded, perhaps twice, never not at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, Final

from attrs import evolve
from django.contrib import messages
from django.http import HttpRequest

import paycore_django
from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused, PaycoreError
from paycore.keys import scope_of
from paycore.logs import guarded_logger
from paycore.records import Payment as PaymentRecord
from paycore.records import Refund as RefundRecord
from paycore.status import PaymentStatus, RefundStatus
from paycore.wire import quoted
from paycore_django.admin_outcomes import CAPTURED_STATUSES, ActionOutcome
from paycore_django.models import Payment

__all__ = [
    "AuditTrail",
    "audited",
    "cancel_change",
    "capture_change",
    "fraud_change",
    "payment_settled_change",
    "refresh_change",
    "refund_audited",
    "refunds_settled_change",
    "review_change",
]

log = guarded_logger("paycore_django.admin")  # a handler that raises never changes what this module answers


class AuditTrail:
    """The audit trail of a :class:`~django.contrib.admin.ModelAdmin` of payments: mixed into one."""

    log_change: Callable[..., Any]
    message_user: Callable[..., Any]

    def _run_each(
        self,
        request: HttpRequest,
        payments: Iterable[Payment],
        verb: str,
        run: Callable[[Payment], ActionOutcome],
        *,
        done_as: str = "",
    ) -> None:
        """Run ``run`` for each of ``payments``; count those it did ("``verb`` N payment(s)``done_as``."), record
        those it changed in the audit trail, and tell what happened to the others."""
        done, told = 0, []
        for payment in payments:
            try:
                outcome = run(payment)
            except PaycoreError as error:
                outcome = ActionOutcome(False, f"Not {verb.lower()}: {payment.id}: {error}", messages.ERROR)
            self._audit(request, payment, outcome.change, outcome.change_id)
            done += outcome.done
            if outcome.message:
                told.append(outcome)
        if done:
            self.message_user(request, f"{verb} {done} payment(s){done_as}.", messages.SUCCESS)
        for outcome in told:
            self.message_user(request, outcome.message, outcome.level)

    def _audit(self, request: HttpRequest, payment: Payment, change: str, change_id: str = "") -> None:
        """Record that ``request``'s user did ``change`` to ``payment`` (nothing when ``change`` is empty), unless
        another request records the change ``change_id`` names. A failure to write it is logged as a warning, never
        raised: what it records is done."""
        if not change:
            return
        end = _claim_recording(payment, change_id) if change_id else _recorded_anyway
        if end is None:
            return
        try:
            self.log_change(request, payment, change)
        except Exception as error:  # the money moved: a trail that cannot be written must not hide it
            end(False)
            log.warning(
                "no admin log entry written for payment %s by user %s (%s): %s",
                quoted(str(payment.pk)),
                quoted(str(request.user.get_username())),
                type(error).__name__,
                quoted(change, limit=1000),
                exc_info=True,
            )
        else:
            end(True)


_RECORDING_LEASE: Final = 60.0
"""Seconds a request holds the recording of a change before another may take it over."""


def _recorded_anyway(recorded: bool) -> None:
    """The end of a recording no other request can claim: nothing to let go."""


def _claim_recording(payment: Payment, change_id: str) -> Callable[[bool], None] | None:
    """The claim of the recording of the change ``change_id`` of ``payment``, in the flow's idempotency store: for
    the first request to claim it, what ends the claim (``True``: recorded, kept for the flow's
    ``idempotency_ttl``; ``False``: not, let go); ``None`` for any other, which records nothing. A store that
    cannot be reached claims nothing: the change is recorded, as if unclaimed."""
    blocking = paycore_django.blocking_flow()
    store = blocking.flow.idempotency_store
    scope, key = f"{scope_of(payment.tenant)}|admin-log", f"{payment.pk}:{change_id}"

    async def claim() -> str | None:
        claimed = await store.claim(scope=scope, key=key, fingerprint="recorded", lease_seconds=_RECORDING_LEASE)
        return claimed.token  # none: recorded already

    async def end(token: str, recorded: bool) -> None:
        if recorded:
            ttl = blocking.flow.config.idempotency_ttl
            await store.complete(scope=scope, key=key, token=token, result={"recorded": True}, ttl_seconds=ttl)
        else:
            await store.release(scope=scope, key=key, token=token)

    def ending(token: str) -> Callable[[bool], None]:
        def ended(recorded: bool) -> None:
            try:
                blocking.run(end, token, recorded)
            except PaycoreError as error:
                log.warning("the recording of %s was not ended: %s", quoted(key), quoted(str(error), limit=300))

        return ended

    try:
        token = blocking.run(claim)
    except (IdempotencyInProgress, IdempotencyKeyReused):
        return None
    except PaycoreError as error:
        log.warning("the recording of %s was not claimed: %s", quoted(key), quoted(str(error), limit=300))
        return _recorded_anyway
    return None if token is None else ending(token)


def audited(outcome: ActionOutcome, before: Payment, after: PaymentRecord, change: str) -> ActionOutcome:
    """``outcome`` recording ``change`` in the audit trail when the action changed the payment: added to its history
    since ``before``, its row as the action read it. A replay, a call with nothing to do and a call the provider
    declined add no event (a declined call's bookkeeping bumps the payment's version, not its history). A replay of
    an answer given since ``before`` was read names the change its first request made: recorded once."""
    if after.event_count == before.event_count:
        return outcome
    # Named by what it says too: another action whose answer shows the same history (a refresh read before this
    # capture and answered after it) names another change, and never takes this one's recording.
    said = hashlib.sha256(change.encode()).hexdigest()[:16]
    return evolve(outcome, change=change, change_id=f"events-{after.event_count}-{said}")


def refund_audited(outcome: ActionOutcome, refund: RefundRecord, known: set[str]) -> ActionOutcome:
    """``outcome`` recording ``refund`` in the audit trail unless it is one of the ``known`` refund ids the payment
    had before (a resubmitted form replays the refund it made; one replayed since ``known`` was read is recorded
    once, by the request that made it)."""
    if refund.id in known:
        return outcome
    return evolve(outcome, change=refund_change(refund), change_id=f"refund-{refund.id}")


def capture_change(payment: PaymentRecord) -> str:
    """What a capture did, from the payment it returned."""
    if payment.status in CAPTURED_STATUSES and payment.captured_amount is not None:
        return f"Captured {payment.captured_amount.display()}"
    return f"Capture sent: {_left(payment)}"


def cancel_change(payment: PaymentRecord) -> str:
    """What a cancel did, from the payment it returned."""
    if payment.status is PaymentStatus.CANCELED:
        return "Canceled"
    return f"Cancel sent: {_left(payment)}"


def refund_change(refund: RefundRecord) -> str:
    """What a refund did, from the refund it returned: refunded, declined, or sent and awaiting the provider."""
    made = f"{refund.amount.display()} (refund {refund.id})"
    if refund.status is RefundStatus.SUCCEEDED:
        return _with(f"Refunded {made}", refund.reason)
    if refund.status is RefundStatus.FAILED:
        return _with(f"Refund of {made} declined by the provider", refund.reason)
    return _with(f"Refund of {made} sent, awaiting the provider", refund.reason)


def refresh_change(payment: PaymentRecord) -> str:
    """What a refresh from the provider found, from the payment it returned."""
    return f"Refreshed from the provider: {_left(payment)}"


def review_change(note: str) -> str:
    """A review resolved with ``note``."""
    return _with("Resolved review", note)


def fraud_change(payment: PaymentRecord, message: str) -> str:
    """A fraud verdict recorded with ``message``, from the payment it returned."""
    return _with(f"Set fraud status to {payment.fraud_status.value}", message)


def refunds_settled_change(refund_ids: list[str], outcome: str, note: str) -> str:
    """The pending refunds ``refund_ids`` of one payment settled as ``outcome`` with ``note``."""
    refunds = "refunds" if len(refund_ids) > 1 else "refund"
    return _with(f"Settled {refunds} {', '.join(refund_ids)} as {outcome}", note)


def payment_settled_change(payment: PaymentRecord, note: str) -> str:
    """An open payment settled with ``note``, from the payment the flow returned: with the amount it records
    captured (succeeded) or held (authorized)."""
    if payment.status is PaymentStatus.SUCCEEDED and payment.captured_amount is not None:
        return _with(f"Settled as succeeded, {payment.captured_amount.display()} captured", note)
    if payment.status is PaymentStatus.AUTHORIZED and payment.authorized_amount is not None:
        return _with(f"Settled as authorized, {payment.authorized_amount.display()} held", note)
    return _with(f"Settled as {payment.status.value}", note)


def _left(payment: PaymentRecord) -> str:
    """The state an action left ``payment`` in: its status, an answer awaited, a flag for review."""
    said = f"the payment is {payment.status.value}"
    call = payment.pending_call
    if call is not None and call.unknown:
        said += f"; its {call.operation.value}'s outcome is unknown, to be checked with the provider"
    if payment.needs_review:
        said += "; it needs review"
    return said


def _with(done: str, note: str) -> str:
    """``done``, and the operator's ``note`` after a colon when there is one."""
    return f"{done}: {note}" if note else done
