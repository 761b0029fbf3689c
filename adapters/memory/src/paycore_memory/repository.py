"""``MemoryRepository``: payments, events and webhook receipts in dictionaries."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar

from paycore.errors import ConcurrentUpdate, DuplicateExternalId, DuplicatePayment, PaymentNotFound
from paycore.listing import PaymentListing
from paycore.records import Payment, PaymentEvent, WebhookReceipt
from paycore.status import PaymentStatus

__all__ = ["MemoryRepository"]


class MemoryRepository:
    """A :class:`~paycore.storage.PaymentRepository` held in memory.

    Stored records are immutable, so they are shared, never copied. A lock
    makes each call one atomic unit of work, even across threads.
    """

    storage_backend: ClassVar[str] = "memory"
    """The storage family: plugins that store things of their own keep them in memory beside it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payments: dict[str, Payment] = {}
        self._events: dict[str, list[PaymentEvent]] = {}
        self._external: dict[tuple[str, str | None, str], str] = {}
        self._receipts: set[tuple[str, str | None, str]] = set()

    def __repr__(self) -> str:
        return f"<MemoryRepository payments={len(self._payments)}>"

    async def add(self, payment: Payment, events: Sequence[PaymentEvent]) -> None:
        """Store a new payment and its first events."""
        with self._lock:
            if payment.id in self._payments:
                raise DuplicatePayment(f"payment {payment.id} exists already")
            self._check_references(payment)
            self._payments[payment.id] = payment
            self._events[payment.id] = list(events)
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
            stored = self._payments.get(payment.id)
            if stored is None:
                raise PaymentNotFound(f"no payment {payment.id!r}")
            if payment.version != stored.version + 1:
                raise ConcurrentUpdate(
                    f"payment {payment.id} is at version {stored.version}; "
                    f"a write of version {payment.version} lost a race"
                )
            keys = [(r.provider, r.tenant, r.event_id) for r in receipts]
            if any(key in self._receipts for key in keys) or len(set(keys)) != len(keys):
                raise ConcurrentUpdate(f"payment {payment.id}: a webhook receipt was recorded concurrently")
            self._check_references(payment)
            self._payments[payment.id] = payment
            self._events[payment.id].extend(events)
            self._receipts.update(keys)
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

    async def list_events(self, payment_id: str) -> list[PaymentEvent]:
        """The payment's events in sequence order."""
        return list(self._events.get(payment_id, ()))

    async def has_receipt(self, provider: str, tenant: str | None, event_id: str) -> bool:
        """True when the webhook event was applied."""
        return (provider, tenant, event_id) in self._receipts

    async def aclose(self) -> None:
        """Nothing to release."""


def _references(payment: Payment) -> tuple[str, ...]:
    """Every reference a payment is known by at its provider."""
    if payment.external_id is None or payment.external_id in payment.references:
        return payment.references
    return (payment.external_id, *payment.references)
