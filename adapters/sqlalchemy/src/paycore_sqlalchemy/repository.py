"""``SqlPaymentRepository``: payments, refunds, events and webhook receipts in SQL tables.

Each method is one transaction (see :class:`~paycore_sqlalchemy.database.Database`).
``save`` is an optimistic-concurrency write::

    UPDATE paycore_payments SET ... WHERE id = :id AND version = :version - 1

(setting only the columns that changed when the copy it follows is known:
:mod:`paycore_sqlalchemy.payment_updates`), and only if it matched a row are the refunds replaced and the events and
webhook receipts inserted; a receipt whose ``(provider, tenant, event_id)``
exists already breaks the primary key, and the whole transaction rolls back
as a :class:`~paycore.errors.ConcurrentUpdate`.

A payment's references live in ``paycore_payment_references``, written in the
payment's own transaction. ``save`` touches that table only when the payment's
references changed: its ``UPDATE`` first also requires the stored
``external_id`` and ``provider_references`` to be the ones written, and only
when that matches nothing is the plain ``UPDATE`` run and the references the
payment does not hold yet inserted. A reference another payment holds breaks
the table's primary key: the transaction rolls back as a
:class:`~paycore.errors.DuplicateExternalId`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, NoReturn, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc

from paycore.errors import (
    ConcurrentUpdate,
    DuplicateExternalId,
    DuplicatePayment,
    InvalidAmount,
    PaymentNotFound,
    ValidationError,
)
from paycore.listing import PaymentListing
from paycore.records import Payment, PaymentEvent, Refund, WebhookReceipt
from paycore.row_changes import followed_copy, refund_changes
from paycore.status import PaymentStatus, RefundStatus
from paycore.storage import Decide, IdempotencyClaim, IdempotencyStore, KeyClaim, PaymentLookup, PaymentWrite
from paycore_sqlalchemy.codec import (
    event_row,
    payment_from_row,
    payment_row,
    receipt_row,
    reference_rows,
    references_of,
    refund_from_row,
    refund_rows,
    row_event,
    store_tenant,
)
from paycore_sqlalchemy.constraints import is_check_violation, violated
from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.idempotency import SqlIdempotencyStore
from paycore_sqlalchemy.payment_updates import (
    ALL_COLUMNS,
    changed_fields,
    changed_refund_columns,
    columns_of,
    refund_update,
    update_statements,
)
from paycore_sqlalchemy.prepared import Prepared
from paycore_sqlalchemy.schema import payment_events, payment_references, payments, refunds, webhook_receipts
from paycore_sqlalchemy.types import UTCDateTime

__all__ = ["SqlPaymentRepository"]

_REFUND_COLUMNS = [
    refunds.c.id.label("refund_id"),
    refunds.c.amount.label("refund_amount"),
    refunds.c.currency.label("refund_currency"),
    refunds.c.status.label("refund_status"),
    refunds.c.reason.label("refund_reason"),
    refunds.c.external_id.label("refund_external_id"),
    refunds.c.metadata.label("refund_metadata"),
    refunds.c.created_at.label("refund_created_at"),
    refunds.c.updated_at.label("refund_updated_at"),
]
_WITH_REFUNDS = payments.outerjoin(refunds, refunds.c.payment_id == payments.c.id)
# A payment's writes are the same few statements on every change: compiled once (paycore_sqlalchemy.prepared).
_INSERT_REFUNDS = Prepared(sa.insert(refunds), by_columns=True)
_INSERT_EVENTS = Prepared(sa.insert(payment_events), by_columns=True)
_INSERT_RECEIPTS = Prepared(sa.insert(webhook_receipts), by_columns=True)
_INSERT_PAYMENT = Prepared(sa.insert(payments), by_columns=True)
_INSERT_REFERENCES = Prepared(sa.insert(payment_references), by_columns=True)
_DELETE_REFUNDS = Prepared(sa.delete(refunds).where(refunds.c.payment_id == sa.bindparam("payment_id")))
_REFERENCE_PARAMETERS = {
    name: sa.bindparam(name, type_=payment_references.c[name].type)
    for name in ("provider", "tenant", "reference", "payment_id")
}
_HOLDS_REFERENCE = [column == _REFERENCE_PARAMETERS[column.name] for column in payment_references.c]
_HOLD_REFERENCE = Prepared(
    sa.insert(payment_references).from_select(
        list(_REFERENCE_PARAMETERS),
        sa.select(*_REFERENCE_PARAMETERS.values()).where(~sa.exists().where(*_HOLDS_REFERENCE)),
    )
)
"""Insert a reference unless the payment holds it already (held by another payment: a primary-key violation)."""
_HELD_BY_OTHERS = sa.select(payment_references.c.reference).where(
    payment_references.c.provider == sa.bindparam("provider"),
    payment_references.c.tenant == sa.bindparam("tenant"),
    payment_references.c.reference.in_(sa.bindparam("references", expanding=True)),
    payment_references.c.payment_id != sa.bindparam("payment_id"),
)
_VERSION_OF = sa.select(payments.c.version).where(payments.c.id == sa.bindparam("payment_id"))
_EVENTS_OF = (
    sa.select(payment_events)
    .where(payment_events.c.payment_id == sa.bindparam("payment_id"))
    .order_by(payment_events.c.sequence)
)
_IS_PENDING = refunds.c.status == sa.literal_column(f"'{RefundStatus.PENDING.value}'", refunds.c.status.type)
"""``status = 'pending'`` with the value written out, as the partial index ``ix_paycore_refunds_pending`` has it: a
generic plan of PostgreSQL (for a statement the driver prepared) cannot use the index for a bound value, any status."""
_HAS_RECEIPT = sa.select(sa.literal(1)).where(
    webhook_receipts.c.provider == sa.bindparam("provider"),
    webhook_receipts.c.tenant == sa.bindparam("tenant"),
    webhook_receipts.c.event_id == sa.bindparam("event_id"),
)


T = TypeVar("T")


def _with_refunds(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(payments, *_REFUND_COLUMNS).select_from(_WITH_REFUNDS).where(*where).order_by(refunds.c.position)


_GET = Prepared(_with_refunds(payments.c.id == sa.bindparam("payment_id")))
_GET_MANY = (
    _with_refunds(payments.c.id.in_(sa.bindparam("payment_ids", expanding=True)))
    .order_by(None)
    .order_by(payments.c.id, refunds.c.position)
)
_PREPARED_MANY = 4
"""Reads of up to this many payments by id are compiled once per count (:func:`_get_many`)."""


@functools.cache
def _get_many_of(count: int) -> Prepared:
    """The read of ``count`` payments by id (parameters ``payment_id_0`` ...), compiled once."""
    ids: list[sa.BindParameter[Any]] = [sa.bindparam(f"payment_id_{i}") for i in range(count)]
    return Prepared(_with_refunds(payments.c.id.in_(ids)).order_by(None).order_by(payments.c.id, refunds.c.position))


def _get_many(connection: sa.Connection, payment_ids: Sequence[str]) -> list[Payment]:
    """The stored payments among ``payment_ids`` (distinct), in one statement."""
    if len(payment_ids) > _PREPARED_MANY:
        return _payments_from(connection.execute(_GET_MANY, {"payment_ids": list(payment_ids)}).mappings().all())
    parameters = {f"payment_id_{i}": payment_id for i, payment_id in enumerate(payment_ids)}
    return _payments_from(_get_many_of(len(payment_ids)).mappings(connection, parameters))


_PAYMENT_OF_REFERENCE = (
    sa.select(payment_references.c.payment_id)
    .where(
        payment_references.c.provider == sa.bindparam("provider"),
        payment_references.c.tenant == sa.bindparam("tenant"),
        payment_references.c.reference == sa.bindparam("reference"),
    )
    .scalar_subquery()
)
_GET_BY_REFERENCE = Prepared(_with_refunds(payments.c.id == _PAYMENT_OF_REFERENCE))


def _payments_from(rows: Sequence[Mapping[Any, Any]]) -> list[Payment]:
    """Fold joined payment/refund rows (grouped by payment, refunds in order) into payments."""
    found: list[Payment] = []
    current: Mapping[Any, Any] | None = None
    held: list[Refund] = []
    for mapping in rows:
        if current is None or mapping["id"] != current["id"]:
            if current is not None:
                found.append(payment_from_row(current, held))
            current, held = mapping, []
        if mapping["refund_id"] is not None:
            held.append(refund_from_row(mapping, mapping["id"]))
    if current is not None:
        found.append(payment_from_row(current, held))
    return found


def _refuse_bad_input(error: exc.StatementError) -> None:
    if isinstance(error, exc.IntegrityError) and is_check_violation(error):
        raise InvalidAmount(f"refused to store a negative amount ({violated(error)})") from None
    if not isinstance(error, exc.DBAPIError) and isinstance(error.orig, ValueError):
        raise ValidationError(str(error.orig)) from None


class SqlPaymentRepository:
    """A :class:`~paycore.storage.PaymentRepository` over SQLAlchemy Core (SQLite, PostgreSQL).

    Build it with a URL (``SqlPaymentRepository("sqlite:///paycore.db")``) or a
    shared :class:`Database`. Safe to share between tasks, threads and event loops.
    """

    storage_backend: ClassVar[str] = "sqlalchemy"
    """The storage family: plugins keep tables of their own in :attr:`database` (see ``paycore_sqlalchemy.schemas``)."""

    def __init__(
        self, database: Database | str, *, auto_upgrade: bool | None = None, owns_database: bool | None = None
    ) -> None:
        self._owns_database = not isinstance(database, Database) if owns_database is None else owns_database
        self.database = Database(database, auto_upgrade=auto_upgrade) if isinstance(database, str) else database

    def __repr__(self) -> str:
        return f"<SqlPaymentRepository {self.database.url}>"

    async def add(self, payment: Payment, events: Sequence[PaymentEvent]) -> None:
        """Store a new payment and its first events; :class:`DuplicatePayment` if the id exists."""
        insert = _inserting(payment, events)
        await self._adding(insert, lambda: payment)

    async def _adding(self, work: Callable[[sa.Connection], T], adding: Callable[[], Payment | None]) -> T:
        """Run ``work``, which adds the payment ``adding`` names, in one transaction; refusals as paycore's errors."""
        try:
            return await self.database.run(work, write=True)
        except exc.IntegrityError as error:
            _refuse_bad_input(error)
            payment = adding()
            if payment is None:
                raise
            if _is_reference_taken(error):
                raise await self._reference_taken(payment) from None
            raise DuplicatePayment(f"payment {payment.id} exists already") from None
        except exc.StatementError as error:
            _refuse_bad_input(error)
            raise

    async def get(self, payment_id: str) -> Payment:
        """The payment with ``payment_id``; :class:`PaymentNotFound` if none."""

        def work(connection: sa.Connection) -> list[Payment]:
            return _payments_from(_GET.mappings(connection, {"payment_id": payment_id}))

        found = await self.database.run(work)
        if not found:
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return found[0]

    async def get_many(self, payment_ids: Sequence[str]) -> list[Payment]:
        """The stored payments among ``payment_ids``, in one statement."""
        wanted = list(dict.fromkeys(payment_ids))
        if not wanted:
            return []

        def work(connection: sa.Connection) -> list[Payment]:
            return _get_many(connection, wanted)

        return await self.database.run(work)

    async def get_by_external_id(self, provider: str, tenant: str | None, external_id: str) -> Payment:
        """The payment ``provider`` knows as ``external_id`` (any of its references) in ``tenant``.

        Raises :class:`PaymentNotFound` if none.
        """
        parameters = {"provider": provider, "tenant": store_tenant(tenant), "reference": external_id}

        def work(connection: sa.Connection) -> list[Payment]:
            return _payments_from(_GET_BY_REFERENCE.mappings(connection, parameters))

        found = await self.database.run(work)
        if not found:
            raise PaymentNotFound(
                f"no payment of provider {provider!r} in tenant {tenant!r} with reference {external_id!r}"
            )
        return found[0]

    async def save(
        self,
        payment: Payment,
        events: Sequence[PaymentEvent] = (),
        receipts: Sequence[WebhookReceipt] = (),
    ) -> None:
        """Replace the payment if its version follows the stored one; append events; record receipts.

        New references are written with it; one another payment holds raises
        :class:`DuplicateExternalId` and changes nothing.
        """
        write = PaymentWrite(payment, events, receipts)
        await self._writing(lambda connection: _write(connection, write), written=lambda: payment)

    def completes_keys_of(self, store: IdempotencyStore) -> bool:
        """True when ``store`` keeps its keys in this database: a write then completes a key in its transaction."""
        return isinstance(store, SqlIdempotencyStore) and store.database.engine is self.database.engine

    async def claim_and_get(
        self, store: IdempotencyStore, claim: KeyClaim, payment_ids: Sequence[str]
    ) -> tuple[IdempotencyClaim, list[Payment]]:
        """Make ``claim`` in ``store`` (on this database), then read ``payment_ids``: one unit, one thread hop.

        The payments are read only when the claim gives the key to this request.
        """
        work = self._claiming(store, claim, payment_ids, None, [])
        # The claim's statements are each atomic and safe alone, and the read is one statement.
        answer, found, _ = await self.database.run(work, write=True, compare_and_set=True)
        return answer, found

    async def claim_and_add(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_ids: Sequence[str],
        add: Callable[[list[Payment]], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        """:meth:`claim_and_get`, then store the new payment ``add`` decides on: one transaction, one thread hop.

        A refused insert rolls the claim back with it.
        """
        decided: list[PaymentWrite] = []
        work = self._claiming(store, claim, payment_ids, add, decided)
        return await self._adding(work, lambda: decided[-1].payment if decided else None)

    async def claim_and_update(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_id: str,
        decide: Callable[[Payment], PaymentWrite | None],
    ) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
        """:meth:`claim_and_get` of ``payment_id``, then write what ``decide`` takes on the payment read:
        one transaction, one thread hop. A refused write rolls the claim back with it."""
        decided: list[PaymentWrite] = []
        work = self._claiming(store, claim, [payment_id], None, decided, decide)
        return await self._writing(work, written=lambda: decided[-1].payment if decided else None)

    def _claiming(
        self,
        store: IdempotencyStore,
        claim: KeyClaim,
        payment_ids: Sequence[str],
        add: Callable[[list[Payment]], PaymentWrite | None] | None,
        decided: list[PaymentWrite],
        update: Callable[[Payment], PaymentWrite | None] | None = None,
    ) -> Callable[[sa.Connection], tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]]:
        """The unit of :meth:`claim_and_get`, :meth:`claim_and_add` and :meth:`claim_and_update`: the claim,
        then, for the key's holder, the read and the insert of what ``add`` decides or the write of what
        ``update`` decides on the first payment read (kept in ``decided``). An ``add`` is first asked about
        no payment, and its answer inserted by one statement unless a payment of ``payment_ids`` is stored:
        the read then follows, and ``add`` is asked again about what it found."""
        if not isinstance(store, SqlIdempotencyStore):  # only a store completes_keys_of accepts comes here
            raise TypeError(f"{store!r} keeps its keys outside {self.database!r}")
        wanted = list(dict.fromkeys(payment_ids))

        def work(connection: sa.Connection) -> tuple[IdempotencyClaim, list[Payment], PaymentWrite | None]:
            if add is None and wanted:
                claimed = store.send_claim(connection, claim)
                # Still on its way, the claim's answer comes with the read's (harmless whoever holds the key).
                early = None if claimed.answered else _get_many(connection, wanted)
                answer, free = claimed.result()
                if answer.token is None:
                    return answer, [], None
                # Read after the claim when it came first, or took the key over from an expired lease.
                found = early if early is not None and free else _get_many(connection, wanted)
                return answer, found, _update_found(connection, found, update, decided)
            answer = store.claim_in(connection, claim)
            if answer.token is None:
                return answer, [], None
            if add is not None and update is None and 0 < len(wanted) <= _PREPARED_MANY:
                # Mostly no earlier attempt stored a payment: what ``add`` decides on none goes in by a
                # statement that inserts nothing where one of ``wanted`` is stored (then read below).
                new = add([])
                if new is not None:
                    decided.append(new)
                    if _inserting(new.payment, new.events, unless_stored=wanted)(connection):
                        return answer, [], new
                    decided.pop()
            found = _get_many(connection, wanted) if wanted else []
            if update is not None:
                return answer, found, _update_found(connection, found, update, decided)
            new = add(found) if add is not None else None
            if new is not None:
                decided.append(new)
                _inserting(new.payment, new.events)(connection)
            return answer, found, new

        return work

    async def update(
        self, lookup: PaymentLookup, decide: Decide, *, known: Payment | None = None
    ) -> tuple[Payment, PaymentWrite | None]:
        """Read the payment ``lookup`` names (or take ``known``), decide, write what was decided.

        One transaction, one thread hop; with ``known`` there is nothing to read.
        """
        parameters: dict[str, str | None]
        if lookup.payment_id is not None:
            statement, parameters = _GET, {"payment_id": lookup.payment_id}
        else:
            statement = _GET_BY_REFERENCE
            tenant = store_tenant(lookup.tenant)
            parameters = {"provider": lookup.provider, "tenant": tenant, "reference": lookup.reference}
        decided: list[PaymentWrite] = []

        def work(connection: sa.Connection) -> tuple[Payment, PaymentWrite | None]:
            found = [known] if known is not None else _payments_from(statement.mappings(connection, parameters))
            if not found:
                raise PaymentNotFound(f"no payment {lookup}")
            write = decide(found[0])
            if write is not None:
                decided.append(write)
                _write(connection, write, stored=found[0])
            return found[0], write

        return await self._writing(work, written=lambda: decided[-1].payment if decided else None)

    async def _writing(self, work: Callable[[sa.Connection], T], *, written: Callable[[], Payment | None]) -> T:
        """Run a writing ``work`` in one transaction, turning the database's refusals into paycore's errors.

        ``written`` says which payment ``work`` was writing when the database refused it.
        """
        try:
            return await self.database.run(work, write=True)
        except _RowMissed as missed:
            raise await self._lost_race(missed.payment) from None
        except exc.IntegrityError as error:
            _refuse_bad_input(error)
            payment = written()
            if payment is not None and _is_reference_taken(error):
                raise await self._reference_taken(payment) from None
            what = f"payment {payment.id}" if payment is not None else "a payment"
            raise ConcurrentUpdate(f"{what}: a webhook receipt or event was recorded concurrently") from None
        except exc.StatementError as error:
            _refuse_bad_input(error)
            raise

    async def _lost_race(self, payment: Payment) -> PaymentNotFound | ConcurrentUpdate:
        """Why no row matched ``payment``'s ``UPDATE``: the payment is gone, or at another version."""
        version = await self.database.run(lambda c: c.execute(_VERSION_OF, {"payment_id": payment.id}).scalar())
        if version is None:
            return PaymentNotFound(f"no payment {payment.id!r}")
        return ConcurrentUpdate(
            f"payment {payment.id} is at version {version}; a write of version {payment.version} lost a race"
        )

    async def _reference_taken(self, payment: Payment) -> DuplicateExternalId:
        """The refusal of ``payment``, naming the references another payment of its tenant holds."""
        parameters = {
            "provider": payment.provider,
            "tenant": store_tenant(payment.tenant),
            "references": list(references_of(payment)),
            "payment_id": payment.id,
        }
        taken = await self.database.run(lambda c: list(c.execute(_HELD_BY_OTHERS, parameters).scalars()))
        taken = taken or list(references_of(payment))  # a racing writer may have rolled back since
        named = ", ".join(repr(reference) for reference in taken)
        which = f"reference {named} belongs" if len(taken) == 1 else f"references {named} belong"
        return DuplicateExternalId(
            f"payment {payment.id}: provider {payment.provider!r} {which} to another payment of tenant "
            f"{payment.tenant!r}; a reference names one payment per provider and tenant"
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
        """Payments matching every given filter (``tenant=None``: all tenants), in ``(created_at, id)`` order.

        A keyset page: ``WHERE (created_at, id) > (:at, :id) ORDER BY created_at, id
        LIMIT :n`` (``<`` and descending when newest first), on the index that
        leads with the filtered column (tenant, order, status, tenant and status).
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
        where = _listing_filters(listing)
        columns = (payments.c.created_at, payments.c.id)
        order = tuple(c.desc() for c in columns) if listing.newest_first else columns
        return await self.database.run(lambda c: self._page(c, where, order, listing.limit))

    async def list_stale(
        self, *, statuses: Sequence[PaymentStatus], updated_before: datetime, limit: int
    ) -> list[Payment]:
        """Up to ``limit`` payments in ``statuses`` last updated before ``updated_before``, oldest first.

        One index range per status, each stopping after ``limit`` rows, merged:
        the cost follows ``limit``, not how many payments are stale.
        """
        if not statuses or limit <= 0:
            return []
        oldest = [
            sa.select(payments.c.id, payments.c.updated_at)
            .where(payments.c.status == PaymentStatus(status).value, payments.c.updated_at < updated_before)
            .order_by(payments.c.updated_at, payments.c.id)
            .limit(limit)
            .subquery()
            for status in dict.fromkeys(statuses)
        ]
        branches = [sa.select(branch.c.id, branch.c.updated_at) for branch in oldest]
        merged = (branches[0] if len(branches) == 1 else sa.union_all(*branches)).subquery()
        page = sa.select(merged.c.id).order_by(merged.c.updated_at, merged.c.id).limit(limit).subquery()
        order = (payments.c.updated_at, payments.c.id)
        return await self.database.run(lambda c: self._join_page(c, page, order))

    async def list_with_calls(self, *, limit: int, after: tuple[datetime, str] | None = None) -> list[Payment]:
        """Up to ``limit`` payments carrying a provider call, by ``(updated_at, id)`` after ``after``, oldest first.

        One range of the partial index ``ix_paycore_payments_pending_call``, which holds
        only the rows whose ``pending_call`` is set: the cost follows ``limit``.
        """
        if limit <= 0:
            return []
        where = [payments.c.pending_call.is_not(None), *_updated_after(after)]
        order = (payments.c.updated_at, payments.c.id)
        return await self.database.run(lambda c: self._page(c, where, order, limit))

    async def list_with_pending_refunds(
        self, *, updated_before: datetime, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Payment]:
        """Up to ``limit`` payments holding a refund pending since before ``updated_before``, by ``(updated_at, id)``
        after ``after``, oldest first.

        The payments whose id is among those of the refunds one range of the partial index
        ``ix_paycore_refunds_pending`` (the pending refunds alone) selects, each once; ``limit`` of them
        are read whole. The cost follows ``limit`` and how many refunds are pending, not how many
        payments or refunds are stored.
        """
        if limit <= 0:
            return []
        pending = sa.select(refunds.c.payment_id).where(_IS_PENDING, refunds.c.updated_at < updated_before)
        where = [payments.c.id.in_(pending), *_updated_after(after)]
        order = (payments.c.updated_at, payments.c.id)
        return await self.database.run(lambda c: self._page(c, where, order, limit))

    @staticmethod
    def _page(
        connection: sa.Connection,
        where: list[sa.ColumnElement[bool]],
        order: tuple[sa.ColumnElement[Any], ...],
        limit: int | None,
    ) -> list[Payment]:
        if limit is not None and limit <= 0:
            return []
        if limit is None:
            query = sa.select(payments, *_REFUND_COLUMNS).select_from(_WITH_REFUNDS).where(*where)
            return _payments_from(connection.execute(query.order_by(*order, refunds.c.position)).mappings().all())
        page = sa.select(payments.c.id).where(*where).order_by(*order).limit(limit).subquery()
        return SqlPaymentRepository._join_page(connection, page, order)

    @staticmethod
    def _join_page(
        connection: sa.Connection, page: sa.Subquery, order: tuple[sa.ColumnElement[Any], ...]
    ) -> list[Payment]:
        """The payments whose ids ``page`` selects, with their refunds, in ``order``."""
        query = (
            sa.select(payments, *_REFUND_COLUMNS)
            .select_from(
                payments.join(page, page.c.id == payments.c.id).outerjoin(
                    refunds, refunds.c.payment_id == payments.c.id
                )
            )
            .order_by(*order, refunds.c.position)
        )
        return _payments_from(connection.execute(query).mappings().all())

    async def list_events(self, payment_id: str) -> list[PaymentEvent]:
        """The payment's events in sequence order."""

        def work(connection: sa.Connection) -> list[PaymentEvent]:
            rows = connection.execute(_EVENTS_OF, {"payment_id": payment_id}).all()
            return [row_event(r._mapping) for r in rows]

        return await self.database.run(work)

    async def has_receipt(self, provider: str, tenant: str | None, event_id: str) -> bool:
        """True when a webhook with ``event_id`` from ``provider`` in ``tenant`` was applied."""
        parameters = {"provider": provider, "tenant": store_tenant(tenant), "event_id": event_id}
        return await self.database.run(lambda c: c.execute(_HAS_RECEIPT, parameters).first() is not None)

    async def aclose(self) -> None:
        """Give back the database connection pool share."""
        self.dispose()

    def dispose(self) -> None:
        """Give back the database connection pool share at once (:class:`paycore.disposal.Disposable`): the flow
        built on it was refused. Idempotent: a later :meth:`aclose` does no harm."""
        if self._owns_database:
            self.database.close()


@functools.lru_cache(maxsize=2 * _PREPARED_MANY)
def _insert_unless_stored(columns: tuple[str, ...], count: int) -> Prepared:
    """The ``INSERT`` of a payment's row of ``columns`` that inserts nothing while a payment with one of
    ``count`` ids (parameters ``unless_0`` ...) is stored: one statement where a read and an insert were two."""
    values = [sa.bindparam(name, type_=payments.c[name].type) for name in columns]
    ids = [sa.bindparam(f"unless_{i}", type_=payments.c.id.type) for i in range(count)]
    stored = sa.exists().where(payments.c.id.in_(ids))
    return Prepared(sa.insert(payments).from_select(list(columns), sa.select(*values).where(~stored)))


def _inserting(
    payment: Payment, events: Sequence[PaymentEvent], *, unless_stored: Sequence[str] = ()
) -> Callable[[sa.Connection], bool]:
    """The inserts of a new payment with its references, refunds and first events (values checked now).

    With ``unless_stored`` (payment ids, at most :data:`_PREPARED_MANY`), nothing is inserted while a
    payment with one of them is stored; the inserts answer whether they inserted.
    """
    row = payment_row(payment)
    reference_list = reference_rows(payment)
    refund_list = refund_rows(payment)
    event_list = [event_row(e) for e in events]

    def insert(connection: sa.Connection) -> bool:
        if unless_stored:
            parameters = {**row, **{f"unless_{i}": payment_id for i, payment_id in enumerate(unless_stored)}}
            if _insert_unless_stored(tuple(row), len(unless_stored)).execute(connection, parameters) != 1:
                return False
        else:
            _INSERT_PAYMENT.send(connection, row)
        if reference_list:
            _INSERT_REFERENCES.send(connection, reference_list)
        _insert_rows(connection, refund_list, event_list)
        return True

    return insert


def _update_found(
    connection: sa.Connection,
    found: list[Payment],
    update: Callable[[Payment], PaymentWrite | None] | None,
    decided: list[PaymentWrite],
) -> PaymentWrite | None:
    """Write what ``update`` decides on the first payment of ``found`` (kept in ``decided``); what it wrote."""
    written = update(found[0]) if update is not None and found else None
    if written is not None:
        decided.append(written)
        _write(connection, written, stored=found[0])
    return written


def _write(connection: sa.Connection, write: PaymentWrite, stored: Payment | None = None) -> None:
    """Store ``write``: the payment if its version follows the stored one, its refunds, events and receipts.

    ``stored`` is the copy of the payment the write follows, when it is known
    (read in this same transaction, or held by the caller): what did not change
    since (columns, references, refunds) is then not written again. The version
    check makes that exact: the row matches only while it holds ``stored``'s version
    (a ``stored`` of any other version than the one before the write's is not used).
    """
    payment = write.payment
    stored = followed_copy(stored, payment)
    if stored is None:
        keeping, plain = update_statements(ALL_COLUMNS)
        row = _matching(payment_row(payment), payment)
        # No row kept its references: the write adds one, or the row is not at the version before.
        adds_references = keeping.execute(connection, row) != 1
        if adds_references:
            _update(connection, plain, row, payment)
    else:
        # The version check pins the row to ``stored``: only what changed is set, nothing else need match.
        fields = changed_fields(stored, payment)
        _update(
            connection,
            update_statements(columns_of(fields))[1],
            _matching(payment_row(payment, fields), payment),
            payment,
        )
        adds_references = references_of(stored) != references_of(payment)
    if adds_references:
        reference_list = reference_rows(payment)
        if reference_list:
            _HOLD_REFERENCE.send(connection, reference_list)
    refund_list: list[dict[str, Any]] = []
    if stored is None or stored.refunds != payment.refunds:
        in_place = _refunds_in_place(stored, payment)
        if in_place is None:
            _DELETE_REFUNDS.send(connection, {"payment_id": payment.id})
            refund_list = refund_rows(payment)
        else:
            refund_list, updates = in_place
            for statement, row in updates:
                statement.send(connection, row)
    event_list = [event_row(e) for e in write.events]
    _insert_rows(connection, refund_list, event_list, [receipt_row(r) for r in write.receipts])
    completion = write.completion
    if completion is not None:
        keys = completion.store
        assert isinstance(keys, SqlIdempotencyStore)  # a completion comes only for a store completes_keys_of accepts
        keys.send_completion(connection, completion)


def _matching(row: dict[str, Any], payment: Payment) -> dict[str, Any]:
    """``row`` with the parameters that find the payment's row at the version before ``payment``'s."""
    row.pop("id", None)
    row["b_id"] = payment.id
    row["b_previous"] = payment.version - 1
    return row


def _update(connection: sa.Connection, statement: Prepared, row: dict[str, Any], payment: Payment) -> None:
    """Send the payment's ``UPDATE``; :class:`ConcurrentUpdate` (or :class:`PaymentNotFound`) if no row matched
    (:meth:`Prepared.send_one`: on PostgreSQL the server refuses the unit itself), and nothing of the unit commits."""

    def missed() -> NoReturn:
        raise _RowMissed(payment)

    statement.send_one(connection, row, missed)


class _RowMissed(Exception):
    """No row matched a payment's ``UPDATE``: its unit rolls back, then :meth:`SqlPaymentRepository._writing`
    reads why (gone, or at another version). Raised without reading, since the statements sent after the
    ``UPDATE`` may have failed too and left the transaction unable to read."""

    def __init__(self, payment: Payment) -> None:
        super().__init__(payment.id)
        self.payment = payment


def _refunds_in_place(
    stored: Payment | None, payment: Payment
) -> tuple[list[dict[str, Any]], list[tuple[Prepared, dict[str, Any]]]] | None:
    """The refund rows to insert, and the ``UPDATE`` of each changed one with its parameters
    (:func:`~paycore.storage.refund_changes`); ``None``: all rows again."""
    where = refund_changes(stored, payment)
    if stored is None or where is None:
        return None
    added, changed = where
    updates = []
    for position, row in zip(changed, refund_rows(payment, changed), strict=True):
        columns = changed_refund_columns(stored.refunds[position], payment.refunds[position])
        if not columns:
            continue  # only what the row does not hold differs
        parameters = {name: row[name] for name in columns}
        parameters["b_id"], parameters["b_payment_id"] = row["id"], row["payment_id"]
        updates.append((refund_update(columns), parameters))
    return refund_rows(payment, added), updates


def _insert_rows(
    connection: sa.Connection,
    refunds: list[dict[str, Any]],
    events: list[dict[str, Any]],
    receipts: list[dict[str, Any]] | None = None,
) -> None:
    """Send a payment's refund, event and receipt rows (each kind in one statement)."""
    for statement, rows in ((_INSERT_REFUNDS, refunds), (_INSERT_EVENTS, events), (_INSERT_RECEIPTS, receipts)):
        if rows:
            statement.send(connection, rows)


def _is_reference_taken(error: exc.IntegrityError) -> bool:
    """True when ``error`` broke the uniqueness of a provider reference (not a payment id or receipt)."""
    where = violated(error)
    return "payment_references" in where or "external_id" in where


def _updated_after(after: tuple[datetime, str] | None) -> list[sa.ColumnElement[bool]]:
    """The ``WHERE`` condition of a page by the payments' ``(updated_at, id)`` that starts strictly after ``after``
    (none for the first page)."""
    if after is None:
        return []
    mark = sa.tuple_(
        sa.bindparam("after_updated_at", after[0], type_=UTCDateTime()),
        sa.bindparam("after_id", after[1], type_=payments.c.id.type),
    )
    return [sa.tuple_(payments.c.updated_at, payments.c.id) > mark]


def _listing_filters(listing: PaymentListing) -> list[sa.ColumnElement[bool]]:
    """The ``WHERE`` conditions of ``listing``: its filters, and its keyset position when it has one."""
    where: list[sa.ColumnElement[bool]] = []
    if listing.tenant is not None:
        where.append(payments.c.tenant == store_tenant(listing.tenant))
    if listing.order_id is not None:
        where.append(payments.c.order_id == listing.order_id)
    if listing.status is not None:
        where.append(payments.c.status == listing.status.value)
    if listing.created_from is not None:
        where.append(payments.c.created_at >= listing.created_from)
    if listing.created_before is not None:
        where.append(payments.c.created_at < listing.created_before)
    if listing.after is not None:
        key = sa.tuple_(payments.c.created_at, payments.c.id)
        mark = sa.tuple_(
            sa.bindparam("after_created_at", listing.after.created_at, type_=UTCDateTime()),
            sa.bindparam("after_id", listing.after.id, type_=payments.c.id.type),
        )
        where.append(key < mark if listing.newest_first else key > mark)
    return where
