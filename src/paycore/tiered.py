"""``TieredIdempotencyStore``: fast stores (caches) in front of one durable store.

Configured as a list, fastest first: ``idempotency = ["redis", "sqlalchemy"]``.
The last store is the durable one and the source of truth; the ones before it
are caches that answer the common retry in one round trip.

* A result found in a cache is replayed at once (one round trip).
* A new request claims every cache and then the durable store; the durable
  claim decides. So a cache that lost its data (restarted empty) or is down
  never lets a request run twice.
* A result found only in the durable store is written back into the caches
  that were claimed on the way (they are filled again), kept there no longer
  than the durable store keeps it (:attr:`~paycore.storage.IdempotencyClaim.expires_in`):
  a key is free again after ``idempotency_ttl`` in every tier.
* ``complete`` writes the durable store first, then the caches; ``release``
  releases the durable store first, then the caches.
* A cache that fails (:class:`~paycore.errors.StorageError`, such as
  ``StorageUnavailable``) is skipped: the flow carries on with the durable
  store. One warning is logged on logger ``paycore.tiered`` when a cache goes
  down and one message when it is back; while down it is tried again at most
  every ``retry_after`` seconds, so an outage costs no time per request.
* ``IdempotencyKeyReused`` and ``IdempotencyInProgress`` from the durable store
  are raised to the caller (after releasing what this call had claimed). From a
  cache they are not the last word: a cache keeps the claim of a request whose
  result reached only the durable store (the cache was down or slow then) until
  its lease ends, so the durable store is asked, and its claim decides.

The token handed out is composite: one token per tier (``None`` for a cache
that was skipped), as JSON text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from paycore.config import DEFAULT_IDEMPOTENCY_TTL
from paycore.disposal import dispose
from paycore.errors import (
    ConfigurationError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    StorageError,
)
from paycore.logs import guarded_logger
from paycore.storage import IdempotencyClaim, IdempotencyStore

__all__ = ["TieredIdempotencyStore"]

logger = guarded_logger("paycore.tiered")

_LOST = "idempotency key {key!r}: this request's lease expired and another request took it over"


class _Cache:
    """A cache tier and its outage state."""

    __slots__ = ("down_since", "name", "retry_at", "store")

    def __init__(self, store: IdempotencyStore, name: str) -> None:
        self.store = store
        self.name = name
        self.down_since: float | None = None
        self.retry_at = 0.0

    def usable(self, now: float) -> bool:
        return self.down_since is None or now >= self.retry_at


class TieredIdempotencyStore:
    """An :class:`~paycore.storage.IdempotencyStore` made of caches and a durable store.

    ``stores`` is fastest first; the last is durable. ``names`` (default: the
    stores' class names) label tiers in log messages. ``refill_ttl`` is how
    long a result copied from the durable store back into a cache is kept
    there; ``retry_after`` how many seconds a failed cache is left alone
    before it is tried again. ``clock`` (monotonic seconds) is injectable.
    """

    def __init__(
        self,
        stores: Sequence[IdempotencyStore],
        *,
        names: Sequence[str] | None = None,
        refill_ttl: float = DEFAULT_IDEMPOTENCY_TTL,
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        stores = list(stores)
        if len(stores) < 2:
            raise ConfigurationError(
                f"a tiered idempotency store needs at least two stores (caches, then a durable one), got {len(stores)}"
            )
        labels = list(names) if names is not None else [type(store).__name__ for store in stores]
        if len(labels) != len(stores):
            raise ConfigurationError(f"{len(labels)} names given for {len(stores)} idempotency stores")
        if refill_ttl <= 0 or retry_after < 0:
            raise ConfigurationError(
                f"refill_ttl must be positive and retry_after not negative, got {refill_ttl}, {retry_after}"
            )
        self._caches = [_Cache(store, name) for store, name in zip(stores[:-1], labels[:-1], strict=True)]
        self._durable = stores[-1]
        self._durable_name = labels[-1]
        self._refill_ttl = refill_ttl
        self._retry_after = retry_after
        self._clock = clock

    def __repr__(self) -> str:
        tiers = " -> ".join([*(cache.name for cache in self._caches), self._durable_name])
        return f"<TieredIdempotencyStore {tiers}>"

    @property
    def stores(self) -> tuple[IdempotencyStore, ...]:
        """The tiers, fastest first; the last is the durable store."""
        return (*(cache.store for cache in self._caches), self._durable)

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        """Replay from the first tier that has the result, else claim every tier (see the module)."""
        held: list[str | None] = [None] * len(self._caches)
        try:
            for index, cache in enumerate(self._caches):
                if not cache.usable(self._clock()):
                    continue
                try:
                    answer = await cache.store.claim(
                        scope=scope, key=key, fingerprint=fingerprint, lease_seconds=lease_seconds
                    )
                except StorageError as error:
                    self._failed(cache, error)
                    continue
                except (IdempotencyInProgress, IdempotencyKeyReused):
                    # A cache may keep a claim whose result only reached the durable store (it was down
                    # or slow then): its refusal is not the last word, the durable store's claim decides.
                    self._succeeded(cache)
                    continue
                self._succeeded(cache)
                if answer.result is not None:
                    await self._refill(scope, key, held, answer)
                    return IdempotencyClaim(result=answer.result, expires_in=answer.expires_in)
                held[index] = answer.token
            answer = await self._durable.claim(
                scope=scope, key=key, fingerprint=fingerprint, lease_seconds=lease_seconds
            )
        except BaseException:
            # Refused (in progress, reused), durable store failed, or cancelled:
            # give back what this call took on the way.
            await self._release_caches(scope, key, held)
            raise
        if answer.result is not None:
            await self._refill(scope, key, held, answer)
            return answer
        return IdempotencyClaim(token=json.dumps([*held, answer.token]), taken_over=answer.taken_over)

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        """Store ``result`` in the durable store (the holder's lease decides), then in the caches."""
        cached, durable = self._tokens(key, token)
        try:
            await self._durable.complete(scope=scope, key=key, token=durable, result=result, ttl_seconds=ttl_seconds)
        except IdempotencyLeaseLost:
            await self._release_caches(scope, key, cached)
            raise
        await self._complete_caches(scope, key, cached, result, ttl_seconds)

    async def release(self, *, scope: str, key: str, token: str) -> None:
        """Forget the key in every tier this token holds (the durable store first)."""
        try:
            cached, durable = self._tokens(key, token)
        except IdempotencyLeaseLost:
            return
        try:
            await self._durable.release(scope=scope, key=key, token=durable)
        finally:
            await self._release_caches(scope, key, cached)

    async def aclose(self) -> None:
        """Close every tier."""
        with anyio.CancelScope(shield=True):
            for store in self.stores:
                await store.aclose()

    def dispose(self) -> None:
        """Dispose of every tier that can be (:mod:`paycore.disposal`): a flow built on them was refused."""
        dispose(*self.stores)

    def _tokens(self, key: str, token: str) -> tuple[list[str | None], str]:
        """The caches' tokens and the durable store's token inside a composite ``token``."""
        try:
            tokens = json.loads(token)
        except (TypeError, ValueError):
            tokens = None
        if (
            not isinstance(tokens, list)
            or len(tokens) != len(self._caches) + 1
            or not isinstance(tokens[-1], str)
            or not all(part is None or isinstance(part, str) for part in tokens)
        ):
            raise IdempotencyLeaseLost(_LOST.format(key=key) + " (the token is not one this store gave)")
        return tokens[:-1], tokens[-1]

    async def _refill(self, scope: str, key: str, held: Sequence[str | None], answer: IdempotencyClaim) -> None:
        """Copy the replayed result into the caches claimed on the way, for no longer than the tier that had it
        keeps it: a copy outliving it would replay the result after the key is free again (``idempotency_ttl``).
        A result kept for no known time, or none left, is not copied: the claims are given back."""
        assert answer.result is not None
        kept = answer.expires_in
        if kept is None or kept <= 0:
            await self._release_caches(scope, key, held)
        else:
            await self._complete_caches(scope, key, held, answer.result, min(self._refill_ttl, kept))

    async def _complete_caches(
        self,
        scope: str,
        key: str,
        tokens: Sequence[str | None],
        result: Mapping[str, Any],
        ttl_seconds: float,
    ) -> None:
        with anyio.CancelScope(shield=True):
            for cache, token in zip(self._caches, tokens, strict=True):
                if token is None:
                    continue
                try:
                    await cache.store.complete(
                        scope=scope, key=key, token=token, result=result, ttl_seconds=ttl_seconds
                    )
                except IdempotencyLeaseLost:
                    # Another request holds the cache's copy of the key now; the
                    # durable store has the result, the cache will be refilled.
                    logger.debug("cache %s lost idempotency key %r before its result was copied", cache.name, key)
                except StorageError as error:
                    self._failed(cache, error)
                else:
                    self._succeeded(cache)

    async def _release_caches(self, scope: str, key: str, tokens: Sequence[str | None]) -> None:
        with anyio.CancelScope(shield=True):
            for cache, token in zip(self._caches, tokens, strict=True):
                if token is None:
                    continue
                try:
                    await cache.store.release(scope=scope, key=key, token=token)
                except StorageError as error:
                    self._failed(cache, error)

    def _failed(self, cache: _Cache, error: StorageError) -> None:
        now = self._clock()
        cache.retry_at = now + self._retry_after
        if cache.down_since is None:
            cache.down_since = now
            logger.warning(
                "idempotency store %s is unavailable (%s); idempotency continues on the durable store %s "
                "until it is back",
                cache.name,
                error,
                self._durable_name,
            )

    def _succeeded(self, cache: _Cache) -> None:
        if cache.down_since is not None:
            logger.info(
                "idempotency store %s is available again after %.1fs",
                cache.name,
                self._clock() - cache.down_since,
            )
            cache.down_since = None
