"""``SqlDrawerStorage``: drawer sessions and cash movements in the SQL database of a repository.

Built on the SQL adapter's public unit of work: every method hands one plain
function of a connection to :meth:`paycore_sqlalchemy.Database.run`, which runs
it in one transaction on a worker thread (so it serves asyncio and trio). The
tables are the cash plugin's own (:mod:`paycore_cash.backends.sql_schema`,
migration branch ``cash``). The database enforces the rules that matter under
concurrency: a partial unique index allows one open session per till (tenant
``None`` stored as ``''``), and partial unique indexes allow one SALE movement
per payment and one REFUND movement per refund. A movement bumps its session's
``version`` in the same transaction, so a close computed before it fails its
version check. A refund id has one row in the refund claims table, written with its
REFUND movement (``paid_out``) or by :meth:`SqlDrawerStorage.give_up_refund` (``given_up``
through a payment version): of a give-up and the payout it races, the second write to
that row fails or finds it changed, and its transaction stores nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc

from paycore.clock import utcnow
from paycore.errors import ConcurrentUpdate, StorageError, first_line
from paycore_cash.backends.rows import (
    GIVEN_UP,
    PAID_OUT,
    movement_from_values,
    movement_values,
    session_from_values,
    session_values,
    store_tenant,
)
from paycore_cash.backends.sql_schema import CASH_SCHEMA
from paycore_cash.backends.sql_schema import cash_movements as movements
from paycore_cash.backends.sql_schema import drawer_sessions as sessions
from paycore_cash.backends.sql_schema import refund_claims as claims
from paycore_cash.errors import DrawerClosed, DrawerNotFound, RefundGivenUp
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.storage import given_up_through, open_refused
from paycore_sqlalchemy import Database, SqlPaymentRepository

__all__ = ["SqlDrawerStorage", "storage_for"]

_ATTEMPTS: Final = 3
_OPEN: Final = DrawerStatus.OPEN.value

_INSERT_SESSION = sa.insert(sessions)
_INSERT_MOVEMENT = sa.insert(movements)
_INSERT_CLAIM = sa.insert(claims)
_CLAIM = sa.select(claims.c.outcome, claims.c.through).where(claims.c.refund_id == sa.bindparam("refund_id"))
_PAY_OUT_GIVEN_UP = (
    sa.update(claims)
    .where(
        claims.c.refund_id == sa.bindparam("b_refund_id"),
        claims.c.outcome == GIVEN_UP,
        claims.c.through < sa.bindparam("b_payment_version"),
    )
    .values(payment_id=sa.bindparam("payment_id"), outcome=PAID_OUT, through=None, at=sa.bindparam("at"))
)
_GIVE_UP_THROUGH = (
    sa.update(claims)
    .where(
        claims.c.refund_id == sa.bindparam("b_refund_id"),
        claims.c.outcome == GIVEN_UP,
        claims.c.through < sa.bindparam("b_through"),
    )
    .values(through=sa.bindparam("b_through"))
)
_REFUND = sa.select(movements).where(
    movements.c.kind == sa.literal_column(f"'{MovementKind.REFUND.value}'"),  # as the partial unique index says
    movements.c.refund_id == sa.bindparam("refund_id"),
)
_SESSION = sa.select(sessions).where(sessions.c.id == sa.bindparam("session_id"))
_STATE = sa.select(sessions.c.status, sessions.c.version).where(sessions.c.id == sa.bindparam("session_id"))
_OPEN_SESSION = sa.select(sessions).where(
    sessions.c.tenant == sa.bindparam("tenant"), sessions.c.till == sa.bindparam("till"), sessions.c.status == _OPEN
)
_BUMP = (
    sa.update(sessions)
    .where(sessions.c.id == sa.bindparam("session_id"), sessions.c.status == _OPEN)
    .values(version=sessions.c.version + 1)
)
_BUMP_AT = _BUMP.where(sessions.c.version == sa.bindparam("expected_version"))
_CLOSE = (
    sa.update(sessions)
    .where(
        sessions.c.id == sa.bindparam("b_id"),
        sessions.c.status == _OPEN,
        sessions.c.version == sa.bindparam("b_previous"),
    )
    .values(
        status=sa.bindparam("status"),
        closed_by=sa.bindparam("closed_by"),
        closed_at=sa.bindparam("closed_at"),
        counted=sa.bindparam("counted"),
        expected=sa.bindparam("expected"),
        variance=sa.bindparam("variance"),
        close_id=sa.bindparam("close_id"),
        version=sa.bindparam("version"),
    )
)
_MOVEMENTS_OF = (
    sa.select(movements).where(movements.c.session_id == sa.bindparam("session_id")).order_by(movements.c.position)
)
_SAME_MOVEMENT = sa.select(movements).where(
    sa.or_(
        movements.c.id == sa.bindparam("id"),
        sa.and_(
            sa.bindparam("kind") == MovementKind.SALE.value,
            movements.c.kind == MovementKind.SALE.value,
            movements.c.payment_id == sa.bindparam("payment_id"),
        ),
        sa.and_(
            sa.bindparam("kind") == MovementKind.REFUND.value,
            movements.c.kind == MovementKind.REFUND.value,
            movements.c.refund_id == sa.bindparam("refund_id"),
        ),
    )
)


_Claim = tuple[str, int | None]
"""A refund claim's outcome, and the payment version it was given up through (``None`` once paid out)."""


def _claim_of(connection: sa.Connection, refund_id: str) -> _Claim | None:
    """The claim of ``refund_id``, if any."""
    row = connection.execute(_CLAIM, {"refund_id": refund_id}).first()
    return None if row is None else (row[0], row[1])


class _ClaimRaced(ConcurrentUpdate):
    """A concurrent writer changed a refund's claim between its read and its conditional update: the unit rolls
    back, and the next attempt reads the claim again."""


def _refused(claim: _Claim | None, payment_version: int | None) -> bool:
    """Whether ``claim`` (outcome, through) refuses a REFUND sent by a call written down at ``payment_version``
    (``None``: unknown): it was given up through that version or a later one."""
    return claim is not None and claim[0] == GIVEN_UP and given_up_through(claim[1], payment_version)


def storage_for(repository: SqlPaymentRepository) -> SqlDrawerStorage:
    """Drawer storage in the database of ``repository`` (a ``storage_backend = "sqlalchemy"`` repository)."""
    return SqlDrawerStorage(repository.database)


def _spent(what: str, database: Database, error: Exception) -> StorageError:
    """The error once the database refused every attempt (a concurrent writer's row, or a constraint the data
    breaks; each attempt read what others stored first): ``what`` did not happen, and the driver's why."""
    attempts = f"refused in {_ATTEMPTS} attempts, each after reading what concurrent writers stored"
    return StorageError(f"{what} in {database.url}: {attempts} ({first_line(error)})")


class SqlDrawerStorage:
    """A :class:`paycore_cash.storage.DrawerStorage` in the database of a SQL repository.

    Requires the ``cash`` schema of ``database``: a SQLite database gets it on
    its next unit of work, a server refuses until ``paycore db upgrade`` ran.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        database.include_schema(CASH_SCHEMA)

    def __repr__(self) -> str:
        return f"<SqlDrawerStorage {self.database.url}>"

    async def open_session(self, session: DrawerSession) -> None:
        """Store a new open session; :class:`DrawerAlreadyOpen` if its id or its till's open slot is taken."""
        row = session_values(session)
        try:
            await self.database.run(lambda c: c.execute(_INSERT_SESSION, row), write=True)
        except exc.IntegrityError:
            raise await open_refused(self, session) from None

    async def get_session(self, session_id: str) -> DrawerSession:
        """The session with ``session_id``; :class:`DrawerNotFound` if none."""
        row = await self.database.run(lambda c: c.execute(_SESSION, {"session_id": session_id}).mappings().first())
        if row is None:
            raise DrawerNotFound(f"no drawer session {session_id!r}")
        return session_from_values(row)

    async def get_open_session(self, tenant: str | None, till: str) -> DrawerSession | None:
        """The open session of ``till`` in ``tenant``, if any."""
        parameters = {"tenant": store_tenant(tenant), "till": till}
        row = await self.database.run(lambda c: c.execute(_OPEN_SESSION, parameters).mappings().first())
        return None if row is None else session_from_values(row)

    async def list_sessions(self, tenant: str | None, till: str | None = None) -> list[DrawerSession]:
        """The sessions of ``tenant`` (of one ``till`` if given), oldest first."""
        query = sa.select(sessions).where(sessions.c.tenant == store_tenant(tenant))
        if till is not None:
            query = query.where(sessions.c.till == till)
        query = query.order_by(sessions.c.opened_at, sessions.c.id)
        rows = await self.database.run(lambda c: c.execute(query).mappings().all())
        return [session_from_values(row) for row in rows]

    async def add_movement(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        """Store ``movement`` in its open session (at ``expected_version`` if given), or return the same
        movement stored before; refuse a REFUND given up through ``payment_version``."""
        probe = {
            "id": movement.id,
            "kind": movement.kind.value,
            "payment_id": movement.payment_id,
            "refund_id": movement.refund_id,
        }
        bump = _BUMP if expected_version is None else _BUMP_AT
        target: dict[str, Any] = {"session_id": movement.session_id, "expected_version": expected_version}
        refund_id = movement.refund_id if movement.kind is MovementKind.REFUND else None

        def settled(connection: sa.Connection) -> tuple[CashMovement | None, _Claim | None]:
            """The same movement stored already, and the claim (outcome, through) of the refund id (REFUNDs)."""
            stored = connection.execute(_SAME_MOVEMENT, probe).mappings().first()
            if stored is not None:
                return movement_from_values(stored), None
            if refund_id is None:
                return None, None
            return None, _claim_of(connection, refund_id)

        def work(connection: sa.Connection) -> CashMovement:
            stored, claim = settled(connection)
            if stored is not None:
                return stored
            if _refused(claim, payment_version):
                raise RefundGivenUp.of(str(refund_id))
            if connection.execute(bump, target).rowcount != 1:
                state = connection.execute(_STATE, {"session_id": movement.session_id}).first()
                if state is None:
                    raise DrawerNotFound(f"no drawer session {movement.session_id!r}")
                if state[0] != _OPEN:
                    raise DrawerClosed(f"drawer session {movement.session_id!r} is closed: it takes no more cash")
                raise ConcurrentUpdate(
                    f"drawer session {movement.session_id!r} is at version {state[1]}, not {expected_version}: "
                    "it changed since it was read; read it again and check again"
                )
            position = connection.execute(_STATE, {"session_id": movement.session_id}).one()[1]
            connection.execute(_INSERT_MOVEMENT, movement_values(movement, position))
            if refund_id is not None:
                # Last, once the session row is held. A give-up of refund_id committed since the claim was read
                # (or one in flight, once it commits) makes the insert fail, or the update match nothing: the
                # unit rolls back, and the next attempt refuses the refund.
                paid_out = {"payment_id": movement.payment_id or "", "at": movement.at}
                if claim is None:
                    connection.execute(_INSERT_CLAIM, {"refund_id": refund_id, "outcome": PAID_OUT, **paid_out})
                elif claim[0] == GIVEN_UP:  # through a payment version older than this call's
                    given_up = {"b_refund_id": refund_id, "b_payment_version": payment_version}
                    if connection.execute(_PAY_OUT_GIVEN_UP, {**given_up, **paid_out}).rowcount != 1:
                        raise _ClaimRaced(
                            f"refund {refund_id} was given up again while it was paid out; nothing was stored"
                        )
            return movement

        for attempt in range(_ATTEMPTS):
            try:
                return await self.database.run(work, write=True)
            except (exc.IntegrityError, _ClaimRaced) as error:
                # A concurrent writer stored the same sale or refund first, or gave the refund up: the next
                # attempt reads what it did.
                if attempt + 1 < _ATTEMPTS:
                    continue
                stored, claim = await self.database.run(settled, write=True)
                if stored is not None:
                    return stored
                if _refused(claim, payment_version):
                    raise RefundGivenUp.of(str(refund_id)) from None
                raise _spent(f"movement {movement.id} not stored", self.database, error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def give_up_refund(self, refund_id: str, payment_id: str, through: int) -> CashMovement | None:
        """The REFUND movement stored under ``refund_id``, if its cash was paid out; else ``refund_id`` is
        recorded as given up (for ``payment_id``) through payment version ``through`` (the highest asked is
        kept), so no REFUND sent by a call written down at that version or before is ever stored, and ``None``."""
        parameters = {"refund_id": refund_id}

        def work(connection: sa.Connection) -> CashMovement | None:
            stored = connection.execute(_REFUND, parameters).mappings().first()
            if stored is not None:
                return movement_from_values(stored)
            claim = _claim_of(connection, refund_id)
            if claim is None:
                given_up = {"payment_id": payment_id, "outcome": GIVEN_UP, "through": through, "at": utcnow()}
                connection.execute(_INSERT_CLAIM, {**parameters, **given_up})
                return None
            if claim[0] == GIVEN_UP:
                if claim[1] is not None and claim[1] < through:
                    raised = connection.execute(_GIVE_UP_THROUGH, {"b_refund_id": refund_id, "b_through": through})
                    if raised.rowcount != 1:
                        raise _ClaimRaced(f"refund {refund_id} was paid out or given up again while it was given up")
                return None
            # Paid out by a payout that committed after the first read (on a server, each statement sees what
            # committed before it): its movement is there now.
            stored = connection.execute(_REFUND, parameters).mappings().first()
            return None if stored is None else movement_from_values(stored)

        for attempt in range(_ATTEMPTS):
            try:
                return await self.database.run(work, write=True)
            except (exc.IntegrityError, _ClaimRaced) as error:
                # A concurrent payout or give-up of the refund settled it first: the next attempt reads it.
                if attempt + 1 == _ATTEMPTS:
                    raise _spent(f"refund {refund_id} not given up", self.database, error) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def find_movement(
        self, *, kind: MovementKind, payment_id: str | None = None, refund_id: str | None = None
    ) -> CashMovement | None:
        """The stored movement of ``kind`` for ``payment_id`` and/or ``refund_id``, if any."""
        if payment_id is None and refund_id is None:
            return None
        query = sa.select(movements).where(movements.c.kind == MovementKind(kind).value)
        if payment_id is not None:
            query = query.where(movements.c.payment_id == payment_id)
        if refund_id is not None:
            query = query.where(movements.c.refund_id == refund_id)
        query = query.order_by(movements.c.position).limit(1)
        row = await self.database.run(lambda c: c.execute(query).mappings().first())
        return None if row is None else movement_from_values(row)

    async def get_movements(self, movement_ids: Sequence[str]) -> list[CashMovement]:
        """The stored movements among ``movement_ids``."""
        if not movement_ids:
            return []
        query = sa.select(movements).where(movements.c.id.in_(list(movement_ids)))
        rows = await self.database.run(lambda c: c.execute(query).mappings().all())
        return [movement_from_values(row) for row in rows]

    async def list_movements(self, session_id: str) -> list[CashMovement]:
        """The session's movements in the order they were added."""
        rows = await self.database.run(lambda c: c.execute(_MOVEMENTS_OF, {"session_id": session_id}).mappings().all())
        return [movement_from_values(row) for row in rows]

    async def close_session(self, session: DrawerSession) -> None:
        """Replace the stored open session with its closed record, at the next version."""
        row = session_values(session)
        parameters = {
            "b_id": session.id,
            "b_previous": session.version - 1,
            **{
                k: row[k]
                for k in ("status", "closed_by", "closed_at", "counted", "expected", "variance", "close_id", "version")
            },
        }

        def work(connection: sa.Connection) -> None:
            if connection.execute(_CLOSE, parameters).rowcount == 1:
                return
            state = connection.execute(_STATE, {"session_id": session.id}).first()
            if state is None:
                raise DrawerNotFound(f"no drawer session {session.id!r}")
            if state[0] != _OPEN:
                raise DrawerClosed(f"drawer session {session.id!r} is closed already")
            raise ConcurrentUpdate(
                f"drawer session {session.id!r} is at version {state[1]}; a close of version "
                f"{session.version} was computed before its latest movement"
            )

        await self.database.run(work, write=True)
