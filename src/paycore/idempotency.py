"""The idempotency runner every mutating call goes through.

:class:`IdempotentRunner` is the one implementation of the protocol on top of
an :class:`~paycore.storage.IdempotencyStore`; the flow and every plugin with
mutating operations (the cash drawers) use it. Keys, fingerprints and the ids
a key binds are :mod:`paycore.keys`' (and are importable from here too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final, TypeVar

import anyio

from paycore.awaiting import run_shielded, run_to_end, to_the_end
from paycore.errors import (
    RELEASE_ON,
    ConcurrentUpdate,
    IdempotencyError,
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    PaycoreError,
    StorageError,
    ValidationError,
)
from paycore.keys import (
    MAX_KEY_LENGTH,
    KeyBinding,
    KeyCompleter,
    check_key,
    derived_id,
    earlier_forms,
    fingerprint,
    replayed,
    scope_of,
    stored_result,
)
from paycore.logs import guarded_logger
from paycore.records import Checkout, Payment, Refund
from paycore.storage import (
    ClaimingRepository,
    IdempotencyClaim,
    IdempotencyStore,
    KeyClaim,
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

log = guarded_logger("paycore.idempotency")

T = TypeVar("T")

_KEEP_PAUSES: Final = (0.02, 0.05, 0.1, 0.2, 0.4, 0.0)
"""Pauses between claims of a key taken over, to keep its first holder's result (under a second in all)."""
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
        self._keeps_at_once = getattr(store, "completes_without_waiting", False) is True
        self._completed_by_writes = self._completes_keys_of is not None and self._completes_keys_of(store)
        self._claims_with = self._claiming if self._completed_by_writes else None
        self._claims_at_once = getattr(store, "claims_without_waiting", False) is True and (
            self._claims_with is None or getattr(self._claims_with, "writes_without_waiting", False) is True
        )

    def __repr__(self) -> str:
        return f"<IdempotentRunner store={type(self.store).__name__} ttl={self.ttl_seconds:g}s>"

    async def _claim(
        self,
        binding: KeyBinding,
        fingerprint: str,
        prefetch: Callable[[KeyBinding], Sequence[str]] | None,
        new: PaymentWrite | None = None,
        updates: Callable[[KeyBinding, Payment], PaymentWrite | None] | None = None,
    ) -> tuple[IdempotencyClaim, KeyBinding]:
        """Claim the binding's key; with a repository that can, read the ``prefetch`` payments with it,
        store ``new`` unless one of them is an earlier attempt's payment the key still binds, or store
        the first write ``updates`` decides on the one payment read. Returns the claim and the binding
        with what the claim gave."""
        claiming = self._claims_with
        if claiming is None or prefetch is None:
            claim = await self.store.claim(
                scope=binding.scope, key=binding.key, fingerprint=fingerprint, lease_seconds=self.lease_seconds
            )
            return claim, binding
        asked, ids = KeyClaim(binding.scope, binding.key, fingerprint, self.lease_seconds), prefetch(binding)
        added = updated = None
        if new is not None:

            def add(found: list[Payment]) -> PaymentWrite | None:
                return None if any(binding.binds(payment.created_at) for payment in found) else new

            claim, found, added = await claiming.claim_and_add(self.store, asked, ids, add)
        elif updates is not None and len(ids) == 1:
            try:
                claim, found, updated = await claiming.claim_and_update(
                    self.store, asked, ids[0], lambda payment: updates(binding, payment)
                )
            except ConcurrentUpdate:  # the payment changed under the write: nothing of the unit was kept
                claim, found = await claiming.claim_and_get(self.store, asked, ids)
        else:
            claim, found = await claiming.claim_and_get(self.store, asked, ids)
        if claim.token is None:
            return claim, binding
        completer = KeyCompleter(self.store, binding.scope, binding.key, claim.token, self.ttl_seconds)
        prefetched = {payment.id: payment for payment in found}
        return claim, binding.with_claim(completer=completer, prefetched=prefetched, added=added, updated=updated)

    def binding(self, scope: str, key: str) -> KeyBinding:
        """The ids ``key`` names in ``scope`` now."""
        return KeyBinding.at(scope, check_key(key), self.clock(), timedelta(seconds=self.ttl_seconds))

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
        updates: Callable[[KeyBinding, Payment], PaymentWrite | None] | None = None,
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
        ``updates`` decides, on the one payment ``prefetch`` names as the claim's unit
        read it, the operation's first write (``None``: none it can decide there, and it
        must not raise); such a repository stores it in that unit (:attr:`KeyBinding.updated`).
        """
        if key is None:
            if self.required:
                raise ValidationError(f"{operation} needs an idempotency_key (idempotency_required is set)")
            return await execute(None)
        binding, new, refused = self.binding(scope, key), None, None
        if adds is not None and self._claims_with is not None and prefetch is not None:
            try:  # built and checked before the claim (cancellable as any wait), to be stored with it
                new = await adds(binding)
            except release_on as error:  # the key still answers first (see _claimed)
                refused = error
        claiming = partial(self._claimed, operation, binding, arguments, prefetch, new, refused, updates)
        # A claim gives its holder the token to let the key go with: a caller cancelled meanwhile gets it too.
        claimed, cut = (await claiming(), None) if self._claims_at_once else await to_the_end(claiming)
        request, claim, binding = claimed
        if claim.token is None:
            if cut is not None:
                raise cut
            return replayed(claim, result_type, scope)
        if cut is None:
            return await self._holding(operation, request, claim.token, binding, execute, release_on)
        failure: Exception | None = None
        with anyio.CancelScope() as abandoned:  # what the claim wrote is undone, as at a cut at execute's first wait
            abandoned.cancel()
            try:
                await self._holding(operation, request, claim.token, binding, execute, release_on)
            except Exception as error:  # refused before its first wait: the caller's cancellation still ends it
                failure = error
        raise cut from failure

    async def _claimed(
        self,
        operation: str,
        binding: KeyBinding,
        arguments: Mapping[str, Any],
        prefetch: Callable[[KeyBinding], Sequence[str]] | None,
        new: PaymentWrite | None,
        refused: BaseException | None,
        updates: Callable[[KeyBinding, Payment], PaymentWrite | None] | None,
    ) -> tuple[str, IdempotencyClaim, KeyBinding]:
        """The request's fingerprint, its claim of the binding's key (without a token: completed, to replay) and
        the binding as the claim gave it, for :meth:`run`; ``new`` is stored with the claim.

        A create whose checks ``refused`` it still hears the key first: a request completed before is replayed, a
        key held by another says so, and a key claimed here is released before the refusal is raised; unless the
        key binds an earlier attempt's payment (its holder crashed): then that payment is carried on (settled by
        asking its provider), not left pending behind a refusal that says nothing was stored."""
        forms = (arguments, *earlier_forms(operation, arguments))
        for form, given in enumerate(forms):
            request = fingerprint(operation, given)
            try:
                if refused is None:
                    return (request, *(await self._claim(binding, request, prefetch, new, updates)))
                claim, held = await self._claim(binding, request, prefetch)  # the store's own claim
                if claim.token is None or (
                    held.prefetched and held.earlier("pay", held.prefetched.values()) is not None
                ):
                    return request, claim, held
                await self._release(binding.scope, binding.key, claim.token, refused)
                raise refused
            except IdempotencyKeyReused:  # unless an earlier release ran this very request under the key
                if form == len(forms) - 1:
                    raise
        raise AssertionError("unreachable: the last form's refusal is raised")

    async def _holding(
        self,
        operation: str,
        request: str,
        token: str,
        binding: KeyBinding,
        execute: Callable[[KeyBinding | None], Awaitable[T]],
        release_on: tuple[type[BaseException], ...],
    ) -> T:
        """``execute`` under the key ``token`` holds; its result kept for the key, or the key let go as it fails."""
        scope, key, completer = binding.scope, binding.key, binding.completer
        if completer is None and self._completed_by_writes:
            completer = KeyCompleter(self.store, scope, key, token, self.ttl_seconds)
            binding = binding.with_claim(completer=completer, prefetched=None)
        try:
            result = await execute(binding)
        except BaseException as error:
            cancelled = isinstance(error, anyio.get_cancelled_exc_class())
            if cancelled and binding.concluded:  # the provider's answer was recorded: the key keeps the result
                (concluded,) = binding.concluded
                keep = partial(self._keep, scope, key, request, token, concluded, completer, operation)
                with suppress(Exception):  # else the key waits out its lease, and a retry takes it over
                    await run_to_end(keep)
            elif cancelled or isinstance(error, release_on):
                # A refusal, or a caller cancelled before the answer: what the operation stored says where it
                # stands, and a retry carries it on from there at once. A crash keeps the key for its lease.
                await self._release(scope, key, token, error)
            raise
        await self._keep(scope, key, request, token, result, completer, operation)
        return result

    async def _release(self, scope: str, key: str, token: str, error: BaseException) -> None:
        """Let go of the key ``token`` holds, as ``error`` ends its request. A store that fails to (unreachable)
        leaves the key held for its lease: ``error``, which the caller is still told, says so in a note."""
        try:
            await run_shielded(partial(self.store.release, scope=scope, key=key, token=token))
        except Exception as failed:  # the request's own error is what its caller must be told
            why = str(failed) if isinstance(failed, PaycoreError) else type(failed).__name__  # a store's own: its name
            held = f"its idempotency key could not be released ({why}): a retry under it waits for its lease"
            log.warning("idempotency key %r: %s (%gs)", key, held, self.lease_seconds)
            error.add_note(f"{held} ({self.lease_seconds:g}s)")

    async def _keep(
        self,
        scope: str,
        key: str,
        request: str,
        token: str,
        result: object,
        completer: KeyCompleter | None,
        operation: str,
    ) -> None:
        """Complete the key held by ``token`` with ``result``, unless the operation's last write did already; a key
        the store cannot keep now waits out its lease (the operation was done and stored: the caller hears so)."""
        try:
            completed = completer.completed(result) if completer is not None else None
            if completed is not None:
                if not completed:
                    await self._keep_after_takeover(scope, key, request, result, operation)
                return  # the operation's last write completed the key
            try:
                keeps = self._keeps_records and type(result) in KEPT_AS_RECORDS
                # The operation is done: a caller cancelled now still leaves its key completed. A store that completes
                # without waiting needs no shield: no cancellation lands where nothing waits.
                if keeps:
                    complete = partial(self.store.complete_record, record=result)  # type: ignore[attr-defined]
                else:
                    complete = partial(self.store.complete, result=stored_result(result))
                complete = partial(complete, scope=scope, key=key, token=token, ttl_seconds=self.ttl_seconds)
                await (complete() if keeps and self._keeps_at_once else run_shielded(complete))
            except IdempotencyLeaseLost:
                await self._keep_after_takeover(scope, key, request, result, operation)
        except StorageError as error:
            log.warning(
                "idempotency key %r: %s was done but its result could not be kept (%s); a retry after the key's "
                "lease carries it on from what was stored",
                key,
                operation,
                error,
            )

    async def _keep_after_takeover(self, scope: str, key: str, request: str, result: object, operation: str) -> None:
        """Keep ``result`` for a key taken over while its request ran, once the key is free again.

        The request that took it over may have been refused and let it go (this one's call was
        still in flight: :class:`~paycore.errors.PaymentBusy`); the key is then claimed anew and
        completed, so a retry replays this result instead of finding the operation done. A key
        completed or held by another request meanwhile is left to it.
        """
        taken = "idempotency key %r was taken over before %s finished"
        with anyio.CancelScope(shield=True):
            claim: IdempotencyClaim | None = None
            for pause in _KEEP_PAUSES:
                try:
                    claim = await self.store.claim(
                        scope=scope, key=key, fingerprint=request, lease_seconds=self.lease_seconds
                    )
                    break
                except IdempotencyInProgress:  # the request that took it over may let it go: it is refused at once
                    await anyio.sleep(pause)
                except IdempotencyError:  # reused for another request: it is theirs
                    break
            if claim is None:
                log.warning(taken + "; its result is not kept: the key is another request's", key, operation)
                return
            if claim.token is None:
                return  # completed meanwhile: it replays that
            await self.store.complete(
                scope=scope, key=key, token=claim.token, result=stored_result(result), ttl_seconds=self.ttl_seconds
            )
        log.warning(taken + "; its result is kept", key, operation)
