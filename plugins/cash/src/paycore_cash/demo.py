"""The cash part of ``paycore demo``: a till's day, from the opening float to the count."""

from __future__ import annotations

from typing import Any

from paycore.hookspecs import DemoStepRegistrar

__all__ = ["register_steps"]


def register_steps(register: DemoStepRegistrar) -> None:
    """Register the cash drawer step of the demo restaurant day."""
    register("cash drawer", order=20, run=run_cash_day, providers={"cash": {"type": "cash", "currency": "XOF"}})


async def run_cash_day(context: Any) -> None:
    """Open till T1, sell for cash with change (one bill split), refund one sale, drop cash, close, report.

    Runs again on storage that keeps the previous run's drawers and payments: the
    till is closed at the end of each run, and order numbers restart with each session.
    """
    from paycore.money import Money
    from paycore_cash.drawers import CashDrawers
    from paycore_cash.report import format_money as fmt
    from paycore_cash.sales import order_balance, take_cash

    flow, tenant = context.flow, context.tenant
    drawers = CashDrawers(flow, tenant=tenant, currency="XOF")

    def xof(amount: str) -> Money:
        return Money.of(amount, "XOF")

    session = await drawers.open(till="T1", opening_float=xof("20000"), opened_by="Awa")
    context.echo(f"Awa opens till T1 with a float of 20 000 XOF (session {session.id})")
    sales = []
    for number, (due, handed) in enumerate(
        [("3500", "5000"), ("12000", "12000"), ("7500", "10000"), ("2000", "5000")], start=1
    ):
        sale = await take_cash(
            flow,
            amount=xof(due),
            tendered=xof(handed),
            till="T1",
            order_id=f"T1-{number:04d}",
            tenant=tenant,
            cashier="Awa",
        )
        sales.append(sale)
        context.echo(
            f"  order T1-{number:04d}: {fmt(xof(due))} due, {fmt(sale.tendered)} handed over, change {fmt(sale.change)}"
        )
    bill = xof("9000")
    first = await take_cash(
        flow,
        amount=bill,
        tendered=xof("5000"),
        till="T1",
        order_id="T1-0005",
        tenant=tenant,
        cashier="Awa",
        split_tender=True,
    )
    context.echo(
        f"  order T1-0005: {fmt(bill)} shared by two friends; the first pays {fmt(first.tendered)}, "
        f"{fmt(first.balance_due)} still due"
    )
    # Order numbers restart with each drawer session (a rerun of the demo on kept storage numbers
    # its orders from T1-0001 again): the balance counts only this session's T1-0005.
    rest = await order_balance(flow, order_id="T1-0005", total=bill, tenant=tenant, since=session.opened_at)
    second = await take_cash(
        flow,
        amount=rest,
        tendered=xof("5000"),
        till="T1",
        order_id="T1-0005",
        tenant=tenant,
        cashier="Awa",
        split_tender=True,
    )
    context.echo(f"  the second hands over {fmt(second.tendered)} for the {fmt(rest)} due, change {fmt(second.change)}")
    refund = await flow.refund(sales[2].payment.id, amount=xof("2500"), reason="dessert never came", tenant=tenant)
    context.echo(f"  refund of {fmt(refund.amount)} in cash on order T1-0003 ({refund.status.value})")
    await drawers.pay_out(till="T1", amount=xof("20000"), reason="drop to the safe", actor="Awa")
    context.echo("  20 000 XOF dropped to the safe")
    closed = await drawers.close(till="T1", counted=xof("31000"), closed_by="Awa")
    context.echo("Awa counts 31 000 XOF and closes the drawer:")
    context.echo((await drawers.report(closed.id)).render())
    context.shared["cash_session"] = closed.id
