"""Lifecycles per second on the memory adapter, and the cost of one state transition.

A lifecycle is what a mobile-money payment goes through: create with an
idempotency key, success by signed webhook, a partial refund the provider
leaves pending, and the refund's confirmation by signed webhook. It runs under
asyncio and under trio.

A state transition is timed three ways: ``fsm.next_status`` (a lookup in the
table compiled from the one shared ``transitions.Machine``), ``Change.fire``
(the transition with its event and the next version of the payment), and the
baseline paycore avoids, building a ``transitions.Machine`` per payment. Every
figure is also given as a ratio to a bare dict update measured in the same run.

    .venv/bin/python benchmarks/lifecycle.py            # full run
    .venv/bin/python benchmarks/lifecycle.py --quick    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from datetime import UTC, datetime

import anyio
from transitions import Machine

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money, fsm
from paycore.changes import Change
from paycore.flow import PaymentFlow
from paycore.status import PaymentStatus
from paycore.testing.fake import mobile_money_lifecycle
from paycore.testing.records import make_payment

AMOUNT = Money.of("5000", "XOF")
REFUND = Money.of("1500", "XOF")


def _flow() -> PaymentFlow:
    return PaymentFlow.from_config(
        {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-bench"}}},
        plugins=[paycore.testing.fake, paycore_memory.plugin],
        entry_points=False,
        environ={},
    )


async def _lifecycles(count: int) -> float:
    """Run ``count`` lifecycles on one flow; return the seconds they took."""
    async with _flow() as flow:
        started = time.perf_counter()
        for number in range(count):
            await mobile_money_lifecycle(flow, tag=str(number), amount=AMOUNT, refund=REFUND)
        return time.perf_counter() - started


def _per_call(function: Callable[[], object], repeat: int) -> float:
    """Seconds per call of ``function``: the best of five rounds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(5):
        gc.collect()
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best


_STATES = [status.value for status in PaymentStatus]
_TRANSITIONS = [
    {
        "trigger": trigger,
        "source": [s.value for s in sources] if isinstance(sources, list) else sources.value,
        "dest": dest.value,
    }
    for trigger, sources, dest in fsm.TRANSITIONS
]


class _Model:
    """A payment as a ``transitions`` model, for the per-payment machine baseline."""


def _machine_per_payment() -> None:
    model = _Model()
    Machine(model=model, states=_STATES, transitions=_TRANSITIONS, initial="pending", auto_transitions=False)
    model.send()  # type: ignore[attr-defined]


def _transition_costs(repeat: int) -> dict[str, float]:
    record: dict[str, object] = {"status": "pending"}

    def dict_update() -> None:
        record["status"] = "processing"

    def next_status() -> None:
        fsm.next_status(PaymentStatus.PENDING, "send")

    payment = make_payment()
    now = datetime(2026, 11, 22, tzinfo=UTC)

    def change_fire() -> None:
        change = Change(payment, cause="api", now=now)
        change.fire("send")
        change.result()

    return {
        "bare dict update (baseline)": _per_call(dict_update, repeat),
        "fsm.next_status": _per_call(next_status, repeat),
        "Change.fire + result (with event)": _per_call(change_fire, max(1, repeat // 20)),
        "transitions.Machine per payment": _per_call(_machine_per_payment, max(1, repeat // 200)),
    }


def _format_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:9.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:9.2f} µs"
    return f"{seconds * 1e9:9.1f} ns"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations: a smoke run in seconds")
    arguments = parser.parse_args(argv)
    lifecycles = 50 if arguments.quick else 2000
    repeat = 20_000 if arguments.quick else 200_000

    costs = _transition_costs(repeat)
    baseline = costs["bare dict update (baseline)"]
    machine = costs["transitions.Machine per payment"]
    print(f"State transition cost ({'quick' if arguments.quick else 'full'} run)")
    print(f"{'operation':<36} {'per call':>12} {'x dict update':>14} {'x Machine/payment':>18}")
    for name, seconds in costs.items():
        print(f"{name:<36} {_format_time(seconds):>12} {seconds / baseline:>14.1f} {seconds / machine:>18.5f}")
    print(
        f"\nbuilding a Machine per payment costs {machine / costs['fsm.next_status']:,.0f}x "
        f"a lookup in the shared machine's table, {machine / costs['Change.fire + result (with event)']:,.0f}x "
        "a whole Change.fire"
    )

    print(f"\nLifecycles on the memory adapter ({lifecycles} each: create, webhook, partial refund, webhook)")
    print(f"{'backend':<10} {'lifecycles/s':>14} {'per lifecycle':>14} {'x dict update':>14} {'x Machine/payment':>18}")
    for backend in ("asyncio", "trio"):
        anyio.run(_lifecycles, max(1, lifecycles // 10), backend=backend)  # warm up
        seconds = anyio.run(_lifecycles, lifecycles, backend=backend) / lifecycles
        print(
            f"{backend:<10} {1 / seconds:>14,.0f} {_format_time(seconds):>14} "
            f"{seconds / baseline:>14,.0f} {seconds / machine:>18.1f}"
        )


if __name__ == "__main__":
    main()
