"""``MemoryIdempotencyStore``: idempotency keys in a dictionary, with leases.

A completed key keeps paycore's own immutable records (a checkout, a payment, a
refund: :meth:`MemoryIdempotencyStore.complete_record`) as they are, shared,
with no serialization either way. Any other result is kept as compact JSON, as
the SQL and Redis stores do, compressed (raw deflate, fastest level, small
window): one small bytes object per key instead of a tree of small objects,
and a replay gets a fresh copy that no caller can alter. The request's
fingerprint is kept as its 32 digest bytes.
"""

from __future__ import annotations

import json
import os
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from attrs import define

from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused, IdempotencyLeaseLost
from paycore.storage import IdempotencyClaim

__all__ = ["MemoryIdempotencyStore"]


@define
class _Entry:
    fingerprint: bytes
    """The request's fingerprint (a SHA-256 hex digest) as bytes."""
    token: str | None
    expires_at: float
    """Lease deadline while running; end of retention once completed."""
    result: bytes | None = None
    """The completed request's result as compressed JSON (:meth:`MemoryIdempotencyStore.complete`)."""
    record: object | None = None
    """Or the result itself (:meth:`MemoryIdempotencyStore.complete_record`)."""

    @property
    def done(self) -> bool:
        """True once the request completed (its result is kept)."""
        return self.result is not None or self.record is not None


_WINDOW_BITS = -10
"""Raw deflate with a 1 KiB window: a result is a few hundred bytes."""


def _deflate(data: bytes) -> bytes:
    """``data`` compressed at the fastest level with a small window and little state.

    ``zlib.compress`` sets up a 256 KiB compressor for every call, which costs
    more than the JSON it compresses; this one is set up in a few microseconds.
    """
    compressor = zlib.compressobj(1, zlib.DEFLATED, _WINDOW_BITS, 2)
    return compressor.compress(data) + compressor.flush()


def _digest(fingerprint: str) -> bytes:
    """``fingerprint`` in half the memory: the bytes a hex digest spells, else its UTF-8 text."""
    try:
        return bytes.fromhex(fingerprint)
    except ValueError:
        return fingerprint.encode()


class MemoryIdempotencyStore:
    """An :class:`~paycore.storage.IdempotencyStore` held in memory.

    ``clock`` (seconds, monotonic) is injectable so lease expiry can be tested
    without sleeping.
    """

    completes_without_waiting: ClassVar[bool] = True
    """Its ``complete_record`` never waits (a lock, no ``await``): the flow needs no shield around it."""
    claims_without_waiting: ClassVar[bool] = True
    """Its ``claim`` never waits either: no cancellation can land inside one."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}

    def __repr__(self) -> str:
        return f"<MemoryIdempotencyStore keys={len(self._entries)}>"

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        """Take the key, replay its result, or refuse (see the protocol)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and entry.done and entry.expires_at <= now:
                del self._entries[scope, key]  # a completed record past its retention: forgotten
                entry = None
            if entry is not None:
                if entry.fingerprint != _digest(fingerprint):
                    raise IdempotencyKeyReused(f"idempotency key {key!r} was already used for a different request")
                if entry.record is not None:
                    return IdempotencyClaim(record=entry.record, expires_in=entry.expires_at - now)
                if entry.result is not None:
                    result = json.loads(zlib.decompress(entry.result, _WINDOW_BITS))
                    return IdempotencyClaim(result=result, expires_in=entry.expires_at - now)
                if entry.expires_at > now:
                    raise IdempotencyInProgress(f"idempotency key {key!r}: the first request with it is still running")
            token = os.urandom(16).hex()  # secrets.token_hex(16), without its two calls
            self._entries[scope, key] = _Entry(_digest(fingerprint), token, now + lease_seconds)
            return IdempotencyClaim(token=token, taken_over=entry is not None)

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        """Store the result if ``token`` still holds the key."""
        with self._lock:
            entry = self._owned(scope, key, token)
            entry.result = _deflate(json.dumps(result, separators=(",", ":"), allow_nan=False).encode())
            entry.token = None
            entry.expires_at = self._clock() + ttl_seconds

    async def complete_record(self, *, scope: str, key: str, token: str, record: object, ttl_seconds: float) -> None:
        """Keep ``record`` itself as the result if ``token`` still holds the key (an immutable record: shared)."""
        with self._lock:
            entry = self._owned(scope, key, token)
            entry.record = record
            entry.token = None
            entry.expires_at = self._clock() + ttl_seconds

    async def release(self, *, scope: str, key: str, token: str) -> None:
        """Forget the key if ``token`` holds it."""
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and entry.token == token and not entry.done:
                del self._entries[scope, key]

    def _owned(self, scope: str, key: str, token: str) -> _Entry:
        entry = self._entries.get((scope, key))
        if entry is None or entry.token != token or entry.done:
            raise IdempotencyLeaseLost(
                f"idempotency key {key!r}: this request's lease expired and another request took it over"
            )
        return entry

    async def aclose(self) -> None:
        """Nothing to release."""
