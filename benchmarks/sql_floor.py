"""The floor of the SQL lifecycles: the SQL a careful hand-written point of sale issues, with the raw driver.

``benchmarks/bench.py`` divides paycore's SQLite and PostgreSQL lifecycles by
this one, measured in the same run. It is not a replay of paycore's
statements: it is its own small schema (created here, ``floor_*`` tables) and
the fewest transactions and statements that keep the guarantees paycore
keeps, written with ``sqlite3`` / ``psycopg`` directly.

The lifecycle is paycore's (``paycore.testing.fake.mobile_money_lifecycle``): create with an
idempotency key, paid by signed webhook, a partial refund the provider leaves
pending (with its own idempotency key), its confirmation by signed webhook.
Webhooks are verified (HMAC-SHA256 over the raw body with a timestamp
tolerance, :func:`floors.verify`) and parsed on the event loop, before any
SQL. Each transaction is one ``anyio.to_thread.run_sync`` call, which is what
async code must do with a blocking driver; the provider is called on the
event loop, between transactions, never inside one.

The transactions and statements, per lifecycle (``?`` is ``%s`` on PostgreSQL;
SQLite runs ``BEGIN IMMEDIATE`` ... ``COMMIT``, PostgreSQL its implicit
``BEGIN`` ... ``COMMIT`` at READ COMMITTED):

1. **create, before the provider call** (3 statements):
   ``INSERT INTO floor_idempotency ... ON CONFLICT DO NOTHING`` (the claim:
   key, request fingerprint, expiry; no row inserted means a retry, answered
   from the stored result off this path); ``INSERT INTO floor_payments``
   (version 1); ``INSERT INTO floor_events`` (created).
2. **create, the provider's answer** (3): ``UPDATE floor_payments SET
   status, external_id, version = version + 1 WHERE id = ? AND version = ?``
   (no row: a webhook got there first, refuse); ``INSERT INTO floor_events``;
   ``UPDATE floor_idempotency SET result``.
3. **webhook: paid** (4): ``SELECT`` the payment by (provider, external id);
   ``INSERT INTO floor_receipts ... ON CONFLICT DO NOTHING`` (no row: a
   redelivery, nothing changes); ``UPDATE floor_payments`` (captured, status,
   version check); ``INSERT INTO floor_events``.
4. **refund, before the provider call** (5): the idempotency claim;
   ``SELECT`` the payment (captured, refunds reserved, version); ``INSERT INTO
   floor_refunds``; ``UPDATE floor_payments SET reserved = reserved + ?``
   with the version check, so two refunds cannot both fit under the captured
   amount; ``INSERT INTO floor_events``.
5. **refund, the provider's answer** (4): ``UPDATE floor_refunds`` (pending,
   external id); ``UPDATE floor_payments`` (version check); ``INSERT INTO
   floor_events``; ``UPDATE floor_idempotency SET result``.
6. **webhook: refund confirmed** (6): ``SELECT`` the payment; the receipt
   ``INSERT``; ``SELECT`` the refund; ``UPDATE floor_refunds``; ``UPDATE
   floor_payments`` (refunded total checked against captured, version
   check); ``INSERT INTO floor_events``.

Six transactions, 25 statements. Why not fewer: a mutating call must claim its
idempotency key and record its intent *before* the provider is called (a
concurrent retry must see the claim; a crash after the provider acted must
leave a local trace), and must record the provider's answer *after* it — no
transaction may stay open across provider I/O — so create and refund take two
each; a webhook's receipt, transition and event must commit together, so it
takes one. Inside them, every statement is needed for a guarantee: the
idempotency row, the versioned payment row, an event row per transition (its
key is the payment's new version, so no count is read), the webhook receipt,
the refund row. The payment row carries its captured, refunded and reserved
totals, so no ``SUM`` over refunds is read.

    .venv/bin/python benchmarks/sql_floor.py            # SQLite only: lifecycles per second
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from floors import (
    AMOUNT,
    CURRENCY,
    IDEMPOTENCY_TTL,
    PROVIDER,
    REFUND,
    Conflict,
    FloorProvider,
    fingerprint,
    new_id,
    verify,
)

T = TypeVar("T")

SCHEMA = [
    """CREATE TABLE floor_payments (
        id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        external_id TEXT,
        order_id TEXT NOT NULL,
        amount BIGINT NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        captured BIGINT NOT NULL DEFAULT 0,
        refunded BIGINT NOT NULL DEFAULT 0,
        reserved BIGINT NOT NULL DEFAULT 0,
        version INTEGER NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        UNIQUE (provider, external_id)
    )""",
    """CREATE TABLE floor_events (
        payment_id TEXT NOT NULL REFERENCES floor_payments (id),
        version INTEGER NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        amount BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (payment_id, version)
    )""",
    """CREATE TABLE floor_refunds (
        id TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL REFERENCES floor_payments (id),
        amount BIGINT NOT NULL,
        status TEXT NOT NULL,
        external_id TEXT
    )""",
    """CREATE TABLE floor_idempotency (
        scope TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        result TEXT,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (scope, idem_key)
    )""",
    """CREATE TABLE floor_receipts (
        provider TEXT NOT NULL,
        event_id TEXT NOT NULL,
        payment_id TEXT NOT NULL REFERENCES floor_payments (id),
        received_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (provider, event_id)
    )""",
]

CLAIM = (
    "INSERT INTO floor_idempotency (scope, idem_key, fingerprint, expires_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
HELD = "SELECT fingerprint, result, expires_at FROM floor_idempotency WHERE scope = ? AND idem_key = ?"
COMPLETE = "UPDATE floor_idempotency SET result = ? WHERE scope = ? AND idem_key = ?"
INSERT_PAYMENT = (
    "INSERT INTO floor_payments (id, provider, order_id, amount, currency, status, version, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, 'pending', 1, ?, ?)"
)
INSERT_EVENT = "INSERT INTO floor_events (payment_id, version, kind, status, amount, at) VALUES (?, ?, ?, ?, ?, ?)"
PAYMENT_COLUMNS = "id, status, amount, currency, captured, refunded, reserved, version"
SELECT_PAYMENT = f"SELECT {PAYMENT_COLUMNS} FROM floor_payments WHERE id = ?"
SELECT_BY_EXTERNAL = f"SELECT {PAYMENT_COLUMNS} FROM floor_payments WHERE provider = ? AND external_id = ?"
SENT = (
    "UPDATE floor_payments SET status = ?, external_id = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
SETTLED = (
    "UPDATE floor_payments SET status = ?, captured = ?, refunded = ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
RESERVE = (
    "UPDATE floor_payments SET reserved = reserved + ?, version = version + 1, updated_at = ? "
    "WHERE id = ? AND version = ?"
)
TOUCH = "UPDATE floor_payments SET version = version + 1, updated_at = ? WHERE id = ? AND version = ?"
RECEIPT = (
    "INSERT INTO floor_receipts (provider, event_id, payment_id, received_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
INSERT_REFUND = "INSERT INTO floor_refunds (id, payment_id, amount, status) VALUES (?, ?, ?, 'requested')"
REFUND_SENT = "UPDATE floor_refunds SET status = ?, external_id = ? WHERE id = ?"
SELECT_REFUND = "SELECT amount, status FROM floor_refunds WHERE id = ? AND payment_id = ?"
REFUND_DONE = "UPDATE floor_refunds SET status = ? WHERE id = ?"


class SqlFloor:
    """The lifecycle's calls as hand-written transactions on one raw-driver connection."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.cursor = connection.cursor()
        self.provider = FloorProvider()
        self.transactions = 0
        self.statements = 0
        self._marker = "%s" if dialect == "postgresql" else "?"

    @classmethod
    def sqlite(cls, path: str) -> SqlFloor:
        """A floor on the SQLite file ``path``, set up as paycore sets up SQLite (WAL, foreign keys)."""
        connection = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
        return cls(connection, "sqlite")

    @classmethod
    def postgres(cls, dsn: str) -> SqlFloor:
        """A floor on the PostgreSQL database ``dsn``."""
        import psycopg

        return cls(psycopg.connect(dsn), "postgresql")

    def create_schema(self) -> None:
        """Create the floor's tables (once per database)."""
        for statement in SCHEMA:
            self.cursor.execute(statement)
        if self.dialect == "postgresql":
            self.connection.commit()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    # -- running transactions ----------------------------------------------------------------

    def _x(self, sql: str, parameters: tuple[Any, ...]) -> Any:
        self.statements += 1
        if self._marker != "?":
            sql = sql.replace("?", self._marker)
        return self.cursor.execute(sql, parameters)

    def _transaction(self, work: Callable[[], T]) -> T:
        self.transactions += 1
        if self.dialect == "sqlite":
            self.cursor.execute("BEGIN IMMEDIATE")
            try:
                result = work()
            except BaseException:
                self.cursor.execute("ROLLBACK")
                raise
            self.cursor.execute("COMMIT")
            return result
        try:
            result = work()
        except BaseException:
            self.connection.rollback()
            raise
        self.connection.commit()
        return result

    async def _run(self, work: Callable[[], T]) -> T:
        """One transaction, one worker-thread hop."""
        return await anyio.to_thread.run_sync(partial(self._transaction, work))

    def _claim(self, scope: str, key: str, request: str, now: float) -> str | None:
        """Claim ``key``: None when fresh, else the stored result (a retry); a different request is refused."""
        if self._x(CLAIM, (scope, key, request, now + IDEMPOTENCY_TTL)).rowcount == 1:
            return None
        held, result, expires_at = self._x(HELD, (scope, key)).fetchone()
        if expires_at < now:
            raise Conflict(f"idempotency key {key!r} expired: reclaiming it is not part of the lifecycle")
        if held != request:
            raise Conflict(f"idempotency key {key!r} was used for another request")
        if result is None:
            raise Conflict(f"idempotency key {key!r} is in progress")
        return str(result)

    def _write(self, sql: str, parameters: tuple[Any, ...], payment_id: str) -> None:
        if self._x(sql, parameters).rowcount != 1:
            raise Conflict(f"payment {payment_id} moved: the write was decided on a stale version")

    # -- the lifecycle's calls ---------------------------------------------------------------

    async def create_payment(self, order_id: str, amount: int, idempotency_key: str) -> str:
        """Claim and store (one transaction), call the provider, record its answer (one transaction)."""
        now = time.time()
        request = fingerprint("create", PROVIDER, order_id, amount, CURRENCY)
        payment_id = new_id("pay")

        def claim() -> str | None:
            replayed = self._claim("create", idempotency_key, request, now)
            if replayed is not None:
                return replayed
            self._x(INSERT_PAYMENT, (payment_id, PROVIDER, order_id, amount, CURRENCY, now, now))
            self._x(INSERT_EVENT, (payment_id, 1, "created", "pending", amount, now))
            return None

        replayed = await self._run(claim)
        if replayed is not None:
            return str(json.loads(replayed)["payment_id"])
        external_id, outcome = await self.provider.initiate(payment_id, amount)
        status = "processing" if outcome == "pending" else outcome
        result = json.dumps({"payment_id": payment_id, "status": status})

        def record() -> None:
            at = time.time()
            self._write(SENT, (status, external_id, at, payment_id, 1), payment_id)
            self._x(INSERT_EVENT, (payment_id, 2, "sent", status, amount, at))
            self._x(COMPLETE, (result, "create", idempotency_key))

        await self._run(record)
        return payment_id

    async def refund(self, payment_id: str, amount: int, idempotency_key: str) -> str:
        """Claim and reserve under the captured amount (one transaction), call the provider, record (one)."""
        now = time.time()
        request = fingerprint("refund", payment_id, amount, CURRENCY)
        refund_id = new_id("rfd")

        def reserve() -> str | tuple[int, str]:
            replayed = self._claim("refund", idempotency_key, request, now)
            if replayed is not None:
                return replayed
            row = self._x(SELECT_PAYMENT, (payment_id,)).fetchone()
            _, status, _, _, captured, _, reserved, version = row
            if status not in ("succeeded", "partially_refunded") or reserved + amount > captured:
                raise Conflict(f"payment {payment_id} cannot refund {amount}")
            self._x(INSERT_REFUND, (refund_id, payment_id, amount))
            self._write(RESERVE, (amount, now, payment_id, version), payment_id)
            self._x(INSERT_EVENT, (payment_id, version + 1, "refund_requested", status, amount, now))
            return int(version + 1), str(status)

        reserved = await self._run(reserve)
        if isinstance(reserved, str):
            return str(json.loads(reserved)["refund_id"])
        version, status = reserved
        external_id, outcome = await self.provider.refund(payment_id, refund_id, amount)
        result = json.dumps({"refund_id": refund_id, "status": outcome})

        def record() -> None:
            at = time.time()
            self._x(REFUND_SENT, (outcome, external_id, refund_id))
            self._write(TOUCH, (at, payment_id, version), payment_id)
            self._x(INSERT_EVENT, (payment_id, version + 1, f"refund_{outcome}", status, amount, at))
            self._x(COMPLETE, (result, "refund", idempotency_key))

        await self._run(record)
        return refund_id

    async def handle_webhook(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Verify and parse (event loop), then receipt, transition and event (one transaction); the new status."""
        verify(body, headers)
        report = json.loads(body)

        def apply() -> str:
            now = time.time()
            row = self._x(SELECT_BY_EXTERNAL, (PROVIDER, report["external_id"])).fetchone()
            payment_id, status, amount, currency, captured, refunded, _, version = row
            if self._x(RECEIPT, (PROVIDER, report["id"], payment_id, now)).rowcount != 1:
                return str(status)  # a redelivery: already applied
            kind = "reported"
            if report["outcome"] == "succeeded" and status in ("pending", "processing"):
                if report["currency"] != currency or report["captured"] > amount:
                    raise Conflict("the report's capture does not fit the payment")
                status, captured, kind = "succeeded", report["captured"], "succeeded"
            for reported in report["refunds"]:
                found = self._x(SELECT_REFUND, (reported["refund_id"], payment_id)).fetchone()
                if found is None or found[1] not in ("requested", "pending") or reported["status"] != "succeeded":
                    continue
                if refunded + found[0] > captured:
                    raise Conflict("refunds would exceed the captured amount")
                self._x(REFUND_DONE, ("succeeded", reported["refund_id"]))
                refunded += found[0]
                status = kind = "refunded" if refunded == captured else "partially_refunded"
            self._write(SETTLED, (status, captured, refunded, now, payment_id, version), payment_id)
            self._x(INSERT_EVENT, (payment_id, version + 1, kind, status, captured, now))
            return str(status)

        return await self._run(apply)


async def lifecycle(floor: SqlFloor, tag: str) -> None:
    """One lifecycle, as ``floors.lifecycle`` but on SQL."""
    provider = floor.provider
    payment_id = await floor.create_payment(f"T-{tag}", AMOUNT, f"order-{tag}")
    provider.settle(payment_id)
    await floor.handle_webhook(*provider.webhook(payment_id))
    refund_id = await floor.refund(payment_id, REFUND, f"refund-{tag}")
    confirmed = [{"refund_id": refund_id, "status": "succeeded", "amount": REFUND}]
    status = await floor.handle_webhook(*provider.webhook(payment_id, refunds=confirmed))
    assert status == "partially_refunded", status


async def lifecycles(floor: SqlFloor, count: int, tag: str) -> float:
    """Seconds for ``count`` lifecycles (after one warm-up lifecycle)."""
    await lifecycle(floor, f"{tag}-warm")
    started = time.perf_counter()
    for number in range(count):
        await lifecycle(floor, f"{tag}-{number}")
    return time.perf_counter() - started


async def counts(floor: SqlFloor, tag: str) -> tuple[int, int]:
    """(transactions, statements) one lifecycle issues, counted as it runs."""
    transactions, statements = floor.transactions, floor.statements
    await lifecycle(floor, tag)
    return floor.transactions - transactions, floor.statements - statements


def main(argv: list[str] | None = None) -> int:
    """Print the SQLite floor's lifecycles per second and its counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        floor = SqlFloor.sqlite(str(Path(directory) / "floor.db"))
        floor.create_schema()
        for backend in ("asyncio", "trio"):
            seconds = anyio.run(lifecycles, floor, arguments.count, backend, backend=backend) / arguments.count
            print(f"SQLite floor, {backend:<8} {1 / seconds:>8,.0f} lifecycles/s {seconds * 1e3:>7.2f} ms/lifecycle")
        transactions, statements = anyio.run(counts, floor, "count")
        print(f"{transactions} transactions, {statements} statements per lifecycle")
        floor.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
