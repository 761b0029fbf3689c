"""Per-operation time of the SQL adapter as the payments table grows from 1,000 to 1,000,000 rows.

Each size gets a database of its own, seeded in bulk (``executemany`` on SQLite,
``COPY`` on PostgreSQL), one payment event per payment, 10% of payments left
``processing`` for the reaper to find. Once every size is seeded, the sizes are
measured in turns (smallest first, then largest first, and so on), so the
machine's own drift over the minutes of a run falls on every size alike. Each
turn times every operation the flow makes on randomly chosen payments: ``get``, ``get_by_external_id``, ``save`` (a
new version with one event), ``has_receipt``, ``list_payments`` by order and by
tenant (``limit=20``), ``list_stale`` (``limit=50``), and an idempotency
``claim`` + ``complete``. Every lookup goes through an index, so the figures
must stay flat; the last column is the time at the largest size divided by the
time at the smallest (the baseline, measured in the same run, in turns with
it). Each figure is the best of three turns' medians, so a busy machine does
not pass for a slow query.

    .venv/bin/python benchmarks/sqlalchemy_scale.py            # 1k, 10k, 100k, 1M
    .venv/bin/python benchmarks/sqlalchemy_scale.py --quick    # 1k and 10k, in seconds
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from attrs import evolve

from paycore.money import Money
from paycore.records import Payment, PaymentEvent, WebhookReceipt
from paycore.status import PaymentStatus
from paycore.testing.postgres import PostgresServer
from paycore_sqlalchemy import Database, SqlIdempotencyStore, SqlPaymentRepository, migrate
from paycore_sqlalchemy.codec import event_row, payment_row, reference_rows
from paycore_sqlalchemy.schema import payment_events, payment_references, payments

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TENANTS = [f"restaurant-{n}" for n in range(50)]
ATTEMPTS = 3
"""Each size is measured this many times and the best median kept (the machine may be busy)."""


def _payment(number: int) -> Payment:
    status = PaymentStatus.PROCESSING if number % 10 == 0 else PaymentStatus.SUCCEEDED
    created = NOW - timedelta(seconds=number)
    amount = Money.minor(1000 + number % 9000, "XOF")
    return Payment(
        id=f"pay_{number:010d}",
        provider="wave",
        order_id=f"order-{number}",
        amount=amount,
        tenant=TENANTS[number % len(TENANTS)],
        status=status,
        captured_amount=amount if status is PaymentStatus.SUCCEEDED else None,
        external_id=f"ext-{number}",
        metadata={"table": number % 30},
        version=1,
        event_count=1,
        created_at=created,
        updated_at=created,
    )


def _event(payment: Payment) -> PaymentEvent:
    return PaymentEvent(
        id=f"evt_{payment.id[4:]}_1",
        payment_id=payment.id,
        sequence=1,
        kind="created",
        cause="api",
        tenant=payment.tenant,
        to_status="pending",
        amount=payment.amount,
        at=payment.created_at,
    )


def _rows(start: int, stop: int) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """Each payment's row, its first event's row and its reference rows (so webhooks find it)."""
    for number in range(start, stop):
        payment = _payment(number)
        yield payment_row(payment), event_row(_event(payment)), reference_rows(payment)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return value


def _seed_sqlite(path: str, start: int, stop: int) -> None:
    payment_columns = [c.name for c in payments.columns]
    event_columns = [c.name for c in payment_events.columns]
    reference_columns = [c.name for c in payment_references.columns]
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    batch: list[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]] = []

    def flush() -> None:
        connection.executemany(
            f"INSERT INTO paycore_payments ({', '.join(f'{c!r}' for c in payment_columns)}) "
            f"VALUES ({', '.join('?' for _ in payment_columns)})",
            [tuple(_sqlite_value(p[c]) for c in payment_columns) for p, _, _ in batch],
        )
        connection.executemany(
            f"INSERT INTO paycore_payment_events ({', '.join(event_columns)}) "
            f"VALUES ({', '.join('?' for _ in event_columns)})",
            [tuple(_sqlite_value(e[c]) for c in event_columns) for _, e, _ in batch],
        )
        connection.executemany(
            f"INSERT INTO paycore_payment_references ({', '.join(reference_columns)}) "
            f"VALUES ({', '.join('?' for _ in reference_columns)})",
            [tuple(r[c] for c in reference_columns) for _, _, references in batch for r in references],
        )
        batch.clear()

    for pair in _rows(start, stop):
        batch.append(pair)
        if len(batch) == 20_000:
            flush()
    flush()
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()


def _seed_postgres(dsn: str, start: int, stop: int) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    payment_columns = [c.name for c in payments.columns]
    event_columns = [c.name for c in payment_events.columns]
    reference_columns = [c.name for c in payment_references.columns]

    def value(v: Any) -> Any:
        return Jsonb(v) if isinstance(v, (dict, list)) else v

    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        quoted = ", ".join(f'"{c}"' for c in payment_columns)
        with cursor.copy(f"COPY paycore_payments ({quoted}) FROM STDIN") as copy:
            for p, _, _ in _rows(start, stop):
                copy.write_row([value(p[c]) for c in payment_columns])
        with cursor.copy(f"COPY paycore_payment_events ({', '.join(event_columns)}) FROM STDIN") as copy:
            for _, e, _ in _rows(start, stop):
                copy.write_row([value(e[c]) for c in event_columns])
        with cursor.copy(f"COPY paycore_payment_references ({', '.join(reference_columns)}) FROM STDIN") as copy:
            for _, _, references in _rows(start, stop):
                for r in references:
                    copy.write_row([r[c] for c in reference_columns])
        connection.commit()
        connection.autocommit = True
        cursor.execute("VACUUM ANALYZE")


async def _timed(repeat: int, operation: Callable[[int], Awaitable[object]]) -> float:
    """Microseconds per call of ``operation(i)``: the median of ``repeat`` calls on distinct rows."""
    times = []
    for index in range(repeat):
        started = time.perf_counter()
        await operation(index)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def _measure(url: str, size: int, repeat: int, round_: int) -> dict[str, float]:
    database = Database(url)
    repository = SqlPaymentRepository(database)
    store = SqlIdempotencyStore(database)
    chosen = random.Random(size).sample(range(size), repeat)
    cache: dict[int, Payment] = {}

    async def get(i: int) -> object:
        cache[i] = await repository.get(f"pay_{chosen[i]:010d}")
        return cache[i]

    async def save(i: int) -> None:
        payment = cache[i]
        changed = evolve(payment, version=payment.version + 1, event_count=payment.event_count + 1, description="x")
        event = evolve(_event(payment), id=f"evt_{payment.id[4:]}_r{round_}", sequence=changed.event_count)
        receipt = WebhookReceipt(
            provider="wave", event_id=f"whk-{payment.id}-{round_}", payment_id=payment.id, tenant=payment.tenant
        )
        await repository.save(changed, [event], [receipt])

    async def claim(i: int) -> None:
        key = f"key-{size}-{round_}-{i}"
        taken = await store.claim(scope="bench", key=key, fingerprint="f", lease_seconds=60)
        await store.complete(scope="bench", key=key, token=taken.token or "", result={"v": i}, ttl_seconds=60)

    results = {"get": await _timed(repeat, get)}
    results["get_by_external_id"] = await _timed(
        repeat, lambda i: repository.get_by_external_id("wave", cache[i].tenant, f"ext-{chosen[i]}")
    )
    results["save (+event, +receipt)"] = await _timed(repeat, save)
    results["has_receipt"] = await _timed(
        repeat, lambda i: repository.has_receipt("wave", cache[i].tenant, f"whk-{cache[i].id}-{round_}")
    )
    results["list_payments(order_id)"] = await _timed(
        repeat, lambda i: repository.list_payments(order_id=f"order-{chosen[i]}")
    )
    results["list_payments(tenant, limit=20)"] = await _timed(
        repeat, lambda i: repository.list_payments(tenant=TENANTS[i % len(TENANTS)], limit=20)
    )
    results["list_stale(limit=50)"] = await _timed(
        repeat,
        lambda i: repository.list_stale(
            statuses=[PaymentStatus.PENDING, PaymentStatus.PROCESSING], updated_before=NOW, limit=50
        ),
    )
    results["idempotency claim+complete"] = await _timed(repeat, claim)
    await store.aclose()
    await repository.aclose()
    database.close()
    return results


def _table(title: str, sizes: list[int], figures: dict[int, dict[str, float]]) -> str:
    header = f"{title:<34}" + "".join(f"{size:>11,}" for size in sizes) + f"{'largest/smallest':>18}"
    lines = [header, "-" * len(header)]
    for operation in figures[sizes[0]]:
        cells = "".join(f"{figures[size][operation]:>9.0f}us" for size in sizes)
        ratio = figures[sizes[-1]][operation] / figures[sizes[0]][operation]
        lines.append(f"{operation:<34}{cells}{ratio:>17.2f}x")
    return "\n".join(lines)


def _run(title: str, sizes: list[int], repeat: int, prepare: Callable[[int], str]) -> str:
    return _table(f"{title} (median per call)", sizes, _figures(title, sizes, repeat, prepare))


def _figures(title: str, sizes: list[int], repeat: int, prepare: Callable[[int], str]) -> dict[int, dict[str, float]]:
    """Each operation's best median per size; ``prepare(size)`` makes and seeds the size's database, returns its URL.

    Every size is seeded first, then measured in turns with the others, the order reversed each turn.
    """
    urls: dict[int, str] = {}
    for size in sizes:
        started = time.perf_counter()
        urls[size] = prepare(size)
        print(f"{title}: seeded {size:,} payments ({time.perf_counter() - started:.1f}s)", flush=True)
    attempts: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    for attempt in range(ATTEMPTS):
        for size in sizes if attempt % 2 == 0 else reversed(sizes):
            attempts[size].append(anyio.run(_measure, urls[size], size, repeat, attempt))
    return {
        size: {operation: min(a[operation] for a in attempts[size]) for operation in attempts[size][0]}
        for size in sizes
    }


def _sqlite_database(directory: str) -> Callable[[int], str]:
    """A maker of one seeded SQLite file per size in ``directory``."""

    def prepare(size: int) -> str:
        path = str(Path(directory) / f"scale-{size}.db")
        migrate.upgrade(f"sqlite:///{path}")
        _seed_sqlite(path, 0, size)
        return f"sqlite:///{path}"

    return prepare


def _postgres_database(server: PostgresServer) -> Callable[[int], str]:
    """A maker of one seeded database per size on ``server``."""

    def prepare(size: int) -> str:
        url = server.create_database(f"scale_{size}")
        migrate.upgrade(url)
        _seed_postgres(server.dsn(f"scale_{size}"), 0, size)
        return url

    return prepare


def measure(sizes: list[int], repeat: int, *, postgres: bool) -> dict[str, dict[int, dict[str, float]]]:
    """Microseconds per call of each operation at each size, by database (for ``benchmarks/bench.py``).

    SQLite in a temporary file, and PostgreSQL on a throwaway server when ``postgres`` is true.
    """
    measured: dict[str, dict[int, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        measured["SQLite"] = _figures("SQLite", sizes, repeat, _sqlite_database(directory))
    if postgres:
        with PostgresServer() as server:
            measured["PostgreSQL"] = _figures("PostgreSQL", sizes, repeat, _postgres_database(server))
    return measured


def main(argv: list[str] | None = None) -> int:
    """Seed, measure, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k payments only")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    arguments = parser.parse_args(argv)
    sizes = [1_000, 10_000] if arguments.quick else [1_000, 10_000, 100_000, 1_000_000]
    repeat = 100 if arguments.quick else 300
    tables = []
    with tempfile.TemporaryDirectory() as directory:
        tables.append(_run("SQLite", sizes, repeat, _sqlite_database(directory)))
    if not arguments.no_postgres:
        with PostgresServer() as server:
            tables.append(_run("PostgreSQL", sizes, repeat, _postgres_database(server)))
    print()
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
