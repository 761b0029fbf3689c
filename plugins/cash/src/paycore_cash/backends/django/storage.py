"""``DjangoDrawerStorage``: drawer sessions and cash movements in the Django database of a repository.

Built on the Django adapter's public unit of work,
:func:`paycore_django.storage.run_unit`: every method hands one plain function
to it, which runs it on a worker thread (``anyio.to_thread.run_sync``, so
asyncio and trio alike) inside ``transaction.atomic(using=repository.using)``
and closes the thread's old connections before and after, as Django's request
cycle does. Drawers therefore live in the same database as the payments.

The tables are the cash plugin's own app (:mod:`paycore_cash.backends.django.models`,
app label ``paycore_cash``, its own migrations). The models are imported only
once the app is known to be installed, so a project that lacks it gets a
:class:`~paycore.errors.ConfigurationError` naming the app, not Django's error
about a model outside ``INSTALLED_APPS``. The database enforces the
rules that matter under concurrency: a conditional unique constraint allows one
open session per till (tenant ``None`` stored as ``""``), and others one SALE
movement per payment and one REFUND movement per refund. A movement bumps its
session's ``version`` with a conditional ``UPDATE`` in the same transaction, so
a close computed before it fails its version check. A refund id has one row of
:class:`~paycore_cash.backends.django.models.RefundClaim`, keyed by it and
written with its REFUND movement (``paid_out``) or by ``give_up_refund``
(``given_up`` through a payment version): of a give-up and a pay-out racing,
the second write to that row fails or finds it changed, and its transaction,
movement included, stores nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from django.apps import apps
from django.db import IntegrityError
from django.db.models import F, Q, QuerySet

from paycore.clock import utcnow
from paycore.errors import ConcurrentUpdate, ConfigurationError, StorageError, first_line
from paycore_cash.backends.rows import (
    GIVEN_UP,
    PAID_OUT,
    movement_from_values,
    movement_values,
    session_from_values,
    session_values,
    store_tenant,
)
from paycore_cash.errors import DrawerClosed, DrawerNotFound, RefundGivenUp
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.storage import given_up_through, open_refused
from paycore_django.databases import check_database
from paycore_django.storage import run_unit

if TYPE_CHECKING:
    from paycore_cash.backends.django import models

__all__ = ["APP", "DjangoDrawerStorage"]

APP: Final = "paycore_cash.backends.django"
"""The Django app to add to ``INSTALLED_APPS`` (app label ``paycore_cash``)."""

_T = TypeVar("_T")

_ATTEMPTS: Final = 3
"""Rounds of ``add_movement`` and of ``give_up_refund`` when a concurrent writer stores the same sale or refund
first, or settles the refund first (paid out, or given up)."""


_OPEN: Final = DrawerStatus.OPEN.value
_CLOSE_COLUMNS: Final = ("status", "closed_by", "closed_at", "counted", "expected", "variance", "close_id", "version")


def _session_model() -> type[models.DrawerSession]:
    """The drawer session model (importing the models needs the app installed: :func:`_using_of` checks it)."""
    from paycore_cash.backends.django.models import DrawerSession

    return DrawerSession


def _movement_model() -> type[models.CashMovement]:
    """The cash movement model (imported as :func:`_session_model` is)."""
    from paycore_cash.backends.django.models import CashMovement

    return CashMovement


def _claim_model() -> type[models.RefundClaim]:
    """The refund claim model (imported as :func:`_session_model` is)."""
    from paycore_cash.backends.django.models import RefundClaim

    return RefundClaim


@functools.cache
def _session_columns() -> tuple[str, ...]:
    return tuple(field.attname for field in _session_model()._meta.concrete_fields)


@functools.cache
def _movement_columns() -> tuple[str, ...]:
    return tuple(field.attname for field in _movement_model()._meta.concrete_fields)


class _Raced(Exception):
    """A concurrent writer changed a refund's claim between its read and its conditional update: the unit rolls
    back, and its next round reads the claim again."""


def _same_movement(movement: CashMovement) -> Q:
    """The stored movements ``movement`` would repeat: its id, its payment's SALE, its refund's REFUND."""
    same = Q(id=movement.id)
    if movement.kind is MovementKind.SALE and movement.payment_id is not None:
        same |= Q(kind=MovementKind.SALE.value, payment_id=movement.payment_id)
    if movement.kind is MovementKind.REFUND and movement.refund_id is not None:
        same |= Q(kind=MovementKind.REFUND.value, refund_id=movement.refund_id)
    return same


def _using_of(repository: Any) -> str:
    """The database alias of a ``storage_backend = "django"`` repository, checked; the cash app must be installed."""
    kind = type(repository)
    owner = f"cash drawers beside the repository {kind.__module__}.{kind.__qualname__}"
    using = check_database(getattr(repository, "using", None), owner)
    if not apps.is_installed(APP):
        raise ConfigurationError(
            f"{owner} are kept by the Django app {APP!r}: "
            "add it to INSTALLED_APPS (beside 'paycore_django') and run migrate"
        )
    return using


class DjangoDrawerStorage:
    """A :class:`~paycore_cash.storage.DrawerStorage` in the Django database of ``repository``.

    ``repository`` is a ``storage_backend = "django"`` repository
    (:class:`paycore_django.storage.DjangoPaymentRepository`): its ``using``
    alias is the database every unit of work runs on. Refuses with a
    :class:`~paycore.errors.ConfigurationError` when Django is not set up, the
    alias is unknown, or the app ``paycore_cash.backends.django`` is not installed.
    Safe to share between tasks, threads and event loops: it holds no connection.
    """

    def __init__(self, repository: Any) -> None:
        self.using: str = _using_of(repository)
        """The Django database alias every unit of work runs on (the repository's)."""

    def __repr__(self) -> str:
        return f"<DjangoDrawerStorage using={self.using!r}>"

    def _sessions(self) -> QuerySet[models.DrawerSession]:
        return _session_model().objects.using(self.using)

    def _movements(self) -> QuerySet[models.CashMovement]:
        return _movement_model().objects.using(self.using)

    def _claims(self) -> QuerySet[models.RefundClaim]:
        return _claim_model().objects.using(self.using)

    async def open_session(self, session: DrawerSession) -> None:
        """Store a new open session; :class:`DrawerAlreadyOpen` if its id or its till's open slot is taken."""
        if session.status is not DrawerStatus.OPEN:
            raise DrawerClosed(f"session {session.id} must be opened with status 'open', not {session.status}")
        row = session_values(session)
        try:
            await run_unit(self.using, lambda: self._sessions().bulk_create([_session_model()(**row)]))
        except IntegrityError:
            raise await open_refused(self, session) from None

    async def get_session(self, session_id: str) -> DrawerSession:
        """The session with ``session_id``; :class:`DrawerNotFound` if none."""
        query = self._sessions().filter(pk=session_id).values(*_session_columns())
        row = await run_unit(self.using, query.first, atomic=False)
        if row is None:
            raise DrawerNotFound(f"no drawer session {session_id!r}")
        return session_from_values(row)

    async def get_open_session(self, tenant: str | None, till: str) -> DrawerSession | None:
        """The open session of ``till`` in ``tenant``, if any."""
        query = self._sessions().filter(tenant=store_tenant(tenant), till=till, status=_OPEN)
        query = query.values(*_session_columns())
        row = await run_unit(self.using, query.first, atomic=False)
        return None if row is None else session_from_values(row)

    async def list_sessions(self, tenant: str | None, till: str | None = None) -> list[DrawerSession]:
        """The sessions of ``tenant`` (of one ``till`` if given), oldest first."""
        query = self._sessions().filter(tenant=store_tenant(tenant))
        if till is not None:
            query = query.filter(till=till)
        rows = query.order_by("opened_at", "id").values(*_session_columns())
        return [session_from_values(row) for row in await run_unit(self.using, lambda: list(rows), atomic=False)]

    async def add_movement(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        """Store ``movement`` in its open session (at ``expected_version`` if given), or return the same
        movement stored before; refuse a REFUND given up through ``payment_version``."""
        same = _same_movement(movement)
        target = Q(status=_OPEN) if expected_version is None else Q(status=_OPEN, version=expected_version)
        refund_id = movement.refund_id if movement.kind is MovementKind.REFUND else None

        def work() -> CashMovement:
            stored = self._movements().filter(same).order_by("position").values(*_movement_columns()).first()
            if stored is not None:
                return movement_from_values(stored)
            claim = None
            if refund_id is not None:
                claim = self._claims().filter(pk=refund_id).values_list("outcome", "through").first()
                if claim is not None and claim[0] == GIVEN_UP and given_up_through(claim[1], payment_version):
                    raise RefundGivenUp.of(refund_id)
            session = self._sessions().filter(pk=movement.session_id)
            if session.filter(target).update(version=F("version") + 1) != 1:
                state = session.values_list("status", "version").first()
                if state is None:
                    raise DrawerNotFound(f"no drawer session {movement.session_id!r}")
                if state[0] != _OPEN:
                    raise DrawerClosed(f"drawer session {movement.session_id!r} is closed: it takes no more cash")
                raise ConcurrentUpdate(
                    f"drawer session {movement.session_id!r} is at version {state[1]}, not {expected_version}: "
                    "it changed since it was read; read it again and check again"
                )
            position = session.values_list("version", flat=True).get()
            self._movements().bulk_create([_movement_model()(**movement_values(movement, position))])
            if refund_id is not None:
                # A give-up committed since the claim was read makes the insert fail, or the update find no
                # row: the whole unit (version and movement too) rolls back, and the next round reads it again.
                paid_out = {"payment_id": movement.payment_id or "", "outcome": PAID_OUT, "through": None}
                if claim is None:
                    self._claims().bulk_create([_claim_model()(refund_id=refund_id, at=movement.at, **paid_out)])
                elif claim[0] == GIVEN_UP:  # given up through an older version than this call was written at
                    given_up = Q(pk=refund_id, outcome=GIVEN_UP, through__lt=payment_version)
                    if self._claims().filter(given_up).update(at=movement.at, **paid_out) != 1:
                        raise _Raced(f"the claim of refund {refund_id!r} changed while it was paid out")
            return movement

        # A concurrent writer stored the same sale or refund first, or gave the refund up: the next round reads
        # the movement back, or refuses the refund.
        what = f"cash movement {movement.id} of drawer session {movement.session_id!r} could not be stored"
        return await self._retried(work, what)

    async def give_up_refund(self, refund_id: str, payment_id: str, through: int) -> CashMovement | None:
        """The REFUND movement stored under ``refund_id``, if its cash was paid out; else ``refund_id`` is
        recorded as given up (for ``payment_id``) through payment version ``through`` (the highest asked is
        kept), so no REFUND sent by a call written down at that version or before is ever stored, and ``None``."""
        refunds = self._movements().filter(kind=MovementKind.REFUND.value, refund_id=refund_id)
        paid = refunds.order_by("position").values(*_movement_columns())

        def work() -> CashMovement | None:
            stored = paid.first()
            if stored is not None:
                return movement_from_values(stored)
            claim = self._claims().filter(pk=refund_id).values_list("outcome", "through").first()
            if claim is None:
                given_up = _claim_model()(
                    refund_id=refund_id, payment_id=payment_id, outcome=GIVEN_UP, through=through, at=utcnow()
                )
                self._claims().bulk_create([given_up])
                return None
            if claim[0] == GIVEN_UP:
                raised = self._claims().filter(pk=refund_id, outcome=GIVEN_UP, through__lt=through)
                if claim[1] is not None and claim[1] < through and raised.update(through=through) != 1:
                    raise _Raced(f"the claim of refund {refund_id!r} changed while it was given up")
                return None
            # Paid out by a transaction that committed after the read above: its movement is there now.
            stored = paid.first()
            return None if stored is None else movement_from_values(stored)

        # A concurrent add paid the refund out, or a concurrent give-up gave it up, first: the next round finds its
        # movement, or its claim.
        return await self._retried(work, f"refund {refund_id!r} could not be given up")

    async def _retried(self, work: Callable[[], _T], what: str) -> _T:
        """``work`` as one unit of work, run again while a concurrent writer got to its rows first (a unique key
        taken, a claim changed under it); :class:`StorageError` saying ``what`` once the rounds are spent."""
        for attempt in range(_ATTEMPTS):
            try:
                return await run_unit(self.using, work)
            except (IntegrityError, _Raced) as error:
                if attempt + 1 == _ATTEMPTS:
                    raise StorageError(f"{what} in Django database {self.using!r}: {first_line(error)}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def find_movement(
        self, *, kind: MovementKind, payment_id: str | None = None, refund_id: str | None = None
    ) -> CashMovement | None:
        """The stored movement of ``kind`` for ``payment_id`` and/or ``refund_id``, if any."""
        if payment_id is None and refund_id is None:
            return None
        query = self._movements().filter(kind=MovementKind(kind).value)
        if payment_id is not None:
            query = query.filter(payment_id=payment_id)
        if refund_id is not None:
            query = query.filter(refund_id=refund_id)
        found = query.order_by("at", "position", "id").values(*_movement_columns())
        row = await run_unit(self.using, found.first, atomic=False)
        return None if row is None else movement_from_values(row)

    async def get_movements(self, movement_ids: Sequence[str]) -> list[CashMovement]:
        """The stored movements among ``movement_ids``."""
        if not movement_ids:
            return []
        rows = self._movements().filter(id__in=list(movement_ids)).values(*_movement_columns())
        return [movement_from_values(row) for row in await run_unit(self.using, lambda: list(rows), atomic=False)]

    async def list_movements(self, session_id: str) -> list[CashMovement]:
        """The session's movements in the order they were added."""
        rows = self._movements().filter(session_id=session_id).order_by("position").values(*_movement_columns())
        return [movement_from_values(row) for row in await run_unit(self.using, lambda: list(rows), atomic=False)]

    async def close_session(self, session: DrawerSession) -> None:
        """Replace the stored open session with its closed record, at the next version."""
        row = session_values(session)
        closed = {column: row[column] for column in _CLOSE_COLUMNS}

        def work() -> None:
            stored = self._sessions().filter(pk=session.id)
            if stored.filter(status=_OPEN, version=session.version - 1).update(**closed) == 1:
                return
            state = stored.values_list("status", "version").first()
            if state is None:
                raise DrawerNotFound(f"no drawer session {session.id!r}")
            if state[0] != _OPEN:
                raise DrawerClosed(f"drawer session {session.id!r} is closed already; a closed session never changes")
            raise ConcurrentUpdate(
                f"drawer session {session.id!r} is at version {state[1]}; a close of version "
                f"{session.version} was computed before its latest movement"
            )

        if session.status is not DrawerStatus.CLOSED:
            raise DrawerClosed(f"close_session needs the closed record of {session.id}, not an open one")
        await run_unit(self.using, work)
