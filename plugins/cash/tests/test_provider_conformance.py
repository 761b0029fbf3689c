"""The cash provider passes paycore's provider conformance suite.

Cash sends no webhooks and cannot authorize first: those tests skip. A cash
sale has no network to fail, but the flow's records of a call can still be
interrupted (:func:`~paycore.testing.interrupt_next_call`): a sale whose answer
was lost is settled by asking the drawer, never by taking the cash twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.testing import ProviderConformance, interrupt_next_call
from paycore.testing.provider_suite import CODE
from paycore_cash.drawers import CashDrawers
from paycore_cash.sales import take_cash


class TestCashProvider(ProviderConformance):
    @pytest.fixture
    async def flow(self) -> AsyncIterator[PaymentFlow]:
        config = {"providers": {CODE: {"type": "cash"}}}
        async with PaymentFlow.from_config(config) as flow:
            await CashDrawers(flow).open(till="T1", opening_float=Money.of("50000", "XOF"), opened_by="Awa")
            yield flow

    async def start_payment(
        self,
        flow: PaymentFlow,
        amount: Money,
        order_id: str,
        *,
        capture: bool = True,
        idempotency_key: str | None = None,
    ) -> Payment:
        sale = await take_cash(
            flow,
            amount=amount,
            tendered=amount,
            till="T1",
            order_id=order_id,
            provider=CODE,
            idempotency_key=idempotency_key,
        )
        return sale.payment

    async def pay(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        return await self.start_payment(flow, amount, order_id)

    async def make_next_call_not_sent(self, flow: PaymentFlow) -> None:
        interrupt_next_call(flow.provider(CODE), sent=False)

    async def make_next_call_unknown(self, flow: PaymentFlow) -> None:
        interrupt_next_call(flow.provider(CODE), sent=True)
