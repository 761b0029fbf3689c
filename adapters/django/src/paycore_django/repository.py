"""``DjangoPaymentRepository``: payments, refunds, events and webhook receipts in the Django ORM.

Each method is one unit of work (:func:`paycore_django.units.run_unit`). ``save``
is an optimistic-concurrency write::

    UPDATE paycore_django_payment SET ... WHERE id = %s AND version = %s

and only if it matched a row are the refunds replaced, the references brought
up to date and the events and webhook receipts inserted; a receipt whose
``(provider, tenant, event_id)`` exists already breaks a unique constraint, and
the whole transaction rolls back as a :class:`~paycore.errors.ConcurrentUpdate`;
a reference another payment of the provider code and tenant holds rolls it back
as a :class:`~paycore.errors.DuplicateExternalId`. Payments are converted by
:mod:`paycore.rows`; every reference (``external_id`` and ``references``) is a
:class:`~paycore_django.models.PaymentReference` row, which is how
``get_by_external_id`` finds a payment. Reads are one ``SELECT`` each
(a payment joined with its refunds), so a payment is never read half-changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Final, TypeVar

from django.db import IntegrityError
from django.db.models import Q, QuerySet

from paycore.errors import (
    ConcurrentUpdate,
    DuplicateExternalId,
    DuplicatePayment,
    InvalidAmount,
    PaycoreError,
    PaymentNotFound,
)
from paycore.listing import PaymentListing
from paycore.records import Payment, PaymentEvent, Refund, WebhookReceipt
from paycore.row_changes import followed_copy, refund_changes
from paycore.rows import (
    EVENT_COLUMNS,
    PAYMENT_COLUMNS,
    REFUND_COLUMNS,
    changed_fields,
    event_from_values,
    event_values,
    lookup_references,
    payment_from_values,
    payment_values,
    receipt_values,
    refund_from_values,
    refund_values,
)
from paycore.status import PaymentStatus, RefundStatus
from paycore.storage import (
    Decide,
    IdempotencyClaim,
    IdempotencyStore,
    KeyClaim,
    PaymentLookup,
    PaymentWrite,
)
from paycore_django import models
from paycore_django.databases import check_database
from paycore_django.idempotency import DjangoIdempotencyStore
from paycore_django.units import run_unit

__all__ = ["DjangoPaymentRepository"]

T = TypeVar("T")

REFUND_PREFIX: Final = "refunds__"
"""How a payment row joined with its refunds names the refund columns (``refunds__amount``)."""

_JOINED: Final = (*PAYMENT_COLUMNS, *(REFUND_PREFIX + column for column in REFUND_COLUMNS))


def _tenant(tenant: str | None, field: str = "tenant") -> Q:
    """Rows of ``tenant`` (``None``: rows without a tenant)."""
    return Q(**{f"{field}__isnull": True}) if tenant is None else Q(**{field: tenant})


def _fold(rows: Iterable[Mapping[str, Any]]) -> list[Payment]:
    """Joined payment/refund rows (grouped by payment, refunds in order) as payments."""
    found: list[Payment] = []
    current: Mapping[str, Any] | None = None
    held: list[Refund] = []
    for row in rows:
        if current is None or row["id"] != current["id"]:
            if current is not None:
                found.append(payment_from_values(current, held))
            current, held = row, []
        if row[REFUND_PREFIX + "id"] is not None:
            held.append(refund_from_values(row, row["id"], REFUND_PREFIX))
    if current is not None:
        found.append(payment_from_values(current, held))
    return found


def _listing_filter(listing: PaymentListing) -> Q:
    """The rows ``listing`` selects: its filters, and its keyset position when it has one."""
    where = Q()
    if listing.tenant is not None:
        where &= Q(tenant=listing.tenant)
    if listing.order_id is not None:
        where &= Q(order_id=listing.order_id)
    if listing.status is not None:
        where &= Q(status=listing.status.value)
    if listing.created_from is not None:
        where &= Q(created_at__gte=listing.created_from)
    if listing.created_before is not None:
        where &= Q(created_at__lt=listing.created_before)
    if listing.after is not None:
        at, payment_id = listing.after.created_at, listing.after.id
        if listing.newest_first:
            where &= Q(created_at__lt=at) | Q(created_at=at, id__lt=payment_id)
        else:
            where &= Q(created_at__gt=at) | Q(created_at=at, id__gt=payment_id)
    return where


def _constraint(error: IntegrityError) -> str:
    """A lower-case description of the broken constraint: its name (PostgreSQL) or columns (SQLite)."""
    diag = getattr(error.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None)
    return str(name if name else error).lower()


def _refusal(error: IntegrityError, payment: Payment, otherwise: PaycoreError) -> PaycoreError:
    """What a broken constraint means for a write of ``payment``."""
    where = _constraint(error)
    if getattr(error.__cause__, "sqlstate", None) == "23514" or "check constraint" in where or "non_negative" in where:
        return InvalidAmount(f"payment {payment.id}: refused to store a negative amount ({where})")
    if "reference" in where:
        held = ", ".join(repr(reference) for reference in lookup_references(payment))
        return DuplicateExternalId(
            f"payment {payment.id}: a reference of provider {payment.provider!r} among {held} "
            f"belongs to another payment of tenant {payment.tenant!r}; nothing was stored"
        )
    return otherwise


def _receipt_race(payment: Payment) -> ConcurrentUpdate:
    return ConcurrentUpdate(f"payment {payment.id}: a webhook receipt or event was recorded concurrently")


class DjangoPaymentRepository:
    """A :class:`~paycore.storage.PaymentRepository` in the Django ORM, on database alias ``using``.

    Safe to share between tasks, threads and event loops: it holds no
    connection itself (Django's per-thread connections do).
    """

    storage_backend: ClassVar[str] = "django"
    """Which storage this is: plugins that keep their own rows beside it (cash drawers) look at it."""

    def __init__(self, using: str = "default") -> None:
        self.using = check_database(using, "DjangoPaymentRepository")
        """The Django database alias every unit of work runs on."""

    def __repr__(self) -> str:
        return f"<DjangoPaymentRepository using={self.using!r}>"

    def completes_keys_of(self, store: IdempotencyStore) -> bool:
        """True when ``store`` keeps its keys on this database alias: a write then completes a key in its unit."""
        return isinstance(store, DjangoIdempotencyStore) and store.using == self.using

    def _payments(self) -> QuerySet[models.Payment]:
        return models.Payment.objects.using(self.using)

    def _read(self, query: QuerySet[models.Payment]) -> list[Payment]:
        """The payments ``query`` selects, with their refunds, in one statement."""
        return _fold(query.values(*_JOINED))

    async def add(self, payment: Payment, events: Sequence[PaymentEvent]) -> None:
        """Store a new payment and its first events; :class:`DuplicatePayment` if the id exists."""
        insert = self._inserting(payment, events)
        try:
            await run_unit(self.using, insert)
        except IntegrityError as error:
            raise _refusal(error, payment, DuplicatePayment(f"payment {payment.id} exists already")) from None

    def _inserting(self, payment: Payment, events: Sequence[PaymentEvent]) -> Callable[[], None]:
        """The inserts of a new payment with its references, refunds and first events (values checked now)."""
        row = payment_values(payment)
        refunds = refund_values(payment)
        event_rows = [event_values(event) for event in events]

        def insert() -> None:
            self._payments().bulk_create([models.Payment(**row)])
            self._insert_references(payment, lookup_references(payment))
            self._insert_children(refunds, event_rows, [])

        return insert

    async def get(self, payment_id: str) -> Payment:
        """The payment with ``payment_id``; :class:`PaymentNotFound` if none."""
        query = self._payments().filter(pk=payment_id).order_by(REFUND_PREFIX + "position")
        found = await run_unit(self.using, lambda: self._read(query), atomic=False)
        if not found:
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return found[0]

    async def get_many(self, payment_ids: Sequence[str]) -> list[Payment]:
        """The stored payments among ``payment_ids``, in one query."""
        wanted = list(dict.fromkeys(payment_ids))
        if not wanted:
            return []
        query = self._payments().filter(pk__in=wanted).order_by("id", REFUND_PREFIX + "position")
        return await run_unit(self.using, lambda: self._read(query), atomic=False)

    async def claim_and_get(
        self, store: IdempotencyStore, claim: KeyClaim, payment_ids: Sequence[str]
    ) -> tuple[IdempotencyClaim, list[Payment]]:
        """Make ``claim`` in ``store`` (on this alias), then read ``payment_ids``, in one unit of work.

        The payments are read only when the claim gives the key to this request.
        """
        work = self._claiming(store, claim, payment_ids, None, [])
        # The claim's statements are each atomic and safe alone, and the read is one query.
        answer, found, _ = await run_unit(self.using, work, atomic=False)
        return answer, found

    async def claim_and_add(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_ids: Sequence[str],
        add: Callable[[list[Payment]], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        """:meth:`claim_and_get`, then store the new payment ``add`` decides on, in one transaction.

        A refused insert rolls the claim back with it.
        """
        decided: list[PaymentWrite] = []
        work = self._claiming(store, claim, payment_ids, add, decided)
        try:
            return await run_unit(self.using, work)
        except IntegrityError as error:
            if not decided:
                raise
            payment = decided[-1].payment
            raise _refusal(error, payment, DuplicatePayment(f"payment {payment.id} exists already")) from None

    async def claim_and_update(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_id: str,
        decide: Callable[[Payment], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        """:meth:`claim_and_get` of ``payment_id``, then write what ``decide`` takes on the payment read,
        in one transaction. A refused write rolls the claim back with it."""
        decided: list[PaymentWrite] = []
        return await self._writing(self._claiming(store, claim, [payment_id], None, decided, decide), decided)

    def _claiming(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_ids: Sequence[str],
        add: Callable[[list[Payment]], PaymentWrite | None] | None,
        decided: list[PaymentWrite],
        update: Callable[[Payment], PaymentWrite | None] | None = None,
    ) -> Callable[[], tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]]:
        """The unit of :meth:`claim_and_get`, :meth:`claim_and_add` and :meth:`claim_and_update`: the claim,
        then, for the key's holder, the read and the insert of what ``add`` decides or the write of what
        ``update`` decides on the first payment read (kept in ``decided``)."""
        if not isinstance(store, DjangoIdempotencyStore):  # only a store completes_keys_of accepts comes here
            raise TypeError(f"{store!r} keeps its keys elsewhere than Django database {self.using!r}")
        wanted = list(dict.fromkeys(payment_ids))
        query = self._payments().filter(pk__in=wanted).order_by("id", REFUND_PREFIX + "position")

        def work() -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
            answer = store.claim_in_unit(claim)
            if answer.token is None:
                return answer, [], None
            found = self._read(query) if wanted else []
            if update is not None:
                written = update(found[0]) if found else None
                if written is not None:
                    decided.append(written)
                    self._write(written, stored=found[0])
                return answer, found, written
            new = add(found) if add is not None else None
            if new is not None:
                decided.append(new)
                self._inserting(new.payment, new.events)()
            return answer, found, new

        return work

    async def get_by_external_id(self, provider: str, tenant: str | None, external_id: str) -> Payment:
        """The payment ``provider`` knows as ``external_id`` (any of its references) in ``tenant``.

        :class:`PaymentNotFound` if none.
        """
        held_by = self._references().filter(_tenant(tenant), provider=provider, reference=external_id)
        query = self._payments().filter(pk__in=held_by.values("payment_id")).order_by("id", REFUND_PREFIX + "position")
        found = await run_unit(self.using, lambda: self._read(query), atomic=False)
        if not found:
            raise PaymentNotFound(
                f"no payment of provider {provider!r} in tenant {tenant!r} with external id {external_id!r}"
            )
        return found[0]

    async def save(
        self,
        payment: Payment,
        events: Sequence[PaymentEvent] = (),
        receipts: Sequence[WebhookReceipt] = (),
    ) -> None:
        """Replace the payment if its version follows the stored one; append events; record receipts."""
        write = PaymentWrite(payment, events, receipts)
        try:
            await run_unit(self.using, lambda: self._write(write))
        except IntegrityError as error:
            raise _refusal(error, payment, _receipt_race(payment)) from None

    async def update(
        self, lookup: PaymentLookup, decide: Decide, *, known: Payment | None = None
    ) -> tuple[Payment, PaymentWrite | None]:
        """Read the payment ``lookup`` names (or take ``known``), decide, write what was decided: one unit."""
        if lookup.payment_id is not None:
            query = self._payments().filter(pk=lookup.payment_id)
        else:
            held_by = self._references().filter(
                _tenant(lookup.tenant), provider=lookup.provider, reference=lookup.reference
            )
            query = self._payments().filter(pk__in=held_by.values("payment_id"))
        ordered = query.order_by(REFUND_PREFIX + "position")
        decided: list[PaymentWrite] = []

        def work() -> tuple[Payment, PaymentWrite | None]:
            found = [known] if known is not None else self._read(ordered)
            if not found:
                raise PaymentNotFound(f"no payment {lookup}")
            write = decide(found[0])
            if write is not None:
                decided.append(write)
                self._write(write, stored=found[0])
            return found[0], write

        return await self._writing(work, decided)

    async def _writing(self, work: Callable[[], T], decided: list[PaymentWrite]) -> T:
        """Run ``work``, which writes what it decided into ``decided``, in one transaction; a refusal of
        the last write as paycore's error (a receipt or event recorded concurrently: a lost race)."""
        try:
            return await run_unit(self.using, work)
        except IntegrityError as error:
            if not decided:
                raise
            raise _refusal(error, decided[-1].payment, _receipt_race(decided[-1].payment)) from None

    def _write(self, write: PaymentWrite, stored: Payment | None = None) -> None:
        """Store ``write`` inside the running unit: the payment if its version follows the stored one, its rows.

        ``stored`` is the copy the write follows, when it is known (read in this
        same unit, or held by the caller): what did not change since (its
        references, its refunds) is then not written again. The version check
        makes that exact; a ``stored`` of any other version than the one before
        the write's is not used.
        """
        payment = write.payment
        stored = followed_copy(stored, payment)
        if stored is None:
            row = payment_values(payment)
            del row["id"]
        else:  # the version check pins the row to ``stored``: only what changed is set
            row = payment_values(payment, changed_fields(stored, payment))
        matched = self._payments().filter(pk=payment.id, version=payment.version - 1).update(**row)
        if matched != 1:
            version = self._payments().filter(pk=payment.id).values_list("version", flat=True).first()
            if version is None:
                raise PaymentNotFound(f"no payment {payment.id!r}")
            raise ConcurrentUpdate(
                f"payment {payment.id} is at version {version}; a write of version {payment.version} lost a race"
            )
        refunds: list[dict[str, Any]] = []
        if stored is None or stored.refunds != payment.refunds:
            refunds = self._write_refunds(payment, stored)
        if stored is None or lookup_references(stored) != lookup_references(payment):
            self._replace_references(payment)
        self._insert_children(
            refunds,
            [event_values(event) for event in write.events],
            [receipt_values(receipt) for receipt in write.receipts],
        )
        completion = write.completion
        if completion is not None:
            keys = completion.store
            assert isinstance(keys, DjangoIdempotencyStore)  # only a store completes_keys_of accepts
            completion.completed = keys.complete_in_unit(completion)

    def _write_refunds(self, payment: Payment, stored: Payment | None) -> list[dict[str, Any]]:
        """Update the refunds changed in place since ``stored``; return the rows still to insert.

        When they cannot be written in place (:func:`~paycore.storage.refund_changes`),
        the stored rows are deleted and every row is returned.
        """
        refunds = models.Refund.objects.using(self.using)
        where = refund_changes(stored, payment)
        if where is None:
            refunds.filter(payment_id=payment.id).delete()
            return refund_values(payment)
        added, changed = where
        for row in refund_values(payment, changed):
            refunds.filter(pk=row.pop("id"), payment_id=row.pop("payment_id")).update(**row)
        return refund_values(payment, added)

    def _references(self) -> QuerySet[models.PaymentReference]:
        return models.PaymentReference.objects.using(self.using)

    def _insert_references(self, payment: Payment, references: Iterable[str]) -> None:
        """Index ``references`` of ``payment``; a reference another payment holds breaks a unique constraint."""
        rows = [
            models.PaymentReference(
                provider=payment.provider, tenant=payment.tenant, reference=reference, payment_id=payment.id
            )
            for reference in references
        ]
        if rows:
            self._references().bulk_create(rows)

    def _replace_references(self, payment: Payment) -> None:
        """Make the stored references of ``payment`` the ones it holds now (usually: nothing to do)."""
        wanted = lookup_references(payment)
        stored = self._references().filter(payment_id=payment.id)
        held = set(stored.values_list("reference", flat=True))
        if gone := held.difference(wanted):
            stored.filter(reference__in=gone).delete()
        self._insert_references(payment, (reference for reference in wanted if reference not in held))

    def _insert_children(
        self, refunds: list[dict[str, Any]], events: list[dict[str, Any]], receipts: list[dict[str, Any]]
    ) -> None:
        """Insert a payment's refund, event and receipt rows (each kind in one statement)."""
        if refunds:
            models.Refund.objects.using(self.using).bulk_create([models.Refund(**r) for r in refunds])
        if events:
            models.PaymentEvent.objects.using(self.using).bulk_create([models.PaymentEvent(**e) for e in events])
        if receipts:
            models.WebhookReceipt.objects.using(self.using).bulk_create([models.WebhookReceipt(**r) for r in receipts])

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
        """Payments matching every given filter (``tenant=None``: all tenants), in ``(created_at, id)`` order.

        A keyset page (see :class:`~paycore.listing.PaymentListing`), newest first on request,
        on the index that leads with the filtered column.
        """
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
        if listing.limit is not None and listing.limit <= 0:
            return []
        order = ("-created_at", "-id") if listing.newest_first else ("created_at", "id")
        return await self._page(_listing_filter(listing), order, listing.limit)

    async def list_stale(
        self, *, statuses: Sequence[PaymentStatus], updated_before: datetime, limit: int
    ) -> list[Payment]:
        """Up to ``limit`` payments in ``statuses`` last updated before ``updated_before``, oldest first."""
        if not statuses or limit <= 0:
            return []
        where = Q(status__in=[PaymentStatus(s).value for s in statuses], updated_at__lt=updated_before)
        return await self._page(where, ("updated_at", "id"), limit)

    async def list_with_calls(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Payment]:
        """Up to ``limit`` payments carrying a provider call, by ``(updated_at, id)`` after ``after``, oldest first.

        One range of the partial index ``paycore_payment_calls`` (the rows whose
        ``pending_call`` is set, alone): the cost follows ``limit``.
        """
        if limit <= 0:
            return []
        where = Q(pending_call__isnull=False)
        if after is not None:
            at, payment_id = after
            where &= Q(updated_at__gt=at) | Q(updated_at=at, id__gt=payment_id)
        return await self._page(where, ("updated_at", "id"), limit)

    async def list_with_pending_refunds(
        self, *, updated_before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Payment]:
        """Up to ``limit`` payments holding a refund pending since before ``updated_before``, by ``(updated_at, id)``
        after ``after``, oldest first.

        The payments whose id is among the refunds that one range of the partial
        index ``paycore_refund_pending`` (the pending refunds alone) selects, each
        once: the cost follows how many refunds are pending, not how many are stored.
        """
        if limit <= 0:
            return []
        pending = models.Refund.objects.using(self.using).filter(
            status=RefundStatus.PENDING.value, updated_at__lt=updated_before
        )
        where = Q(id__in=pending.values("payment_id"))
        if after is not None:
            at, payment_id = after
            where &= Q(updated_at__gt=at) | Q(updated_at=at, id__gt=payment_id)
        return await self._page(where, ("updated_at", "id"), limit)

    async def _page(self, where: Q, order: tuple[str, ...], limit: int | None) -> list[Payment]:
        """The payments matching ``where`` in ``order``, at most ``limit`` of them, with their refunds."""
        query = self._payments().filter(where)
        if limit is not None:
            page = self._payments().filter(where).order_by(*order).values("pk")[:limit]
            query = self._payments().filter(pk__in=page)
        ordered = query.order_by(*order, REFUND_PREFIX + "position")
        return await run_unit(self.using, lambda: self._read(ordered), atomic=False)

    async def list_events(self, payment_id: str) -> list[PaymentEvent]:
        """The payment's events in sequence order."""
        query = (
            models.PaymentEvent.objects.using(self.using)
            .filter(payment_id=payment_id)
            .order_by("sequence")
            .values(*EVENT_COLUMNS)
        )
        return await run_unit(self.using, lambda: [event_from_values(row) for row in query], atomic=False)

    async def has_receipt(self, provider: str, tenant: str | None, event_id: str) -> bool:
        """True when a webhook with ``event_id`` from ``provider`` in ``tenant`` was applied."""
        query = models.WebhookReceipt.objects.using(self.using).filter(
            _tenant(tenant), provider=provider, event_id=event_id
        )
        return await run_unit(self.using, query.exists, atomic=False)

    async def aclose(self) -> None:
        """Nothing to release: Django owns the connections (closed per ``CONN_MAX_AGE``)."""
