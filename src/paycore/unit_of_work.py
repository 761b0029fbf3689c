"""``PaymentWriter``: load a payment, change it, store it as one unit of work, tell observers.

Every change to a payment goes through :meth:`PaymentWriter.mutate`: it loads
the stored payment, asks a *build* function for a :class:`~paycore.changes.Change`
(the rules decide on the freshest copy), and saves the next version with its
events (and a webhook's receipt) in one write with a version check. A writer
that lost a race reloads and re-applies, so two reports for one payment at
once, in one process or several, end as they would in sequence. Observers
(``paycore_payment_event``) hear of events only once they are committed.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Final

import anyio
import pluggy
from attrs import evolve

from paycore.changes import Change
from paycore.errors import ConcurrentUpdate, PaycoreError, PaymentNotFound
from paycore.hookcalls import notify_observers
from paycore.records import Payment, PaymentEvent, WebhookReceipt
from paycore.storage import PaymentRepository

__all__ = ["MAX_ATTEMPTS", "PaymentWriter"]

MAX_ATTEMPTS: Final = 25
"""Reload-and-reapply attempts before a write that keeps losing races gives up."""

Build = Callable[[Payment], "Change | None"]
"""Builds the change to store from the freshest payment (``None``: nothing to change)."""


class PaymentWriter:
    """The one path by which payments are read for a change and written back."""

    def __init__(self, repository: PaymentRepository, plugin_manager: pluggy.PluginManager) -> None:
        self.repository = repository
        self.plugin_manager = plugin_manager

    async def load(self, payment_id: str, tenant: str | None = None) -> Payment:
        """The payment, if visible to ``tenant`` (``None``: unscoped); :class:`PaymentNotFound` otherwise.

        Another tenant's payment is reported exactly as a payment that does not exist.
        """
        missing = PaymentNotFound(f"no payment {payment_id!r}" + (f" for tenant {tenant!r}" if tenant else ""))
        try:
            payment = await self.repository.get(payment_id)
        except PaymentNotFound:
            raise missing from None
        if tenant is not None and payment.tenant != tenant:
            raise missing
        return payment

    async def add(self, payment: Payment, events: Sequence[PaymentEvent]) -> None:
        """Store a new payment with its first events, then tell observers."""
        await self.repository.add(payment, events)
        await self.notify(events, payment)

    async def mutate(
        self,
        payment_id: str,
        build: Build,
        *,
        receipt: WebhookReceipt | None = None,
        known: Payment | None = None,
    ) -> Payment:
        """Load, change, store; on a lost race reload and re-apply. One unit of work per try.

        With a ``receipt`` (a webhook's event id), a delivery seen before changes
        nothing and returns the payment as stored. ``known`` is a copy of the
        payment the caller just read or wrote: the first try decides on it
        instead of reading it again, and the version check of the write proves
        it was still current. A decision that changes nothing or refuses is
        only ever taken on a copy read here, so a stale ``known`` never decides alone.
        """
        payment = known
        for attempt in range(MAX_ATTEMPTS):
            # A repeated delivery's receipt makes its save fail like a lost race (the receipt is
            # unique), so the receipt is looked up only on a retry: a new event costs no extra read.
            if (
                attempt > 0
                and receipt is not None
                and await self.repository.has_receipt(receipt.provider, receipt.tenant, receipt.event_id)
            ):
                return await self.repository.get(payment_id)
            fresh = payment is None
            if payment is None:
                payment = await self.repository.get(payment_id)
            try:
                change = build(payment)
            except PaycoreError:
                if fresh:
                    raise
                payment = None  # refused on the caller's copy: decide again on the stored one
                continue
            updated = change.result() if change is not None else None
            if updated is None:
                if receipt is None:
                    if fresh:
                        return payment
                    payment = None  # nothing to change on the caller's copy: confirm on the stored one
                    continue
                updated = evolve(payment, version=payment.version + 1)
            events = change.events if change is not None else []
            try:
                await self.repository.save(updated, events, (receipt,) if receipt is not None else ())
            except ConcurrentUpdate:
                payment = None
                if not fresh:
                    continue  # the caller's copy was stale: read and decide again at once
                await anyio.sleep(random.uniform(0, 0.002 * attempt))
                continue
            await self.notify(events, updated)
            return updated
        raise ConcurrentUpdate(f"payment {payment_id} kept changing; gave up after {MAX_ATTEMPTS} attempts")

    async def notify(self, events: Sequence[PaymentEvent], payment: Payment) -> None:
        """Tell ``paycore_payment_event`` observers about committed events, in order."""
        for event in events:
            await notify_observers(self.plugin_manager, event=event, payment=payment)
