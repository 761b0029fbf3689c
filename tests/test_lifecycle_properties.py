"""Properties of every lifecycle: hypothesis drives random operations, the invariants must hold.

A ``RuleBasedStateMachine`` creates payments with every kind of provider
answer, delivers webhooks (duplicated, stale, out of order), captures,
refunds, loses answers, polls and expires, on the memory adapter. Each step
runs in its own event loop, alternating asyncio and trio. After every step:

* succeeded plus pending refunds never exceed the captured amount;
* a payment's status never moves backwards (``fsm.RANK`` never decreases);
* every status change has its event, and event sequences are 1..n;
* the version is the number of stored writes (one per stored change);
* the refund statuses and the payment's status agree.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money, RefundUpdate
from paycore.errors import (
    CaptureExceedsAuthorized,
    InvalidTransition,
    PaymentBusy,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    RefundExceedsCaptured,
)
from paycore.flow import PaymentFlow
from paycore.fsm import RANK
from paycore.records import Payment, PaymentEvent
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider

T = TypeVar("T")

EXPECTED = (
    CaptureExceedsAuthorized,
    InvalidTransition,
    PaymentBusy,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    RefundExceedsCaptured,
)
"""Refusals a random sequence of operations may meet; anything else is a bug."""

BACKENDS = ("asyncio", "trio")


class Lifecycle(RuleBasedStateMachine):
    """Random operations on payments of one flow, checked after every step."""

    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
        self.flow = PaymentFlow.from_config(
            {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}},
            plugins=[paycore.testing.fake, paycore_memory.plugin],
            entry_points=False,
            environ={},
            clock=self._clock,
        )
        provider = self.flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        self.fake = provider
        self.writes: Counter[str] = Counter()
        self._count_writes()
        self.last_status: dict[str, PaymentStatus] = {}
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        self.orders = itertools.count(1)
        self.steps = itertools.count()

    def _clock(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def _count_writes(self) -> None:
        repository = self.flow.repository
        add, save = repository.add, repository.save

        async def counted_add(payment: Payment, *args: Any, **kwargs: Any) -> None:
            await add(payment, *args, **kwargs)
            self.writes[payment.id] += 1

        async def counted_save(payment: Payment, *args: Any, **kwargs: Any) -> None:
            await save(payment, *args, **kwargs)
            self.writes[payment.id] += 1

        update = repository.update

        async def counted_update(*args: Any, **kwargs: Any) -> Any:
            read, written = await update(*args, **kwargs)
            if written is not None:
                self.writes[written.payment.id] += 1
            return read, written

        repository.add = counted_add  # type: ignore[method-assign]
        repository.save = counted_save  # type: ignore[method-assign]
        repository.update = counted_update  # type: ignore[method-assign]

    def run(self, call: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``call`` in a fresh event loop (asyncio and trio in turn); expected refusals give None."""

        async def main() -> T | None:
            try:
                return await call()
            except EXPECTED:
                return None

        return anyio.run(main, backend=BACKENDS[next(self.steps) % 2])

    def _deliver(self, body: bytes, headers: dict[str, str]) -> None:
        self.deliveries.append((body, headers))
        self.run(lambda: self.flow.handle_webhook("fake", body, headers))

    # -- rules -----------------------------------------------------------------------------

    @rule(
        target=payments,
        answer=st.sampled_from(["approve", "pending", "authorize", "decline", "lost", "not_sent"]),
        amount=st.sampled_from([7, 1000, 5000]),
        keyed=st.booleans(),
    )
    def create(self, answer: str, amount: int, keyed: bool) -> str:
        order_id = f"order-{next(self.orders)}"
        self.fake.script("initiate", answer)
        self.run(
            lambda: self.flow.create_payment(
                amount=Money.minor(amount, "XOF"),
                provider="fake",
                order_id=order_id,
                capture=answer != "authorize",
                idempotency_key=order_id if keyed else None,
            )
        )
        operation, payment_id = self.fake.calls[-1]
        assert operation == "initiate"
        return payment_id

    @rule(payment_id=payments, outcome=st.sampled_from([Outcome.SUCCEEDED, Outcome.FAILED, Outcome.EXPIRED]))
    def customer_acts_and_the_provider_tells_us(self, payment_id: str, outcome: Outcome) -> None:
        if payment_id in self.fake.ledger:
            self.fake.settle(payment_id, outcome)
            self._deliver(*self.fake.webhook(payment_id))

    @rule(payment_id=payments, outcome=st.sampled_from(list(Outcome)), underpaid=st.booleans())
    def a_stale_or_reordered_webhook_arrives(self, payment_id: str, outcome: Outcome, underpaid: bool) -> None:
        entry = self.fake.ledger.get(payment_id)
        if entry is not None:
            short = entry.amount - Money.minor(1, entry.amount.currency) if underpaid else None
            self._deliver(*self.fake.webhook(payment_id, outcome=outcome, captured=short))

    @rule(index=st.integers(min_value=0, max_value=1000))
    def a_webhook_is_delivered_again(self, index: int) -> None:
        if self.deliveries:
            body, headers = self.deliveries[index % len(self.deliveries)]
            self.run(lambda: self.flow.handle_webhook("fake", body, headers))

    @rule(
        payment_id=payments,
        half=st.booleans(),
        answer=st.sampled_from(["approve", "decline", "lost", "not_sent"]),
    )
    def capture(self, payment_id: str, half: bool, answer: str) -> None:
        async def capture() -> Payment:
            payment = await self.flow.get_payment(payment_id)
            amount = Money.minor(max(1, payment.amount.minor_units // 2), "XOF") if half else None
            return await self.flow.capture(payment_id, amount=amount)

        self.fake.script("capture", answer)
        self.run(capture)
        self.fake._scripts.pop("capture", None)  # drop the answer if the capture was refused before sending

    @rule(
        payment_id=payments,
        parts=st.sampled_from([1, 2, 3]),
        answer=st.sampled_from(["approve", "pending", "decline", "lost", "not_sent"]),
    )
    def refund(self, payment_id: str, parts: int, answer: str) -> None:
        async def refund() -> Any:
            payment = await self.flow.get_payment(payment_id)
            amount = Money.minor(max(1, payment.amount.minor_units // parts), "XOF")
            return await self.flow.refund(payment_id, amount=amount)

        self.fake.script("refund", answer)
        self.run(refund)
        self.fake._scripts.pop("refund", None)

    def _in(self, statuses: set[PaymentStatus], index: int) -> str | None:
        found = sorted(pid for pid, status in self.last_status.items() if status in statuses)
        return found[index % len(found)] if found else None

    @rule(
        index=st.integers(min_value=0, max_value=1000),
        parts=st.sampled_from([1, 2, 3]),
        answer=st.sampled_from(["approve", "approve", "pending", "lost"]),
    )
    def refund_a_captured_payment(self, index: int, parts: int, answer: str) -> None:
        payment_id = self._in({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED}, index)
        if payment_id is not None:
            self.refund(payment_id, parts, answer)

    @rule(index=st.integers(min_value=0, max_value=1000), half=st.booleans())
    def capture_an_authorized_payment(self, index: int, half: bool) -> None:
        payment_id = self._in({PaymentStatus.AUTHORIZED}, index)
        if payment_id is not None:
            self.capture(payment_id, half, "approve")

    @rule(payment_id=payments, succeed=st.booleans())
    def the_provider_settles_its_refunds_by_webhook(self, payment_id: str, succeed: bool) -> None:
        entry = self.fake.ledger.get(payment_id)
        if entry is None or not entry.refunds:
            return
        status = RefundStatus.SUCCEEDED if succeed else RefundStatus.FAILED
        for refund_id, update in list(entry.refunds.items()):
            if update.status is RefundStatus.PENDING:
                entry.refunds[refund_id] = RefundUpdate(status, refund_id, update.external_id, update.amount)
        self._deliver(*self.fake.webhook(payment_id, refunds=list(entry.refunds.values())))

    @rule(payment_id=payments)
    def cancel(self, payment_id: str) -> None:
        self.run(lambda: self.flow.cancel(payment_id))
        self.fake._scripts.pop("cancel", None)

    @rule(payment_id=payments, poll=st.sampled_from([None, None, "lost"]))
    def refresh(self, payment_id: str, poll: str | None) -> None:
        self.fake.poll_answer = poll
        try:
            self.run(lambda: self.flow.refresh(payment_id))
        finally:
            self.fake.poll_answer = None

    @rule(poll=st.sampled_from([None, None, "lost"]))
    def time_passes_and_the_reaper_runs(self, poll: str | None) -> None:
        self.now += timedelta(hours=2)
        self.fake.poll_answer = poll
        try:
            self.run(lambda: self.flow.expire_stale(timedelta(hours=1)))
        finally:
            self.fake.poll_answer = None

    # -- invariants ------------------------------------------------------------------------

    async def _snapshot(self) -> list[tuple[Payment, list[PaymentEvent]]]:
        payments = await self.flow.list_payments()
        return [(p, await self.flow.list_events(p.id)) for p in payments]

    @invariant()
    def every_payment_keeps_its_promises(self) -> None:
        for payment, events in anyio.run(self._snapshot, backend="asyncio"):
            self._check_money(payment)
            self._check_history(payment, events)

    def _check_money(self, payment: Payment) -> None:
        captured = payment.captured_amount or Money.zero(payment.currency)
        committed = payment.refunded_amount + payment.pending_refund_amount
        assert committed <= captured, f"{payment.id}: refunds {committed} exceed captured {captured}"
        refunded = payment.refunded_amount
        if payment.status is PaymentStatus.REFUNDED:
            assert refunded == captured
        elif payment.status is PaymentStatus.PARTIALLY_REFUNDED:
            assert refunded.is_positive()
            assert refunded < captured
        elif payment.status is not PaymentStatus.SUCCEEDED:
            assert payment.refunds == ()
        else:
            assert refunded.is_zero()

    def _check_history(self, payment: Payment, events: list[PaymentEvent]) -> None:
        before = self.last_status.get(payment.id, PaymentStatus.PENDING)
        assert RANK[payment.status] >= RANK[before], f"{payment.id} moved back from {before} to {payment.status}"
        self.last_status[payment.id] = payment.status
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert payment.event_count == len(events)
        assert events[0].kind == "created"
        status = PaymentStatus.PENDING
        for event in events:
            if event.kind == "status_changed":
                assert event.from_status == status, f"{payment.id}: event from {event.from_status}, was {status}"
                destination = PaymentStatus(event.to_status)
                assert RANK[destination] >= RANK[status]
                status = destination
        assert status is payment.status, f"{payment.id}: events end at {status}, payment is {payment.status}"
        assert payment.version == self.writes[payment.id], f"{payment.id}: version is not the number of writes"


TestLifecycle = Lifecycle.TestCase
TestLifecycle.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
