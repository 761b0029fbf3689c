"""``MemoryDrawerStorage``: drawer sessions and movements in memory, beside a memory repository.

One storage per repository object, kept in a weak map: every flow and
service sharing a :class:`paycore_memory.MemoryRepository` sees the same
drawers, and they go when the repository goes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

from anyio.lowlevel import checkpoint
from attrs import evolve

from paycore.errors import ConcurrentUpdate
from paycore_cash.errors import DrawerAlreadyOpen, DrawerClosed, DrawerNotFound, RefundGivenUp
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.storage import given_up_through

__all__ = ["MemoryDrawerStorage", "storage_for"]

_STORAGES: weakref.WeakKeyDictionary[Any, MemoryDrawerStorage] = weakref.WeakKeyDictionary()
_STORAGES_LOCK = threading.Lock()


def storage_for(repository: Any) -> MemoryDrawerStorage:
    """The drawer storage beside ``repository`` (a ``storage_backend = "memory"`` repository), made once."""
    with _STORAGES_LOCK:
        storage = _STORAGES.get(repository)
        if storage is None:
            storage = _STORAGES[repository] = MemoryDrawerStorage()
        return storage


class MemoryDrawerStorage:
    """A :class:`~paycore_cash.storage.DrawerStorage` held in memory.

    A lock makes each call one atomic unit of work, across tasks and threads;
    stored records are immutable and shared, never copied. Every call is a
    checkpoint, as a database call would be, so tasks interleave between calls
    here as they do on a real storage (a check and the write it guards are two calls).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, DrawerSession] = {}
        self._open: dict[tuple[str | None, str], str] = {}
        self._movements: dict[str, CashMovement] = {}
        self._by_session: dict[str, list[str]] = {}
        self._sales: dict[str, str] = {}
        self._refunds: dict[str, str] = {}
        self._given_up: dict[str, int] = {}  # refund id -> the payment version it was given up through

    def __repr__(self) -> str:
        return f"<MemoryDrawerStorage sessions={len(self._sessions)} open={len(self._open)}>"

    async def open_session(self, session: DrawerSession) -> None:
        """Store a new open session; refuse a second open session of its till."""
        await checkpoint()
        if session.status is not DrawerStatus.OPEN:
            raise DrawerClosed(f"session {session.id} must be opened with status 'open', not {session.status}")
        with self._lock:
            if session.id in self._sessions:
                raise DrawerAlreadyOpen.of_id(session.id)
            key = (session.tenant, session.till)
            if key in self._open:
                raise DrawerAlreadyOpen.of_till(session.till, session.tenant, self._open[key])
            self._sessions[session.id] = session
            self._open[key] = session.id
            self._by_session[session.id] = []

    async def get_session(self, session_id: str) -> DrawerSession:
        """The session with ``session_id``."""
        await checkpoint()
        try:
            return self._sessions[session_id]
        except KeyError:
            raise DrawerNotFound(f"no drawer session {session_id!r}") from None

    async def get_open_session(self, tenant: str | None, till: str) -> DrawerSession | None:
        """The open session of ``till`` in ``tenant``, if any."""
        await checkpoint()
        with self._lock:
            session_id = self._open.get((tenant, till))
            return None if session_id is None else self._sessions[session_id]

    async def list_sessions(self, tenant: str | None, till: str | None = None) -> list[DrawerSession]:
        """The tenant's sessions (of one till if given), oldest first."""
        await checkpoint()
        with self._lock:
            found = [s for s in self._sessions.values() if s.tenant == tenant and (till is None or s.till == till)]
        return sorted(found, key=lambda s: (s.opened_at, s.id))

    async def add_movement(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        """Store ``movement`` in its open session (at ``expected_version`` if given), or return the same one
        stored before; refuse a REFUND given up through ``payment_version``."""
        await checkpoint()
        with self._lock:
            stored = self._duplicate_of(movement)
            if stored is not None:
                return stored
            if (
                movement.kind is MovementKind.REFUND
                and movement.refund_id in self._given_up
                and given_up_through(self._given_up[movement.refund_id], payment_version)
            ):
                raise RefundGivenUp.of(movement.refund_id)
            session = self._sessions.get(movement.session_id)
            if session is None:
                raise DrawerNotFound(f"no drawer session {movement.session_id!r}")
            if session.status is not DrawerStatus.OPEN:
                raise DrawerClosed(f"drawer session {session.id} of till {session.till!r} is closed; it takes no cash")
            if expected_version is not None and session.version != expected_version:
                raise ConcurrentUpdate(
                    f"drawer session {session.id} is at version {session.version}, not {expected_version}: "
                    "it changed since it was read; read it again and check again"
                )
            self._movements[movement.id] = movement
            self._sessions[session.id] = evolve(session, version=session.version + 1)
            self._by_session[session.id].append(movement.id)
            if movement.kind is MovementKind.SALE and movement.payment_id is not None:
                self._sales[movement.payment_id] = movement.id
            if movement.kind is MovementKind.REFUND and movement.refund_id is not None:
                self._refunds[movement.refund_id] = movement.id
            return movement

    def _duplicate_of(self, movement: CashMovement) -> CashMovement | None:
        existing_id: str | None = movement.id if movement.id in self._movements else None
        if existing_id is None and movement.kind is MovementKind.SALE and movement.payment_id is not None:
            existing_id = self._sales.get(movement.payment_id)
        if existing_id is None and movement.kind is MovementKind.REFUND and movement.refund_id is not None:
            existing_id = self._refunds.get(movement.refund_id)
        return None if existing_id is None else self._movements[existing_id]

    async def give_up_refund(self, refund_id: str, payment_id: str, through: int) -> CashMovement | None:
        """The REFUND stored under ``refund_id``; else ``refund_id`` given up through ``through``, and ``None``."""
        await checkpoint()
        with self._lock:
            movement_id = self._refunds.get(refund_id)
            if movement_id is not None:
                return self._movements[movement_id]
            self._given_up[refund_id] = max(through, self._given_up.get(refund_id, through))
            return None

    async def get_movements(self, movement_ids: Sequence[str]) -> list[CashMovement]:
        """The stored movements among ``movement_ids``."""
        await checkpoint()
        with self._lock:
            return [self._movements[i] for i in dict.fromkeys(movement_ids) if i in self._movements]

    async def find_movement(
        self,
        *,
        kind: MovementKind,
        payment_id: str | None = None,
        refund_id: str | None = None,
    ) -> CashMovement | None:
        """The stored SALE of ``payment_id`` or REFUND of ``refund_id``."""
        await checkpoint()
        with self._lock:
            movement_id: str | None = None
            if kind is MovementKind.SALE and payment_id is not None:
                movement_id = self._sales.get(payment_id)
            elif kind is MovementKind.REFUND and refund_id is not None:
                movement_id = self._refunds.get(refund_id)
            else:
                candidates = [
                    m
                    for m in self._movements.values()
                    if m.kind is kind
                    and (payment_id is None or m.payment_id == payment_id)
                    and (refund_id is None or m.refund_id == refund_id)
                    and (payment_id is not None or refund_id is not None)
                ]
                return candidates[0] if candidates else None
            if movement_id is None:
                return None
            found = self._movements[movement_id]
            if payment_id is not None and found.payment_id != payment_id:
                return None
            return found

    async def list_movements(self, session_id: str) -> list[CashMovement]:
        """The session's movements in the order they were added."""
        await checkpoint()
        with self._lock:
            return [self._movements[m] for m in self._by_session.get(session_id, ())]

    async def close_session(self, session: DrawerSession) -> None:
        """Replace the open session with its closed record, checking the version."""
        await checkpoint()
        with self._lock:
            stored = self._sessions.get(session.id)
            if stored is None:
                raise DrawerNotFound(f"no drawer session {session.id!r}")
            if stored.status is not DrawerStatus.OPEN:
                raise DrawerClosed(f"drawer session {session.id} is closed already; a closed session never changes")
            if session.version != stored.version + 1:
                raise ConcurrentUpdate(
                    f"drawer session {session.id} is at version {stored.version}; "
                    f"a write of version {session.version} lost a race"
                )
            if session.status is not DrawerStatus.CLOSED:
                raise DrawerClosed(f"close_session needs the closed record of {session.id}, not an open one")
            self._sessions[session.id] = session
            del self._open[stored.tenant, stored.till]
