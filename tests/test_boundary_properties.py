"""Operations, polls and webhooks interleave at random with a slow provider that keeps its own books.

Webhooks may be delivered late (after operations that followed them at the
provider) and polls may answer slowly (with the books as they were when asked).

Whatever the interleaving, once every outcome is settled by asking the provider:
the provider's captured and refunded totals equal paycore's, the provider never
refunds more than it captured, and no capture or refund ever reaches it twice.
Each run uses one event loop of the backend (asyncio, then trio) through a
blocking portal, so a hypothesis state machine can drive it step by step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

import paycore_memory.plugin
from paycore import Money, PaymentFlow
from paycore.errors import PaycoreError
from paycore.testing import ledger as ledger_plugin
from paycore.testing.ledger import LedgerProvider

CODE = "ledger"

_operation = st.sampled_from(
    ["capture", "partial_capture", "cancel", "refund", "refresh", "webhook", "hold_webhook", "late_webhook"]
)
_step = st.tuples(_operation, st.integers(min_value=1, max_value=6), st.floats(min_value=0, max_value=0.02))


class BoundaryMachine(RuleBasedStateMachine):
    """Random batches of concurrent operations on a few payments of one flow."""

    backend = "asyncio"
    payments = Bundle("payments")

    def __init__(self) -> None:
        super().__init__()
        self._portal_cm = start_blocking_portal(self.backend)
        self.portal: BlockingPortal = self._portal_cm.__enter__()
        self.flow: PaymentFlow = self.portal.call(self._open_flow)
        provider = self.flow.provider(CODE)
        assert isinstance(provider, LedgerProvider)
        self.provider = provider
        self.keys = 0
        self.held: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
        """Deliveries the provider sent that are still on their way, oldest first, by payment."""

    async def _open_flow(self) -> PaymentFlow:
        flow = PaymentFlow.from_config(
            {"providers": {CODE: {"type": "ledger"}}, "provider_timeout": 5, "idempotency_lease": 30},
            plugins=[ledger_plugin, paycore_memory.plugin],
            entry_points=False,
            environ={},
        )
        return await flow.__aenter__()

    def teardown(self) -> None:
        try:
            self.portal.call(self.flow.aclose)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def _key(self) -> str:
        self.keys += 1
        return f"key-{self.keys}"

    def _run(self, work: Callable[[], Awaitable[Any]]) -> Any:
        return self.portal.call(work)

    @initialize(target=payments)
    def first_payment(self) -> str:
        return str(self._run(lambda: self._create(True)))

    @rule(target=payments, capture=st.booleans())
    def create(self, capture: bool) -> str:
        return str(self._run(lambda: self._create(capture)))

    async def _create(self, capture: bool) -> str:
        checkout = await self.flow.create_payment(
            amount=Money.of("6000", "XOF"),
            provider=CODE,
            order_id=self._key(),
            capture=capture,
            idempotency_key=self._key(),
        )
        return checkout.payment.id

    @rule(
        payment_id=payments,
        steps=st.lists(_step, min_size=1, max_size=5),
        latency=st.floats(min_value=0, max_value=0.01),
        lose=st.sampled_from([None, "capture", "refund", "cancel"]),
        poll_latency=st.sampled_from([0.0, 0.01]),
    )
    def concurrent_batch(
        self,
        payment_id: str,
        steps: list[tuple[str, int, float]],
        latency: float,
        lose: str | None,
        poll_latency: float,
    ) -> None:
        self.provider.latency = latency
        self.provider.poll_latency = poll_latency
        if lose is not None:
            self.provider.lose_next(lose)

        async def batch() -> None:
            async with anyio.create_task_group() as tasks:
                for operation, units, delay in steps:
                    tasks.start_soon(self._one, payment_id, operation, units, delay)

        self._run(batch)
        self.provider.latency = self.provider.poll_latency = 0.0

    async def _one(self, payment_id: str, operation: str, units: int, delay: float) -> None:
        await anyio.sleep(delay)
        amount = Money.of(str(units * 1000), "XOF")
        try:
            if operation == "capture":
                await self.flow.capture(payment_id, idempotency_key=self._key())
            elif operation == "partial_capture":
                await self.flow.capture(payment_id, amount=amount, idempotency_key=self._key())
            elif operation == "cancel":
                await self.flow.cancel(payment_id, idempotency_key=self._key())
            elif operation == "refund":
                await self.flow.refund(payment_id, amount=amount, idempotency_key=self._key())
            elif operation == "refresh":
                await self.flow.refresh(payment_id)
            elif payment_id not in self.provider.accounts:
                return
            elif operation == "hold_webhook":  # sent now, delivered by a later step: older than what follows
                self.held.setdefault(payment_id, []).append(self.provider.delivery(payment_id))
            elif operation == "late_webhook":
                if self.held.get(payment_id):
                    await self.flow.handle_webhook(CODE, *self.held[payment_id].pop(0))
            else:
                body, headers = self.provider.delivery(payment_id)
                await self.flow.handle_webhook(CODE, body, headers)
        except PaycoreError:
            pass  # refused (busy, not allowed now, too much): the books below say whether that was right

    @invariant()
    def the_books_agree_once_every_outcome_is_settled(self) -> None:
        async def check() -> None:
            for payment in await self.flow.list_payments():
                if payment.pending_call is not None:
                    await self.flow.refresh(payment.id)
                settled = await self.flow.get_payment(payment.id)
                assert settled.pending_call is None, "an outcome stayed unknown although the provider answers"
                account = self.provider.accounts.get(payment.id)
                captured = 0 if account is None or account.captured is None else account.captured.minor_units
                refunded = 0 if account is None else account.refunded.minor_units
                ours = settled.captured_amount.minor_units if settled.captured_amount is not None else 0
                assert ours == captured, f"paycore captured {ours}, the provider {captured}"
                assert settled.refunded_amount.minor_units == refunded
                assert settled.pending_refund_amount.is_zero()
                assert refunded <= captured, "the provider refunded more than it captured"
            captures = [r[1] for r in self.provider.received if r[0] == "capture"]
            refunds = [r[2] for r in self.provider.received if r[0] == "refund"]
            assert len(captures) == len(set(captures)), "a capture reached the provider twice"
            assert len(refunds) == len(set(refunds)), "a refund reached the provider twice"

        self._run(check)


_SETTINGS = settings(
    max_examples=25,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_provider_and_paycore_books_agree_under_any_interleaving(backend: str) -> None:
    machine = type(f"BoundaryMachine_{backend}", (BoundaryMachine,), {"backend": backend})
    machine.TestCase.settings = _SETTINGS
    machine.TestCase().runTest()
