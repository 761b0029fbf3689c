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

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest

from paycore.errors import IdempotencyKeyReused, InvalidTransition, PaymentBusy, ProviderNotSent, RefundExceedsCaptured
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Customer, Payment
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.late_answers import CODE, LEASE, LateAnswerScenarios, SettableClock, ledger_flow, until
from paycore.testing.ledger import LedgerProvider
from paycore.testing.storage_under_test import StorageUnderTest

__all__ = ["CODE", "ProviderBoundaryConformance", "SettableClock"]

T = TypeVar("T")


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

    async def test_a_create_its_provider_refused_before_acting_is_sent_by_its_keys_retry_after_a_poll(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        async def create(amount: str = "10000", order_id: str = "T1-0002", **request: Any) -> Payment:
            checkout = await boundary_flow.create_payment(
                amount=Money.of(amount, "XOF"), provider=CODE, order_id=order_id, idempotency_key="T1-0002", **request
            )
            return checkout.payment

        provider.refuse_next("initiate")
        with pytest.raises(ProviderNotSent):  # a rate limit: the gateway did nothing
            await create(customer=Customer(phone="+221700000000"))
        (stored,) = await boundary_flow.list_payments(order_id="T1-0002")
        assert (stored.status, stored.pending_call) == (PaymentStatus.PENDING, None)
        assert await boundary_flow.refresh(stored.id) == stored, "a poll changed a payment nothing was sent of"
        others: list[dict[str, Any]] = [{"amount": "12000"}, {"order_id": "T1-0003"}, {"description": "table 4"}]
        for other in others:
            with pytest.raises(IdempotencyKeyReused, match="never sent"):
                await create(**{"customer": Customer(phone="+221700000000"), **other})
        assert provider.received == []
        sent = await create(customer=Customer(phone="+221700000000"))
        assert (sent.id, sent.status) == (stored.id, PaymentStatus.SUCCEEDED)
        assert provider.received == [("initiate", stored.id, None)]
        assert provider.accounts[stored.id].captured == Money.of("10000", "XOF")
        assert (await create(customer=Customer(phone="+221700000000"))).version == sent.version  # replayed
        assert provider.received == [("initiate", stored.id, None)]

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

    @pytest.mark.parametrize("operation", ["initiate", "refund"])
    async def test_a_caller_cancelled_as_its_key_is_claimed_leaves_neither_key_nor_call_held(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider, operation: str
    ) -> None:
        # A server cancelling its handler (asyncio's own Task.cancel) while the claim's unit of work ran in its
        # worker thread: the key stayed held and the call written down, refusing retries for a whole lease.
        claimers = [boundary_flow.idempotency_store, boundary_flow.repository]
        if getattr(claimers[0], "claims_without_waiting", False) is True and _writes_at_once(boundary_flow):
            pytest.skip("its claims never wait: no cancellation can land inside one")
        paid = await self._create(boundary_flow) if operation == "refund" else None

        async def act() -> Payment:
            if paid is not None:
                refund = await boundary_flow.refund(paid.id, amount=Money.of("4000", "XOF"), idempotency_key="op-1")
                return await boundary_flow.get_payment(refund.payment_id)
            return await self._create(boundary_flow, key="op-1")

        await _cancelled_as_one_ends(claimers, ("claim", "claim_and_get", "claim_and_add", "claim_and_update"), act)
        assert not [r for r in provider.received if r[0] == operation], "sent for a caller cancelled before it"
        with anyio.fail_after(5):  # let go at once: no lease to wait out
            again = await act()
        assert again.pending_call is None
        assert [r[0] for r in provider.received].count(operation) == 1

    async def test_a_caller_cancelled_as_its_claim_is_made_is_cancelled_even_if_the_operation_is_refused(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        # The claim made to its end, the operation still ran to its first wait: a refusal before it (a capture of a
        # captured payment) came out instead of the caller's cancellation, as if the server's cancel had not landed.
        claimers = [boundary_flow.idempotency_store, boundary_flow.repository]
        if anyio.get_cancelled_exc_class() is not asyncio.CancelledError:
            pytest.skip("asyncio's own Task.cancel(); trio's cancellation lands at the next wait, as anywhere")
        if getattr(claimers[0], "claims_without_waiting", False) is True and _writes_at_once(boundary_flow):
            pytest.skip("its claims never wait: no cancellation can land inside one")
        payment = await self._create(boundary_flow)

        async def capture() -> Payment:
            return await boundary_flow.capture(payment.id, idempotency_key="capture-again")

        await _cancelled_as_one_ends(claimers, ("claim", "claim_and_get", "claim_and_update"), capture)

    async def test_a_deadline_still_cuts_a_keyed_create_s_slow_checks(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider
    ) -> None:
        # The checks a create runs before its claim (the provider's, the policies') were made to their end with it.
        finished: list[bool] = []

        async def hanging_check(payment: Payment) -> None:  # a fraud check on a slow network
            await anyio.sleep(3)
            finished.append(True)

        provider.check_payment = hanging_check  # type: ignore[method-assign]
        try:
            with anyio.move_on_after(0.3) as deadline:
                await self._create(boundary_flow, key="op-1")
        finally:
            del provider.check_payment
        assert deadline.cancelled_caught
        assert not finished, "the checks ran on past the caller's deadline"
        with anyio.fail_after(5):  # nothing claimed, nothing held
            await self._create(boundary_flow, key="op-1")
        assert [r[0] for r in provider.received].count("initiate") == 1

    @pytest.mark.parametrize("operation", ["capture", "cancel"])
    @pytest.mark.parametrize("keyed", [True, False], ids=["keyed", "unkeyed"])
    async def test_a_caller_cancelled_as_its_call_is_written_down_leaves_no_call_held(
        self, boundary_flow: PaymentFlow, provider: LedgerProvider, operation: str, keyed: bool
    ) -> None:
        # The same cut as the call's unit of work ends: the undo raced the commit and could miss the call.
        if _writes_at_once(boundary_flow):
            pytest.skip("its writes never wait: no cancellation can land inside one")
        payment = await self._create(boundary_flow, capture=False)

        async def act() -> Payment:
            key = f"{operation}-1" if keyed else None
            done: Payment = await getattr(boundary_flow, operation)(payment.id, idempotency_key=key)
            return done

        await _cancelled_as_one_ends([boundary_flow.repository], ("update", "save"), act)
        assert (await boundary_flow.get_payment(payment.id)).pending_call is None, "the call never sent is undone"
        assert not [r for r in provider.received if r[0] == operation], "sent for a caller cancelled before it"
        with anyio.fail_after(5):  # no call in flight: no lease to wait out
            again = await act()
        assert again.status is (PaymentStatus.SUCCEEDED if operation == "capture" else PaymentStatus.CANCELED)
        assert [r[0] for r in provider.received].count(operation) == 1


def _writes_at_once(flow: PaymentFlow) -> bool:
    """Whether the flow's repository says its units of work never wait (the memory adapter's)."""
    return getattr(flow.repository, "writes_without_waiting", False) is True


async def _cancelled_as_one_ends(
    objects: Sequence[object], names: Sequence[str], act: Callable[[], Awaitable[object]]
) -> None:
    """Run ``act``, its caller cancelled as the first call of a method ``names`` names on ``objects`` (a store, a
    repository) ends, and a moment's wait follows: where a caller cancelled as a unit of work ends in its worker
    thread (or a claim on a network) is told. Under asyncio by asyncio's own ``Task.cancel()``, which anyio's
    shields do not keep out; under trio by a cancel scope."""
    cancel_caller: list[Callable[[], object]] = []

    def cancelling_its_caller(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def called(*args: Any, **kwargs: Any) -> T:
            made = await method(*args, **kwargs)
            if cancel_caller:
                cancel_caller.pop()()
                await anyio.lowlevel.checkpoint()
            return made

        return called

    for each in {id(one): one for one in objects}.values():
        for name in names:
            if hasattr(each, name):
                setattr(each, name, cancelling_its_caller(getattr(each, name)))
    if anyio.get_cancelled_exc_class() is asyncio.CancelledError:
        caller = asyncio.ensure_future(act())
        cancel_caller.append(caller.cancel)
        await asyncio.wait([caller])
        assert caller.cancelled(), "the caller was not cancelled"
    else:
        with anyio.CancelScope() as scope:
            cancel_caller.append(scope.cancel)
            await act()
        assert scope.cancelled_caught, "the caller was not cancelled"
    assert not cancel_caller, f"no call of {names} was made"
