"""``Reaper``: expires payments left unfinished, without ever guessing an outcome.

A payment never sent is expired at once. One that was sent is first asked
about (when the provider can be polled): a payment paid or failed meanwhile is
recorded as such. One still unpaid is closed at the provider when the provider
can cancel, through an owned provider call like any operation, so the customer
cannot pay it later, and expires on the provider's definitive answer; one whose
provider cannot cancel expires on the poll's definitive "not paid". An unknown
answer, or a provider that can be neither polled nor canceled, flags it for
review instead: time alone never turns an unknown outcome into a failure. A
provider call in flight is left to its owner.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from paycore import fsm
from paycore.calls import CallOperation
from paycore.changes import Change
from paycore.errors import InvalidTransition, PaycoreError, PaymentBusy, ProviderNotSent, ValidationError
from paycore.operations import was_never_sent
from paycore.provider_calls import ProviderCalls, Unknown
from paycore.providers import Provider
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, ReviewReason
from paycore.unit_of_work import PaymentWriter

__all__ = ["Reaper"]

log = logging.getLogger("paycore.reaper")

ProviderLookup = Callable[[str, "str | None"], Provider]

_UNPAID = frozenset({Outcome.PENDING, Outcome.NOT_FOUND})
"""What the provider says of a payment it holds no money for and has not given up on itself."""


class Reaper:
    """Finds stale unfinished payments and settles each as the provider says."""

    def __init__(
        self,
        writer: PaymentWriter,
        calls: ProviderCalls,
        providers: ProviderLookup,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.writer = writer
        self.calls = calls
        self.providers = providers
        self.clock = clock

    async def expire_stale(self, older_than: timedelta, *, limit: int) -> list[Payment]:
        """Expire (or flag) up to ``limit`` payments unfinished for longer than ``older_than``.

        Returns the payments that changed. A payment that cannot be settled now
        is logged and left for the next run.
        """
        stale = await self.writer.repository.list_stale(
            statuses=tuple(sorted(fsm.OPEN)),
            updated_before=self.clock() - older_than,
            limit=limit,
        )
        changed = []
        for payment in stale:
            try:
                result = await self._expire_one(payment)
            except PaycoreError as error:
                log.warning("could not expire payment %s: %s", payment.id, error)
                continue
            if result.version != payment.version:
                changed.append(result)
        return changed

    async def _expire_one(self, payment: Payment) -> Payment:
        call = payment.pending_call
        if call is not None and call.in_flight(self.clock()):
            return payment
        if was_never_sent(payment) and call is None:
            return await self.writer.mutate(payment.id, lambda p: self._expire(p, asked=False))
        chosen = self.providers(payment.provider, payment.tenant)
        if chosen.capabilities.polling:
            polled, answer = await self.calls.poll(payment, chosen, cause="reaper")
            if isinstance(answer, Unknown) or answer.outcome is None:
                reason = answer.reason if isinstance(answer, Unknown) else "the provider does not know it"
                return await self.writer.mutate(
                    payment.id, lambda p: self._flag(p, f"unfinished past its deadline: {reason}")
                )
            if answer.outcome not in _UNPAID or polled.pending_call is not None or polled.status not in fsm.OPEN:
                return polled  # paid, failed or expired at the provider: the poll applied it
            payment = polled
        if chosen.capabilities.cancel:
            return await self._cancel_at_provider(payment, chosen)
        if not chosen.capabilities.polling:
            return await self.writer.mutate(
                payment.id,
                lambda p: self._flag(
                    p, "unfinished past its deadline; the provider can be neither polled nor canceled"
                ),
            )
        return await self.writer.mutate(payment.id, lambda p: self._expire(p, asked=True))

    async def _cancel_at_provider(self, payment: Payment, chosen: Provider) -> Payment:
        """Close the payment at the provider first, through an owned call, so the customer cannot pay it later.

        The provider's definitive "canceled" expires it here; "paid" pays it; an
        unknown answer leaves the call unknown for the next run to settle by asking.
        """
        try:
            started, call = await self.calls.begin(payment.id, CallOperation.CANCEL, _still_open, cause="reaper")
        except (PaymentBusy, InvalidTransition):
            return await self.writer.load(payment.id)
        try:
            answer = await self.calls.ask(chosen.cancel(started), started, call, provider=chosen)
        except (ProviderNotSent, ValidationError) as error:
            log.warning("could not cancel stale payment %s at its provider: %s", payment.id, error)
            return await self.writer.load(payment.id)
        return await self.calls.finish(payment.id, call, answer, chosen)

    def _expire(self, payment: Payment, *, asked: bool) -> Change | None:
        if payment.status not in fsm.OPEN or payment.pending_call is not None:
            return None
        if not asked and not was_never_sent(payment):
            return None
        change = Change(payment, cause="reaper", now=self.clock())
        change.fire("expire", message="the provider reports it unpaid" if asked else "never sent; abandoned")
        return change

    def _flag(self, payment: Payment, message: str) -> Change | None:
        if payment.status not in fsm.OPEN and payment.status is not PaymentStatus.AUTHORIZED:
            return None
        if payment.needs_review and payment.review_reason is ReviewReason.UNKNOWN_OUTCOME:
            return None
        change = Change(payment, cause="reaper", now=self.clock())
        change.flag(ReviewReason.UNKNOWN_OUTCOME, message)
        return change


def _still_open(payment: Payment) -> None:
    """Refuse to cancel a payment that is no longer waiting for its customer."""
    if payment.status not in fsm.OPEN:
        raise InvalidTransition(f"payment {payment.id} is {payment.status.value}; nothing to expire")
