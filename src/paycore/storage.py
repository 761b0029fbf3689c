"""The storage contracts: ``PaymentRepository`` and ``IdempotencyStore``.

Every method is async and is **one unit of work**: it commits or changes
nothing. An adapter over a blocking driver (a sync ORM) runs each call in a
worker thread (``anyio.to_thread.run_sync``), which is how the same adapter
serves asyncio and trio. The conformance suites in :mod:`paycore.testing`
pin down every rule stated here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from attrs import define, frozen

from paycore.records import Payment, PaymentEvent, WebhookReceipt
from paycore.status import PaymentStatus

__all__ = [
    "CallListingRepository", "ClaimingRepository", "CompletingRepository", "Decide", "IdempotencyClaim",
    "IdempotencyStore", "KeyClaim", "KeyCompletion", "PaymentLookup", "PaymentRepository", "PaymentWrite",
    "RecordKeepingStore", "RefundListingRepository", "UpdatingRepository",
]  # fmt: skip


@runtime_checkable
class PaymentRepository(Protocol):
    """Stores payments (with their refunds), their events and webhook receipts.

    A repository whose units of work never wait (held in memory behind a lock) may say so
    (``writes_without_waiting = True``): the flow then awaits its writes of a provider call, and its
    claims (:class:`ClaimingRepository`), as they are, where it otherwise makes them to their end in a
    task of their own under asyncio, so that a caller cancelled meanwhile still learns what was written.
    """

    async def add(self, payment: Payment, events: Sequence[PaymentEvent]) -> None:
        """Store a new payment (``version`` 1) and its first events.

        Raises :class:`~paycore.errors.DuplicatePayment` if the id exists.
        """

    async def get(self, payment_id: str) -> Payment:
        """The payment with ``payment_id``; :class:`~paycore.errors.PaymentNotFound` if none."""
        ...

    async def get_many(self, payment_ids: Sequence[str]) -> list[Payment]:
        """The stored payments among ``payment_ids``, in one read; ids of no payment are left out.

        The order is unspecified. A retried create looks for what an earlier
        attempt under its idempotency key stored with one call instead of one per id.
        """
        ...

    async def get_by_external_id(self, provider: str, tenant: str | None, external_id: str) -> Payment:
        """The payment a provider code knows as ``external_id`` within ``tenant``.

        ``external_id`` may be any of the payment's references (``Payment.external_id``
        and ``Payment.references``). Raises :class:`~paycore.errors.PaymentNotFound` if none.
        A reference belongs to one payment per provider code and tenant: ``add`` and
        ``save`` refuse a payment whose reference another one holds with
        :class:`~paycore.errors.DuplicateExternalId` and change nothing.
        """
        ...

    async def save(
        self,
        payment: Payment,
        events: Sequence[PaymentEvent] = (),
        receipts: Sequence[WebhookReceipt] = (),
    ) -> None:
        """Replace the stored payment, append ``events``, record ``receipts``; all or nothing.

        ``payment.version`` must be the stored version plus one; otherwise (a
        writer that lost a race), or if a receipt's ``(provider, tenant,
        event_id)`` exists already, raise :class:`~paycore.errors.ConcurrentUpdate`
        and change nothing. Raises :class:`~paycore.errors.PaymentNotFound` if
        the payment does not exist.
        """

    async def list_payments(
        self,
        *,
        tenant: str | None = None,
        order_id: str | None = None,
        status: PaymentStatus | None = None,
        limit: int | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        after: str | None = None,
    ) -> list[Payment]:
        """Up to ``limit`` payments matching every given filter (``tenant=None``: all tenants).

        ``created_from`` is inclusive, ``created_before`` exclusive. Ordered by
        ``(created_at, id)``, oldest first, or newest first with ``newest_first``.
        ``after`` is a cursor (:meth:`paycore.listing.PaymentListing.cursor_after`
        of the same listing): the page starts strictly after its position, so
        payments added between pages never repeat or shift one. Read the
        arguments through :meth:`paycore.listing.PaymentListing.build`, which
        refuses a damaged cursor or another listing's with
        :class:`~paycore.errors.ValidationError`.
        """
        ...

    async def list_stale(
        self, *, statuses: Sequence[PaymentStatus], updated_before: datetime, limit: int
    ) -> list[Payment]:
        """Up to ``limit`` payments in ``statuses`` last updated before ``updated_before``, oldest first (by
        ``(updated_at, id)``): the reaper takes up the longest-waiting ones first."""
        ...

    async def list_events(self, payment_id: str) -> list[PaymentEvent]:
        """The payment's events in sequence order."""
        ...

    async def has_receipt(self, provider: str, tenant: str | None, event_id: str) -> bool:
        """True when a webhook with ``event_id`` from ``provider`` in ``tenant`` was applied."""
        ...

    async def aclose(self) -> None:
        """Release connections; the repository is not used afterwards."""


@frozen
class PaymentLookup:
    """Which payment :meth:`UpdatingRepository.update` reads: by id, or by a provider's reference.

    Build it with :meth:`by_id` or :meth:`by_reference`.
    """

    payment_id: str | None = None
    provider: str | None = None
    tenant: str | None = None
    reference: str | None = None

    @classmethod
    def by_id(cls, payment_id: str) -> PaymentLookup:
        """The payment with ``payment_id``."""
        return cls(payment_id=payment_id)

    @classmethod
    def by_reference(cls, provider: str, tenant: str | None, reference: str) -> PaymentLookup:
        """The payment ``provider`` knows as ``reference`` in ``tenant`` (as ``get_by_external_id``)."""
        return cls(provider=provider, tenant=tenant, reference=reference)

    def __str__(self) -> str:
        return repr(self.payment_id) if self.payment_id is not None else repr(self.reference)


@define
class KeyCompletion:
    """An idempotency key to complete in the same unit of work as a payment write.

    The flow attaches one to an operation's last write (:attr:`PaymentWrite.completion`)
    only for a :class:`CompletingRepository` that said it can complete keys of
    ``store``. The repository stores ``result`` for the key as ``store.complete``
    would, only if ``token`` still holds it, and sets :attr:`completed`.
    """

    store: IdempotencyStore
    scope: str
    key: str
    token: str
    result: Mapping[str, Any]
    ttl_seconds: float
    completed: bool | None = None
    """Set by the repository when the write commits: ``True`` stored; ``False`` the lease was lost
    (another request took the key over), and the payment write stands all the same."""


@frozen
class PaymentWrite:
    """What :meth:`UpdatingRepository.update` writes: the next version, its events, a webhook's receipts."""

    payment: Payment
    events: Sequence[PaymentEvent] = ()
    receipts: Sequence[WebhookReceipt] = ()
    completion: KeyCompletion | None = None
    """An idempotency key the same unit of work completes (only for a :class:`CompletingRepository`)."""


Decide = Callable[[Payment], "PaymentWrite | None"]
"""Decides, without I/O, what to write over the payment just read (``None``: nothing)."""


@runtime_checkable
class UpdatingRepository(Protocol):
    """A repository that reads, decides and writes a payment in one unit of work (optional).

    The flow uses it, when a repository has it, for changes whose payment it does not hold yet
    (a webhook, a status poll): one transaction and one worker-thread hop instead of a read and a write.
    """

    async def update(
        self, lookup: PaymentLookup, decide: Decide, *, known: Payment | None = None
    ) -> tuple[Payment, PaymentWrite | None]:
        """Read the payment ``lookup`` names, call ``decide`` on it, write what it returns; all or nothing.

        Returns the payment as read and what was written (``None``: nothing).
        ``decide`` runs inside the unit of work, possibly on a worker thread;
        if it raises, nothing is written and the error propagates. The write
        follows every rule of :meth:`PaymentRepository.save` (the version
        check, unique receipts, references another payment holds). Raises
        :class:`~paycore.errors.PaymentNotFound` if no payment matches.

        ``known`` is the caller's copy of the payment: ``decide`` runs on it
        without a read, and the write's version check proves it is the stored
        version (:class:`~paycore.errors.ConcurrentUpdate` otherwise, and nothing
        is written). What did not change since ``known`` need not be written again.
        """
        ...


@runtime_checkable
class CallListingRepository(Protocol):
    """A repository that lists the payments carrying a provider call, whatever their status (optional).

    The reaper settles with it the calls whose answer was lost on payments no listing of unfinished
    ones finds (a capture of an authorized payment, a refund); without it, only the next operation does.
    """

    async def list_with_calls(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Payment]:
        """Up to ``limit`` payments whose ``pending_call`` is set, by ``(updated_at, id)``, oldest first, strictly
        after ``after`` (the previous page's last ``(updated_at, id)``). Few payments carry a call: read an index
        of those alone (a partial index), so the cost follows ``limit``, not how many payments are stored."""
        ...


@runtime_checkable
class RefundListingRepository(Protocol):
    """A repository that lists the payments holding a refund still pending at the provider (optional).

    The reaper asks about those whose refund has waited too long for its report (a webhook lost), and flags
    those no one can ask about; without it, such a refund waits for its report, a refresh or an operator.
    """

    async def list_with_pending_refunds(
        self, *, updated_before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Payment]:
        """Up to ``limit`` payments holding a refund whose status is ``pending`` and whose ``updated_at`` is before
        ``updated_before``, each once, by the payment's ``(updated_at, id)``, oldest first, strictly after ``after``
        (the previous page's last). Few refunds are pending: read an index of those alone (a partial index), so
        the cost follows ``limit`` and how many are pending, not how many payments or refunds are stored."""
        ...


@runtime_checkable
class CompletingRepository(Protocol):
    """A repository that can complete idempotency keys in its own writes (optional).

    When the idempotency store keeps its keys in the repository's database, an operation's last
    write and the completion of its key can be one transaction: one unit of work fewer per keyed request.
    """

    def completes_keys_of(self, store: IdempotencyStore) -> bool:
        """True when this repository's writes can complete keys of ``store`` (:attr:`PaymentWrite.completion`)."""
        ...


@runtime_checkable
class ClaimingRepository(Protocol):
    """A :class:`CompletingRepository` that also claims a key and reads payments in one unit (optional).

    A keyed request claims its key, then reads the payment it works on (or, for
    a create, looks for what an earlier attempt stored): two units of work
    back to back, which one can do when the keys live in the repository's database.
    A create also stores its new payment in that unit (:meth:`claim_and_add`), and an
    operation its first write on the payment it read (:meth:`claim_and_update`).
    """

    async def claim_and_get(
        self, store: IdempotencyStore, claim: KeyClaim, payment_ids: Sequence[str]
    ) -> tuple[IdempotencyClaim, list[Payment]]:
        """``store.claim(...)`` of ``claim`` and ``get_many(payment_ids)`` in one unit of work.

        The claim follows every rule of :meth:`IdempotencyStore.claim` (its errors
        included, and then nothing is read); the payments are read after it, as
        ``get_many`` would read them. Called only for a store :meth:`CompletingRepository.completes_keys_of` accepts.
        """
        ...

    async def claim_and_add(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_ids: Sequence[str],
        add: Callable[[list[Payment]], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        """:meth:`claim_and_get`, then, for the key's holder, store what ``add`` decides: one transaction.

        ``add`` is given the payments read (what an earlier attempt under the key stored) and returns a new
        payment with its first events to add as :meth:`PaymentRepository.add` would, or ``None`` to add
        nothing; the answer names what was added. ``add`` has no side effects: a repository may ask it about
        no payment first, store that only where no payment of ``payment_ids`` is, and else ask again. A
        refused add (:class:`~paycore.errors.DuplicatePayment`, a bad value) undoes the claim too.
        """
        ...

    async def claim_and_update(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_id: str,
        decide: Callable[[Payment], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        """:meth:`claim_and_get` of ``payment_id``, then, for the key's holder, the write ``decide`` takes
        on the payment read (``None``: none), stored as :meth:`UpdatingRepository.update` would: one transaction.

        A refused write (the payment changed meanwhile: :class:`~paycore.errors.ConcurrentUpdate`)
        undoes the claim too: the key is left as it was."""
        ...


@frozen
class KeyClaim:
    """A request's claim of an idempotency key: what :meth:`IdempotencyStore.claim` is asked."""

    scope: str
    key: str
    fingerprint: str
    """The canonical hash of the request (:func:`paycore.keys.fingerprint`)."""
    lease_seconds: float
    """How long the key is held for the request before another may take it over."""


@frozen
class IdempotencyClaim:
    """The answer to :meth:`IdempotencyStore.claim`.

    Exactly one of ``token``, ``result`` and ``record`` is set: ``token`` when
    the caller now holds the key (new, or taken over from a holder whose lease
    expired) and must run the request; ``result`` when the request completed
    before and its stored result is to be replayed; ``record`` instead of
    ``result`` from a :class:`RecordKeepingStore` that kept the result itself.
    """

    token: str | None = None
    result: Mapping[str, Any] | None = None
    taken_over: bool = False
    """True when the key was taken from a holder whose lease expired."""
    record: object | None = None
    """The completed request's result itself, as :meth:`RecordKeepingStore.complete_record` kept it."""
    expires_in: float | None = None
    """With a ``result`` or ``record``: the seconds the store keeps it before the key is free again (``None``: the
    store does not say). A copy elsewhere, such as a cache in front of it, must not outlive it."""


@runtime_checkable
class IdempotencyStore(Protocol):
    """Remembers which request each idempotency key ran, and its result."""

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        """Take ``key`` in ``scope`` for a request whose canonical hash is ``fingerprint``.

        * unknown key, or a holder's lease has expired: take it (atomically; of
          many concurrent callers exactly one wins) and return a fresh ``token``;
        * completed with the same fingerprint: return its ``result``, with the seconds it is still kept
          (``expires_in``; a tiered store copies it into a cache for no longer);
        * used with another fingerprint: raise :class:`~paycore.errors.IdempotencyKeyReused`;
        * held by a live lease: raise :class:`~paycore.errors.IdempotencyInProgress`.

        The flow makes a claim to its end even when its caller is cancelled meanwhile, so that it can let
        go of the key it took. A store whose ``claim`` never waits may say so (``claims_without_waiting =
        True``; a :class:`ClaimingRepository` claiming in it says so of its ``claim_and_*`` with
        ``writes_without_waiting``): its claims are then awaited as they are, without a task of their own
        under asyncio.
        """
        ...

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        """Store ``result`` for the key, kept ``ttl_seconds``; only the holder of ``token`` may.

        Raises :class:`~paycore.errors.IdempotencyLeaseLost` if ``token`` no
        longer holds the key, and then stores nothing.
        """

    async def release(self, *, scope: str, key: str, token: str) -> None:
        """Forget the key if ``token`` holds it (nothing ran); otherwise do nothing."""

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""


@runtime_checkable
class RecordKeepingStore(Protocol):
    """An idempotency store that can keep a result as the record itself (optional; in-process stores).

    The flow completes a key this way when the store offers it and the result is one of paycore's immutable
    records (a ``Checkout``, ``Payment`` or ``Refund``): no serialization when the request completes, none
    when it is replayed, and a replay returns the record in :attr:`IdempotencyClaim.record`.
    """

    async def complete_record(self, *, scope: str, key: str, token: str, record: object, ttl_seconds: float) -> None:
        """Keep ``record`` as the key's result, as :meth:`IdempotencyStore.complete` keeps a mapping. A store whose
        ``complete_record`` never waits may say so (``completes_without_waiting = True``): it is called unshielded."""
        ...
