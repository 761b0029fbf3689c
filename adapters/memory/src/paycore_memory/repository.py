"""``MemoryRepository``: payments, events and webhook receipts in dictionaries."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from paycore.errors import ConcurrentUpdate, DuplicatePayment, PaymentNotFound
from paycore.records import Payment, PaymentEvent, WebhookReceipt
from paycore.status import PaymentStatus

__all__ = ["MemoryRepository"]


class MemoryRepository:
    """A :class:`~paycore.storage.PaymentRepository` held in memory.

    Stored records are immutable, so they are shared, never copied. A lock
    makes each call one atomic unit of work, even across threads.
    """

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
            self._payments[payment.id] = payment
            self._events[payment.id] = list(events)
            self._index_external(payment)

    async def get(self, payment_id: str) -> Payment:
        """The payment with ``payment_id``."""
        try:
            return self._payments[payment_id]
        except KeyError:
            raise PaymentNotFound(f"no payment {payment_id!r}") from None

    async def get_by_external_id(self, provider: str, tenant: str | None, external_id: str) -> Payment:
        """The payment ``provider`` knows as ``external_id`` in ``tenant``."""
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
            self._payments[payment.id] = payment
            self._events[payment.id].extend(events)
            self._receipts.update(keys)
            self._index_external(payment)

    def _index_external(self, payment: Payment) -> None:
        if payment.external_id is not None:
            self._external[payment.provider, payment.tenant, payment.external_id] = payment.id

    async def list_payments(
        self,
        *,
        tenant: str | None = None,
        order_id: str | None = None,
        status: PaymentStatus | None = None,
        limit: int | None = None,
    ) -> list[Payment]:
        """Matching payments, oldest first."""
        found = [
            p
            for p in list(self._payments.values())
            if (tenant is None or p.tenant == tenant)
            and (order_id is None or p.order_id == order_id)
            and (status is None or p.status == status)
        ]
        found.sort(key=lambda p: (p.created_at, p.id))
        return found if limit is None else found[:limit]

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
