"""Benchmark: an idempotent request on Redis in front of SQLite, against SQLite alone.

Run ``python benchmarks/redis_idempotency.py`` (``--quick`` for a smoke run of
a few seconds). It starts its own ``redis-server`` on a loopback port, a SQLite
file in a temporary directory and, when the PostgreSQL binaries are installed,
a throwaway PostgreSQL server on a loopback port; then it prints two tables:

1. Per idempotent request, by case and SQL database: median store round
   trips (calls that reach Redis or the database) and median time, for the
   tiered store (``idempotency = ["redis", "sqlalchemy"]``) and for the SQL
   store alone, with the ratio to SQL alone measured in the same run. A *new request* is a
   claim plus its completion (what the flow does around a provider call); a
   *replay* is the claim of a completed key (a retried request).
2. How redis-py reaches Redis: its asyncio client under asyncio, or its
   blocking client in worker threads (what trio uses), one replay at a time
   and 50 at once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from paycore.storage import IdempotencyClaim, IdempotencyStore
from paycore.testing.redis import RedisServer
from paycore.tiered import TieredIdempotencyStore
from paycore_redis import RedisIdempotencyStore
from paycore_sqlalchemy import SqlIdempotencyStore

LEASE = 120.0
BLOCKS = 5
TTL = 3600.0
RESULT = {"value": {"id": "pay_x", "status": "succeeded", "amount": {"minor_units": 5000, "currency": "XOF"}}}


class Counted:
    """Passes every call to ``store`` and counts them: each call is one round trip to its backend."""

    def __init__(self, store: IdempotencyStore) -> None:
        self.store = store
        self.calls = 0

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        self.calls += 1
        return await self.store.claim(scope=scope, key=key, fingerprint=fingerprint, lease_seconds=lease_seconds)

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        self.calls += 1
        await self.store.complete(scope=scope, key=key, token=token, result=result, ttl_seconds=ttl_seconds)

    async def release(self, *, scope: str, key: str, token: str) -> None:
        self.calls += 1
        await self.store.release(scope=scope, key=key, token=token)

    async def aclose(self) -> None:
        await self.store.aclose()


async def new_request(store: IdempotencyStore, key: str) -> None:
    """Claim a fresh key and complete it."""
    claim = await store.claim(scope="", key=key, fingerprint="f", lease_seconds=LEASE)
    assert claim.token is not None
    await store.complete(scope="", key=key, token=claim.token, result=RESULT, ttl_seconds=TTL)


async def replay(store: IdempotencyStore, key: str) -> None:
    """Claim a completed key: its result comes back."""
    claim = await store.claim(scope="", key=key, fingerprint="f", lease_seconds=LEASE)
    assert claim.result is not None


async def timed(
    operation: Callable[[IdempotencyStore, str], Awaitable[None]],
    store: IdempotencyStore,
    tiers: list[Counted],
    key: str,
) -> tuple[int, float]:
    """Round trips and microseconds of one ``operation`` on ``key``."""
    before = sum(tier.calls for tier in tiers)
    started = time.perf_counter()
    await operation(store, key)
    return sum(tier.calls for tier in tiers) - before, (time.perf_counter() - started) * 1e6


async def compare_paths(
    redis_url: str, database: str, sql_only_url: str, tiered_url: str, count: int
) -> list[tuple[str, str, float, float]]:
    """Table 1 rows for one SQL database: (case, store, round trips, microseconds)."""
    rows = []
    sql = Counted(SqlIdempotencyStore(sql_only_url, auto_upgrade=True))
    fast = Counted(RedisIdempotencyStore.from_url(redis_url, prefix=f"bench:{database}:"))
    durable = Counted(SqlIdempotencyStore(tiered_url, auto_upgrade=True))
    tiered = TieredIdempotencyStore([fast, durable], names=["redis", "sqlalchemy"])
    keys = [f"k{number}" for number in range(count)]
    await new_request(sql, "warm-up")
    await new_request(tiered, "warm-up")
    contenders = (("SQL only", sql, [sql]), ("Redis -> SQL", tiered, [fast, durable]))
    for case, operation in (("new request", new_request), ("replay", replay)):
        samples: dict[str, list[tuple[int, float]]] = {name: [] for name, _, _ in contenders}
        for key in keys:  # alternate the stores, so a busy moment of the host hits both
            for name, store, tiers in contenders:
                samples[name].append(await timed(operation, store, tiers, key))
        for name, taken in samples.items():
            trips = statistics.median(trip for trip, _ in taken)
            micros = statistics.median(micro for _, micro in taken)
            rows.append((case, f"{name} ({database})", trips, micros))
    # A replay whose result is only in SQL (Redis lost it): copied back into Redis.
    refill_keys = [f"r{number}" for number in range(count)]
    for key in refill_keys:
        await new_request(durable, key)
    taken = [await timed(replay, tiered, [fast, durable], key) for key in refill_keys]
    trips = statistics.median(trip for trip, _ in taken)
    micros = statistics.median(micro for _, micro in taken)
    rows.append(("replay, only in SQL", f"Redis -> SQL ({database})", trips, micros))
    await sql.aclose()
    await tiered.aclose()
    return rows


async def transport(redis_url: str, mode: str, count: int, label: str) -> tuple[list[float], float]:
    """Microseconds of ``count`` single replays; mean per replay with 50 at once (connections open)."""
    store = RedisIdempotencyStore.from_url(redis_url, prefix=f"bench:{label}:", transport=mode)
    await new_request(store, "k")
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await replay(store, "k")
        times.append((time.perf_counter() - started) * 1e6)
    rounds = max(2, count // 2)

    async def many(rounds: int) -> None:
        for _ in range(rounds):
            await replay(store, "k")

    async def together(rounds: int) -> None:
        async with anyio.create_task_group() as group:
            for _ in range(50):
                group.start_soon(many, rounds)

    await together(1)  # open the 50 connections first
    started = time.perf_counter()
    await together(rounds)
    concurrent = (time.perf_counter() - started) * 1e6 / (50 * rounds)
    await store.aclose()
    return times, concurrent


def _database(name: str) -> str:
    return name.rsplit("(", 1)[1].rstrip(")")


def postgres_rows(redis_url: str, count: int) -> list[tuple[str, str, float, float]]:
    """Table 1 rows on a throwaway PostgreSQL server; none (with a note) if it is not installed."""
    from paycore.testing.postgres import PostgresServer, PostgresServerError

    try:
        server = PostgresServer().start()
    except PostgresServerError as error:
        print(f"(PostgreSQL rows skipped: {error})", file=sys.stderr)
        return []
    try:
        return anyio.run(
            compare_paths,
            redis_url,
            "PostgreSQL",
            server.create_database("sql_only"),
            server.create_database("tiered"),
            count,
        )
    finally:
        server.stop()


def _sqlite_rows(redis_url: str, directory: str, count: int) -> list[tuple[str, str, float, float]]:
    """Table 1's SQLite rows, on SQLite files in ``directory``."""
    return anyio.run(
        compare_paths,
        redis_url,
        "SQLite",
        f"sqlite:///{Path(directory, 'sql-only.db')}",
        f"sqlite:///{Path(directory, 'tiered.db')}",
        count,
    )


def sqlite_rows(count: int) -> list[tuple[str, str, float, float]]:
    """Table 1's SQLite rows, on a ``redis-server`` and SQLite files of their own (for ``benchmarks/bench.py``)."""
    with RedisServer() as server, tempfile.TemporaryDirectory() as directory:
        return _sqlite_rows(server.url, directory, count)


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    arguments = parser.parse_args(argv)
    count = 30 if arguments.quick else 500
    with RedisServer() as server, tempfile.TemporaryDirectory() as directory:
        rows = _sqlite_rows(server.url, directory, count)
        rows += postgres_rows(server.url, count)
        paths = [
            ("asyncio", "auto", "redis-py asyncio client"),
            ("asyncio", "threads", "blocking client, worker threads"),
            ("trio", "auto", "blocking client, worker threads"),
        ]
        samples: dict[tuple[str, str], tuple[list[float], list[float]]] = {
            (backend, label): ([], []) for backend, _, label in paths
        }
        for block in range(BLOCKS):  # alternate the paths, so a busy moment of the host hits all of them
            for backend, mode, label in paths:
                one, many = anyio.run(
                    transport, server.url, mode, max(2, count // BLOCKS), f"{backend}-{mode}-{block}", backend=backend
                )
                samples[backend, label][0].extend(one)
                samples[backend, label][1].append(many)
        transports = [
            (backend, label, statistics.median(ones), statistics.median(manys))
            for (backend, label), (ones, manys) in samples.items()
        ]
    baseline = {(case, _database(name)): micros for case, name, _, micros in rows if name.startswith("SQL only")}
    print(f"Idempotent request, median of {count} (asyncio; every server on this host, over loopback)")
    print(f"{'case':<22}{'store':<28}{'round trips':>12}{'time (us)':>12}{'vs SQL only':>13}")
    for case, name, trips, micros in rows:
        base = baseline.get((case, _database(name)), baseline[("replay", _database(name))])
        print(f"{case:<22}{name:<28}{trips:>12g}{micros:>12.0f}{micros / base:>12.2f}x")
    print()
    print(f"Reaching Redis: one replay (median of {count}); per replay with 50 at once (median of {BLOCKS})")
    print(f"{'event loop':<12}{'path':<34}{'one (us)':>10}{'50 at once (us)':>17}{'vs asyncio client':>19}")
    one_base, many_base = transports[0][2], transports[0][3]
    for backend, label, one_replay, per_replay in transports:
        print(
            f"{backend:<12}{label:<34}{one_replay:>10.0f}{per_replay:>17.0f}"
            f"{one_replay / one_base:>11.2f}x /{per_replay / many_base:>5.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
