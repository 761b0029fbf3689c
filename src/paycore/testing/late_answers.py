"""Scenarios of answers and reports that come late, for ``ProviderBoundaryConformance`` on every storage.

A report may be older than the provider call it meets (a webhook sent before a
capture, a poll asked before a refund): only what it proves settles the call. A
caller may be cancelled while its call's answer travels back: a retry under its
key after the call's lease settles that call by asking and returns what it left,
never sends it again. :class:`LateAnswerScenarios` holds these scenarios and the
suite's shared helpers; :class:`~paycore.testing.boundary_suite.ProviderBoundaryConformance`
runs them with its fixtures (``boundary_flow``, ``provider``; ``storage_config`` and ``storage_plugins``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from paycore.clock import utcnow
from paycore.errors import InvalidTransition, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus, RefundStatus
from paycore.storage import CallListingRepository
from paycore.testing import ledger as ledger_plugin
from paycore.testing.ledger import LedgerProvider

__all__ = ["CODE", "LEASE", "LateAnswerScenarios", "SettableClock", "ledger_flow", "until"]

CODE = "ledger"
"""The code the suite enables the ledger provider under."""

LEASE = 30.0
"""The suite's idempotency lease (and so a provider call's lease), in seconds."""


class SettableClock:
    """A UTC clock a test moves forward by hand (a millisecond passes at each reading)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += timedelta(seconds=seconds)


async def until(condition: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    """Wait until ``condition()`` holds (it is read every 5 ms), for at most ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not await condition():  # noqa: ASYNC110 - the condition reads storage, nothing to wait on
            await anyio.sleep(0.005)


def ledger_flow(
    storage_config: Mapping[str, Any],
    storage_plugins: Sequence[object],
    *,
    provider_timeout: float,
    lease: float,
    clock: Callable[[], datetime] = utcnow,
) -> PaymentFlow:
    """A flow (not yet open) on the storage under test with the ledger provider enabled as :data:`CODE`."""
    config = {
        **storage_config,
        "providers": {CODE: {"type": "ledger", "webhook_secret": "ledger-secret"}},
        "provider_timeout": provider_timeout,
        "idempotency_lease": lease,
        "idempotency_ttl": 3600,
    }
    plugins = [ledger_plugin, *storage_plugins]
    # No storage plugins given: entry points find them (a third party's installed package).
    return PaymentFlow.from_config(config, plugins=plugins, entry_points=not storage_plugins, environ={}, clock=clock)


@asynccontextmanager
async def _on_a_slow_network(
    storage_config: Mapping[str, Any], storage_plugins: Sequence[object], clock: Callable[[], datetime] = utcnow
) -> AsyncIterator[tuple[PaymentFlow, LedgerProvider]]:
    """A ledger flow whose requests travel 0.4 s on a network that outlives their caller (timeout: 0.1 s)."""
    async with (
        ledger_flow(storage_config, storage_plugins, provider_timeout=0.1, lease=LEASE, clock=clock) as flow,
        anyio.create_task_group() as network,
    ):
        provider = flow.provider(CODE)
        assert isinstance(provider, LedgerProvider)
        provider.network, provider.transit = network, 0.4
        yield flow, provider


class LateAnswerScenarios:
    """Late reports and cancelled callers on the storage under test (see the module docstring)."""

    # -- helpers ---------------------------------------------------------------------------

    async def _create(
        self, flow: PaymentFlow, amount: str = "10000", *, capture: bool = True, key: str = ""
    ) -> Payment:
        checkout = await flow.create_payment(
            amount=Money.of(amount, "XOF"),
            provider=CODE,
            order_id=key or "order-1",
            capture=capture,
            idempotency_key=key or None,
        )
        return checkout.payment

    async def _carrying_call(self, flow: PaymentFlow, payment_id: str) -> None:
        async def written() -> bool:
            return (await flow.get_payment(payment_id)).pending_call is not None

        await until(written)

    # -- reports older than the call they meet: only what they prove settles it ------------

    async def test_a_webhook_older_than_an_unknown_capture_never_lets_a_second_capture_through(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        older = provider.delivery(payment.id)  # the authorization's webhook, delivered late
        provider.lose_next("capture")
        lost = await boundary_flow.capture(payment.id, idempotency_key="capture-1")
        assert lost.pending_call is not None
        (late,) = await boundary_flow.handle_webhook(CODE, *older)
        assert late.pending_call is not None, "a report older than the capture settled it"
        with pytest.raises(InvalidTransition):
            await boundary_flow.capture(payment.id, idempotency_key="capture-2")
        await self._assert_captured_once(boundary_flow, provider, payment.id)

    async def test_a_webhook_older_than_an_unknown_refund_never_fails_it(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow)
        older = provider.delivery(payment.id)  # the payment's webhook, listing no refund, delivered late
        provider.lose_next("refund")
        await boundary_flow.refund(payment.id, idempotency_key="refund-1")
        (late,) = await boundary_flow.handle_webhook(CODE, *older)
        (pending,) = late.refunds
        assert pending.status is RefundStatus.PENDING, "a report older than the refund failed it"
        assert late.refundable_amount.is_zero()
        with pytest.raises(InvalidTransition):  # settled by asking first: refunded in full
            await boundary_flow.refund(payment.id, idempotency_key="refund-2")
        await self._assert_refunded_once(boundary_flow, provider, payment.id)

    async def test_a_poll_asked_before_an_unknown_capture_never_settles_it(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        provider.poll_latency = 0.3
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(boundary_flow.refresh, payment.id)
            await self._poll_asked(provider)
            provider.lose_next("capture")
            assert (await boundary_flow.capture(payment.id, idempotency_key="capture-1")).pending_call is not None
        stale = await boundary_flow.get_payment(payment.id)
        assert stale.pending_call is not None, "a poll asked before the capture settled it"
        provider.poll_latency = 0.0
        with pytest.raises(InvalidTransition):
            await boundary_flow.capture(payment.id, idempotency_key="capture-2")
        await self._assert_captured_once(boundary_flow, provider, payment.id)

    async def test_a_poll_asked_before_an_unknown_refund_never_fails_it(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow)
        provider.poll_latency = 0.3
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(boundary_flow.refresh, payment.id)
            await self._poll_asked(provider)
            provider.lose_next("refund")
            await boundary_flow.refund(payment.id, idempotency_key="refund-1")
        (pending,) = (await boundary_flow.get_payment(payment.id)).refunds
        assert pending.status is RefundStatus.PENDING, "a poll asked before the refund failed it"
        provider.poll_latency = 0.0
        with pytest.raises(InvalidTransition):  # settled by asking first: refunded in full
            await boundary_flow.refund(payment.id, idempotency_key="refund-2")
        await self._assert_refunded_once(boundary_flow, provider, payment.id)

    async def _poll_asked(self, provider: LedgerProvider) -> None:
        async def asked() -> bool:
            return provider.polls > 0

        await until(asked)

    async def _assert_captured_once(self, flow: PaymentFlow, provider: LedgerProvider, payment_id: str) -> None:
        final = await flow.get_payment(payment_id)
        assert [r[0] for r in provider.received].count("capture") == 1, "a capture reached the provider twice"
        assert final.status is PaymentStatus.SUCCEEDED
        assert final.pending_call is None
        assert final.captured_amount is not None
        assert final.captured_amount.minor_units == provider.captured_total

    async def _assert_refunded_once(self, flow: PaymentFlow, provider: LedgerProvider, payment_id: str) -> None:
        final = await flow.get_payment(payment_id)
        assert [r[0] for r in provider.received].count("refund") == 1, "a refund reached the provider twice"
        assert provider.refunded_total == 10000
        assert final.refunded_amount == Money.of("10000", "XOF")
        assert final.status is PaymentStatus.REFUNDED
        assert final.pending_call is None

    # -- a request still on its way when its caller stopped waiting: never taken for lost ---

    @pytest.mark.parametrize("operation", ["capture", "refund"])
    async def test_a_request_still_on_its_way_is_never_sent_again(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object], operation: str
    ) -> None:
        async with _on_a_slow_network(storage_config, storage_plugins) as (flow, provider):
            provider.transit = 0.0
            payment = await self._create(flow, capture=operation == "refund")
            provider.transit = 0.4  # it travels longer than its caller waits
            act = flow.capture if operation == "capture" else flow.refund
            await act(payment.id, idempotency_key=f"{operation}-1")
            assert (await flow.get_payment(payment.id)).pending_call is not None
            with pytest.raises(ProviderOutcomeUnknown):  # asked first: the provider has not received it yet
                await act(payment.id, idempotency_key=f"{operation}-2")
            provider.transit = 0.0

            async def arrived() -> bool:
                return len(provider.received) == 2

            await until(arrived)
            await flow.refresh(payment.id)
            with pytest.raises(InvalidTransition):  # now settled by what arrived: nothing left to do
                await act(payment.id, idempotency_key=f"{operation}-3")
            if operation == "capture":
                await self._assert_captured_once(flow, provider, payment.id)
            else:
                await self._assert_refunded_once(flow, provider, payment.id)

    async def test_a_create_still_on_its_way_is_never_taken_for_one_the_provider_has_not(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object]
    ) -> None:
        async with _on_a_slow_network(storage_config, storage_plugins) as (flow, provider):
            payment = await self._create(flow, key="order-1")
            early = await flow.refresh(payment.id)  # "no such payment", while the request is on its way
            assert early.status is not PaymentStatus.EXPIRED
            assert early.pending_call is not None
            assert early.pending_call.unknown

            async def arrived() -> bool:
                return len(provider.received) == 1

            await until(arrived)
            paid = await flow.refresh(payment.id)
            assert (paid.status, paid.pending_call) == (PaymentStatus.SUCCEEDED, None)
            assert paid.captured_amount is not None
            assert paid.captured_amount.minor_units == provider.captured_total

    @pytest.mark.parametrize("operation", ["capture", "refund"])
    async def test_a_poll_asked_before_the_lease_ran_out_never_takes_a_request_on_its_way_for_lost(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object], operation: str
    ) -> None:
        clock = SettableClock()
        async with _on_a_slow_network(storage_config, storage_plugins, clock) as (flow, provider):
            provider.transit = 0.0
            payment = await self._create(flow, capture=operation == "refund")
            provider.transit = 0.5
            act = flow.capture if operation == "capture" else flow.refund
            await act(payment.id, idempotency_key=f"{operation}-1")  # its caller gave up; it is on its way
            clock.advance(LEASE - 1)  # just before the call's lease runs out
            provider.poll_latency = 0.08  # within the timeout
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(flow.refresh, payment.id)
                await self._poll_asked(provider)
                clock.advance(2)  # the lease runs out while the poll's answer travels back
            assert (await flow.get_payment(payment.id)).pending_call is not None, "a poll asked too early settled it"
            provider.poll_latency = 0.0

            async def arrived() -> bool:
                return len(provider.received) == 2

            await until(arrived)
            await flow.refresh(payment.id)  # asked after the lease: the books say what happened
            with pytest.raises(InvalidTransition):
                await act(payment.id, idempotency_key=f"{operation}-2")
            if operation == "capture":
                await self._assert_captured_once(flow, provider, payment.id)
            else:
                await self._assert_refunded_once(flow, provider, payment.id)

    # -- the reaper settles an answer lost on a payment no longer open ----------------------

    async def test_the_reaper_settles_answers_lost_on_payments_no_longer_open_once_their_lease_ran_out(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object]
    ) -> None:
        clock = SettableClock()
        async with ledger_flow(storage_config, storage_plugins, provider_timeout=5, lease=LEASE, clock=clock) as flow:
            if not isinstance(flow.repository, CallListingRepository):
                pytest.skip(f"{type(flow.repository).__name__} cannot list the payments that carry a call (optional)")
            provider = flow.provider(CODE)
            assert isinstance(provider, LedgerProvider)
            authorized = await self._create(flow, capture=False, key="order-a")
            provider.lose_next("capture")
            await flow.capture(authorized.id)
            paid = await self._create(flow, key="order-b")
            provider.lose_next("refund")
            refund = await flow.refund(paid.id)
            assert await flow.expire_stale(3600) == [], "within their lease the calls are their owners'"
            clock.advance(LEASE + 1)
            assert await flow.expire_stale(3600) == [], "within a provider timeout of it, a poll could not settle them"
            clock.advance(5)
            changed = {payment.id: payment for payment in await flow.expire_stale(3600)}
            assert changed[authorized.id].status is PaymentStatus.SUCCEEDED
            assert changed[paid.id].status is PaymentStatus.REFUNDED
            assert [(r.id, r.status) for r in changed[paid.id].refunds] == [(refund.id, RefundStatus.SUCCEEDED)]
            assert all(p.pending_call is None and not p.needs_review for p in changed.values())
            assert [r[0] for r in provider.received].count("capture") == 1
            assert [r[0] for r in provider.received].count("refund") == 1
            assert await flow.expire_stale(3600) == [], "settled once: the next run has nothing to do"

    # -- a caller cancelled while its answer travels: its retry settles, never sends again ---

    @pytest.mark.parametrize("operation", ["capture", "cancel"])
    async def test_a_retry_of_a_caller_cancelled_mid_call_returns_what_its_call_left(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object], operation: str
    ) -> None:
        # The key's lease is short, so the test waits it out; the call's lease is read on a clock the test
        # moves, so a busy machine cannot hold the first request past it before it is sent.
        clock = SettableClock()
        async with ledger_flow(storage_config, storage_plugins, provider_timeout=0.4, lease=0.8, clock=clock) as flow:
            provider = flow.provider(CODE)
            assert isinstance(provider, LedgerProvider)
            payment = await self._create(flow, capture=False)
            provider.latency = 0.3  # the request acts at once; its answer is slow
            act = flow.capture if operation == "capture" else flow.cancel
            with anyio.move_on_after(0.1):  # the caller gives up while the answer travels
                await act(payment.id, idempotency_key=f"{operation}-1")
            provider.latency = 0.0
            clock.advance(2)  # past the call's lease and a timeout after it
            await anyio.sleep(0.9)  # past the key's lease: the retry takes the key and the call over
            again = await act(payment.id, idempotency_key=f"{operation}-1")
            wanted = PaymentStatus.SUCCEEDED if operation == "capture" else PaymentStatus.CANCELED
            assert (again.status, again.pending_call) == (wanted, None)
            assert [r[0] for r in provider.received].count(operation) == 1, f"a {operation} reached the provider twice"
            assert await act(payment.id, idempotency_key=f"{operation}-1") == again  # and replays from then on

    @pytest.mark.parametrize("operation", ["capture", "cancel", "refund"])
    async def test_a_caller_cancelled_as_its_answer_arrives_leaves_it_recorded_and_its_key_completed(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object], operation: str
    ) -> None:
        async with ledger_flow(storage_config, storage_plugins, provider_timeout=5, lease=10) as flow:
            provider = flow.provider(CODE)
            assert isinstance(provider, LedgerProvider)
            payment = await self._create(flow, capture=operation == "refund")
            send = getattr(provider, operation)

            async def act() -> Any:
                if operation == "refund":
                    return await flow.refund(payment.id, amount=Money.of("4000", "XOF"), idempotency_key="op-1")
                return await getattr(flow, operation)(payment.id, idempotency_key="op-1")

            with anyio.CancelScope() as caller:

                async def answered_as_the_caller_gives_up(*args: Any) -> Any:
                    answer = await send(*args)
                    caller.cancel()  # lands at the next wait: the write recording the answer
                    return answer

                setattr(provider, operation, answered_as_the_caller_gives_up)
                try:
                    await act()
                finally:
                    delattr(provider, operation)
            assert caller.cancel_called  # caught, on a store whose write waits; too late to land, on one that does not
            stored = await flow.get_payment(payment.id)
            assert stored.pending_call is None, "the provider answered: its answer is recorded"
            with anyio.fail_after(2):  # the key was completed: the retry replays at once, no lease to wait out
                again = await act()
            done = {
                "capture": PaymentStatus.SUCCEEDED,
                "cancel": PaymentStatus.CANCELED,
                "refund": RefundStatus.SUCCEEDED,
            }
            assert again.status is done[operation]
            assert [r[0] for r in provider.received].count(operation) == 1
