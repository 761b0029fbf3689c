"""The cash part of ``paycore demo`` runs a till's day and prints its report."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.demo import DemoContext
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.plugins import create_plugin_manager
from paycore_cash import plugin
from paycore_cash.demo import run_cash_day
from paycore_cash.drawers import CashDrawers

pytestmark = pytest.mark.anyio


def test_the_cash_step_is_contributed_to_the_demo() -> None:
    steps: list[tuple[str, dict[str, Any]]] = []
    manager = create_plugin_manager([plugin], entry_points=False)
    manager.hook.paycore_demo_steps(
        register=lambda name, *, order, run, providers=None: steps.append((name, providers or {}))
    )
    assert [name for name, _ in steps] == ["cash drawer"]
    assert steps[0][1]["cash"]["type"] == "cash"


async def test_the_cash_demo_day_closes_the_drawer_and_prints_its_report() -> None:
    config: dict[str, Any] = {"tenants": {"chez-awa": {"providers": {"cash": {"type": "cash", "currency": "XOF"}}}}}
    printed: list[str] = []
    async with PaymentFlow.from_config(config) as flow:
        context = DemoContext(flow=flow, tenant="chez-awa", echo=printed.append)
        await run_cash_day(context)
        session = await CashDrawers(flow, tenant="chez-awa").get(context.shared["cash_session"])
    assert session.variance == Money.of("-500", "XOF")
    text = "\n".join(printed)
    assert "Variance" in text
    assert "(short)" in text


async def test_the_cash_demo_day_runs_again_on_storage_that_keeps_the_last_run(database_url: str) -> None:
    config: dict[str, Any] = {
        "repository": database_url,
        "tenants": {"chez-awa": {"providers": {"cash": {"type": "cash", "currency": "XOF"}}}},
    }
    for run in (1, 2):
        printed: list[str] = []
        async with PaymentFlow.from_config(config) as flow:
            context = DemoContext(flow=flow, tenant="chez-awa", echo=printed.append)
            await run_cash_day(context)  # order numbers T1-0001..T1-0005 again
            drawers = CashDrawers(flow, tenant="chez-awa")
            session = await drawers.get(context.shared["cash_session"])
            assert len(await drawers.sessions("T1")) == run
        assert session.variance == Money.of("-500", "XOF")
        assert "the second hands over 5 000 XOF for the 4 000 XOF due, change 1 000 XOF" in "\n".join(printed)
