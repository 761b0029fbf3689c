"""The cash provider passes paycore's provider conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.testing import ProviderConformance
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

    async def pay(self, flow: PaymentFlow, amount: Money, order_id: str) -> Payment:
        sale = await take_cash(flow, amount=amount, tendered=amount, till="T1", order_id=order_id, provider=CODE)
        return sale.payment
