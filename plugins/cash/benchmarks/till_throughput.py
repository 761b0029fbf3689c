"""How fast a till runs: cash sales and drawer operations against a plain payment baseline.

Every figure is measured in the same run and reported as a ratio to the
baseline, a payment through ``PaymentFlow`` with the in-process fake provider
(same flow, same in-memory storage, no drawer). Run::

    .venv/bin/python plugins/cash/benchmarks/till_throughput.py [--quick] [--backend trio] [--sqlite]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.testing import fake
from paycore_cash.drawers import CashDrawers
from paycore_cash.sales import take_cash

TENANT = "bench"


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


async def timed(count: int, operation: Callable[[int], Awaitable[Any]]) -> float:
    """Seconds per call of ``operation(i)`` over ``count`` calls."""
    started = time.perf_counter()
    for index in range(count):
        await operation(index)
    return (time.perf_counter() - started) / count


async def measure(count: int, repository: str) -> list[tuple[str, float]]:
    config = {
        "repository": repository,
        "idempotency": "memory",
        "tenants": {TENANT: {"providers": {"cash": {"type": "cash", "currency": "XOF"}, "fake": {"type": "fake"}}}},
    }
    async with PaymentFlow.from_config(config, plugins=[fake]) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        await drawers.open(till="T1", opening_float=xof(1_000_000), opened_by="bench")

        async def baseline(i: int) -> Any:
            return await flow.create_payment(amount=xof(2_500), provider="fake", order_id=f"f{i}", tenant=TENANT)

        async def cash_sale(i: int) -> Any:
            return await take_cash(
                flow, amount=xof(2_500), tendered=xof(5_000), till="T1", order_id=f"c{i}", tenant=TENANT
            )

        async def keyed_sale_replayed(i: int) -> Any:
            key = f"k{i}"
            await take_cash(
                flow,
                amount=xof(2_500),
                tendered=xof(5_000),
                till="T1",
                order_id=f"k{i}",
                tenant=TENANT,
                idempotency_key=key,
            )
            return await take_cash(
                flow,
                amount=xof(2_500),
                tendered=xof(5_000),
                till="T1",
                order_id=f"k{i}",
                tenant=TENANT,
                idempotency_key=key,
            )

        async def pay_in(i: int) -> Any:
            return await drawers.pay_in(till="T1", amount=xof(100), reason="coins", actor="bench")

        sales = [
            await take_cash(flow, amount=xof(2_500), tendered=xof(2_500), till="T1", order_id=f"r{i}", tenant=TENANT)
            for i in range(count)
        ]

        async def cash_refund(i: int) -> Any:
            return await flow.refund(sales[i].payment.id, amount=xof(500), tenant=TENANT)

        rows = [("payment, fake provider (baseline)", await timed(count, baseline))]
        rows.append(("cash sale with change", await timed(count, cash_sale)))
        rows.append(("cash sale sent twice (same key)", await timed(count, keyed_sale_replayed)))
        rows.append(("cash refund", await timed(count, cash_refund)))
        rows.append(("drawer pay-in", await timed(count, pay_in)))
        session = await drawers.current("T1")
        assert session is not None
        movements = len(await drawers.movements(session.id))
        rows.append((f"report of a {movements}-movement session", await timed(3, lambda i: drawers.report(session.id))))
        closed = await timed(1, lambda i: drawers.close(till="T1", counted=xof(0), closed_by="bench"))
        rows.append((f"close of a {movements}-movement session", closed))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few calls each: a smoke run in seconds")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--sqlite", action="store_true", help="SQLite repository instead of memory")
    args = parser.parse_args()
    count = 20 if args.quick else 500
    with tempfile.TemporaryDirectory() as workdir:
        repository = f"sqlite:///{Path(workdir) / 'bench.db'}" if args.sqlite else "memory"
        rows = anyio.run(measure, count, repository, backend=args.backend)
    baseline = rows[0][1]
    print(f"{count} calls each, {args.backend}, repository {'sqlite' if args.sqlite else 'memory'}")
    print(f"{'operation':<40} {'per call':>12} {'vs baseline':>12}")
    for name, seconds in rows:
        print(f"{name:<40} {seconds * 1e6:>9.0f} µs {seconds / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
