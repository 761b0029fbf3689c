"""paycore's performance targets, measured in one run against the peer and the floors.

``python3 dev.py bench`` runs this in quick mode (a few minutes on two cores);
``python3 dev.py bench --full`` runs the long version. It prints one table,
``what | paycore | peer/floor | ratio | target | met``, where every ratio is
paycore's figure divided by the peer's or the floor's figure *measured in the
same run*: rounds are interleaved (paycore, peer, floor, paycore under trio,
then again), each round gives a ratio, and the table shows the median of the
per-round ratios, so a busy moment of the machine hits every contender. Times
shown beside them are medians of the per-round times. The SQL sections keep
every side warm across their rounds, as a server does (paycore's flow like the
floor's connection); the memory sections build every side anew per round.

The rows (``benchmarks/README.md`` says more):

* memory lifecycle against getpaid-core's signed lifecycle
  (``peer_getpaid.py``; "peer not installed: <reason>" when getpaid-core 3.x
  does not import) and against the hand-written floor (``floors.py``);
* SQLite and PostgreSQL lifecycles against the hand-written SQL floor
  (``sql_floor.py``), with paycore's transactions and statements per
  lifecycle counted from SQLAlchemy's engine events;
* trio against asyncio (memory and SQLite lifecycles);
* memory retained per stored lifecycle (``tracemalloc``);
* the import of ``PaymentFlow`` against ``import getpaid_core``, in fresh
  interpreters, with attrs + anyio for scale;
* Redis round trips per replayed idempotent call (``redis_idempotency.py``);
* per-operation time from 1k to 100k (full: 1M) stored payments
  (``sqlalchemy_scale.py``).

Nothing here is a timed assertion: a target that is not met is a row saying
so. A measurement that fails (a server that is not installed, a core being
edited) is a row saying "failed: <error>", and the others still run.

    .venv/bin/python benchmarks/bench.py             # quick mode
    .venv/bin/python benchmarks/bench.py --full      # longer runs, 1M payments
    .venv/bin/python benchmarks/bench.py --only memory sqlite

The peer needs Python 3.12: ``dev.py bench`` runs this on ``.venv`` when it
runs Python 3.12 or later, else on ``.venv-bench``, made with a Python >= 3.12
it finds (``.venv-bench/bin/python benchmarks/bench.py`` then). The table's
first line names the Python it ran on.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import floors
import peer_getpaid
import sql_floor
import sqlalchemy as sa
from sqlalchemy import event

import paycore.testing.fake
import paycore_memory.plugin
import paycore_sqlalchemy.plugin
from paycore import Money, PaymentFlow
from paycore.testing.fake import FakeProvider, mobile_money_lifecycle

AMOUNT = Money.of("5000", "XOF")
REFUND = Money.of("1500", "XOF")
SECTIONS = ("memory", "retained", "sqlite", "postgres", "import", "redis", "scale")


@dataclass(frozen=True)
class Settings:
    """How much each section runs: quick mode or full mode."""

    full: bool
    memory_rounds: int
    memory_count: int
    retained_count: int
    sql_rounds: int
    sql_count: int
    import_runs: int
    redis_count: int
    scale_sizes: tuple[int, ...]
    scale_repeat: int
    scale_postgres: bool


QUICK = Settings(
    full=False,
    memory_rounds=7,
    memory_count=150,
    retained_count=2000,
    sql_rounds=15,
    sql_count=40,
    import_runs=7,
    redis_count=30,
    scale_sizes=(1_000, 10_000, 100_000),
    scale_repeat=100,
    scale_postgres=False,
)
FULL = Settings(
    full=True,
    memory_rounds=15,
    memory_count=1000,
    retained_count=5000,
    sql_rounds=21,
    sql_count=100,
    import_runs=15,
    redis_count=300,
    scale_sizes=(1_000, 10_000, 100_000, 1_000_000),
    scale_repeat=300,
    scale_postgres=True,
)


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    what: str
    paycore: str
    other: str
    ratio: str
    target: str
    met: str


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _met(value: float | None, limit: float | None) -> str:
    if limit is None:
        return "-"
    if value is None:
        return "n/a"
    return "met" if value <= limit else "not met"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} us"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


# -- paycore's lifecycle (public API only) ----------------------------------------------------


def _flow(repository: str | None = None) -> PaymentFlow:
    config: dict[str, Any] = {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-bench"}}}
    if repository is not None:
        config["repository"] = repository
    return PaymentFlow.from_config(
        config,
        plugins=[paycore.testing.fake, paycore_sqlalchemy.plugin, paycore_memory.plugin],
        entry_points=False,
        environ={},
    )


def _fake(flow: PaymentFlow) -> FakeProvider:
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    return fake


async def _lifecycle(flow: PaymentFlow, tag: str) -> None:
    """One mobile-money lifecycle (``paycore.testing.fake.mobile_money_lifecycle``)."""
    await mobile_money_lifecycle(flow, tag=tag, amount=AMOUNT, refund=REFUND)


async def _paycore_lifecycles(count: int, tag: str, repository: str | None = None) -> float:
    """Seconds for ``count`` lifecycles on a fresh flow (after one warm-up lifecycle)."""
    async with _flow(repository) as flow:
        await _lifecycle(flow, f"{tag}-warm")
        started = time.perf_counter()
        for number in range(count):
            await _lifecycle(flow, f"{tag}-{number}")
        return time.perf_counter() - started


def _timed(function: Callable[..., Any], *args: Any, backend: str = "asyncio") -> float:
    gc.collect()
    return float(anyio.run(function, *args, backend=backend))


# -- memory lifecycle: paycore, peer, floor, trio ---------------------------------------------


def memory_rows(settings: Settings) -> list[Row]:
    """Interleaved rounds of paycore (asyncio), getpaid-core, the floor, paycore (trio)."""
    count = settings.memory_count
    peer_reason = peer_getpaid.unavailable()
    peer_error: str | None = None
    times: dict[str, list[float]] = {"paycore": [], "trio": [], "floor": [], "peer": []}
    for round_ in range(settings.memory_rounds):
        _progress(f"memory lifecycle, round {round_ + 1}/{settings.memory_rounds} ({count} lifecycles each)")
        times["paycore"].append(_timed(_paycore_lifecycles, count, f"a{round_}") / count)
        if peer_reason is None and peer_error is None:
            try:
                times["peer"].append(_timed(peer_getpaid.lifecycles, count, f"p{round_}") / count)
            except Exception as error:
                peer_error = f"{type(error).__name__}: {error}"
        times["floor"].append(_timed(floors.lifecycles, count, f"f{round_}") / count)
        times["trio"].append(_timed(_paycore_lifecycles, count, f"t{round_}", backend="trio") / count)
    paycore = statistics.median(times["paycore"])
    rows = []
    target = "<= 1.5x (aim <= 1.0x)"
    if peer_reason is not None or peer_error is not None:
        why = f"peer not installed: {peer_reason}" if peer_reason else f"peer failed: {peer_error}"
        rows.append(Row("memory lifecycle vs getpaid-core", _us(paycore), why, "-", target, "n/a"))
    else:
        ratio = statistics.median(p / q for p, q in zip(times["paycore"], times["peer"], strict=True))
        peer = f"{_us(statistics.median(times['peer']))} (getpaid-core {peer_getpaid.version()})"
        rows.append(Row("memory lifecycle vs getpaid-core", _us(paycore), peer, _x(ratio), target, _met(ratio, 1.5)))
    floor_ratio = statistics.median(p / f for p, f in zip(times["paycore"], times["floor"], strict=True))
    rows.append(
        Row(
            "memory lifecycle vs floor (floors.py)",
            _us(paycore),
            _us(statistics.median(times["floor"])),
            _x(floor_ratio),
            "(reported)",
            "-",
        )
    )
    trio_ratio = statistics.median(t / a for t, a in zip(times["trio"], times["paycore"], strict=True))
    rows.append(
        Row(
            "memory lifecycle, trio vs asyncio",
            _us(statistics.median(times["trio"])),
            f"asyncio {_us(paycore)}",
            _x(trio_ratio),
            "<= 1.2x",
            _met(trio_ratio, 1.2),
        )
    )
    return rows


# -- memory retained per stored lifecycle ------------------------------------------------------


@contextlib.contextmanager
def _traced() -> Iterator[list[int]]:
    """Yield a list that receives the bytes allocated and still alive between entering and leaving."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held: list[int] = []
    try:
        yield held
        gc.collect()
        held.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()


async def _between_requests() -> None:
    """Let the event loop run once, as it does between a server's requests.

    A provider call's timeout is a timer that is cancelled when the call
    answers; asyncio drops cancelled timers only while its loop runs. An
    in-memory lifecycle never waits, so without this the measure would count
    up to a hundred dead timers (bounded, not stored) as memory the lifecycle keeps.
    """
    await anyio.lowlevel.checkpoint()


async def _paycore_retained(count: int) -> float:
    """Bytes the flow keeps per lifecycle (the fake provider's own ledger and call log emptied first)."""
    async with _flow() as flow:
        fake = _fake(flow)
        for number in range(50):
            await _lifecycle(flow, f"warm-{number}")
        fake.ledger.clear()
        fake.calls.clear()
        with _traced() as held:
            for number in range(count):
                await _lifecycle(flow, str(number))
                await _between_requests()
            fake.ledger.clear()
            fake.calls.clear()
        return held[0] / count


async def _floor_retained(count: int) -> float:
    pos = floors.FloorPOS()
    for number in range(50):
        await floors.lifecycle(pos, f"warm-{number}")
    pos.provider.ledger.clear()
    with _traced() as held:
        for number in range(count):
            await floors.lifecycle(pos, str(number))
            await _between_requests()
        pos.provider.ledger.clear()
    return held[0] / count


async def _peer_retained(count: int) -> float:
    flow, repository = await peer_getpaid.retained_setup(50)
    with _traced() as held:
        for number in range(count):
            await peer_getpaid.lifecycle(flow, repository, str(number))
            await _between_requests()
    return held[0] / count


def retained_rows(settings: Settings) -> list[Row]:
    """Memory retained per stored lifecycle: paycore's memory adapter, getpaid-core's repository, the floor."""
    count = settings.retained_count
    _progress(f"memory retained: {count} lifecycles each under tracemalloc")
    paycore = anyio.run(_paycore_retained, count)
    floor = anyio.run(_floor_retained, count)
    kib = f"{paycore / 1024:.2f} KiB"
    peer_column, ratio = "", "-"
    reason = peer_getpaid.unavailable()
    if reason is not None:
        peer_column = f"peer not installed: {reason}"
    else:
        try:
            peer = anyio.run(_peer_retained, count)
        except Exception as error:
            peer_column = f"peer failed: {type(error).__name__}: {error}"
        else:
            peer_column, ratio = f"getpaid {peer / 1024:.2f} KiB", _x(paycore / peer)
    rows = [Row("retained per stored lifecycle", kib, peer_column, ratio, "<= 4 KiB", _met(paycore / 1024, 4.0))]
    rows.append(
        Row(
            "retained per stored lifecycle vs floor",
            kib,
            f"{floor / 1024:.2f} KiB",
            _x(paycore / floor),
            "(reported)",
            "-",
        )
    )
    return rows


# -- SQL lifecycles: paycore against the hand-written floor ------------------------------------


async def _paycore_counts(url: str) -> dict[str, int]:
    """Transactions (``begin``), commits, rollbacks and statements of one lifecycle, from every engine's events."""
    async with _flow(url) as flow:
        await _lifecycle(flow, "count-warm")
        tally = {"begin": 0, "commit": 0, "rollback": 0, "statements": 0}

        def counter(name: str) -> Callable[..., None]:
            def count(*args: Any) -> None:
                tally[name] += 1

            return count

        def on_statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                tally["statements"] += 1

        listeners: list[tuple[str, Callable[..., None]]] = [
            (name, counter(name)) for name in ("begin", "commit", "rollback")
        ]
        listeners.append(("before_cursor_execute", on_statement))
        for name, listener in listeners:
            event.listen(sa.Engine, name, listener)
        try:
            await _lifecycle(flow, "count")
        finally:
            for name, listener in listeners:
                event.remove(sa.Engine, name, listener)
        return tally


async def _paycore_round_trips(url: str) -> int:
    """The round trips to PostgreSQL of one lifecycle of a warm flow (nothing listens to its statements)."""
    from paycore.testing.postgres import LibpqTrace

    async with _flow(url) as flow:
        await _lifecycle(flow, "trips-warm")
        with LibpqTrace() as trace:

            def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
                trace.start(dbapi_connection)

            def checkin(dbapi_connection: Any, record: Any) -> None:
                if dbapi_connection is not None:
                    trace.stop(dbapi_connection)

            event.listen(sa.pool.Pool, "checkout", checkout)
            event.listen(sa.pool.Pool, "checkin", checkin)
            try:
                await _lifecycle(flow, "trips")
            finally:
                event.remove(sa.pool.Pool, "checkout", checkout)
                event.remove(sa.pool.Pool, "checkin", checkin)
            return trace.round_trips()


async def _floor_round_trips(floor: sql_floor.SqlFloor) -> int:
    """The round trips to PostgreSQL of one lifecycle of the floor."""
    from paycore.testing.postgres import LibpqTrace

    with LibpqTrace() as trace:
        trace.start(floor.connection)
        try:
            await sql_floor.lifecycle(floor, "trips")
        finally:
            trace.stop(floor.connection)
        return trace.round_trips()


async def _timed_rounds(lifecycle: Callable[[str], Awaitable[None]], count: int, tag: str) -> float:
    """Seconds per lifecycle of ``count`` runs of ``lifecycle``, after a garbage collection."""
    gc.collect()
    started = time.perf_counter()
    for number in range(count):
        await lifecycle(f"{tag}-{number}")
    return (time.perf_counter() - started) / count


def _sql_rows(
    label: str, url: str, floor: sql_floor.SqlFloor, settings: Settings, *, trio: bool, ratio_limit: float
) -> list[Row]:
    """Interleaved rounds of paycore (asyncio), the floor, paycore (trio), every one of them kept warm.

    Each side lives as a server would, across all the rounds, on an event loop
    of its own (a blocking portal): paycore's flows (one per backend, with
    their engines, pools and prepared statements) are opened once and warmed by
    one lifecycle, as the floor keeps its one connection.
    """
    count = settings.sql_count
    times: dict[str, list[float]] = {"paycore": [], "floor": [], "trio": []}
    contenders: dict[str, tuple[anyio.from_thread.BlockingPortal, Callable[[str], Awaitable[None]]]] = {}
    with contextlib.ExitStack() as stack:
        for name, backend in (("paycore", "asyncio"), ("floor", "asyncio"), ("trio", "trio")):
            if name == "trio" and not trio:
                continue
            portal = stack.enter_context(anyio.from_thread.start_blocking_portal(backend))
            lifecycle: Callable[[str], Awaitable[None]]
            if name == "floor":
                lifecycle = partial(sql_floor.lifecycle, floor)
            else:
                lifecycle = partial(_lifecycle, stack.enter_context(portal.wrap_async_context_manager(_flow(url))))
            portal.call(lifecycle, f"{name}-warm")
            contenders[name] = (portal, lifecycle)
        for round_ in range(settings.sql_rounds):
            _progress(f"{label} lifecycle, round {round_ + 1}/{settings.sql_rounds} ({count} lifecycles each)")
            for name, (portal, lifecycle) in contenders.items():
                times[name].append(portal.call(_timed_rounds, lifecycle, count, f"{name}{round_}"))
    paycore = statistics.median(times["paycore"])
    ratio = statistics.median(p / f for p, f in zip(times["paycore"], times["floor"], strict=True))
    rows = [
        Row(
            f"{label} lifecycle vs floor (sql_floor.py)",
            _ms(paycore),
            _ms(statistics.median(times["floor"])),
            _x(ratio),
            f"<= {ratio_limit:g}x",
            _met(ratio, ratio_limit),
        )
    ]
    tally = anyio.run(_paycore_counts, url)
    transactions, statements = tally["begin"], tally["statements"]
    floor_transactions, floor_statements = anyio.run(sql_floor.counts, floor, "count")
    limit = 12 if label == "SQLite" else None
    rows.append(
        Row(
            f"{label} transactions per lifecycle",
            f"{transactions} ({tally['commit']} commits, {tally['rollback']} rollbacks)",
            str(floor_transactions),
            _x(transactions / floor_transactions),
            "<= 12" if limit else "(reported)",
            _met(transactions, limit),
        )
    )
    rows.append(
        Row(
            f"{label} statements per lifecycle",
            str(statements),
            str(floor_statements),
            _x(statements / floor_statements),
            "(reported)",
            "-",
        )
    )
    if label == "PostgreSQL":
        trips, floor_trips = anyio.run(_paycore_round_trips, url), anyio.run(_floor_round_trips, floor)
        rows.append(
            Row(
                f"{label} round trips per lifecycle",
                str(trips),
                str(floor_trips),
                _x(trips / floor_trips),
                "(reported)",
                "-",
            )
        )
    if trio:
        trio_ratio = statistics.median(t / a for t, a in zip(times["trio"], times["paycore"], strict=True))
        rows.append(
            Row(
                f"{label} lifecycle, trio vs asyncio",
                _ms(statistics.median(times["trio"])),
                f"asyncio {_ms(paycore)}",
                _x(trio_ratio),
                "<= 1.2x",
                _met(trio_ratio, 1.2),
            )
        )
    return rows


def sqlite_rows(settings: Settings) -> list[Row]:
    """SQLite (a file with WAL): paycore against the floor, each in its own file."""
    with tempfile.TemporaryDirectory() as directory:
        floor = sql_floor.SqlFloor.sqlite(str(Path(directory) / "floor.db"))
        floor.create_schema()
        try:
            return _sql_rows(
                "SQLite", f"sqlite:///{Path(directory) / 'paycore.db'}", floor, settings, trio=True, ratio_limit=4
            )
        finally:
            floor.close()


@contextlib.contextmanager
def postgres_contenders() -> Iterator[tuple[str, sql_floor.SqlFloor]]:
    """A throwaway PostgreSQL server (``fsync=off``) with paycore's database (its URL, migrated) and the floor's
    (connected, its schema made), each its own."""
    from paycore.testing.postgres import PostgresServer
    from paycore_sqlalchemy import migrate

    with PostgresServer() as server:
        url = server.create_database("paycore_bench")
        migrate.upgrade(url)
        server.create_database("floor_bench")
        floor = sql_floor.SqlFloor.postgres(server.dsn("floor_bench"))
        floor.create_schema()
        try:
            yield url, floor
        finally:
            floor.close()


def postgres_rows(settings: Settings) -> list[Row]:
    """PostgreSQL on a throwaway server: paycore against the floor, each in its own database."""
    _progress("starting a throwaway PostgreSQL server")
    with postgres_contenders() as (url, floor):
        return _sql_rows("PostgreSQL", url, floor, settings, trio=False, ratio_limit=1.6)


# -- import time ---------------------------------------------------------------------------


def _bytecode_environment(cache: str) -> dict[str, str]:
    """An environment in which every import reads compiled bytecode from ``cache``.

    An installed package is imported from its compiled bytecode, so both sides
    are: each writes its ``.pyc`` files to one private cache on a first, unmeasured
    import (``PYTHONPYCACHEPREFIX``), and every measured import reads them. Without
    this, a source checkout run with ``PYTHONDONTWRITEBYTECODE`` compiles paycore on
    every import while the peer, installed by pip, does not.
    """
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = cache
    return environment


def _import_seconds(statement: str, environment: dict[str, str]) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=environment)
    return float(done.stdout.strip().splitlines()[-1])


def import_rows(settings: Settings) -> list[Row]:
    """``from paycore import PaymentFlow`` against ``import getpaid_core``, interleaved in fresh interpreters."""
    _progress(f"import time: {settings.import_runs} fresh interpreters each")
    statements = {"paycore": "from paycore import PaymentFlow", "baseline": "import attrs, anyio"}
    reason = peer_getpaid.unavailable()
    if reason is None:
        statements["peer"] = peer_getpaid.IMPORT_STATEMENT
    times: dict[str, list[float]] = {name: [] for name in statements}
    peer_error: list[str] | None = None
    with tempfile.TemporaryDirectory(prefix="paycore-bench-pycache-") as cache:
        environment = _bytecode_environment(cache)
        for round_ in range(settings.import_runs + 1):  # round 0 compiles into the cache, unmeasured
            for name, statement in statements.items():
                if name == "peer" and peer_error is not None:
                    continue
                try:
                    seconds = _import_seconds(statement, environment)
                except subprocess.CalledProcessError as error:
                    if name != "peer":
                        raise
                    peer_error = (error.stderr or "").strip().splitlines()[-1:] or [str(error)]
                    continue
                if round_:
                    times[name].append(seconds)
    paycore = statistics.median(times["paycore"])
    baseline = statistics.median(times["baseline"])
    if peer_error is not None:
        rows = [
            Row(
                "import PaymentFlow vs import getpaid_core",
                _ms(paycore),
                f"peer failed: {peer_error[0]}",
                "-",
                "<= 1.2x",
                "n/a",
            )
        ]
    elif reason is None:
        ratio = statistics.median(p / q for p, q in zip(times["paycore"], times["peer"], strict=True))
        peer_cell = _ms(statistics.median(times["peer"]))
        rows = [
            Row(
                "import PaymentFlow vs import getpaid_core",
                _ms(paycore),
                peer_cell,
                _x(ratio),
                "<= 1.2x",
                _met(ratio, 1.2),
            )
        ]
    else:
        rows = [
            Row(
                "import PaymentFlow vs import getpaid_core",
                _ms(paycore),
                f"peer not installed: {reason}",
                "-",
                "<= 1.2x",
                "n/a",
            )
        ]
    rows.append(
        Row("import PaymentFlow vs attrs + anyio", _ms(paycore), _ms(baseline), _x(paycore / baseline), "(scale)", "-")
    )
    return rows


# -- kept: Redis round trips, flat per-operation time -------------------------------------------


def redis_rows(settings: Settings) -> list[Row]:
    """Round trips of a replayed idempotent call on Redis in front of SQLite (``redis_idempotency.py``)."""
    import redis_idempotency

    _progress(f"Redis idempotency: {settings.redis_count} requests per case (starts a redis-server)")
    with contextlib.redirect_stdout(sys.stderr):
        measured = redis_idempotency.sqlite_rows(settings.redis_count)
    by_case = {(case, store): (trips, micros) for case, store, trips, micros in measured}
    trips, micros = by_case["replay", "Redis -> SQL (SQLite)"]
    _, sql_micros = by_case["replay", "SQL only (SQLite)"]
    return [
        Row(
            "Redis round trips per replayed idempotent call",
            f"{trips:g}",
            "1 (the minimum)",
            _x(trips),
            "= 1",
            _met(trips, 1),
        ),
        Row(
            "replayed idempotent call, Redis vs SQL only",
            f"{micros:,.0f} us",
            f"{sql_micros:,.0f} us",
            _x(micros / sql_micros),
            "(reported)",
            "-",
        ),
    ]


def scale_rows(settings: Settings) -> list[Row]:
    """Per-operation time at the largest size over the smallest, worst operation (``sqlalchemy_scale.py``)."""
    import sqlalchemy_scale

    sizes = list(settings.scale_sizes)
    _progress(f"per-operation time at {', '.join(f'{s:,}' for s in sizes)} stored payments")
    with contextlib.redirect_stdout(sys.stderr):
        measured = sqlalchemy_scale.measure(sizes, settings.scale_repeat, postgres=settings.scale_postgres)
    rows = []
    for database, figures in measured.items():
        smallest, largest = figures[sizes[0]], figures[sizes[-1]]
        worst = max(smallest, key=lambda operation: largest[operation] / smallest[operation])
        ratio = largest[worst] / smallest[worst]
        rows.append(
            Row(
                f"{database} per-op time, {sizes[0]:,} -> {sizes[-1]:,} payments",
                f"worst: {worst}",
                f"{smallest[worst]:,.0f} -> {largest[worst]:,.0f} us",
                _x(ratio),
                "flat: <= 1.5x",
                _met(ratio, 1.5),
            )
        )
    return rows


# -- the table -----------------------------------------------------------------------------


SECTION_RUNNERS: dict[str, Callable[[Settings], list[Row]]] = {
    "memory": memory_rows,
    "retained": retained_rows,
    "sqlite": sqlite_rows,
    "postgres": postgres_rows,
    "import": import_rows,
    "redis": redis_rows,
    "scale": scale_rows,
}


SECTION_TITLES = {
    "memory": "memory lifecycle",
    "retained": "retained per stored lifecycle",
    "sqlite": "SQLite lifecycle",
    "postgres": "PostgreSQL lifecycle",
    "import": "import PaymentFlow",
    "redis": "Redis round trips per replayed call",
    "scale": "per-op time as payments grow",
}


def _guarded(name: str, settings: Settings) -> list[Row]:
    """The section's rows, or one row saying how it failed (the other sections still run)."""
    try:
        return SECTION_RUNNERS[name](settings)
    except Exception as error:
        lines = str(error).strip().splitlines()
        detail = f"{type(error).__name__}: {lines[0] if lines else ''}"
        _progress(f"{name} failed: {detail}")
        return [Row(SECTION_TITLES[name], f"failed: {detail}"[:200], "", "", "", "n/a")]


def render(rows: list[Row]) -> str:
    """The rows as an aligned text table."""
    header = Row("what", "paycore", "peer/floor", "ratio", "target", "met")
    cells = [[r.what, r.paycore, r.other, r.ratio, r.target, r.met] for r in [header, *rows]]
    widths = [max(len(line[column]) for line in cells) for column in range(6)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="the default: a few minutes on two cores")
    mode.add_argument("--full", action="store_true", help="more rounds, more lifecycles, 1M stored payments")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these sections")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL lifecycle")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis measurement")
    arguments = parser.parse_args(argv)
    settings = FULL if arguments.full else QUICK
    sections = [
        name
        for name in arguments.only
        if not (name == "postgres" and arguments.no_postgres) and not (name == "redis" and arguments.no_redis)
    ]
    started = time.perf_counter()
    rows: list[Row] = []
    for name in sections:
        rows += _guarded(name, settings)
    elapsed = time.perf_counter() - started
    python = ".".join(map(str, sys.version_info[:3]))
    print(
        f"paycore performance ({'full' if settings.full else 'quick'} mode, Python {python}, "
        f"medians of per-round ratios, measured in this run; took {elapsed:.0f}s)"
    )
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
