"""Idempotency keys: fingerprints, key checks, ids bound to keys, and the runner every mutating call goes through.

A request is identified by a fingerprint: the SHA-256 of its operation and
canonical arguments. The same key with the same fingerprint replays; with
another fingerprint it is refused.

A record created under a key (a payment, a refund, a drawer session) gets an id
derived from the key, so a request resumed after a crash (or retried after
"not sent") finds what its first attempt wrote instead of making a second one.
That binding lasts as long as the key's stored result (``idempotency_ttl``):
afterwards the key is free again, as at Stripe, and the same key names a new
record. :class:`KeyBinding` gives the ids a key may have named within that
window.

:class:`IdempotentRunner` is the one implementation of the protocol on top of
an :class:`~paycore.storage.IdempotencyStore`; the flow and every plugin with
mutating operations (the cash drawers) use it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import anyio
from attrs import define, evolve, field, frozen

from paycore import serialization
from paycore.errors import (
    ConcurrentUpdate,
    IdempotencyError,
    IdempotencyLeaseLost,
    NotFound,
    PaymentBusy,
    ProviderError,
    ValidationError,
)
from paycore.records import Checkout, Payment, Refund
from paycore.storage import (
    ClaimingRepository,
    IdempotencyClaim,
    IdempotencyStore,
    KeyClaim,
    KeyCompletion,
    PaymentWrite,
    RecordKeepingStore,
)

__all__ = [
    "KEPT_AS_RECORDS",
    "MAX_KEY_LENGTH",
    "RELEASE_ON",
    "IdempotentRunner",
    "KeyBinding",
    "KeyCompleter",
    "check_key",
    "derived_id",
    "fingerprint",
    "scope_of",
    "stored_result",
]

log = logging.getLogger("paycore.idempotency")

T = TypeVar("T")

MAX_KEY_LENGTH: Final = 255

RELEASE_ON: Final[tuple[type[BaseException], ...]] = (
    ValidationError,
    NotFound,
    ProviderError,
    PaymentBusy,
    IdempotencyError,
    ConcurrentUpdate,
)
"""Errors after which nothing new is left unsettled, so the key is released for a retry.

A provider call that reached the provider stays written down on its payment, so a
retry settles it by asking the provider before anything else: it is never sent twice."""


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable idempotency key; refuse it otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            f"idempotency_key must be a printable string of 1 to {MAX_KEY_LENGTH} characters, not {key!r}"
        )
    return key


def scope_of(tenant: str | None) -> str:
    """The key space of a tenant: keys of two tenants never collide."""
    return "" if tenant is None else f"t:{tenant}"


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # keys sorted, no spaces


def fingerprint(operation: str, arguments: Mapping[str, Any]) -> str:
    """The SHA-256 hex digest of ``operation`` and its canonical JSON ``arguments``."""
    from hashlib import sha256  # loaded on first use: importing paycore stays cheap

    canonical = _CANONICAL.encode({"operation": operation, "arguments": arguments})
    return sha256(canonical.encode()).hexdigest()


_BASE32: Final = "abcdefghijklmnopqrstuvwxyz234567"
_BASE32_PAIRS: Final = tuple(a + b for a in _BASE32 for b in _BASE32)
"""Every 10-bit value as two base32 letters (RFC 4648 alphabet, lower case)."""


def derived_id(prefix: str, scope: str, key: str) -> str:
    """A record id determined by ``(scope, key)``: the same inputs always name the same record.

    The id is the prefix and 120 bits of SHA-256, in lower-case RFC 4648 base32
    (what ``base64.b32encode`` gives, ten bits at a time from a table).
    """
    from hashlib import sha256  # loaded on first use: importing paycore stays cheap

    digest = sha256(f"{prefix}\x00{scope}\x00{key}".encode()).digest()
    bits = int.from_bytes(digest[:15], "big")
    return f"{prefix}_" + "".join([_BASE32_PAIRS[(bits >> shift) & 1023] for shift in range(110, -1, -10)])


@define(eq=False)
class KeyCompleter:
    """Completes an operation's idempotency key with the operation's last payment write.

    The runner hands one to the operation (:attr:`KeyBinding.completer`) when
    the repository can complete keys of the store in its own writes
    (:class:`~paycore.storage.CompletingRepository`). The operation asks it for
    a :class:`~paycore.storage.KeyCompletion` of its result as it makes its last
    write, and returns that very result; the runner then has nothing left to do.
    """

    store: IdempotencyStore
    scope: str
    key: str
    token: str
    ttl_seconds: float
    result: object = None
    """The result of the last completion asked for."""
    completion: KeyCompletion | None = None
    """The last completion asked for; its ``completed`` says whether its write committed it."""

    def completing(self, result: object) -> KeyCompletion:
        """The completion that stores ``result`` for the key (the operation's last write carries it)."""
        self.result = result
        self.completion = KeyCompletion(
            self.store, self.scope, self.key, self.token, stored_result(result), self.ttl_seconds
        )
        return self.completion

    def completed(self, result: object) -> bool | None:
        """Whether a write completed the key with ``result`` itself (``None``: no write did)."""
        if self.completion is None or self.result is not result:
            return None
        return self.completion.completed


def stored_result(result: object) -> Mapping[str, Any]:
    """``result`` as an idempotency store keeps it (read back with :func:`paycore.serialization.structure`)."""
    return {"value": serialization.unstructure_compact(result)}


@frozen
class KeyBinding:
    """The ids a key names while it is bound (for ``ttl`` after its record was created).

    Time is cut into windows of ``ttl``; a record created under the key in the
    current window gets :meth:`new_id`. A retry looks in :meth:`candidate_ids`
    (this window and the one before) and keeps a record only if :meth:`binds`
    says it is younger than ``ttl``; an older one belongs to an expired use of
    the key, which now names a new record.
    """

    scope: str
    key: str
    now: datetime
    ttl: timedelta
    completer: KeyCompleter | None = field(default=None, eq=False, repr=False)
    """Completes the key with the operation's last write, when the repository can (else ``None``)."""
    prefetched: Mapping[str, Payment] | None = field(default=None, eq=False, repr=False)
    """The payments the operation asked to read with the claim, by id (``None``: nothing was read;
    an id missing from it names no payment)."""
    added: PaymentWrite | None = field(default=None, eq=False, repr=False)
    """The new payment (with its first events) stored with the claim, when the runner could
    (:meth:`~paycore.storage.ClaimingRepository.claim_and_add`); else ``None``."""
    _ids: dict[tuple[str, int], str] = field(factory=dict, eq=False, repr=False)
    """The ids worked out so far (an operation asks for the same one more than once)."""

    @property
    def _window(self) -> int:
        return int(self.now.timestamp() // max(self.ttl.total_seconds(), 1e-6))

    def _id(self, prefix: str, window: int) -> str:
        found = self._ids.get((prefix, window))
        if found is None:
            found = self._ids[prefix, window] = derived_id(prefix, self.scope, f"{self.key}\x00{window}")
        return found

    def new_id(self, prefix: str) -> str:
        """The id a record created now under this key gets."""
        return self._id(prefix, self._window)

    def candidate_ids(self, prefix: str) -> tuple[str, str]:
        """The ids an earlier attempt under this key may have used, newest first."""
        return self._id(prefix, self._window), self._id(prefix, self._window - 1)

    def binds(self, created_at: datetime) -> bool:
        """True when a record created at ``created_at`` under this key is still the key's record."""
        return self.now - created_at < self.ttl


KEPT_AS_RECORDS: Final = frozenset({Checkout, Payment, Refund})
"""Results a :class:`~paycore.storage.RecordKeepingStore` keeps as they are: paycore's immutable records."""


class IdempotentRunner:
    """Runs a mutating request at most once per idempotency key and replays its stored result.

    * the same key and request: the stored result, without running again;
    * the same key, another request: :class:`~paycore.errors.IdempotencyKeyReused`;
    * the key's first request still running: :class:`~paycore.errors.IdempotencyInProgress`;
    * a holder that crashed: its lease expires and the key is taken over.

    What is stored follows Stripe's practice: a request refused by validation
    stores nothing (the key is released); a definitive answer, success or
    decline, is stored and replayed. ``release_on`` says which errors mean
    "nothing new is left unsettled".
    """

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        lease_seconds: float,
        ttl_seconds: float,
        clock: Callable[[], datetime],
        required: bool = False,
        completes_keys_of: Callable[[IdempotencyStore], bool] | None = None,
        claims_with: ClaimingRepository | None = None,
    ) -> None:
        self._completes_keys_of = completes_keys_of
        self._claiming = claims_with
        self.store = store
        self.lease_seconds = lease_seconds
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self.required = required

    @property
    def store(self) -> IdempotencyStore:
        """The store keys are claimed in and results kept in."""
        return self._store

    @store.setter
    def store(self, store: IdempotencyStore) -> None:
        self._store = store
        self._keeps_records = isinstance(store, RecordKeepingStore)
        self._completed_by_writes = self._completes_keys_of is not None and self._completes_keys_of(store)
        self._claims_with = self._claiming if self._completed_by_writes else None

    def __repr__(self) -> str:
        return f"<IdempotentRunner store={type(self.store).__name__} ttl={self.ttl_seconds:g}s>"

    async def _claim(
        self,
        binding: KeyBinding,
        fingerprint: str,
        prefetch: Callable[[KeyBinding], Sequence[str]] | None,
        new: PaymentWrite | None,
    ) -> tuple[IdempotencyClaim, Mapping[str, Payment] | None, PaymentWrite | None]:
        """Claim the binding's key; with a repository that can, read the ``prefetch`` payments with it
        and store ``new`` unless one of them is an earlier attempt's payment the key still binds."""
        claiming = self._claims_with
        if claiming is not None and prefetch is not None:
            asked, ids = KeyClaim(binding.scope, binding.key, fingerprint, self.lease_seconds), prefetch(binding)
            added: PaymentWrite | None = None
            if new is None:
                claim, found = await claiming.claim_and_get(self.store, asked, ids)
            else:

                def add(found: list[Payment]) -> PaymentWrite | None:
                    return None if any(binding.binds(payment.created_at) for payment in found) else new

                claim, found, added = await claiming.claim_and_add(self.store, asked, ids, add)
            return claim, {payment.id: payment for payment in found}, added
        claim = await self.store.claim(
            scope=binding.scope, key=binding.key, fingerprint=fingerprint, lease_seconds=self.lease_seconds
        )
        return claim, None, None

    async def _first_payment(
        self,
        binding: KeyBinding,
        fingerprint: str,
        adds: Callable[[KeyBinding], Awaitable[PaymentWrite]],
        release_on: tuple[type[BaseException], ...],
    ) -> tuple[PaymentWrite | None, IdempotencyClaim | None]:
        """The new payment ``adds`` builds and checks before the claim, to be stored with it.

        When the checks refuse the request, the key still answers first: a request completed
        before is replayed (its claim is returned), a key held by another says so, and a key
        claimed here is released before the refusal is raised."""
        try:
            return await adds(binding), None
        except release_on:
            claim, _, _ = await self._claim(binding, fingerprint, None, None)  # the store's own claim
            if claim.token is None:
                return None, claim
            with anyio.CancelScope(shield=True):
                await self.store.release(scope=binding.scope, key=binding.key, token=claim.token)
            raise

    def binding(self, scope: str, key: str) -> KeyBinding:
        """The ids ``key`` names in ``scope`` now."""
        return KeyBinding(scope, check_key(key), self.clock(), timedelta(seconds=self.ttl_seconds))

    async def run(
        self,
        *,
        operation: str,
        scope: str,
        key: str | None,
        arguments: Mapping[str, Any],
        execute: Callable[[KeyBinding | None], Awaitable[T]],
        result_type: type[T],
        release_on: tuple[type[BaseException], ...] = RELEASE_ON,
        prefetch: Callable[[KeyBinding], Sequence[str]] | None = None,
        adds: Callable[[KeyBinding], Awaitable[PaymentWrite]] | None = None,
    ) -> T:
        """Run ``execute`` at most once for ``key`` in ``scope``; replay its result afterwards.

        ``execute`` receives the key's :class:`KeyBinding` (``None`` without a key),
        from which it derives the ids of the records it creates. ``result_type``
        is the type the stored result is read back as (through
        :mod:`paycore.serialization`). ``prefetch`` names the payments the
        operation reads first: a repository that can (:class:`~paycore.storage.ClaimingRepository`)
        reads them with the claim, in the same unit of work (:attr:`KeyBinding.prefetched`).
        ``adds`` builds and checks the new payment a create stores first: such a
        repository stores it in the claim's unit too (:attr:`KeyBinding.added`),
        unless a ``prefetch`` payment is an earlier attempt's that the key still binds.
        """
        if key is None:
            if self.required:
                raise ValidationError(f"{operation} needs an idempotency_key (idempotency_required is set)")
            return await execute(None)
        binding = self.binding(scope, key)
        request = fingerprint(operation, arguments)
        new: PaymentWrite | None = None
        if adds is not None and self._claims_with is not None and prefetch is not None:
            new, answered = await self._first_payment(binding, request, adds, release_on)
            if answered is not None:
                return _replayed(answered, result_type)
        claim, prefetched, added = await self._claim(binding, request, prefetch, new)
        if claim.token is None:
            return _replayed(claim, result_type)
        completer = (
            KeyCompleter(self.store, scope, key, claim.token, self.ttl_seconds) if self._completed_by_writes else None
        )
        if completer is not None or prefetched is not None:
            # evolve keeps the ids worked out so far
            binding = evolve(binding, completer=completer, prefetched=prefetched, added=added)
        try:
            result = await execute(binding)
        except release_on:
            with anyio.CancelScope(shield=True):
                await self.store.release(scope=scope, key=key, token=claim.token)
            raise
        completed = completer.completed(result) if completer is not None else None
        if completed is not None:
            if not completed:
                log.warning("idempotency key %r was taken over before %s finished; its result is kept", key, operation)
            return result  # the operation's last write completed the key
        try:
            if self._keeps_records and type(result) in KEPT_AS_RECORDS:
                await self.store.complete_record(  # type: ignore[attr-defined]  # a RecordKeepingStore
                    scope=scope, key=key, token=claim.token, record=result, ttl_seconds=self.ttl_seconds
                )
            else:
                await self.store.complete(
                    scope=scope, key=key, token=claim.token, result=stored_result(result), ttl_seconds=self.ttl_seconds
                )
        except IdempotencyLeaseLost:
            log.warning("idempotency key %r was taken over before %s finished; its result is kept", key, operation)
        return result


def _replayed(claim: IdempotencyClaim, result_type: type[T]) -> T:
    """The result a claim that did not take the key replays."""
    if claim.record is not None and type(claim.record) is result_type:
        return claim.record  # narrowed by the type check above
    assert claim.result is not None, "a claim without a token carries a result or a record"
    return serialization.structure(claim.result["value"], result_type)
