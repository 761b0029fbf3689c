"""Where a PostgreSQL lifecycle's time goes: paycore's, split by where it is spent, beside the floor's.

Not a target of ``bench.py``: an analysis to run when the PostgreSQL ratio is to be
explained. On a throwaway server (``fsync=off``, ``bench.postgres_contenders``), paycore's flow (kept warm, as in
``bench.py``) runs the mobile-money lifecycle; its time is split, per lifecycle, into

* the flow on the event loop (everything but waiting for its units of work),
* the hops to and from the worker threads the units run in (waiting for a unit, less the unit),
* the units' wait for the server (psycopg's ``Connection.wait``: round trips and the server's work),
* the rest of the units: the adapter, SQLAlchemy's pool and psycopg's own Python,

and the floor (``sql_floor.py``, the same lifecycle written by hand) is timed beside it,
in rounds taken in turn. The split is measured by wrapping those calls, which costs a
little of its own: the parts add up to a bit more than an unwrapped lifecycle.

    .venv-bench/bin/python benchmarks/pg_anatomy.py [--count 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import sql_floor
from bench import _flow, _lifecycle, postgres_contenders

from paycore_sqlalchemy import database

PARTS = ("flow on the event loop", "thread hops", "waiting for the server", "adapter, pool, driver")


class Stopwatches:
    """Seconds spent in the wrapped calls since :meth:`reset`."""

    def __init__(self) -> None:
        self.awaiting = self.unit = self.server = 0.0

    def reset(self) -> None:
        self.awaiting = self.unit = self.server = 0.0


def _timed_async(method: Callable[..., Any], add: Callable[[float], None]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            add(time.perf_counter() - started)

    return timed


def _timed_sync(method: Callable[..., Any], add: Callable[[float], None]) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            add(time.perf_counter() - started)

    return timed


@contextmanager
def stopwatches() -> Iterator[Stopwatches]:
    """Wrap the awaiting of a unit of work, the unit in its worker thread and psycopg's waits for the server."""
    import psycopg

    watches = Stopwatches()

    def add(field: str) -> Callable[[float], None]:
        def adding(seconds: float) -> None:
            setattr(watches, field, getattr(watches, field) + seconds)

        return adding

    wrapped = [
        (database.Database, "run", _timed_async(database.Database.run, add("awaiting"))),
        (database.Database, "run_sync", _timed_sync(database.Database.run_sync, add("unit"))),
        (psycopg.Connection, "wait", _timed_sync(psycopg.Connection.wait, add("server"))),
    ]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in wrapped]
    for owner, name, replacement in wrapped:
        setattr(owner, name, replacement)
    try:
        yield watches
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


async def _paycore_round(url: str, count: int, rounds: int, floor: sql_floor.SqlFloor) -> dict[str, list[float]]:
    """Per-lifecycle seconds of each part, and of the whole and of the floor, for each round."""
    seen: dict[str, list[float]] = {name: [] for name in (*PARTS, "paycore", "floor")}
    async with _flow(url) as flow:
        await _lifecycle(flow, "warm")
        await sql_floor.lifecycle(floor, "warm")
        with stopwatches() as watches:
            for round_ in range(rounds):
                watches.reset()
                started = time.perf_counter()
                for number in range(count):
                    await _lifecycle(flow, f"r{round_}-{number}")
                whole = (time.perf_counter() - started) / count
                awaiting, unit, server = watches.awaiting / count, watches.unit / count, watches.server / count
                seen["paycore"].append(whole)
                seen[PARTS[0]].append(whole - awaiting)
                seen[PARTS[1]].append(awaiting - unit)
                seen[PARTS[2]].append(server)
                seen[PARTS[3]].append(unit - server)
                seen["floor"].append(await sql_floor.lifecycles(floor, count, f"f{round_}") / count)
    return seen


def main(argv: list[str] | None = None) -> int:
    """Print where a PostgreSQL lifecycle's time goes (medians of the rounds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="lifecycles per round")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args(argv)
    with postgres_contenders() as (url, floor):
        seen = anyio.run(_paycore_round, url, arguments.count, arguments.rounds, floor)
    whole = statistics.median(seen["paycore"])
    print(f"PostgreSQL lifecycle, medians of {arguments.rounds} rounds of {arguments.count} (ms per lifecycle)")
    for name in PARTS:
        part = statistics.median(seen[name])
        print(f"  {name:<24} {part * 1e3:6.2f}  {part / whole:4.0%}")
    print(f"  {'paycore, whole':<24} {whole * 1e3:6.2f}")
    print(f"  {'floor (sql_floor.py)':<24} {statistics.median(seen['floor']) * 1e3:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
