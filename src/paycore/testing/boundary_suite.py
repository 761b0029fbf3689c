"""``ProviderBoundaryConformance``: a provider call in flight belongs to its caller, on any storage.

Every storage backend runs these scenarios against itself (the memory adapter,
SQLite and PostgreSQL through the SQL adapter, Django's ORM...): a slow
:class:`~paycore.testing.ledger.LedgerProvider` keeps the provider's books while
polls, webhooks and second operations race the call in flight. Subclass it and
provide two fixtures:

* ``storage_config``: the configuration keys of the storage under test
  (``{"repository": "sqlite:///..."}``);
* ``storage_plugins``: the plugin modules that register that storage (``()``
  when entry points would find them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import pytest

from paycore.errors import InvalidTransition, PaymentBusy, RefundExceedsCaptured
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.late_answers import CODE, LEASE, LateAnswerScenarios, SettableClock, ledger_flow, until
from paycore.testing.ledger import LedgerProvider
from paycore.testing.storage_under_test import StorageUnderTest

__all__ = ["CODE", "ProviderBoundaryConformance", "SettableClock"]


class ProviderBoundaryConformance(LateAnswerScenarios, StorageUnderTest):
    """The provider-boundary rules, proven on a storage backend (see the module docstring)."""

    @pytest.fixture
    def boundary_clock(self) -> SettableClock:
        """The flow's clock."""
        return SettableClock()

    @pytest.fixture
    async def boundary_flow(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object], boundary_clock: SettableClock
    ) -> AsyncIterator[PaymentFlow]:
        """A flow on the storage under test with the ledger provider enabled as ``"ledger"``."""
        async with ledger_flow(
            storage_config, storage_plugins, provider_timeout=10, lease=LEASE, clock=boundary_clock
        ) as flow:
            yield flow

    @pytest.fixture
    def provider(self, boundary_flow: PaymentFlow) -> LedgerProvider:
        """The ledger provider of the flow."""
        found = boundary_flow.provider(CODE)
        assert isinstance(found, LedgerProvider)
        return found

    # -- the scenarios ---------------------------------------------------------------------

    async def test_a_poll_during_a_capture_in_flight_never_lets_a_second_capture_through(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        provider.transit = 0.3
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: boundary_flow.capture(payment.id, idempotency_key="capture-1"))
            await self._carrying_call(boundary_flow, payment.id)
            polled = await boundary_flow.refresh(payment.id)
            assert polled.status is PaymentStatus.AUTHORIZED
            assert polled.pending_call is not None, "a poll cleared a call it does not own"
            with pytest.raises(PaymentBusy):
                await boundary_flow.capture(payment.id, idempotency_key="capture-2")
        final = await boundary_flow.get_payment(payment.id)
        assert [r for r in provider.received if r[0] == "capture"] == [("capture", payment.id, None)]
        assert final.status is PaymentStatus.SUCCEEDED
        assert final.captured_amount is not None
        assert final.captured_amount.minor_units == provider.captured_total
        assert final.pending_call is None

    async def test_a_poll_during_a_refund_in_flight_never_fails_it(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow)
        provider.transit = 0.3
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                lambda: boundary_flow.refund(payment.id, amount=Money.of("3000", "XOF"), idempotency_key="refund-1")
            )
            await self._carrying_call(boundary_flow, payment.id)
            polled = await boundary_flow.refresh(payment.id)
            (pending,) = polled.refunds
            assert pending.status is RefundStatus.PENDING, "a poll failed a refund still in flight"
            assert polled.refundable_amount == Money.of("7000", "XOF")
            with pytest.raises(PaymentBusy):
                await boundary_flow.refund(payment.id, idempotency_key="refund-rest")
        final = await boundary_flow.get_payment(payment.id)
        assert final.refunded_amount == Money.of("3000", "XOF")
        assert provider.refunded_total == 3000
        assert final.status is PaymentStatus.PARTIALLY_REFUNDED

    async def test_a_poll_while_the_create_is_in_flight_is_no_decline(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        provider.transit = 0.3
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: self._create(boundary_flow, key="T1-0001"))

            async def stored() -> bool:
                return bool(await boundary_flow.list_payments(order_id="T1-0001"))

            await until(stored)
            (created,) = await boundary_flow.list_payments(order_id="T1-0001")
            polled = await boundary_flow.refresh(created.id)
            assert polled.status is PaymentStatus.PENDING
            assert polled.pending_call is not None
        final = await boundary_flow.get_payment(created.id)
        assert final.status is PaymentStatus.SUCCEEDED
        assert not final.needs_review

    async def test_a_webhook_during_a_call_in_flight_records_the_money_but_leaves_the_call_to_its_owner(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        provider.latency = 0.3  # the capture acts at once; its answer is slow
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: boundary_flow.capture(payment.id, idempotency_key="capture-1"))

            async def captured_at_provider() -> bool:
                return provider.captured_total > 0

            await until(captured_at_provider)
            body, headers = provider.delivery(payment.id)
            (during,) = await boundary_flow.handle_webhook(CODE, body, headers)
            assert during.status is PaymentStatus.SUCCEEDED
            assert during.pending_call is not None
        final = await boundary_flow.get_payment(payment.id)
        assert final.pending_call is None
        events = await boundary_flow.list_events(payment.id)
        assert [e.to_status for e in events if e.kind == "status_changed"].count("succeeded") == 1

    async def test_a_negative_report_during_a_call_in_flight_is_refused_and_changes_nothing(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        provider.transit = 0.3
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: boundary_flow.cancel(payment.id, idempotency_key="cancel-1"))
            await self._carrying_call(boundary_flow, payment.id)
            provider.accounts[payment.id].canceled = True  # the provider voided it before the request arrived
            before = await boundary_flow.get_payment(payment.id)
            body, headers = provider.delivery(payment.id)
            with pytest.raises(PaymentBusy):
                await boundary_flow.handle_webhook(CODE, body, headers)
            assert await boundary_flow.get_payment(payment.id) == before
        final = await boundary_flow.get_payment(payment.id)
        assert final.status is PaymentStatus.CANCELED

    async def test_an_unknown_capture_is_settled_by_asking_never_by_sending_again(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        provider.lose_next("capture")
        lost = await boundary_flow.capture(payment.id, idempotency_key="capture-1")
        assert lost.pending_call is not None
        assert lost.pending_call.unknown
        with pytest.raises(InvalidTransition):
            await boundary_flow.capture(payment.id, idempotency_key="capture-2")
        final = await boundary_flow.get_payment(payment.id)
        assert final.status is PaymentStatus.SUCCEEDED
        assert final.pending_call is None
        assert [r[0] for r in provider.received].count("capture") == 1

    async def test_an_answer_after_the_lease_does_not_reopen_a_call_settled_meanwhile(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider, boundary_clock: SettableClock
    ) -> None:
        payment = await self._create(boundary_flow, capture=False)
        provider.latency = 0.3
        provider.lose_next("capture")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: boundary_flow.capture(payment.id, idempotency_key="capture-1"))

            async def arrived() -> bool:
                return provider.captured_total > 0

            await until(arrived)
            boundary_clock.advance(LEASE + 1)  # the owner looks dead: anyone may settle by asking
            settled = await boundary_flow.refresh(payment.id)
            assert settled.pending_call is None
            assert settled.status is PaymentStatus.SUCCEEDED
        events = await boundary_flow.list_events(payment.id)
        assert "provider_call_unknown" not in [e.kind for e in events]
        assert (await boundary_flow.get_payment(payment.id)).pending_call is None

    async def test_racing_partial_refunds_and_polls_never_refund_more_than_was_captured(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        payment = await self._create(boundary_flow)
        provider.latency = 0.005
        done = anyio.Event()

        async def refund(index: int) -> None:
            while True:
                try:
                    await boundary_flow.refund(
                        payment.id, amount=Money.of("700", "XOF"), idempotency_key=f"refund-{index}"
                    )
                    return
                except PaymentBusy:
                    await anyio.sleep(0.002)
                except RefundExceedsCaptured:
                    return

        async def poll() -> None:
            while not done.is_set():
                await boundary_flow.refresh(payment.id)
                await anyio.sleep(0.003)

        async with anyio.create_task_group() as pollers:
            pollers.start_soon(poll)
            async with anyio.create_task_group() as refunds:
                for index in range(20):
                    refunds.start_soon(refund, index)
            done.set()
        final = await boundary_flow.get_payment(payment.id)
        refund_requests = [r[2] for r in provider.received if r[0] == "refund"]
        assert len(refund_requests) == len(set(refund_requests)), "a refund was sent twice"
        assert provider.refunded_total <= 10000
        assert provider.refunded_total == final.refunded_amount.minor_units
        assert final.refunded_amount == Money.of("9800", "XOF")
        assert final.pending_refund_amount.is_zero()
