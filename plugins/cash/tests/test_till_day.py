"""A full day at till T1: open, 50 cash sales with change, 2 refunds, a pay-out, close with a variance.

Run under asyncio and trio; replayed with every request sent twice (same
idempotency keys), the day ends with the same totals and no movement twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from attrs import frozen

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus, RefundStatus
from paycore_cash.drawers import CashDrawers
from paycore_cash.records import DrawerSession, MovementKind
from paycore_cash.report import DrawerReport
from paycore_cash.sales import take_cash

pytestmark = pytest.mark.anyio

T = TypeVar("T")
TENANT = "chez-awa"
FLOAT = 25_000
SALES = 50
REFUNDED = {7: 1_500, 31: 2_250}
"""Sale number -> CFA francs refunded in cash."""
PAY_OUT = 60_000
SHORT_BY = 350
"""The count at closing is this many francs short of what the drawer should hold."""


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


def bill(number: int) -> int:
    """The bill of sale ``number``: 1 250 to 13 500 francs, never a round note."""
    return 1_250 + (number * 737) % 12_250


def handed_over(due: int) -> int:
    """What the customer hands over: the next 5 000 franc note above the bill."""
    return (due // 5_000 + 1) * 5_000


def expected_cash() -> int:
    """What the drawer should hold at closing, worked out from the day's figures alone."""
    return FLOAT + sum(bill(n) for n in range(SALES)) - sum(REFUNDED.values()) - PAY_OUT


@frozen
class Day:
    session: DrawerSession
    report: DrawerReport
    changes: tuple[Money, ...]


async def run_day(flow: PaymentFlow, *, twice: bool) -> Day:
    drawers = CashDrawers(flow, tenant=TENANT)

    async def send(request: Callable[[], Awaitable[T]]) -> T:
        first = await request()
        if twice:
            again = await request()
            assert again == first
        return first

    await send(lambda: drawers.open(till="T1", opening_float=xof(FLOAT), opened_by="Awa", idempotency_key="day-open"))
    sales = []
    for number in range(SALES):
        due = bill(number)

        def sell(number: int = number, due: int = due) -> Awaitable[Any]:
            return take_cash(
                flow,
                amount=xof(due),
                tendered=xof(handed_over(due)),
                till="T1",
                order_id=f"T1-{number:04d}",
                tenant=TENANT,
                cashier="Awa",
                idempotency_key=f"sale-{number}",
            )

        sales.append(await send(sell))
    for number, amount in REFUNDED.items():
        payment_id = sales[number].payment.id

        def refund(payment_id: str = payment_id, amount: int = amount) -> Awaitable[Any]:
            return flow.refund(
                payment_id,
                amount=xof(amount),
                reason="wrong dish",
                tenant=TENANT,
                idempotency_key=f"refund-{payment_id}",
            )

        assert (await send(refund)).status is RefundStatus.SUCCEEDED
    await send(
        lambda: drawers.pay_out(
            till="T1", amount=xof(PAY_OUT), reason="drop to the safe", actor="Moussa", idempotency_key="drop-1"
        )
    )
    counted = xof(expected_cash() - SHORT_BY)
    closed = await send(lambda: drawers.close(till="T1", counted=counted, closed_by="Awa", idempotency_key="day-close"))
    return Day(closed, await drawers.report(closed.id), tuple(sale.change for sale in sales))


async def test_a_till_day_closes_with_the_exact_variance(flow: PaymentFlow) -> None:
    day = await run_day(flow, twice=False)
    assert day.session.expected == xof(expected_cash())
    assert day.session.counted == xof(expected_cash() - SHORT_BY)
    assert day.session.variance == xof(-SHORT_BY)
    assert day.report.variance == xof(-SHORT_BY)


async def test_a_till_day_records_every_sale_with_its_change(flow: PaymentFlow) -> None:
    day = await run_day(flow, twice=False)
    sales = [m for m in day.report.movements if m.kind is MovementKind.SALE]
    assert [m.amount for m in sales] == [xof(bill(n)) for n in range(SALES)]
    assert [m.change for m in sales] == [xof(handed_over(bill(n)) - bill(n)) for n in range(SALES)]
    assert list(day.changes) == [m.change for m in sales]
    assert all(change is not None and not change.is_negative() for change in day.changes)


async def test_a_till_day_has_its_refunds_and_pay_out_once_each(flow: PaymentFlow) -> None:
    day = await run_day(flow, twice=False)
    kinds = [m.kind for m in day.report.movements]
    assert kinds.count(MovementKind.SALE) == SALES
    assert [m.amount for m in day.report.movements if m.kind is MovementKind.REFUND] == [
        xof(a) for a in REFUNDED.values()
    ]
    assert [m.amount for m in day.report.movements if m.kind is MovementKind.PAY_OUT] == [xof(PAY_OUT)]


async def test_a_till_day_leaves_every_payment_paid(flow: PaymentFlow) -> None:
    await run_day(flow, twice=False)
    payments = await flow.list_payments(tenant=TENANT)
    assert len(payments) == SALES
    statuses = {p.order_id: p.status for p in payments}
    refunded = {f"T1-{n:04d}" for n in REFUNDED}
    assert {o for o, s in statuses.items() if s is PaymentStatus.PARTIALLY_REFUNDED} == refunded
    assert {s for o, s in statuses.items() if o not in refunded} == {PaymentStatus.SUCCEEDED}


async def test_a_till_day_sent_twice_gives_the_same_totals(cash_config: Any) -> None:
    async with PaymentFlow.from_config(cash_config(currency="XOF")) as once_flow:
        once = await run_day(once_flow, twice=False)
    async with PaymentFlow.from_config(cash_config(currency="XOF")) as twice_flow:
        twice = await run_day(twice_flow, twice=True)
        assert len(await twice_flow.list_payments(tenant=TENANT)) == SALES
    assert twice.report.totals == once.report.totals
    assert (twice.session.expected, twice.session.counted, twice.session.variance) == (
        once.session.expected,
        once.session.counted,
        once.session.variance,
    )
    assert len(twice.report.movements) == SALES + len(REFUNDED) + 1
    assert len({m.id for m in twice.report.movements}) == len(twice.report.movements)


async def test_a_till_day_report_reads_as_a_cashier_expects(flow: PaymentFlow) -> None:
    day = await run_day(flow, twice=False)
    text = day.report.render()
    assert "Opening float" in text
    assert "25 000 XOF" in text
    lines = {line.split("  ")[0]: line.split() for line in text.splitlines() if line}
    assert lines["Variance"] == ["Variance", f"-{SHORT_BY}", "XOF", "(short)"]
    counted = f"{expected_cash() - SHORT_BY:,}".replace(",", " ")
    assert " ".join(lines["Counted"]) == f"Counted {counted} XOF"
    assert text.count(" sale ") == SALES
