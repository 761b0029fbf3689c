"""Fixtures for the cash plugin's tests: a flow with the cash provider on the memory adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore_cash.drawers import CashDrawers

TENANT = "chez-awa"


def xof(amount: str | int) -> Money:
    """An amount of CFA francs."""
    return Money.of(str(amount), "XOF")


def cash_config(**cash_settings: Any) -> dict[str, Any]:
    """A configuration enabling the cash provider for the default tenant and for ``chez-awa``."""
    cash = {"type": "cash", **cash_settings}
    return {
        "repository": "memory",
        "idempotency": "memory",
        "providers": {"cash": dict(cash)},
        "tenants": {TENANT: {"providers": {"cash": dict(cash)}}, "chez-binta": {"providers": {"cash": dict(cash)}}},
    }


@pytest.fixture(name="cash_config")
def cash_config_fixture() -> Any:
    """The factory of cash configurations (see :func:`cash_config`)."""
    return cash_config


@pytest.fixture
async def flow() -> AsyncIterator[PaymentFlow]:
    """A flow with the cash provider (drawers in XOF) on in-memory storage."""
    async with PaymentFlow.from_config(cash_config(currency="XOF")) as built:
        yield built


@pytest.fixture
def drawers(flow: PaymentFlow) -> CashDrawers:
    """The drawers of tenant ``chez-awa``."""
    return CashDrawers(flow, tenant=TENANT)
