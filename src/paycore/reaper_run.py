"""``Run``: what one run of the reaper has done, how it counts toward its limit, and what it leaves for later.

Each pass of a run (stale open payments, lost answers, pending refunds) tries up to ``limit`` payments of its own.
A run remembers those it saw (a payment it changed may be listed again), those it changed (what
:meth:`~paycore.reaper.Reaper.expire_stale` returns), and the providers whose status polls kept failing: their
payments wait for the next run, and do not count toward the limit. Also here: the reaper's small checks and messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from attrs import define, field

from paycore import fsm
from paycore.calls import HeldCalls, ProviderCall
from paycore.changes import Change
from paycore.errors import InvalidTransition, PaycoreError
from paycore.logs import guarded_logger
from paycore.records import Payment
from paycore.status import PaymentStatus, ReviewReason

__all__ = [
    "CANCEL_LOST",
    "DOWN",
    "DOWN_AFTER",
    "NOT_ENABLED",
    "UNRECORDABLE",
    "Run",
    "as_decided",
    "attempt",
    "cancel_never_arrived",
    "cannot_list_calls",
    "carries",
    "left_to_operator",
    "past_waiting",
    "unknown_call",
    "unknown_outcome_flag",
]

log = guarded_logger("paycore.reaper")

DOWN_AFTER = 3
"""Status polls refused in a row that make a run take a provider for down (one refusal may be one payment's)."""
DOWN = f"its provider failed {DOWN_AFTER} status polls in a row in this run, so it was not asked"
"""Why a payment of a provider a run took for down was not asked about."""
NOT_ENABLED = "its provider is no longer enabled for its tenant, so it could not be asked"
"""Why a payment of a provider the configuration no longer enables (a tenant no longer served) was not asked about."""
CANCEL_LOST = "past its deadline; its cancel never reached the provider"
"""Why a payment is flagged whose reaper's cancel a poll found never arrived."""
UNRECORDABLE = "the provider reports it {} in a report paycore cannot record: settle it with resolve_payment"
"""Why a payment is flagged that a poll reports in a state paycore cannot record (``format`` with the outcome)."""


@define
class Run:
    """One run of the reaper: how many payments it may still try, those it saw, those that changed."""

    limit: int
    tried: int = 0
    seen: set[str] = field(factory=set)
    changed: list[Payment] = field(factory=list)
    down: set[tuple[str, str | None]] = field(factory=set)
    """The providers (code, tenant) whose status polls kept failing in this run: their payments wait for the next."""
    refused: dict[tuple[str, str | None], int] = field(factory=dict)
    """How many status polls of each provider (code, tenant) failed in a row in this run."""
    not_enabled: set[tuple[str, str | None]] = field(factory=set)
    """The providers (code, tenant) of ``down`` the configuration no longer enables."""
    unasked: set[str] = field(factory=set)
    """The payments whose status poll failed in this run: not counted toward its limit."""
    give_up_before: datetime | None = None
    """An open payment created before this no one could ask about is flagged rather than left (twice the deadline)."""

    def next_pass(self, *, give_up_before: datetime | None) -> Run:
        """A run of the next pass: a count of its own, up to the same ``limit`` (each pass tries up to ``limit``
        payments); what this one saw, changed and took for down."""
        seen, changed, down, not_enabled = self.seen, self.changed, self.down, self.not_enabled
        return Run(
            self.limit, seen=seen, changed=changed, down=down, not_enabled=not_enabled, give_up_before=give_up_before
        )

    @property
    def done(self) -> bool:
        """True once ``limit`` payments were tried."""
        return self.tried >= self.limit

    def poll_failed(self, payment: Payment) -> None:
        """A status poll about ``payment`` could not be sent: after ``DOWN_AFTER`` in a row its provider is down."""
        provider = (payment.provider, payment.tenant)
        self.unasked.add(payment.id)
        self.refused[provider] = self.refused.get(provider, 0) + 1
        if self.refused[provider] >= DOWN_AFTER:
            self.down.add(provider)

    def poll_answered(self, payment: Payment) -> None:
        """A status poll about ``payment`` was answered: its provider is up."""
        self.refused.pop((payment.provider, payment.tenant), None)

    def provider_down(self, payment: Payment) -> bool:
        """True once ``payment``'s provider (its code and tenant) was taken for down in this run."""
        return (payment.provider, payment.tenant) in self.down

    def not_enabled_for(self, payment: Payment) -> None:
        """``payment``'s provider is no longer enabled for its tenant: down for the run, as one that fails."""
        self.not_enabled.add((payment.provider, payment.tenant))
        self.down.add((payment.provider, payment.tenant))

    def why_down(self, payment: Payment) -> str:
        """Why a payment of a provider down in this run was not asked about."""
        return NOT_ENABLED if (payment.provider, payment.tenant) in self.not_enabled else DOWN

    def first_sight(self, payment: Payment) -> bool:
        """True the first time the run meets ``payment`` (a payment it changed may be listed again)."""
        if payment.id in self.seen:
            return False
        self.seen.add(payment.id)
        return True


async def attempt(run: Run, payment: Payment, work: Awaitable[Payment]) -> None:
    """Count ``work`` on ``payment`` toward the run's limit; keep the payment it leaves if it changed.

    A payment left as it was because its provider could not be asked about it (down, or no longer enabled: a tenant
    removed from the configuration) is not counted: the run reads on."""
    try:
        result = await work
    except PaycoreError as error:
        log.warning("could not settle stale payment %s: %s", payment.id, error)
        result = payment
    if result.version != payment.version:
        run.changed.append(result)
    elif run.provider_down(payment) or payment.id in run.unasked:
        return
    run.tried += 1


def left_to_operator(payment: Payment) -> bool:
    """True for a payment already flagged because its outcome is unknown: an operator has it now, and runs leave it."""
    return payment.needs_review and payment.review_reason is ReviewReason.UNKNOWN_OUTCOME


def carries(payment: Payment, call: ProviderCall) -> bool:
    """True while ``payment`` still carries ``call`` itself: its id, written down at the same time
    (a retry under the same idempotency key writes a call of the same id)."""
    return payment.pending_call is not None and payment.pending_call.is_the_same(call)


def past_waiting(run: Run, payment: Payment, deadline: datetime) -> bool:
    """True when a payment no one could ask about is flagged rather than left for the next run: its call's
    lease ran out before ``deadline`` and, if it is still open, it was created before the run's
    ``give_up_before`` (the open payments' own rule: twice the deadline)."""
    assert payment.pending_call is not None
    if payment.pending_call.lease_until > deadline:
        return False
    give_up = run.give_up_before
    return payment.status not in fsm.OPEN or give_up is None or payment.created_at < give_up


def as_decided(decided_on: Payment) -> Callable[[Payment], None]:
    """The check of a cancel the reaper decided on ``decided_on`` (as its poll, or its listing, left the payment):
    refuse it for a payment no longer open, or changed since (a report of money, a flag): what was decided on it no
    longer holds, and the payment is left as it is, for the next run or to its operator."""

    def check(payment: Payment) -> None:
        if payment.status not in fsm.OPEN:
            raise InvalidTransition(f"payment {payment.id} is {payment.status.value}; nothing to expire")
        if payment.version != decided_on.version:
            raise InvalidTransition(f"payment {payment.id} changed since the reaper looked at it; not canceled")

    return check


def unknown_call(payment: Payment, why: str) -> str:
    """Why a payment whose provider call stays unknown is flagged."""
    call = payment.pending_call
    operation = call.operation.value if call is not None else "provider"
    return f"unfinished past its deadline; the outcome of its {operation} call is unknown and {why}"


def cannot_list_calls(repository: object) -> None:
    """Say that the reaper leaves lost answers on payments no longer open to the next operation."""
    log.warning(
        "%s cannot list the payments that carry a provider call (paycore.storage.CallListingRepository): the reaper "
        "leaves a lost capture or refund answer to the next operation, refresh or webhook",
        type(repository).__name__,
    )


def cancel_never_arrived(call: ProviderCall | None, polled: Payment, give_up_before: datetime | None) -> bool:
    """True when a poll found that the reaper's own cancel (``call``) of a payment created before ``give_up_before``
    never reached the provider: still open, it is flagged rather than sent a cancel again (and again)."""
    if call is None or not call.closes_abandoned_payment or polled.pending_call is not None:
        return False
    return polled.status in fsm.OPEN and give_up_before is not None and polled.created_at < give_up_before


def unknown_outcome_flag(
    payment: Payment, *, message: str, held: HeldCalls, clock: Callable[[], datetime]
) -> Change | None:
    """The reaper's flag of ``payment`` for an operator, its outcome unknown, saying ``message``; ``None`` when it is
    flagged so already, is no longer open nor authorized, or its call is in flight (``held``: its owner is talking to
    the provider right now, and nothing is unknown yet)."""
    if payment.status not in fsm.OPEN and payment.status is not PaymentStatus.AUTHORIZED:
        return None
    if payment.needs_review and payment.review_reason is ReviewReason.UNKNOWN_OUTCOME:
        return None
    now = clock()
    if payment.pending_call is not None and held.in_flight(payment.pending_call, now):
        return None
    change = Change(payment, cause="reaper", now=now)
    change.flag(ReviewReason.UNKNOWN_OUTCOME, message)
    return change
