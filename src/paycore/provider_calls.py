"""``ProviderCalls``: the write-before-send protocol between the flow and a provider.

The rules of a call's life are in :mod:`paycore.calls`; this module runs them:

1. :meth:`ProviderCalls.begin` (:meth:`ProviderCalls.write_down`, with the operation's first change) writes the call
   on the payment after re-checking the operation on the freshest copy (a payment carrying one is ``PaymentBusy``);
2. :meth:`ProviderCalls.ask` sends it under the flow's timeout if its caller is there and it can still be answered
   within its lease, and classifies the ending: an answer, *not sent* (nothing happened: the call is undone, as
   for a caller cut between write and send, :meth:`ProviderCalls.unless_cut`), or :class:`Unknown`;
3. :meth:`ProviderCalls.finish` applies the answer and clears the call, only if the payment still carries
   *this* call (the owner's right); an unknown ending marks the call unknown;
4. :meth:`ProviderCalls.settle` runs before any new operation: a call in flight refuses it, an unknown (or
   abandoned) call is settled by asking the provider, never by sending again.

Polls and webhooks are reports: :func:`~paycore.settling.apply_under_call` applies one under the call's rules, and
:meth:`ProviderCalls.poll` asks for one. Within this process, a call is its owner's until its lease ends by the
monotonic clock too (:class:`~paycore.calls.HeldCalls`): a wall clock stepping forward hands no call in flight over.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import anyio
import anyio.lowlevel

from paycore import errors
from paycore.awaiting import run_shielded, run_to_end, within
from paycore.calls import HELD_CALLS, CallOperation, ProviderCall, Unknown
from paycore.changes import Change
from paycore.errors import IdempotencyLeaseLost, PaymentBusy, ProviderNotSent, ProviderOutcomeUnknown, ValidationError
from paycore.logs import guarded_logger
from paycore.money import Money
from paycore.observability import Observation, log_call_failure, observe_provider_call, provider_call_log, quiet
from paycore.providers import Provider
from paycore.records import Payment, ProviderUpdate, RefundUpdate
from paycore.refund_reports import NOT_SENT, fail_refund
from paycore.settling import abandoned, apply_answer, apply_poll, asks_again
from paycore.unit_of_work import PaymentWriter
from paycore.wire import InvalidReport

if TYPE_CHECKING:
    from paycore.keys import KeyBinding
    from paycore.storage import KeyCompletion

__all__ = ["Answer", "ProviderCalls", "Unknown"]

log = guarded_logger("paycore.provider_calls")

T = TypeVar("T")
R = TypeVar("R")
Request: TypeAlias = Coroutine[Any, Any, T]  # a provider request not yet awaited: one never sent is closed

Answer = ProviderUpdate | Unknown
"""How a provider call ended, once a *not sent* ending has been raised."""


class ProviderCalls:
    """Writes provider calls down, sends them, settles them; see the module docstring."""

    def __init__(self, writer: PaymentWriter, *, timeout: float, lease: float, clock: Callable[[], datetime]) -> None:
        self.writer, self.clock = writer, clock
        self.timeout, self.answered_within = timeout, timedelta(seconds=timeout)
        self.lease = timedelta(seconds=lease)
        self.held = HELD_CALLS  # the calls of this process whose answer it awaits, by a steady clock

    # -- the owner's side -----------------------------------------------------------------

    def start(
        self,
        operation: CallOperation,
        *,
        now: datetime,
        amount: Money | None = None,
        refund_id: str | None = None,
        cause: str = "api",
        call_id: str | None = None,
    ) -> ProviderCall:
        """A new call of ``operation``, owned for the configured lease from ``now``."""
        started = partial(ProviderCall.start, amount=amount, refund_id=refund_id, cause=cause, call_id=call_id)
        return self.held.hold(started(operation, now=now, lease=self.lease), self.lease.total_seconds())

    async def begin(
        self,
        payment_id: str,
        operation: CallOperation,
        check: Callable[[Payment], object],
        *,
        amount: Money | None = None,
        cause: str = "api",
        known: Payment | None = None,
        call_id: str | None = None,
    ) -> tuple[Payment, ProviderCall]:
        """Write a call down before it is sent, re-checking ``check`` on the freshest payment.

        ``known`` is the caller's copy of the payment (see :meth:`PaymentWriter.mutate`); ``call_id`` names the call
        (a keyed operation's, derived from its key), else it gets a new id. An operation whose first change is more
        than its call (a refund's record) writes it with :meth:`write_down` and :meth:`first_change`."""
        build = partial(
            self.first_change, operation=operation, check=check, amount=amount, cause=cause, call_id=call_id
        )
        started = await self.write_down(payment_id, build, known=known)
        assert started.pending_call is not None
        return started, started.pending_call

    def first_change(
        self,
        payment: Payment,
        operation: CallOperation,
        check: Callable[[Payment], object],
        *,
        amount: Money | None = None,
        refund_id: str | None = None,
        also: Callable[[Change], None] | None = None,
        cause: str = "api",
        call_id: str | None = None,
    ) -> Change:
        """The change that writes a call of ``operation`` down on ``payment`` (see :meth:`begin`), or its refusal."""
        if payment.pending_call is not None:
            raise payment.pending_call.busy(payment.id)
        check(payment)
        change = Change(payment, cause=cause, now=self.clock())
        call = self.start(operation, now=change.now, amount=amount, refund_id=refund_id, cause=cause, call_id=call_id)
        change.set(pending_call=call)
        if also is not None:
            also(change)
        return change

    async def write_down(
        self, payment_id: str, build: Callable[[Payment], Change], *, known: Payment | None = None
    ) -> Payment:
        """The payment with the call ``build`` writes down (:meth:`first_change`); undone if cut before it is sent."""
        built: list[Change] = []

        def building(payment: Payment) -> Change:
            built.append(build(payment))
            return built[-1]

        def written() -> ProviderCall | None:
            return built[-1].value("pending_call") if built else None

        writing = partial(self.writer.mutate, payment_id, building, known=known)
        return await self.unless_cut(writing, payment_id, written, to_its_end=True)

    async def ask(
        self, request: Request[T], payment: Payment, call: ProviderCall | None, *, provider: Provider | None = None
    ) -> T | Unknown:
        """Await a provider request under the timeout; classify how it ended. ``call`` is the written-down call the
        request is (``None`` for a poll): one that never left (:class:`ProviderNotSent`, a refusal before sending, or
        too late to be answered within its lease) is undone and the error raised. ``provider``: its type in spans and
        metrics, and whether its polls list every refund."""
        what = call.operation.value if call is not None else "check_status"
        if call is not None:  # a caller cancelled (a cancel scope's, trio's) before the request leaves: never sent
            try:
                await self.unless_cut(anyio.lowlevel.checkpoint_if_cancelled, payment.id, lambda: call)
            except BaseException:
                request.close()
                raise
        if call is not None and not call.answers_in_time(self.clock(), self.answered_within):
            request.close()  # held up (a slow observer, a paused process) past the time to be answered: never sent
            if await self.undo(payment.id, call):
                raise ProviderNotSent(f"the {what} of payment {payment.id} was held up past its call's lease: not sent")
            raise IdempotencyLeaseLost(
                f"the {what} of payment {payment.id} was held up past its call's lease and taken over: retry with "
                "the same idempotency key for what it did"
            )
        provider_type = provider.name if provider is not None else None
        lists = provider is not None and provider.capabilities.polls_report_refunds
        if quiet(provider_call_log):  # nothing to record but a failure: no span, no Observation
            started = time.perf_counter()
            try:
                return await self._answer(request, payment, call, what, None, lists)
            except BaseException as error:
                log_call_failure(what, payment.id, payment.provider, payment.currency, provider_type, started, error)
                raise
        with observe_provider_call(
            what,
            payment_id=payment.id,
            provider_code=payment.provider,
            provider_type=provider_type,
            currency=payment.amount.currency,
        ) as observed:
            return await self._answer(request, payment, call, what, observed, lists)

    async def _answer(self, request: Awaitable[T], payment: Payment, call: ProviderCall | None, what: str,
                      seen: Observation | None, lists: bool) -> T | Unknown:  # fmt: skip
        """``await request`` under the timeout (:func:`~paycore.awaiting.within`); classify how it ended. ``seen``
        records it; ``lists``: the provider's polls list every refund."""
        try:
            answer = await within(request, self.timeout)
            expected = RefundUpdate if call is not None and call.operation is CallOperation.REFUND else ProviderUpdate
            if not isinstance(answer, expected):  # a provider's bug: whatever it did, its answer says nothing
                raise InvalidReport(f"{type(answer).__name__} where a {expected.__name__} was due")
            if seen is not None:
                seen.answered(answer)
            return answer
        except InvalidReport as error:
            reason = f"the provider's answer was invalid: {error}"
        except (ProviderNotSent, ValidationError):
            if call is not None:
                await self.undo(payment.id, call, known=payment)
            raise
        except anyio.get_cancelled_exc_class():
            if call is not None:  # no one will hear its answer now: unknown, settled by asking, never sent again
                self.held.release(call)
                with anyio.CancelScope(shield=True), suppress(errors.PaycoreError):  # else in flight to its lease end
                    await self.writer.mutate(payment.id, partial(abandoned, call, self.clock(), lists))
            raise
        except ProviderOutcomeUnknown as error:
            reason = str(error) or "no usable answer"
        except TimeoutError:
            reason = f"no answer within {self.timeout:g}s"
        except Exception as error:
            log.exception("provider %r failed during %s of %s", payment.provider, what, payment.id)
            reason = f"the provider call failed: {type(error).__name__}"
        except BaseException:  # the process is going (an interrupt, an exit): no one here awaits the answer now
            if call is not None:
                self.held.release(call)
            raise
        if seen is not None:
            seen.unknown()
        log.warning("outcome of %s of payment %s is unknown: %s", what, payment.id, reason)
        return Unknown(reason)

    async def finish(self, payment_id: str, call: ProviderCall, answer: Answer, provider: Provider, *,
                     known: Payment | None = None,
                     complete: Callable[[Payment], KeyCompletion | None] | None = None) -> Payment:  # fmt: skip
        """Apply the answer to ``call`` and clear it, if the payment still carries it.

        If someone settled the call meanwhile (its lease had run out), the answer is applied as any report would be,
        and the payment's current call is left alone. ``known`` is the payment as the call was written down (see
        :meth:`PaymentWriter.mutate`); ``complete`` gives the idempotency key the write completes (:meth:`conclude`)."""
        self.held.release(call)
        build = partial(apply_answer, call=call, answer=answer, capabilities=provider.capabilities, clock=self.clock)
        try:
            finished = await self.writer.record(payment_id, build, call, self.clock, known=known, complete=complete)
        except Exception:  # a cancellation is not logged: the write ends anyway (conclude's run_shielded)
            log.error("could not record the answer to %s of payment %s", call.operation.value, payment_id)
            raise
        if asks_again(finished, call, answer):
            # The answer named no amount: ask the provider for the amounts before anything else.
            finished = await self.settle_if_possible(finished, provider)
        return finished

    async def conclude(
        self,
        payment_id: str,
        call: ProviderCall,
        answer: Answer,
        provider: Provider,
        result: Callable[[Payment], R],
        *,
        known: Payment | None = None,
        binding: KeyBinding | None = None,
    ) -> R:
        """:meth:`finish` an operation's call and return the operation's ``result`` of the payment it leaves.

        ``binding`` is the operation's idempotency key. When its store can (:class:`~paycore.idempotency.KeyCompleter`),
        the write recording the answer, if the operation's last, also completes the key with that result; a key kept
        apart is completed after it. Keyed or not, that write is shielded (:func:`~paycore.awaiting.run_shielded`): the
        provider has answered, so a caller cancelled meanwhile still leaves the answer recorded (and its key completed).
        """
        if binding is None:
            return result(await run_shielded(partial(self.finish, payment_id, call, answer, provider, known=known)))
        completer, conclude = binding.completer, binding.conclude  # the result, for a key a cancel left unkept
        if completer is None:
            finish = partial(self.finish, payment_id, call, answer, provider, known=known)
            return result(await run_shielded(finish, ended=lambda finished: conclude(result(finished))))
        last: tuple[Payment, R] | None = None  # the latest write decided with a completion, and its result

        def complete(written: Payment) -> KeyCompletion | None:
            nonlocal last
            if asks_again(written, call, answer):
                return None
            last = (written, result(written))
            return completer.completing(last[1])

        def outcome(finished: Payment) -> R:  # the very result the write stored for the key, if it did
            return last[1] if last is not None and last[0] is finished else result(finished)

        finish = partial(self.finish, payment_id, call, answer, provider, known=known, complete=complete)
        return outcome(await run_shielded(finish, ended=lambda finished: conclude(outcome(finished))))

    def past_arriving(self, call: ProviderCall) -> bool:
        """True once no request of ``call`` can reach the provider: its lease ran out a timeout ago (clocks differ)."""
        return not self.held.holds(call) and call.lease_ran_out(self.clock() - self.answered_within)

    def may_still_arrive(self, call: ProviderCall) -> bool:
        """True while a request of ``call`` may still reach the provider (:meth:`past_arriving` not yet)."""
        return not self.past_arriving(call)

    async def undo(self, payment_id: str, call: ProviderCall, *, known: Payment | None = None) -> bool:
        """Undo a written-down call whose request never left: nothing happened. False if the payment no longer
        carries that very call (someone settled it, or a retry under its key wrote its own, of the same id)."""
        undone = False
        self.held.release(call)

        def build(payment: Payment) -> Change | None:
            nonlocal undone
            undone = payment.pending_call is not None and payment.pending_call.is_the_same(call)
            if not undone:
                return None
            change = Change(payment, cause=call.cause, now=self.clock())
            change.set(pending_call=None)
            if call.refund_id is not None:
                fail_refund(change, payment.refund(call.refund_id), NOT_SENT)
            return change

        with anyio.CancelScope(shield=True):
            await self.writer.mutate(payment_id, build, known=known)
        return undone

    async def unless_cut(
        self,
        writing: Callable[[], Awaitable[T]],
        payment_id: str,
        written: Callable[[], ProviderCall | None],
        *,
        to_its_end: bool = False,
    ) -> T:
        """``await writing()`` (a call's write, the telling of its events); a caller cancelled meanwhile has the call
        ``written`` undone (:meth:`undo`) to its end first: never sent, its key's retry sends it at once. A write
        (``to_its_end``) is made to its end (:func:`~paycore.awaiting.run_to_end`) unless the repository's units never
        wait: a caller cancelled as its unit of work runs in a worker thread still learns what the unit wrote."""
        try:
            return await (run_to_end(writing) if to_its_end and not self.writer.writes_at_once else writing())
        except anyio.get_cancelled_exc_class():
            call = written()
            if call is not None:
                with suppress(errors.PaycoreError):  # unwritable now: the call's lease settles it
                    await run_to_end(partial(self.undo, payment_id, call))
            raise

    # -- settling -------------------------------------------------------------------------

    async def settle(self, payment: Payment, provider: Provider, *, resending_create: bool = False) -> Payment:
        """Before a new operation: refuse while a call is in flight; settle an unknown one by asking
        (``resending_create``: a create that never arrived leaves its payment pending, to be sent again)."""
        call = payment.pending_call
        if call is None:
            return payment
        if self.held.in_flight(call, self.clock()):
            raise call.busy(payment.id)
        if not provider.capabilities.polling:
            raise ProviderOutcomeUnknown(
                f"payment {payment.id}: the outcome of its {call.operation.value} call is unknown and provider "
                f"{provider.code!r} cannot be polled; wait for its webhook"
            )
        settled, _ = await self.poll(payment, provider, resending_create=resending_create)
        remaining = settled.pending_call
        if remaining is not None:
            if remaining.id != call.id and self.held.in_flight(remaining, self.clock()):
                raise remaining.busy(settled.id)
            raise ProviderOutcomeUnknown(
                f"payment {payment.id}: the outcome of its {call.operation.value} call is still unknown"
            )
        return settled

    async def settle_if_possible(self, payment: Payment, provider: Provider) -> Payment:
        """:meth:`settle`, keeping the payment as it is when the provider cannot say yet."""
        if not provider.capabilities.polling:
            return payment
        try:
            return await self.settle(payment, provider)
        except (ProviderOutcomeUnknown, ProviderNotSent, PaymentBusy):
            return await self.writer.load(payment.id)

    async def poll(
        self,
        payment: Payment,
        provider: Provider,
        *,
        cause: str = "poll",
        confirming: bool = False,
        resending_create: bool = False,
    ) -> tuple[Payment, Answer]:
        """Ask the provider for the payment's state and apply the answer as a report; return both. ``confirming``:
        it asks what a report of money left unsaid, and an answer that the payment did not pay only flags it."""
        asked = payment.pending_call  # only a call no request of which can still arrive is settled by omission
        asked_after = asked if asked is not None and self.past_arriving(asked) else None
        answer = await self.ask(provider.check_status(payment), payment, None, provider=provider)
        build = partial(
            apply_poll,
            answer=answer,
            cause=cause,
            clock=self.clock,
            capabilities=provider.capabilities,
            confirming=confirming,
            asked_after=asked_after,
            asked_on=payment,
            resending_create=resending_create,
        )
        return await self.writer.record(payment.id, build, None, self.clock, known=payment, cause=cause), answer
