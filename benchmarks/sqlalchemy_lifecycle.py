"""Lifecycles per second on SQLite and PostgreSQL, against the floor of the same SQL issued by hand.

A lifecycle is ``paycore.testing.fake.mobile_money_lifecycle``: create with an
idempotency key, success by signed webhook, a partial refund left pending, and
its confirmation by signed webhook. It runs through ``PaymentFlow`` on the
SQLAlchemy adapter (a sync engine, one unit of work per worker-thread call),
under asyncio and under trio.

The floor: every SQL statement one lifecycle sent (recorded from the engine,
with its transaction boundaries) is replayed by hand through the raw driver
(``sqlite3``, ``psycopg``) in a plain loop, with each run's ids substituted, so
the database does the same work. ``ratio`` = paycore's time / the floor's time:
what the flow, SQLAlchemy and the thread hand-off cost on top of the database.
The flow alone (on the memory adapter) is shown first for scale. Every
configuration runs three times, interleaved with the others, and its best run
is shown, so that a busy machine does not pass for a slow configuration.

On PostgreSQL the recorded statements are also replayed through the two ways
async code can reach a database with SQLAlchemy: one worker-thread call per
transaction (what the adapter does, under asyncio and trio) and SQLAlchemy's
asyncio engine (psycopg's async mode; asyncio only, trio cannot use it).
The SQLite runs use a file with WAL; PostgreSQL runs on a throwaway server
started here (``fsync=off``).

    .venv/bin/python benchmarks/sqlalchemy_lifecycle.py            # full run
    .venv/bin/python benchmarks/sqlalchemy_lifecycle.py --quick    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy import event

import paycore.testing.fake
import paycore_memory.plugin
import paycore_sqlalchemy.plugin
from paycore import Money
from paycore.flow import PaymentFlow
from paycore.testing.fake import mobile_money_lifecycle
from paycore.testing.postgres import PostgresServer
from paycore_sqlalchemy import Database, SqlPaymentRepository, migrate

ROUNDS = 3
"""Every configuration runs this many times, interleaved; the best run counts (the machine may be busy)."""
AMOUNT = Money.of("5000", "XOF")
REFUND = Money.of("1500", "XOF")

Statement = tuple[str, Any, bool]
"""(SQL, parameters, executemany) as the driver received them."""


def _is_read(unit: list[Statement]) -> bool:
    """A unit of one SELECT: the adapter runs it without BEGIN/COMMIT on a server, and so does the floor."""
    return len(unit) == 1 and unit[0][0].lstrip().upper().startswith("SELECT")


def _flow(url: str) -> PaymentFlow:
    return PaymentFlow.from_config(
        {"repository": url, "providers": {"fake": {"type": "fake", "webhook_secret": "whsec-bench"}}},
        plugins=[paycore.testing.fake, paycore_sqlalchemy.plugin, paycore_memory.plugin],
        entry_points=False,
        environ={},
    )


async def _lifecycle(flow: PaymentFlow, tag: str) -> None:
    """One mobile-money lifecycle (``paycore.testing.fake.mobile_money_lifecycle``)."""
    await mobile_money_lifecycle(flow, tag=tag, amount=AMOUNT, refund=REFUND)


async def _lifecycles(url: str, count: int, prefix: str) -> float:
    """Seconds for ``count`` lifecycles through the flow (after one warm-up)."""
    async with _flow(url) as flow:
        await _lifecycle(flow, f"{prefix}-warm")
        started = time.perf_counter()
        for number in range(count):
            await _lifecycle(flow, f"{prefix}-{number}")
        return time.perf_counter() - started


async def _record(url: str) -> list[list[Statement]]:
    """The transactions (lists of statements) one lifecycle sends, as the driver saw them."""
    async with _flow(url) as flow:
        await _lifecycle(flow, "rec-warm")
        assert isinstance(flow.repository, SqlPaymentRepository)
        engine = flow.repository.database.engine
        units: list[list[Statement]] = []

        def on_begin(connection: sa.Connection) -> None:
            units.append([])

        def on_statement(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if statement.startswith("BEGIN"):
                return
            units[-1].append((statement, parameters, many))

        event.listen(engine, "begin", on_begin)
        event.listen(engine, "before_cursor_execute", on_statement)
        try:
            await _lifecycle(flow, "rec")
        finally:
            event.remove(engine, "begin", on_begin)
            event.remove(engine, "before_cursor_execute", on_statement)
        return units


_IDS = re.compile(r"\b(?:pay|evt|re|ref|fk|fkr|rfd)_[A-Za-z0-9_-]+|\bT-rec\b|order-rec|refund-rec|[0-9a-f]{32}")


def _substitute(value: Any, suffix: str) -> Any:
    if isinstance(value, str):
        return _IDS.sub(lambda match: match.group(0) + suffix, value)
    if isinstance(value, dict):
        return {k: _substitute(v, suffix) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, suffix) for v in value)
    return value


def _variant(units: list[list[Statement]], suffix: str) -> list[list[Statement]]:
    return [[(sql, _substitute(params, suffix), many) for sql, params, many in unit] for unit in units]


def _replay_sqlite(path: str, units: list[list[Statement]], count: int, tag: str = "") -> float:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    runs = [_variant(units, f"~{tag}{n}") for n in range(count)]
    cursor = connection.cursor()
    started = time.perf_counter()
    for run in runs:
        for unit in run:
            writes = any(not sql.lstrip().upper().startswith("SELECT") for sql, _, _ in unit)
            cursor.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            for sql, params, many in unit:
                (cursor.executemany if many else cursor.execute)(sql, params)
                if not many:
                    cursor.fetchall()
            connection.commit()
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def _replay_postgres(dsn: str, units: list[list[Statement]], count: int, tag: str = "") -> float:
    import psycopg

    runs = [_variant(units, f"~{tag}{n}") for n in range(count)]
    with psycopg.connect(dsn) as connection:
        cursor = connection.cursor()
        started = time.perf_counter()
        for run in runs:
            for unit in run:
                read = _is_read(unit)
                connection.autocommit = read
                for sql, params, many in unit:
                    if many:
                        cursor.executemany(sql, params)
                    else:
                        cursor.execute(sql, params)
                        if cursor.description is not None:
                            cursor.fetchall()
                if not read:
                    connection.commit()
        return time.perf_counter() - started


async def _replay_in_threads(url: str, units: list[list[Statement]], count: int, tag: str) -> float:
    """The same statements, each transaction one ``Database.run`` call (a worker thread)."""
    database = Database(url)
    runs = [_variant(units, f"~{tag}{n}") for n in range(count)]

    def unit_of(statements: list[Statement]) -> Callable[[sa.Connection], None]:
        def work(connection: sa.Connection) -> None:
            for sql, params, many in statements:
                result = connection.exec_driver_sql(sql, params if not many else list(params))
                if result.returns_rows:
                    result.all()

        return work

    started = time.perf_counter()
    for run in runs:
        for statements in run:
            await database.run(unit_of(statements), write=not _is_read(statements))
    elapsed = time.perf_counter() - started
    database.close()
    return elapsed


async def _replay_async_engine(url: str, units: list[list[Statement]], count: int, tag: str) -> float:
    """The same statements through SQLAlchemy's asyncio engine (psycopg's async mode): asyncio only."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, pool_reset_on_return=None)
    runs = [_variant(units, f"~{tag}{n}") for n in range(count)]
    started = time.perf_counter()
    for run in runs:
        for statements in run:
            async with engine.connect() as connection:
                if _is_read(statements):
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                async with connection.begin():
                    for sql, params, many in statements:
                        result = await connection.exec_driver_sql(sql, params if not many else list(params))
                        if result.returns_rows:
                            result.all()
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return elapsed


def _unit_transport(url: str, units: list[list[Statement]], count: int) -> list[str]:
    """Worker threads (asyncio and trio) against the asyncio-only engine, on the same recorded SQL."""
    best: dict[str, float] = {}
    for round_ in range(ROUNDS):
        times = {
            "  SQL by hand, no event loop": _replay_postgres_url(url, units, count, f"h{round_}"),
            "  one worker thread per unit, asyncio": anyio.run(
                _replay_in_threads, url, units, count, f"ta{round_}", backend="asyncio"
            ),
            "  one worker thread per unit, trio": anyio.run(
                _replay_in_threads, url, units, count, f"tt{round_}", backend="trio"
            ),
            "  SQLAlchemy asyncio engine, asyncio": anyio.run(_replay_async_engine, url, units, count, f"ae{round_}"),
        }
        for name, seconds in times.items():
            best[name] = min(best.get(name, float("inf")), seconds)
    floor = best["  SQL by hand, no event loop"]
    return [_row(name, count, seconds, None if seconds is floor else floor) for name, seconds in best.items()]


def _replay_postgres_url(url: str, units: list[list[Statement]], count: int, tag: str) -> float:
    parsed = sa.make_url(url)
    dsn = f"host={parsed.host} port={parsed.port} user={parsed.username} dbname={parsed.database}"
    return _replay_postgres(dsn, units, count, tag=tag)


def _row(name: str, count: int, seconds: float, floor: float | None) -> str:
    per = seconds / count * 1000
    ratio = f"{seconds / floor:6.2f}x" if floor else "      -"
    return f"{name:<34} {count / seconds:10.1f} {per:11.2f} {ratio}"


def _measure(
    label: str, url: str, count: int, replay: Callable[[list[list[Statement]], int, str], float]
) -> tuple[list[str], list[list[Statement]]]:
    """Floor and paycore under asyncio and trio, in interleaved rounds; the best round of each."""
    units = anyio.run(_record, url)
    statements = sum(len(unit) for unit in units)
    floor = float("inf")
    best = {"asyncio": float("inf"), "trio": float("inf")}
    for round_ in range(ROUNDS):
        floor = min(floor, replay(units, count, f"r{round_}"))
        for backend in best:
            seconds = anyio.run(_lifecycles, url, count, f"{backend}{round_}", backend=backend)
            best[backend] = min(best[backend], seconds)
    lines = [_row(f"{label}: SQL by hand (floor)", count, floor, None)]
    lines += [_row(f"{label}: paycore, {backend}", count, seconds, floor) for backend, seconds in best.items()]
    lines.append(f"{'':<34} ({len(units)} transactions, {statements} statements per lifecycle)")
    return lines, units


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    arguments = parser.parse_args(argv)
    count = 10 if arguments.quick else 100
    lines = [f"{'':<34} {'lifecycles/s':>10} {'ms/lifecycle':>11} {'ratio':>7}"]
    for backend in ("asyncio", "trio"):
        seconds = anyio.run(_lifecycles, "memory", count, backend, backend=backend)
        lines.append(_row(f"no database (memory), {backend}", count, seconds, None))
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "bench.db")
        url = f"sqlite:///{path}"
        lines += _measure("SQLite", url, count, lambda units, n, tag: _replay_sqlite(path, units, n, tag))[0]
    if not arguments.no_postgres:
        with PostgresServer() as server:
            url = server.create_database("bench")
            migrate.upgrade(url)
            measured, units = _measure(
                "PostgreSQL", url, count, lambda units, n, tag: _replay_postgres(server.dsn("bench"), units, n, tag)
            )
            lines += measured
            lines.append("PostgreSQL, reaching the database from async code (same SQL, no flow):")
            lines += _unit_transport(url, units, count)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
