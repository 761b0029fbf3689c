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
version check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import exc

from paycore.errors import ConcurrentUpdate
from paycore_cash.backends.rows import (
    movement_from_values,
    movement_values,
    session_from_values,
    session_values,
    store_tenant,
)
from paycore_cash.backends.sql_schema import CASH_SCHEMA
from paycore_cash.backends.sql_schema import cash_movements as movements
from paycore_cash.backends.sql_schema import drawer_sessions as sessions
from paycore_cash.errors import DrawerClosed, DrawerNotFound
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.storage import open_refused
from paycore_sqlalchemy import Database, SqlPaymentRepository

__all__ = ["SqlDrawerStorage", "storage_for"]

_ATTEMPTS: Final = 3
_OPEN: Final = DrawerStatus.OPEN.value

_INSERT_SESSION = sa.insert(sessions)
_INSERT_MOVEMENT = sa.insert(movements)
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


def storage_for(repository: SqlPaymentRepository) -> SqlDrawerStorage:
    """Drawer storage in the database of ``repository`` (a ``storage_backend = "sqlalchemy"`` repository)."""
    return SqlDrawerStorage(repository.database)


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

    async def add_movement(self, movement: CashMovement, *, expected_version: int | None = None) -> CashMovement:
        """Store ``movement`` in its open session (at ``expected_version`` if given), or return the same
        movement stored before."""
        probe = {
            "id": movement.id,
            "kind": movement.kind.value,
            "payment_id": movement.payment_id,
            "refund_id": movement.refund_id,
        }
        bump = _BUMP if expected_version is None else _BUMP_AT
        target: dict[str, Any] = {"session_id": movement.session_id, "expected_version": expected_version}

        def work(connection: sa.Connection) -> CashMovement:
            stored = connection.execute(_SAME_MOVEMENT, probe).mappings().first()
            if stored is not None:
                return movement_from_values(stored)
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
            return movement

        for attempt in range(_ATTEMPTS):
            try:
                return await self.database.run(work, write=True)
            except exc.IntegrityError:
                # A concurrent writer stored the same sale or refund first: read it back.
                if attempt + 1 == _ATTEMPTS:
                    raise
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
