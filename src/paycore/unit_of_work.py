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

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Final, cast

import anyio
import pluggy
from attrs import evolve, frozen

from paycore.builders import compile_builder
from paycore.calls import ProviderCall
from paycore.changes import Change
from paycore.errors import (
    ConcurrentUpdate,
    DuplicateExternalId,
    PaycoreError,
    PaymentNotFound,
    ProviderOutcomeUnknown,
    StorageUnavailable,
)
from paycore.hookcalls import notify_observers
from paycore.inputs import check_payment_id
from paycore.records import Payment, PaymentEvent, WebhookReceipt
from paycore.settling import held_by_another
from paycore.storage import (
    CompletingRepository,
    IdempotencyStore,
    KeyCompletion,
    PaymentLookup,
    PaymentRepository,
    PaymentWrite,
    UpdatingRepository,
)

__all__ = ["MAX_ATTEMPTS", "TENANTS_REMEMBERED", "Delivery", "PaymentWriter"]

MAX_ATTEMPTS: Final = 25
"""Reload-and-reapply attempts before a write that keeps losing races gives up."""

TENANTS_REMEMBERED: Final = 16_384
"""The most payments whose tenant :meth:`PaymentWriter.tenant_of` remembers; past that it forgets them all."""

Build = Callable[[Payment], "Change | None"]
"""Builds the change to store from the freshest payment (``None``: nothing to change)."""
Complete = Callable[[Payment], "KeyCompletion | None"]
"""The idempotency key a write of this payment (the next version) completes, if it is the operation's last."""


async def _back_off(attempt: int) -> None:
    """Sleep a random part of ``attempt`` times 2 ms before retrying a write another writer won."""
    from random import uniform  # only a contended write needs it

    await anyio.sleep(uniform(0, 0.002 * attempt))


class PaymentWriter:
    """The one path by which payments are read for a change and written back."""

    def __init__(self, repository: PaymentRepository, plugin_manager: pluggy.PluginManager) -> None:
        self.repository = repository
        self.plugin_manager = plugin_manager
        self._updates = isinstance(repository, UpdatingRepository)
        self.writes_at_once = getattr(repository, "writes_without_waiting", False) is True
        """Whether the repository's units of work never wait (it says so: the memory adapter's)."""
        self._tenants: dict[str, str | None] = {}
        """The tenant of each payment read or stored lately (a payment's tenant never changes)."""

    def completes_keys_of(self, store: IdempotencyStore) -> bool:
        """True when a write can complete an idempotency key of ``store`` in its own unit of work."""
        repository = self.repository
        return self._updates and isinstance(repository, CompletingRepository) and repository.completes_keys_of(store)

    async def load(
        self, payment_id: str, tenant: str | None = None, *, prefetched: Mapping[str, Payment] | None = None
    ) -> Payment:
        """The payment, if visible to ``tenant`` (``None``: unscoped); :class:`PaymentNotFound` otherwise.

        Another tenant's payment is reported exactly as a payment that does not exist.
        ``prefetched`` holds payments read for this operation already (with its
        idempotency key's claim): the payment is taken from it instead of read again.
        """
        check_payment_id(payment_id, tenant)  # no payment has what is not an id: no store is asked
        missing = _not_visible(payment_id, tenant)
        if prefetched is not None:
            found = prefetched.get(payment_id)
            if found is None:
                raise missing
            payment = found
        else:
            try:
                payment = await self.repository.get(payment_id)
            except PaymentNotFound:
                raise missing from None
        if tenant is not None and payment.tenant != tenant:
            raise missing
        self.remember(payment)
        return payment

    def remember(self, payment: Payment) -> None:
        """Remember ``payment``'s tenant for :meth:`tenant_of`."""
        tenants = self._tenants
        if len(tenants) >= TENANTS_REMEMBERED:
            tenants.clear()
        tenants[payment.id] = payment.tenant

    def refuse_another_tenant(self, payment_id: str, tenant: str) -> None:
        """Raise :class:`PaymentNotFound`, as :meth:`load` would, when payment ``payment_id`` is known to be of another
        tenant than ``tenant``; nothing is read (a payment not met yet is left to the load that reads it)."""
        tenants = self._tenants
        if payment_id in tenants and tenants[payment_id] != tenant:
            raise _not_visible(payment_id, tenant)

    async def tenant_of(self, payment_id: str) -> str | None:
        """The tenant of payment ``payment_id`` (``None``: it has none); :class:`PaymentNotFound` if there is no
        such payment. Read once, then remembered: a payment's tenant never changes."""
        tenants = self._tenants
        if payment_id in tenants:
            return tenants[payment_id]
        return (await self.load(payment_id)).tenant

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
        complete: Complete | None = None,
    ) -> Payment:
        """Load, change, store; on a lost race reload and re-apply. One unit of work per try.

        With a ``receipt`` (a webhook's event id), a delivery seen before changes
        nothing and returns the payment as stored. ``known`` is a copy of the
        payment the caller just read or wrote: the first try decides on it
        instead of reading it again, and the version check of the write proves
        it was still current. A decision that changes nothing or refuses is
        only ever taken on a copy read here, so a stale ``known`` never decides alone.
        Without a copy in hand, a repository that can (:class:`~paycore.storage.UpdatingRepository`)
        reads, decides and writes in one unit of work. ``complete`` names the
        idempotency key the write completes (only when :meth:`completes_keys_of` its store).
        """
        payment = known
        for attempt in range(MAX_ATTEMPTS):
            # A repeated delivery's receipt makes its save fail like a lost race (the receipt is
            # unique), so the receipt is looked up only on a retry: a new event costs no extra read.
            if attempt > 0 and receipt is not None and await self._seen(Delivery.of(receipt)):
                return await self.repository.get(payment_id)
            fresh = payment is None
            if payment is None:
                if self._updates:
                    delivery = Delivery.of(receipt) if receipt is not None else None
                    return await self._update_loop(PaymentLookup.by_id(payment_id), build, delivery, attempt, complete)
                payment = await self.repository.get(payment_id)
            try:
                change = build(payment)
            except PaycoreError:
                if fresh:
                    raise
                payment = None  # refused on the caller's copy: decide again on the stored one
                continue
            write = _write(payment, change, receipt, complete)
            if write is None:
                if fresh:
                    return payment
                payment = None  # nothing to change on the caller's copy: confirm on the stored one
                continue
            try:
                if self._updates:  # a write over the copy in hand: what did not change is not written again
                    await cast(UpdatingRepository, self.repository).update(
                        PaymentLookup.by_id(payment_id), _decided(write), known=payment
                    )
                else:
                    await self.repository.save(write.payment, write.events, write.receipts)
            except ConcurrentUpdate:
                payment = None
                if not fresh:
                    continue  # the caller's copy was stale: read and decide again at once
                await _back_off(attempt)
                continue
            await self.notify(write.events, write.payment)
            return write.payment
        raise ConcurrentUpdate(f"payment {payment_id} kept changing; gave up after {MAX_ATTEMPTS} attempts")

    async def record(
        self,
        payment_id: str,
        build: Build,
        call: ProviderCall | None,
        clock: Callable[[], datetime],
        *,
        cause: str = "api",
        **write: Any,
    ) -> Payment:
        """Record a provider's report, as :meth:`mutate` writes a change (``call``: the call it answers, if any).

        When the store refuses it for a reference another payment holds (:class:`~paycore.errors.DuplicateExternalId`),
        nothing of it is kept: the payment is flagged and ``call`` marked unknown instead
        (:func:`~paycore.settling.held_by_another`), and :class:`~paycore.errors.ProviderOutcomeUnknown` is raised.
        A write the store could not make (:class:`~paycore.errors.StorageUnavailable`: a connection lost as a
        database restarted) is made once more, on a fresh connection: the provider has answered, and an answer lost
        here would leave its call in flight, refusing the payment's every operation, until its lease ends. (Had the
        first write been made, its acknowledgement lost, the second finds the answer recorded and changes nothing:
        the first write's events are stored, but not told to observers.)"""
        try:
            try:
                return await self.mutate(payment_id, build, **write)
            except StorageUnavailable:
                return await self.mutate(payment_id, build, **write)
        except DuplicateExternalId as error:
            message = f"the provider's report gave a reference another payment holds ({error})"
            await self.mutate(payment_id, partial(held_by_another, call, message, now=clock(), cause=cause))
            raise ProviderOutcomeUnknown(f"payment {payment_id}: {message}") from error

    async def mutate_found(self, lookup: PaymentLookup, build: Build, *, delivery: Delivery | None = None) -> Payment:
        """Change the payment ``lookup`` names (a webhook's): find, change, store, as :meth:`mutate`.

        ``delivery`` is the webhook's event, recorded as the payment's receipt;
        a delivery seen before changes nothing. With an
        :class:`~paycore.storage.UpdatingRepository` it is one unit of work.
        """
        if self._updates:
            return await self._update_loop(lookup, build, delivery, 0)
        payment = await self.find(lookup)
        return await self.mutate(
            payment.id, build, receipt=delivery.receipt(payment.id) if delivery is not None else None, known=payment
        )

    async def find(self, lookup: PaymentLookup) -> Payment:
        """The payment ``lookup`` names; :class:`PaymentNotFound` if none."""
        if lookup.payment_id is not None:
            return await self.repository.get(lookup.payment_id)
        assert lookup.provider is not None
        assert lookup.reference is not None
        return await self.repository.get_by_external_id(lookup.provider, lookup.tenant, lookup.reference)

    async def _seen(self, delivery: Delivery) -> bool:
        return await self.repository.has_receipt(delivery.provider, delivery.tenant, delivery.event_id)

    async def _update_loop(
        self,
        lookup: PaymentLookup,
        build: Build,
        delivery: Delivery | None,
        attempt: int,
        complete: Complete | None = None,
    ) -> Payment:
        """:meth:`mutate` in one unit of work per try: read, decide and write together."""
        repository = cast(UpdatingRepository, self.repository)  # checked once, in __init__

        def decide(payment: Payment) -> PaymentWrite | None:
            receipt = delivery.receipt(payment.id) if delivery is not None else None
            return _write(payment, build(payment), receipt, complete)

        for tries in range(attempt, MAX_ATTEMPTS):
            if tries > attempt and delivery is not None and await self._seen(delivery):
                return await self.find(lookup)
            try:
                read, written = await repository.update(lookup, decide)
            except ConcurrentUpdate:
                await _back_off(tries)
                continue
            if written is None:
                return read
            await self.notify(written.events, written.payment)
            return written.payment
        raise ConcurrentUpdate(f"payment {lookup} kept changing; gave up after {MAX_ATTEMPTS} attempts")

    async def notify(self, events: Sequence[PaymentEvent], payment: Payment) -> None:
        """Tell ``paycore_payment_event`` observers about committed events, in order."""
        await notify_observers(self.plugin_manager, events=events, payment=payment)


@frozen
class Delivery:
    """A webhook delivery's event, recorded as a receipt on the payment it changes."""

    provider: str
    tenant: str | None
    event_id: str
    received_at: datetime

    @classmethod
    def of(cls, receipt: WebhookReceipt) -> Delivery:
        """The delivery ``receipt`` records."""
        return cls(receipt.provider, receipt.tenant, receipt.event_id, receipt.received_at)

    def receipt(self, payment_id: str) -> WebhookReceipt:
        """The receipt of this delivery on payment ``payment_id``."""
        return _receipt(
            provider=self.provider,
            event_id=self.event_id,
            payment_id=payment_id,
            tenant=self.tenant,
            received_at=self.received_at,
        )


_receipt = compile_builder(WebhookReceipt)
"""``WebhookReceipt(**fields)``, with every field given."""
_payment_write = compile_builder(PaymentWrite)
"""``PaymentWrite(**fields)``, with every field given."""


def _decided(write: PaymentWrite) -> Callable[[Payment], PaymentWrite]:
    """A decision taken already: ``write``, whatever the payment read."""
    return lambda _: write


def _write(
    payment: Payment, change: Change | None, receipt: WebhookReceipt | None, complete: Complete | None = None
) -> PaymentWrite | None:
    """What storing ``change`` of ``payment`` writes (``None``: nothing); a receipt alone bumps the version."""
    updated = change.result() if change is not None else None
    if updated is None:
        if receipt is None:
            return None
        updated = evolve(payment, version=payment.version + 1)
    events = change.events if change is not None else ()
    completion = complete(updated) if complete is not None else None
    receipts = (receipt,) if receipt is not None else ()
    return _payment_write(payment=updated, events=events, receipts=receipts, completion=completion)


def _not_visible(payment_id: str, tenant: str | None) -> PaymentNotFound:
    """The error of a payment that does not exist, or is not ``tenant``'s: the same for both."""
    return PaymentNotFound(f"no payment {payment_id!r}" + (f" for tenant {tenant!r}" if tenant else ""))
