"""``RedisIdempotencyStore``: idempotency keys in Redis, one atomic script per operation.

Each operation is one round trip: ``claim`` creates the record only if it is
absent (the SET-NX of the key, with an expiry and a random owner token) or
reads it and decides (replay, refuse, take over) in the same atomic script;
``complete`` and ``release`` are compare-and-set scripts that only the token's
holder can perform. See :mod:`paycore_redis.scripts` for the record layout.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import suppress
from functools import partial
from typing import Any

import anyio
from attrs import evolve

from paycore.awaiting import WorkCancelled, run_to_end
from paycore.errors import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    PaycoreError,
    StorageError,
    StorageUnavailable,
    ValidationError,
)
from paycore.storage import IdempotencyClaim
from paycore_redis import scripts
from paycore_redis.clients import RedisClients
from paycore_redis.settings import RedisStoreSettings

__all__ = ["RedisIdempotencyStore"]

_UNANSWERED_KEPT = 4096
"""How many unanswered claims a store remembers the token of (the oldest are forgotten past that)."""


def _milliseconds(seconds: float, what: str) -> int:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise ValidationError(f"{what} must be a positive number of seconds, not {seconds!r}")
    return max(1, math.ceil(seconds * 1000))


def _escape_scope(scope: str) -> str:
    # The scope is followed by ":" in the key, so it may not contain a bare ":".
    return scope.replace("%", "%25").replace(":", "%3A")


class RedisIdempotencyStore:
    """An :class:`~paycore.storage.IdempotencyStore` in Redis, for asyncio and trio.

    ``RedisIdempotencyStore.from_url("redis://127.0.0.1:6379/0", prefix="pos:")``
    or ``RedisIdempotencyStore(RedisStoreSettings(...))``. Connections open on
    first use. Redis out of reach raises
    :class:`~paycore.errors.StorageUnavailable`. A claim whose reply never came
    (Redis stalled past ``socket_timeout``) may still take the key when Redis
    resumes: a retry of the same request from this process holds it then, one
    from another process finds it in progress until the lease ends.
    """

    def __init__(self, settings: RedisStoreSettings | None = None) -> None:
        self._settings = settings if settings is not None else RedisStoreSettings()
        self._retention_ms = _milliseconds(self._settings.abandoned_retention, "abandoned_retention")
        self._unanswered: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
        """The token of each claim whose reply never came (a timeout, a cut-off reply), by scope, key and
        fingerprint, until its lease's end (monotonic): the script may have run, and taken the key with it.
        The next claim of the same request in this process sends that token and, if the key is held by it, holds
        it (the script answers its own token), instead of being refused as in progress for the whole lease."""
        self._clients = RedisClients(
            self._settings,
            {"claim": scripts.CLAIM, "complete": scripts.COMPLETE, "release": scripts.RELEASE},
        )

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> RedisIdempotencyStore:
        """A store for ``url`` with further settings by name (``prefix``, ``socket_timeout``...)."""
        return cls(RedisStoreSettings.from_mapping({"url": url, **settings}))

    def __repr__(self) -> str:
        return f"<RedisIdempotencyStore {self._clients.where} prefix={self._settings.prefix!r}>"

    @property
    def settings(self) -> RedisStoreSettings:
        """The store's settings."""
        return self._settings

    def with_prefix(self, prefix: str) -> RedisIdempotencyStore:
        """A new store on the same server whose keys start with ``prefix`` instead."""
        return RedisIdempotencyStore(evolve(self._settings, prefix=prefix))

    def record_key(self, scope: str, key: str) -> str:
        """The Redis key holding ``key`` of ``scope``: ``{prefix}{scope}:{key}``."""
        return f"{self._settings.prefix}{_escape_scope(scope)}:{key}"

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        """Take the key, replay its result, or refuse (see the protocol); one round trip."""
        request = (scope, key, fingerprint)
        token = self._unanswered_token(request) or secrets.token_hex(16)
        lease_ms = _milliseconds(lease_seconds, "lease_seconds")
        try:
            reply = await self._clients.run(
                "claim", [self.record_key(scope, key)], [fingerprint, token, lease_ms, self._retention_ms]
            )
        except anyio.get_cancelled_exc_class():
            # Cancelled while the script travelled (asyncio's own Task.cancel): the script ran to its end, and the
            # key may be held by a token no one will use. Let it go (compare-and-delete: nothing if not taken).
            await run_to_end(partial(self.release, scope=scope, key=key, token=token))
            raise
        except StorageUnavailable as error:
            if isinstance(error.__cause__, WorkCancelled):  # its reply cut off: the script may have taken the key
                with suppress(PaycoreError):
                    await run_to_end(partial(self.release, scope=scope, key=key, token=token))
            else:  # no reply in time: the script may still run, and take the key. Its token is never released (a
                # late release would undo a retry's hold): the next claim of this request here holds with it.
                self._remember_unanswered(request, token, lease_seconds)
            raise
        kind = reply[0]
        if kind == "token":
            return IdempotencyClaim(token=token, taken_over=bool(int(reply[1])))
        if kind == "result":
            kept = int(reply[2]) if len(reply) > 2 else -1  # PTTL; -1 (no expiry) and -2 (gone) give no time
            return IdempotencyClaim(result=json.loads(reply[1]), expires_in=kept / 1000 if kept >= 0 else None)
        if kind == "reused":
            raise IdempotencyKeyReused(f"idempotency key {key!r} was already used for a different request")
        if kind == "busy":
            raise IdempotencyInProgress(
                f"idempotency key {key!r}: the first request with it is still running "
                f"(its lease ends in {int(reply[1]) / 1000:.1f}s)"
            )
        raise StorageError(f"Redis claim script gave an unexpected reply {reply!r}")

    def _unanswered_token(self, request: tuple[str, str, str]) -> str | None:
        """The token of ``request``'s unanswered claim while its lease may run, taken out: one retry sends it."""
        found = self._unanswered.pop(request, None)
        return found[0] if found is not None and found[1] > time.monotonic() else None

    def _remember_unanswered(self, request: tuple[str, str, str], token: str, lease_seconds: float) -> None:
        self._unanswered[request] = (token, time.monotonic() + lease_seconds)
        self._unanswered.move_to_end(request)
        while len(self._unanswered) > _UNANSWERED_KEPT:
            self._unanswered.popitem(last=False)

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        """Store ``result`` if ``token`` still holds the key, else raise ``IdempotencyLeaseLost``."""
        try:
            text = json.dumps(dict(result), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise StorageError(f"the result stored under idempotency key {key!r} must be JSON data: {error}") from error
        stored = await self._clients.run(
            "complete", [self.record_key(scope, key)], [token, text, _milliseconds(ttl_seconds, "ttl_seconds")]
        )
        if not int(stored):
            raise IdempotencyLeaseLost(
                f"idempotency key {key!r}: this request's lease expired and another request took it over"
            )

    async def release(self, *, scope: str, key: str, token: str) -> None:
        """Forget the key if ``token`` holds it (compare-and-delete); otherwise do nothing."""
        await self._clients.run("release", [self.record_key(scope, key)], [token])

    async def aclose(self) -> None:
        """Close the connections."""
        await self._clients.aclose()
