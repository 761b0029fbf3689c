"""``MemoryRepository``: payments, events and webhook receipts in dictionaries."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from paycore.errors import ConcurrentUpdate, DuplicateExternalId, DuplicatePayment, PaymentNotFound
from paycore.listing import PaymentListing
from paycore.records import Payment, PaymentEvent, WebhookReceipt, event_id
from paycore.status import PaymentStatus, RefundStatus
from paycore.storage import Decide, PaymentLookup, PaymentWrite

__all__ = ["MemoryRepository"]


_StoredEvent = tuple[Any, ...]
"""An event as kept: its fields but the payment id, and its id only when it is not :func:`event_id`'s."""


def _stored(event: PaymentEvent) -> _StoredEvent:
    named = None if event.id == event_id(event.payment_id, event.sequence) else event.id
    return (named, event.sequence, event.kind, event.cause, event.tenant, event.from_status, event.to_status,
            event.amount, event.refund_id, event.provider_event_id, event.message, event.at)  # fmt: skip


def _event(payment_id: str, stored: _StoredEvent) -> PaymentEvent:
    named, sequence, kind, cause, tenant, from_status, to_status, amount, refund_id, provider_event, message, at = (
        stored
    )
    return PaymentEvent(
        id=named if named is not None else event_id(payment_id, sequence),
        payment_id=payment_id,
        sequence=sequence,
        kind=kind,
        cause=cause,
        tenant=tenant,
        from_status=from_status,
        to_status=to_status,
        amount=amount,
        refund_id=refund_id,
        provider_event_id=provider_event,
        message=message,
        at=at,
    )


class MemoryRepository:
    """A :class:`~paycore.storage.PaymentRepository` held in memory.

    Stored payments are immutable, so they are shared, never copied. Events are
    kept as tuples without what their payment already says (about half the
    memory of event objects) and rebuilt when listed. A lock makes each call
    one atomic unit of work, even across threads.
    """

    storage_backend: ClassVar[str] = "memory"
    """The storage family: plugins that store things of their own keep them in memory beside it."""
    writes_without_waiting: ClassVar[bool] = True
    """Its units of work never wait (a lock; its ``claim_and_*`` claim in its own store, which never waits either)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payments: dict[str, Payment] = {}
        self._events: dict[str, list[_StoredEvent]] = {}
        self._external: dict[tuple[str, str | None, str], str] = {}
        self._receipts: dict[tuple[str, str | None], set[str]] = {}
        """Event ids of applied webhooks, by provider and tenant."""

    def __repr__(self) -> str:
        return f"<MemoryRepository payments={len(self._payments)}>"

    async def add(self, payment: Payment, events: Sequence[PaymentEvent]) -> None:
        """Store a new payment and its first events."""
        with self._lock:
            if payment.id in self._payments:
                raise DuplicatePayment(f"payment {payment.id} exists already")
            self._check_references(payment)
            self._payments[payment.id] = payment
            self._events[payment.id] = [_stored(event) for event in events]
            self._index_external(payment)

    async def get(self, payment_id: str) -> Payment:
        """The payment with ``payment_id``."""
        try:
            return self._payments[payment_id]
        except KeyError:
            raise PaymentNotFound(f"no payment {payment_id!r}") from None

    async def get_many(self, payment_ids: Sequence[str]) -> list[Payment]:
        """The stored payments among ``payment_ids``."""
        return [self._payments[i] for i in dict.fromkeys(payment_ids) if i in self._payments]

    async def get_by_external_id(self, provider: str, tenant: str | None, external_id: str) -> Payment:
        """The payment ``provider`` knows as ``external_id`` (any of its references) in ``tenant``."""
        payment_id = self._external.get((provider, tenant, external_id))
        if payment_id is None:
            raise PaymentNotFound(f"no payment of provider {provider!r} with external id {external_id!r}")
        return self._payments[payment_id]

    async def save(
        self,
        payment: Payment,
        events: Sequence[PaymentEvent] = (),
        receipts: Sequence[WebhookReceipt] = (),
    ) -> None:
        """Replace the payment if its version follows the stored one; all or nothing."""
        with self._lock:
            self._write(payment, events, receipts)

    async def update(
        self, lookup: PaymentLookup, decide: Decide, *, known: Payment | None = None
    ) -> tuple[Payment, PaymentWrite | None]:
        """Read the payment ``lookup`` names (or take ``known``), decide, write the decision: one unit, locked."""
        with self._lock:
            payment = known if known is not None else self._find(lookup)
            write = decide(payment)
            if write is not None:
                self._write(write.payment, write.events, write.receipts)
            return payment, write

    def _find(self, lookup: PaymentLookup) -> Payment:
        if lookup.payment_id is not None:
            found = self._payments.get(lookup.payment_id)
        else:
            payment_id = self._external.get((lookup.provider, lookup.tenant, lookup.reference))  # type: ignore[arg-type]
            found = self._payments.get(payment_id) if payment_id is not None else None
        if found is None:
            raise PaymentNotFound(f"no payment {lookup}")
        return found

    def _write(self, payment: Payment, events: Sequence[PaymentEvent], receipts: Sequence[WebhookReceipt]) -> None:
        stored = self._payments.get(payment.id)
        if stored is None:
            raise PaymentNotFound(f"no payment {payment.id!r}")
        if payment.version != stored.version + 1:
            raise ConcurrentUpdate(
                f"payment {payment.id} is at version {stored.version}; a write of version {payment.version} lost a race"
            )
        seen = self._receipts
        keys = [(r.provider, r.tenant, r.event_id) for r in receipts] if receipts else []
        if keys and (
            any(name in seen.get((provider, tenant), ()) for provider, tenant, name in keys)
            or len(set(keys)) != len(keys)
        ):
            raise ConcurrentUpdate(f"payment {payment.id}: a webhook receipt was recorded concurrently")
        # A change that did not touch the references shares them with the stored version.
        same_references = (
            payment.external_id is stored.external_id and payment.references is stored.references
        ) or _references(payment) == _references(stored)
        if not same_references:
            self._check_references(payment)
        self._payments[payment.id] = payment
        if events:
            self._events[payment.id].extend([_stored(event) for event in events])
        for provider, tenant, name in keys:
            seen.setdefault((provider, tenant), set()).add(name)
        if not same_references:
            self._index_external(payment)

    def _index_external(self, payment: Payment) -> None:
        for reference in _references(payment):
            self._external[payment.provider, payment.tenant, reference] = payment.id

    def _check_references(self, payment: Payment) -> None:
        for reference in _references(payment):
            holder = self._external.get((payment.provider, payment.tenant, reference))
            if holder is not None and holder != payment.id:
                raise DuplicateExternalId(
                    f"payment {payment.id}: provider {payment.provider!r} reference {reference!r} "
                    f"belongs to another payment of tenant {payment.tenant!r}"
                )

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
        """Matching payments in ``(created_at, id)`` order (see :class:`~paycore.listing.PaymentListing`)."""
        listing = PaymentListing.build(
            tenant=tenant,
            order_id=order_id,
            status=status,
            limit=limit,
            created_from=created_from,
            created_before=created_before,
            newest_first=newest_first,
            after=after,
        )
        return listing.select(list(self._payments.values()))

    async def list_stale(
        self, *, statuses: Sequence[PaymentStatus], updated_before: datetime, limit: int
    ) -> list[Payment]:
        """Up to ``limit`` payments in ``statuses`` not updated since ``updated_before``."""
        wanted = set(statuses)
        found = [p for p in list(self._payments.values()) if p.status in wanted and p.updated_at < updated_before]
        found.sort(key=lambda p: (p.updated_at, p.id))
        return found[:limit]

    async def list_with_pending_refunds(
        self, *, updated_before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Payment]:
        """Up to ``limit`` payments holding a refund pending since before ``updated_before``, by ``(updated_at, id)``
        after ``after``, oldest first."""
        found = [
            p
            for p in list(self._payments.values())
            if (after is None or (p.updated_at, p.id) > after)
            and any(r.status is RefundStatus.PENDING and r.updated_at < updated_before for r in p.refunds)
        ]
        found.sort(key=lambda p: (p.updated_at, p.id))
        return found[:limit]

    async def list_with_calls(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Payment]:
        """Up to ``limit`` payments carrying a provider call, by ``(updated_at, id)`` after ``after``, oldest first."""
        found = [
            p
            for p in list(self._payments.values())
            if p.pending_call is not None and (after is None or (p.updated_at, p.id) > after)
        ]
        found.sort(key=lambda p: (p.updated_at, p.id))
        return found[: max(limit, 0)]

    async def list_events(self, payment_id: str) -> list[PaymentEvent]:
        """The payment's events in sequence order."""
        return [_event(payment_id, stored) for stored in self._events.get(payment_id, ())]

    async def has_receipt(self, provider: str, tenant: str | None, event_id: str) -> bool:
        """True when the webhook event was applied."""
        return event_id in self._receipts.get((provider, tenant), ())

    async def aclose(self) -> None:
        """Nothing to release."""


def _references(payment: Payment) -> tuple[str, ...]:
    """Every reference a payment is known by at its provider."""
    if payment.external_id is None or payment.external_id in payment.references:
        return payment.references
    return (payment.external_id, *payment.references)
