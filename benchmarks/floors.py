"""The floor of the memory lifecycle: a careful, hand-written point of sale in plain Python.

``benchmarks/bench.py`` divides paycore's memory lifecycle by this one, measured
in the same run. It is what a developer who knows the guarantees would write
by hand for one payment's lifecycle, with nothing general about it: one
provider, one currency, no plugins, hooks, observability or configuration.

The lifecycle is paycore's (``paycore.testing.fake.mobile_money_lifecycle``): create with an
idempotency key, paid by signed webhook, a partial refund the provider leaves
pending (with its own idempotency key), and the refund's confirmation by
signed webhook. The guarantees kept are the ones paycore keeps:

* **Idempotency record per mutating call**, keyed by (operation, key) and
  holding a SHA-256 fingerprint of the request: claimed before the provider
  is called (a concurrent retry sees it in progress), completed with the
  result after; a replay with the same fingerprint returns the stored result,
  one with another fingerprint is refused.
* **Version check on every write** of a payment: a write names the version it
  read and fails with :class:`Conflict` if the stored one moved.
* **An event record per transition** (six per lifecycle: created, processing,
  succeeded, refund requested, refund pending, partially refunded).
* **Webhooks verified** with HMAC-SHA256 over the raw body and a timestamp
  (``t=<unix>,v1=<hex>``, Stripe's scheme) within a tolerance, compared in
  constant time, before the body is parsed; a **webhook receipt** per provider
  event id makes a redelivery a no-op.
* **Refund total <= captured amount**, checked when a refund is reserved (the
  pending refunds count) and again when one is confirmed.

The store is plain dictionaries of slotted rows; every call is ``async def``
and runs under an anyio event loop (asyncio or trio), as paycore's do. A write
runs without an ``await`` between its read and its commit, so on one event
loop it is atomic without a lock. The "provider" is as small as paycore's
``FakeProvider``: a ledger entry per payment, an id per call, webhooks it
signs.

    .venv/bin/python benchmarks/floors.py            # lifecycles per second, asyncio and trio
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

SECRET = b"whsec-floor"
"""The webhook signing secret the floor's provider and its verifier share."""
TOLERANCE = 300.0
"""Seconds a webhook's signed timestamp may differ from the clock (Stripe's default)."""
SIGNATURE_HEADER = "x-floor-signature"
PROVIDER = "floor"
AMOUNT = 5000
"""5000 XOF, as paycore's lifecycle (XOF has no minor unit: 5000 minor units)."""
REFUND = 1500
CURRENCY = "XOF"
IDEMPOTENCY_TTL = 24 * 3600.0


class Conflict(Exception):
    """A write named a version that is no longer the stored one, or a key was reused differently."""


class InvalidSignature(Exception):
    """A webhook whose signature or timestamp does not verify."""


def fingerprint(*parts: object) -> str:
    """The SHA-256 fingerprint of a request: what an idempotency key is bound to."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def new_id(prefix: str) -> str:
    """A globally unique id (several workers may create payments at once: no counter)."""
    return f"{prefix}_{secrets.token_hex(8)}"


def sign(body: bytes, secret: bytes = SECRET, *, at: float | None = None) -> str:
    """The signature header of ``body``: ``t=<unix seconds>,v1=<HMAC-SHA256 of "t." + body>``."""
    stamp = str(int(time.time() if at is None else at))
    digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(body: bytes, headers: Mapping[str, str], secret: bytes = SECRET) -> None:
    """Check ``body``'s signature and timestamp (constant-time); raise :class:`InvalidSignature`."""
    header = headers.get(SIGNATURE_HEADER)
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER}")
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        stamp, given = fields["t"], fields["v1"]
        signed_at = int(stamp)
    except (KeyError, ValueError):
        raise InvalidSignature("malformed signature header") from None
    if abs(time.time() - signed_at) > TOLERANCE:
        raise InvalidSignature("timestamp outside the tolerance")
    expected = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given, expected):
        raise InvalidSignature("signature does not match")


# -- the provider --------------------------------------------------------------------------


@dataclass(slots=True)
class LedgerEntry:
    """What the floor's provider believes about one payment."""

    external_id: str
    amount: int
    outcome: str
    captured: int = 0


class FloorProvider:
    """A provider as small as paycore's ``FakeProvider``: a ledger, ids, signed webhooks."""

    def __init__(self) -> None:
        self.ledger: dict[str, LedgerEntry] = {}
        self._ids = itertools.count(1)
        self._events = itertools.count(1)

    async def initiate(self, payment_id: str, amount: int) -> tuple[str, str]:
        """Create the payment at the provider: (external id, ``"pending"``: awaiting the customer)."""
        entry = LedgerEntry(f"fl_{next(self._ids)}", amount, "pending")
        self.ledger[payment_id] = entry
        return entry.external_id, entry.outcome

    async def refund(self, payment_id: str, refund_id: str, amount: int) -> tuple[str, str]:
        """Ask for a refund: (external refund id, ``"pending"``: confirmed later by webhook)."""
        return f"flr_{next(self._ids)}", "pending"

    def settle(self, payment_id: str) -> None:
        """The customer paid."""
        entry = self.ledger[payment_id]
        entry.outcome, entry.captured = "succeeded", entry.amount

    def webhook(self, payment_id: str, refunds: list[dict[str, Any]] | None = None) -> tuple[bytes, dict[str, str]]:
        """A signed webhook body and headers reporting the payment (and refunds) as the ledger has them."""
        entry = self.ledger[payment_id]
        body = json.dumps(
            {
                "id": f"fle_{next(self._events)}",
                "external_id": entry.external_id,
                "outcome": entry.outcome,
                "captured": entry.captured,
                "currency": CURRENCY,
                "refunds": refunds or [],
            }
        ).encode()
        return body, {SIGNATURE_HEADER: sign(body), "content-type": "application/json"}


# -- the store -----------------------------------------------------------------------------


@dataclass(slots=True)
class PaymentRow:
    """One payment: its money in minor units, its status, and the version every write checks."""

    id: str
    order_id: str
    amount: int
    currency: str
    status: str
    version: int
    created_at: float
    updated_at: float
    external_id: str | None = None
    captured: int = 0
    refunded: int = 0
    reserved: int = 0
    """Refunds requested and not failed: what a new refund must fit beside, under ``captured``."""


@dataclass(slots=True)
class EventRow:
    """One transition of a payment."""

    sequence: int
    kind: str
    status: str
    amount: int
    at: float


@dataclass(slots=True)
class RefundRow:
    """One refund of a payment."""

    id: str
    payment_id: str
    amount: int
    status: str
    external_id: str | None = None


@dataclass(slots=True)
class IdempotencyRow:
    """A claimed idempotency key: the request it is bound to and, once done, its result."""

    fingerprint: str
    expires_at: float
    result: Any = None


class MemoryStore:
    """Dictionaries of rows; each method is one atomic write (no ``await`` inside)."""

    def __init__(self) -> None:
        self.payments: dict[str, PaymentRow] = {}
        self.events: dict[str, list[EventRow]] = {}
        self.refunds: dict[str, RefundRow] = {}
        self.by_external: dict[str, str] = {}
        self.idempotency: dict[tuple[str, str], IdempotencyRow] = {}
        self.receipts: dict[str, str] = {}

    def claim(self, scope: str, key: str, request: str, now: float) -> Any:
        """Claim ``key`` for ``request``: None when fresh, else the stored result (a replay)."""
        held = self.idempotency.get((scope, key))
        if held is None or held.expires_at < now:
            self.idempotency[scope, key] = IdempotencyRow(request, now + IDEMPOTENCY_TTL)
            return None
        if held.fingerprint != request:
            raise Conflict(f"idempotency key {key!r} was used for another request")
        if held.result is None:
            raise Conflict(f"idempotency key {key!r} is in progress")
        return held.result

    def complete(self, scope: str, key: str, result: Any) -> None:
        """Store the result of a claimed key."""
        self.idempotency[scope, key].result = result

    def check(self, row: PaymentRow, read_version: int) -> None:
        """Refuse a write of ``row`` decided on ``read_version`` if the stored version moved since."""
        if self.payments[row.id].version != read_version:
            raise Conflict(f"payment {row.id} moved past version {read_version}")

    def commit(self, row: PaymentRow, kind: str, amount: int, now: float) -> None:
        """Bump ``row``'s version and record the transition's event (right after :meth:`check`, no ``await``)."""
        row.version += 1
        row.updated_at = now
        events = self.events[row.id]
        events.append(EventRow(len(events) + 1, kind, row.status, amount, now))


# -- the point of sale ---------------------------------------------------------------------


class FloorPOS:
    """The lifecycle's four calls, by hand, on :class:`MemoryStore` and :class:`FloorProvider`."""

    def __init__(self) -> None:
        self.store = MemoryStore()
        self.provider = FloorProvider()

    async def create_payment(self, order_id: str, amount: int, idempotency_key: str) -> PaymentRow:
        """Claim the key, store the payment, ask the provider, record its answer, complete the key."""
        store, now = self.store, time.time()
        request = fingerprint("create", PROVIDER, order_id, amount, CURRENCY)
        replayed = store.claim("create", idempotency_key, request, now)
        if replayed is not None:
            return store.payments[replayed]
        row = PaymentRow(new_id("pay"), order_id, amount, CURRENCY, "pending", 1, now, now)
        store.payments[row.id] = row
        store.events[row.id] = [EventRow(1, "created", "pending", amount, now)]
        version = row.version
        external_id, outcome = await self.provider.initiate(row.id, amount)
        store.check(row, version)
        row.status = "processing" if outcome == "pending" else outcome
        row.external_id = external_id
        store.by_external[external_id] = row.id
        store.commit(row, "sent", amount, time.time())
        store.complete("create", idempotency_key, row.id)
        return row

    async def refund(self, payment_id: str, amount: int, idempotency_key: str) -> RefundRow:
        """Claim the key, reserve the refund under the captured amount, ask the provider, record its answer."""
        store, now = self.store, time.time()
        request = fingerprint("refund", payment_id, amount, CURRENCY)
        replayed = store.claim("refund", idempotency_key, request, now)
        if replayed is not None:
            return store.refunds[replayed]
        row = store.payments[payment_id]
        version = row.version
        if row.status not in ("succeeded", "partially_refunded") or row.reserved + amount > row.captured:
            raise Conflict(f"payment {payment_id} cannot refund {amount}")
        store.check(row, version)
        refund = RefundRow(new_id("rfd"), payment_id, amount, "requested")
        row.reserved += amount
        store.refunds[refund.id] = refund
        store.commit(row, "refund_requested", amount, now)
        version = row.version
        external_id, outcome = await self.provider.refund(payment_id, refund.id, amount)
        store.check(row, version)
        refund.status, refund.external_id = outcome, external_id
        store.commit(row, f"refund_{outcome}", amount, time.time())
        store.complete("refund", idempotency_key, refund.id)
        return refund

    async def handle_webhook(self, body: bytes, headers: Mapping[str, str]) -> PaymentRow:
        """Verify, dedupe by receipt, apply the report to the payment (one versioned write)."""
        verify(body, headers)
        report = json.loads(body)
        store, now = self.store, time.time()
        if report["id"] in store.receipts:
            return store.payments[store.receipts[report["id"]]]
        row = store.payments[store.by_external[report["external_id"]]]
        store.check(row, row.version)
        kind = "reported"
        if report["outcome"] == "succeeded" and row.status in ("pending", "processing"):
            if report["currency"] != row.currency or report["captured"] > row.amount:
                raise Conflict("the report's capture does not fit the payment")
            row.status, row.captured, kind = "succeeded", report["captured"], "succeeded"
        for reported in report["refunds"]:
            refund = store.refunds[reported["refund_id"]]
            if refund.payment_id != row.id or refund.status not in ("requested", "pending"):
                continue
            if reported["status"] == "succeeded":
                if row.refunded + refund.amount > row.captured:
                    raise Conflict("refunds would exceed the captured amount")
                refund.status = "succeeded"
                row.refunded += refund.amount
                row.status = "refunded" if row.refunded == row.captured else "partially_refunded"
                kind = row.status
        store.commit(row, kind, row.captured, now)
        store.receipts[report["id"]] = row.id
        return row


async def lifecycle(pos: FloorPOS, tag: str) -> None:
    """One lifecycle: create (key), paid by signed webhook, partial refund left pending (key), confirmed."""
    payment = await pos.create_payment(f"T-{tag}", AMOUNT, f"order-{tag}")
    pos.provider.settle(payment.id)
    await pos.handle_webhook(*pos.provider.webhook(payment.id))
    refund = await pos.refund(payment.id, REFUND, f"refund-{tag}")
    confirmed = [{"refund_id": refund.id, "status": "succeeded", "amount": REFUND}]
    final = await pos.handle_webhook(*pos.provider.webhook(payment.id, refunds=confirmed))
    assert final.status == "partially_refunded", final.status
    assert final.refunded == REFUND, final.refunded


async def lifecycles(count: int, tag: str = "") -> float:
    """Seconds for ``count`` lifecycles on a fresh store (after one warm-up lifecycle)."""
    pos = FloorPOS()
    await lifecycle(pos, f"{tag}warm")
    started = time.perf_counter()
    for number in range(count):
        await lifecycle(pos, f"{tag}{number}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    """Print the floor's lifecycles per second under asyncio and trio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    arguments = parser.parse_args(argv)
    for backend in ("asyncio", "trio"):
        seconds = anyio.run(lifecycles, arguments.count, backend=backend) / arguments.count
        print(f"{backend:<8} {1 / seconds:>10,.0f} lifecycles/s {seconds * 1e6:>8.1f} us/lifecycle")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
