"""``Reaper``: expires payments left unfinished, without ever guessing an outcome.

A payment never sent is expired at once. A sent one is first asked about when its provider can be polled (paid or
failed meanwhile is recorded). One still unpaid is canceled at a provider that can cancel, through an owned call like
any operation, and expires on its definitive answer; else it expires on the poll's definitive "not paid" when a
webhook would tell of a later payment, or is flagged. Time alone never turns an unknown outcome into a failure: a
payment no one could ask about waits, flagged past twice its deadline. A call in flight is left to its owner. An
expiry or a cancel is written only on the payment as the poll (or listing) left it: one changed since is left.

A provider call whose answer was lost on a payment in any other status (a capture of an authorized payment, a refund
of a paid one) is settled the same way once its lease has run out, when the repository can list the payments that
carry a call (:class:`~paycore.storage.CallListingRepository`): the provider is asked, never sent the request again;
a call that asking leaves unknown, or that no one can ask about, gets its payment flagged for review once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from paycore import fsm
from paycore.calls import CallOperation, ProviderCall
from paycore.changes import Change
from paycore.errors import InvalidTransition, PaymentBusy, ProviderNotEnabled, ProviderNotSent, ValidationError
from paycore.listing import MAX_LIMIT, check_limit
from paycore.logs import guarded_logger
from paycore.operations import was_never_sent
from paycore.provider_calls import ProviderCalls, Unknown
from paycore.providers import Provider
from paycore.reaper_run import (
    CANCEL_LOST,
    UNRECORDABLE,
    Run,
    as_decided,
    attempt,
    cancel_never_arrived,
    cannot_list_calls,
    carries,
    left_to_operator,
    past_waiting,
    unknown_call,
    unknown_outcome_flag,
)
from paycore.records import Payment, ProviderUpdate
from paycore.status import Outcome, RefundStatus, ReviewReason
from paycore.storage import CallListingRepository, RefundListingRepository
from paycore.unit_of_work import PaymentWriter

__all__ = ["Reaper"]

log = guarded_logger("paycore.reaper")

ProviderLookup = Callable[[str, "str | None"], Provider]

_UNPAID = frozenset({Outcome.PENDING, Outcome.NOT_FOUND})
"""What the provider says of a payment it holds no money for and has not given up on itself."""

_CALLS_PAGE = 100
"""The fewest payments carrying a call read at once: a run reads on past those it leaves alone."""


class Reaper:
    """Finds stale unfinished payments and settles each as the provider says."""

    def __init__(
        self, writer: PaymentWriter, calls: ProviderCalls, providers: ProviderLookup, *, clock: Callable[[], datetime]
    ) -> None:
        self.writer = writer
        self.calls = calls
        self.providers = providers
        self.clock = clock
        self._said_calls_unlisted = False
        """True once this reaper warned that its repository cannot list the payments carrying a call."""
        self._refunds_from: tuple[datetime, str] | None = None
        """Where the last run's pass over pending refunds stopped for its limit: the next one starts there."""

    async def expire_stale(self, older_than: timedelta, *, limit: int) -> list[Payment]:
        """Expire (or flag) up to ``limit`` payments unfinished for longer than ``older_than``, oldest first.

        Then, in a pass with ``limit`` payments of its own, settle the provider calls whose answer was lost
        and whose lease has run out, on payments of any status (see :meth:`_settle_calls`); and, in a third
        pass with ``limit`` of its own, ask about refunds left pending at the provider since ``older_than``
        (see :meth:`_settle_refunds`). Returns the payments that changed. What the run leaves alone is read
        past without counting toward ``limit``, so it never holds up the payments behind it: an open payment
        that awaits review (an operator has it; a refresh or a webhook still settles it), one whose call is
        in flight, and, once its provider could not be asked in this run, that provider's other payments
        (left for the next run, flagged only past twice their deadline).
        """
        check_limit(limit, 1)
        deadline = self.clock() - older_than
        run = Run(limit)
        await self._expire_open(run, deadline, deadline - older_than)
        calls = run.next_pass(give_up_before=deadline - older_than)
        await self._settle_calls(calls, deadline)
        refunds = calls.next_pass(give_up_before=calls.give_up_before)
        await self._settle_refunds(refunds, deadline)
        return run.changed

    async def _expire_open(self, run: Run, deadline: datetime, give_up_before: datetime) -> None:
        """Expire (or flag) the open payments not updated since ``deadline``, oldest first."""
        window = run.limit
        while not run.done:
            stale = await self.writer.repository.list_stale(
                statuses=tuple(sorted(fsm.OPEN)), updated_before=deadline, limit=window
            )
            for payment in stale:  # one it leaves alone stays unseen: the lost answers' pass may take it up
                if self._to_expire(run, payment, give_up_before) and run.first_sight(payment):
                    await attempt(run, payment, self._expire_one(run, payment, give_up_before))
                    if run.done:
                        break
            if len(stale) < window:
                break
            window = min(window * 2, MAX_LIMIT)

    async def _settle_calls(self, run: Run, deadline: datetime) -> None:
        """Settle, oldest first, the provider calls out of their owners' hands whose lease has run out.

        Whatever the payment's status: an authorized payment whose capture's answer was lost, a
        paid one whose refund's was. Calls still in flight, or within their lease, are left alone.
        """
        repository = self.writer.repository
        if not isinstance(repository, CallListingRepository):
            if not self._said_calls_unlisted:
                self._said_calls_unlisted = True
                cannot_list_calls(repository)
            return
        page_size = max(run.limit, _CALLS_PAGE)
        after: tuple[datetime, str] | None = None
        while not run.done:
            page = await repository.list_with_calls(limit=page_size, after=after)
            for payment in page:
                if run.first_sight(payment) and self._call_due(payment) and not left_to_operator(payment):
                    if run.provider_down(payment) and not past_waiting(run, payment, deadline):
                        continue  # its provider could not be asked in this run: the next run asks
                    await attempt(run, payment, self._settle_call(run, payment, deadline))
                    if run.done:
                        break
            if len(page) < page_size:
                break
            after = (page[-1].updated_at, page[-1].id)

    async def _settle_refunds(self, run: Run, deadline: datetime) -> None:
        """Ask, oldest first, about the payments holding a refund pending at the provider since before ``deadline``
        (its report lost), when the repository can list them (:class:`~paycore.storage.RefundListingRepository`)."""
        repository = self.writer.repository
        if not isinstance(repository, RefundListingRepository):
            return
        page_size = max(run.limit, _CALLS_PAGE)
        after, wrapped, tried = self._refunds_from, self._refunds_from is None, None
        while not run.done:  # from where the last run stopped, round to it: no refund holds up the ones behind it
            page = await repository.list_with_pending_refunds(updated_before=deadline, limit=page_size, after=after)
            for payment in page:  # one carrying a call is its owner's, or the lost answers' pass's
                if run.first_sight(payment) and payment.pending_call is None and not left_to_operator(payment):
                    asked = not run.provider_down(payment)
                    await attempt(run, payment, self._settle_refund(run, payment))
                    tried = (payment.updated_at, payment.id) if asked else tried
                    if run.done:
                        break
            if run.done or len(page) == page_size:
                after = (page[-1].updated_at, page[-1].id) if page else None
            elif wrapped:
                break
            else:
                after, wrapped = None, True
        self._refunds_from = tried if run.done or run.down else None  # a provider down: its next run starts behind

    async def _settle_refund(self, run: Run, payment: Payment) -> Payment:
        """Ask the provider about ``payment``'s pending refunds, when its polls list every refund: the poll settles each
        as the provider says (one it still holds pending is stamped heard of). One no one could ask about or reach, or
        one the answer left out, is flagged once not heard of since before twice the deadline."""
        chosen = self._provider(run, payment)
        if chosen is None:  # asked by the next run, which starts behind those that failed in this one
            return await self._refund_unheard(run, payment, run.why_down(payment))  # unless unheard of for too long
        if not (chosen.capabilities.polling and chosen.capabilities.polls_report_refunds):
            return await self._refund_unheard(run, payment, "the provider cannot be asked about its refunds")
        polled, answer, why = await self._poll(run, payment, chosen)
        return await self._refund_unheard(run, polled, why if answer is None else "the provider's answer left it out")

    async def _refund_unheard(self, run: Run, payment: Payment, why: str) -> Payment:
        """``payment`` flagged for an operator (who settles it: :meth:`~paycore.flow.PaymentFlow.resolve_refund`)
        when a refund of it not heard of since before the run's ``give_up_before`` was not heard of now either."""
        give_up = run.give_up_before
        assert give_up is not None  # set by expire_stale for each of its passes but the first
        refund = next((r for r in payment.refunds if r.status is RefundStatus.PENDING and r.updated_at < give_up), None)
        if refund is None:
            return payment
        message = f"refund {refund.id} of {refund.amount} is pending, unheard of since {refund.updated_at}"

        def build(current: Payment) -> Change | None:
            if refund not in current.refunds or current.pending_call is not None or left_to_operator(current):
                return None  # heard of since, settled, or taken up by an operator or a call
            change = Change(current, cause="reaper", now=self.clock())
            change.flag(ReviewReason.UNKNOWN_OUTCOME, f"{message} and {why}")
            return change

        return await self.writer.mutate(payment.id, build, known=payment)

    def _to_expire(self, run: Run, payment: Payment, give_up_before: datetime) -> bool:
        """True for an open payment the run takes up: not one awaiting review, nor one whose call is in
        flight, nor, while its provider is down in this run, one it would not flag yet."""
        call = payment.pending_call
        if payment.needs_review or (call is not None and not self._settleable(call)):
            return False
        if call is None and was_never_sent(payment):
            return True  # expired without asking any provider
        return not run.provider_down(payment) or payment.created_at < give_up_before

    def _call_due(self, payment: Payment) -> bool:
        """True when the payment's call is out of its owner's hands and a poll can settle it (:meth:`_settleable`)."""
        call = payment.pending_call
        return call is not None and self._settleable(call)

    def _settleable(self, call: ProviderCall) -> bool:
        """True once ``call``'s lease ran out a provider timeout ago: a poll asked now settles it whatever it says
        (:meth:`ProviderCalls.poll`); before that the call is left alone, in flight or not."""
        return self.calls.past_arriving(call)

    async def _poll(self, run: Run, payment: Payment, chosen: Provider) -> tuple[Payment, ProviderUpdate | None, str]:
        """Ask ``chosen`` about ``payment`` as the reaper (the poll's answer applied); the payment as it left, the
        answer, and why there is none. A read that could not be sent, or that the provider did not serve (a timeout,
        a 503), says nothing of the money: no answer, and it counts toward taking the provider for down this run."""
        try:
            polled, answer = await self.calls.poll(payment, chosen, cause="reaper")
        except ProviderNotSent as error:
            run.poll_failed(payment)
            return payment, None, f"the provider could not be asked: {error}"
        if isinstance(answer, Unknown):
            run.poll_failed(payment)
            return polled, None, f"asking the provider failed: {answer.reason}"
        run.poll_answered(payment)
        return polled, answer, ""

    async def _settle_call(self, run: Run, payment: Payment, deadline: datetime) -> Payment:
        """Settle the payment's call by asking the provider, never by sending it again; flag it when it stays unknown.

        A call no one can ask about (the provider cannot be polled, or cannot be reached) is left to a
        webhook until its lease ran out before ``deadline``, then flagged.
        """
        call = payment.pending_call
        assert call is not None
        chosen = self._provider(run, payment)
        if chosen is None:
            return await self._call_unasked(run, payment, call, deadline, run.why_down(payment))
        if not chosen.capabilities.polling:
            return await self._call_unasked(run, payment, call, deadline, "the provider cannot be polled")
        polled, answer, why = await self._poll(run, payment, chosen)
        if not carries(polled, call):
            if cancel_never_arrived(call, polled, run.give_up_before):
                return await self._flagged(polled, CANCEL_LOST)
            return polled
        if answer is None:
            log.warning("could not settle the %s call of payment %s: %s", call.operation.value, payment.id, why)
            return await self._call_unasked(run, polled, call, deadline, why)
        return await self._flag_call(polled, call, "asking the provider did not settle it")

    async def _call_unasked(
        self, run: Run, payment: Payment, call: ProviderCall, deadline: datetime, why: str
    ) -> Payment:
        """A call no one could ask about: left for a webhook or the next run, flagged once it waited long enough
        (:func:`_past_waiting`), so no outcome stays open untold."""
        if not past_waiting(run, payment, deadline):
            return payment
        return await self._flag_call(payment, call, why)

    async def _flag_call(self, payment: Payment, call: ProviderCall, why: str) -> Payment:
        """The payment flagged for an operator while it still carries ``call``, unless it is flagged already."""
        message = f"the outcome of its {call.operation.value} call is unknown and {why}"

        def build(current: Payment) -> Change | None:
            if not carries(current, call) or left_to_operator(current):
                return None
            change = Change(current, cause="reaper", now=self.clock())
            change.flag(ReviewReason.UNKNOWN_OUTCOME, message)
            return change

        return await self.writer.mutate(payment.id, build, known=payment)

    async def _expire_one(self, run: Run, payment: Payment, give_up_before: datetime) -> Payment:
        """Settle ``payment`` as its provider says; one the provider cannot be asked about is left for the
        next run, and flagged once it was created before ``give_up_before`` (twice its deadline ago)."""
        call, listed = payment.pending_call, payment  # none in flight: only calls a poll can settle (_to_expire)
        if was_never_sent(payment) and call is None:
            return await self._expired(payment, asked=None)
        chosen = self._provider(run, payment)
        if chosen is None:
            return await self._unreachable(payment, give_up_before, run.why_down(payment))
        if chosen.capabilities.polling:
            polled, answer, why = await self._poll(run, payment, chosen)
            if answer is None:
                return await self._unreachable(polled, give_up_before, why)
            if answer.outcome is None:
                return await self._flagged(payment, "unfinished past its deadline: the provider does not know it")
            if polled.pending_call is not None:
                if call is None or not carries(polled, call):
                    return polled  # a call someone made meanwhile: its owner settles it
                return await self._flagged(polled, unknown_call(polled, "asking the provider did not settle it"))
            if polled.status in fsm.OPEN and polled.version == payment.version and answer.outcome not in _UNPAID:
                return await self._flagged(
                    polled, UNRECORDABLE.format(answer.outcome.value)
                )  # else polled every run, first in line
            if answer.outcome not in _UNPAID or polled.status not in fsm.OPEN:
                return polled  # paid, failed or expired at the provider: the poll applied it
            if polled.needs_review and not payment.needs_review:
                return polled  # the poll flagged it (the provider lost a payment it named): an operator has it
            if cancel_never_arrived(call, polled, give_up_before):
                return await self._flagged(polled, CANCEL_LOST)
            payment = polled
        elif call is not None:
            return await self._flagged(payment, unknown_call(payment, "the provider cannot be polled"))
        if chosen.capabilities.cancel:
            return await self._left(await self._cancel_at_provider(payment, chosen, give_up_before), payment, listed)
        if not chosen.capabilities.polling:
            return await self._flagged(
                payment, "unfinished past its deadline; the provider can be neither polled nor canceled"
            )
        if not chosen.capabilities.webhooks:  # still payable there, and nothing would tell of a later payment
            return await self._flagged(payment, "unpaid past its deadline; the provider can neither cancel nor tell")
        return await self._left(await self._expired(payment, asked=payment), payment, listed)

    async def _left(self, settled: Payment, decided: Payment, listed: Payment) -> Payment:
        """``settled``; or, when the run left the payment as it was (``decided``: changed by others since it was
        decided on), the copy it listed if its poll wrote nothing (tried, not changed), else the payment as stored."""
        if settled is not decided:
            return settled
        return listed if decided.version == listed.version else await self.writer.load(decided.id)

    async def _cancel_at_provider(self, payment: Payment, chosen: Provider, give_up_before: datetime) -> Payment:
        """Close the payment at the provider first, through an owned call, so the customer cannot pay it later.

        The provider's definitive "canceled" expires it here; "paid" pays it; an unknown answer leaves the call
        unknown for the next run to settle by asking; a cancel that could not be sent, or that leaves the payment
        unfinished at the provider (its money still on its way), waits for the next run (:meth:`_unreachable`); one
        whose answer flags the payment (paid another amount) leaves it to an operator. A payment changed since the
        reaper decided on ``payment`` (a report since its poll or listing) is not canceled: left as it is."""
        try:
            check = as_decided(payment)  # still open, and as the poll (or the listing) left it: no report since
            started, call = await self.calls.begin(
                payment.id, CallOperation.CANCEL, check, cause="reaper", known=payment
            )
        except (PaymentBusy, InvalidTransition):
            return payment  # no longer as decided on (or a call of another's): tried, and left as it is
        try:
            answer = await self.calls.ask(chosen.cancel(started), started, call, provider=chosen)
        except (ProviderNotSent, ValidationError) as error:  # a refusal of this cancel: the provider is not down
            return await self._unreachable(payment, give_up_before, f"its cancel was refused or not sent: {error}")
        done = await self.calls.conclude(payment.id, call, answer, chosen, lambda finished: finished)  # shielded
        if done.needs_review and not started.needs_review:
            return done  # its answer (or a report meanwhile) flagged it: an operator has it, with its own flag
        if done.status in fsm.OPEN and done.pending_call is None:  # still unfinished at the provider: told in time
            return await self._unreachable(done, give_up_before, "the provider reports it unfinished after its cancel")
        return done

    def _provider(self, run: Run, payment: Payment) -> Provider | None:
        """``payment``'s provider, or ``None`` while it is down in this run (no longer enabled: down from now on)."""
        if not run.provider_down(payment):
            try:
                return self.providers(payment.provider, payment.tenant)
            except ProviderNotEnabled:
                run.not_enabled_for(payment)
        return None

    async def _unreachable(self, payment: Payment, give_up_before: datetime, reason: str) -> Payment:
        """A payment the provider could not be reached about: left for the next run, flagged once it was
        created before ``give_up_before`` (twice its deadline ago), so no outcome stays open untold."""
        log.warning("could not settle stale payment %s: %s", payment.id, reason)
        if payment.created_at >= give_up_before:
            return payment
        return await self._flagged(payment, f"unfinished past its deadline; {reason}")

    async def _flagged(self, payment: Payment, message: str) -> Payment:
        """The payment flagged for an operator (its outcome unknown), unless it is already."""
        flag = partial(unknown_outcome_flag, message=message, held=self.calls.held, clock=self.clock)
        return await self.writer.mutate(payment.id, flag)

    async def _expired(self, payment: Payment, *, asked: Payment | None) -> Payment:
        """The payment once :meth:`_expire` wrote; ``payment`` itself when it left the stored one as it was (changed
        since, by a report or another run): tried, and not changed by this run."""
        decided: list[Change | None] = []  # what the last try of the write decided

        def expire(current: Payment) -> Change | None:
            decided.append(self._expire(current, asked=asked))
            return decided[-1]

        done = await self.writer.mutate(payment.id, expire, known=asked)
        return done if decided[-1] is not None else payment

    def _expire(self, payment: Payment, *, asked: Payment | None) -> Change | None:
        """``payment`` expired: never sent, or (``asked``: as the poll that found it unpaid left it) unchanged since
        that poll. One changed since (a report, a flag) is left as it is, for the next run or to its operator."""
        if payment.status not in fsm.OPEN or payment.pending_call is not None:
            return None
        if asked is None and not was_never_sent(payment):
            return None
        if asked is not None and payment.version != asked.version:
            return None
        change = Change(payment, cause="reaper", now=self.clock())
        change.fire("expire", message="never sent; abandoned" if asked is None else "the provider reports it unpaid")
        return change
