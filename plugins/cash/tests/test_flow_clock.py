"""Cash movements are dated by the flow's clock, as drawer sessions and payments are.

A flow built with an injected clock (a test, a replay, a till whose clock is
set by the back office) gets sales, refunds, pay-outs and the drawer's opening
and closing on one timeline, so reports by day and by time agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from paycore.errors import PaycoreError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.reports import day_report
from paycore_cash.drawers import CashDrawers
from paycore_cash.provider import CashProvider
from paycore_cash.records import MovementKind
from paycore_cash.sales import refund_cash, take_cash

pytestmark = pytest.mark.anyio

TENANT = "chez-awa"
OPENING = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
"""A morning far from the wall clock's."""


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


class Clock:
    """The flow's clock, moved by hand."""

    def __init__(self) -> None:
        self.at = OPENING

    def now(self) -> datetime:
        return self.at


async def test_sales_and_refunds_are_dated_by_the_flows_clock(repository_url: str, cash_config: Any) -> None:
    clock = Clock()
    config = cash_config(currency="XOF") | {"repository": repository_url}
    async with PaymentFlow.from_config(config, clock=clock.now) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
        clock.at += timedelta(minutes=5)
        sale = await take_cash(
            flow, amount=xof(3_500), tendered=xof(5_000), till="T1", order_id="T1-0001", tenant=TENANT
        )
        clock.at += timedelta(minutes=5)
        await refund_cash(flow, sale.payment.id, amount=xof(500), reason="cold soup", tenant=TENANT)
        clock.at += timedelta(minutes=5)
        await drawers.pay_out(till="T1", amount=xof(5_000), reason="drop", actor="Awa")
        clock.at += timedelta(minutes=5)
        closed = await drawers.close(till="T1", counted=xof(8_000), closed_by="Awa")
        movements = await drawers.movements(session.id)
        report = await drawers.report(session.id)
        day = await day_report(flow, tenant=TENANT, day=date(2026, 3, 2))

    assert session.opened_at == OPENING
    assert sale.payment.created_at == OPENING + timedelta(minutes=5)
    assert [(m.kind, m.at) for m in movements] == [
        (MovementKind.SALE, OPENING + timedelta(minutes=5)),
        (MovementKind.REFUND, OPENING + timedelta(minutes=10)),
        (MovementKind.PAY_OUT, OPENING + timedelta(minutes=15)),
    ]
    assert closed.closed_at == OPENING + timedelta(minutes=20)
    assert [line.split()[1] for line in report.render().splitlines() if line[:1].isdigit()] == [
        "09:35",
        "09:40",
        "09:45",
    ]
    (section,) = day.sections
    assert section.rows[0][:2] == ("T1", "09:30")
    assert day.captured == (xof(3_500),)


async def test_on_a_clock_that_does_not_move_a_sale_never_lands_in_the_tills_next_drawer(
    repository_url: str, cash_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The till is closed and opened again between a sale's check and its recording, all at one instant (a frozen
    or coarse clock): which drawer the sale was checked against cannot be told from the times, so it fails, as it
    does when the clock moves, rather than add cash the next drawer never took. A sale on that clock before any
    close is the open drawer's."""
    clock = Clock()
    config = cash_config(currency="XOF") | {"repository": repository_url}
    async with PaymentFlow.from_config(config, clock=clock.now) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        first = await drawers.open(till="T1", opening_float=xof(1_000), opened_by="Awa")
        kept = await take_cash(flow, amount=xof(500), tendered=xof(500), till="T1", order_id="T1-0001", tenant=TENANT)
        checked = CashProvider.check_payment
        reopened: dict[str, Any] = {}

        async def check_then_close_and_reopen(provider: CashProvider, payment: Any) -> None:
            await checked(provider, payment)
            await drawers.close(till="T1", counted=xof(1_500), closed_by="Awa")
            reopened["session"] = await drawers.open(till="T1", opening_float=xof(0), opened_by="Binta")

        monkeypatch.setattr(CashProvider, "check_payment", check_then_close_and_reopen)
        with pytest.raises(PaycoreError, match="closed before the sale was recorded"):
            await take_cash(flow, amount=xof(700), tendered=xof(700), till="T1", order_id="T1-0002", tenant=TENANT)
        monkeypatch.undo()
        assert await drawers.movements(reopened["session"].id) == []
        assert [m.payment_id for m in await drawers.movements(first.id)] == [kept.payment.id]


async def test_on_a_clock_that_does_not_move_a_sale_after_a_shift_change_goes_into_the_new_drawer(
    repository_url: str, cash_config: Any
) -> None:
    """A drawer closed and the till opened again at one instant (a shift change), then sales: each is the new
    drawer's, whose session the sale was checked against, whatever the clock cannot tell."""
    clock = Clock()
    config = cash_config(currency="XOF") | {"repository": repository_url}
    async with PaymentFlow.from_config(config, clock=clock.now) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        await drawers.open(till="T1", opening_float=xof(1_000), opened_by="Awa")
        await drawers.close(till="T1", counted=xof(1_000), closed_by="Awa")
        second = await drawers.open(till="T1", opening_float=xof(0), opened_by="Binta")
        sales = [
            await take_cash(flow, amount=xof(700), tendered=xof(700), till="T1", order_id=f"T1-{n}", tenant=TENANT)
            for n in range(3)
        ]
        moved = await drawers.movements(second.id)
    assert [sale.payment.status.value for sale in sales] == ["succeeded"] * 3
    assert [m.payment_id for m in moved] == [sale.payment.id for sale in sales]
