"""``DrawerStorage``: the protocol drawer sessions and cash movements are stored through.

The cash plugin implements it for each storage backend it keeps drawers on
(:mod:`paycore_cash.backends`: memory, SQLAlchemy, Django); a package that
brings another backend implements it and registers it through the
``paycore_cash_drawer_backends`` hook.
Every method is async and is **one unit of work**: it commits, or it raises
and changes nothing. :class:`paycore_cash.testing.DrawerStorageConformance`
pins down every rule stated here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from paycore_cash.errors import DrawerAlreadyOpen, DrawerNotFound
from paycore_cash.records import CashMovement, DrawerSession, MovementKind

__all__ = ["DrawerStorage", "given_up_through", "open_refused"]


@runtime_checkable
class DrawerStorage(Protocol):
    """Stores drawer sessions and their cash movements."""

    async def open_session(self, session: DrawerSession) -> None:
        """Store a new OPEN session (``version`` 1).

        Raises :class:`~paycore_cash.errors.DrawerAlreadyOpen` if a session with
        ``session.id`` exists, or if ``(tenant, till)`` has an OPEN session. The
        storage itself enforces one open session per till, so of many
        concurrent opens exactly one wins (SQL: a partial unique index on
        ``(tenant, till) WHERE status = 'open'``; tenant ``None`` counts as one
        tenant, e.g. stored as ``''`` or indexed through ``COALESCE``).
        """

    async def get_session(self, session_id: str) -> DrawerSession:
        """The session with ``session_id``; :class:`~paycore_cash.errors.DrawerNotFound` if none."""
        ...

    async def get_open_session(self, tenant: str | None, till: str) -> DrawerSession | None:
        """The OPEN session of ``till`` in ``tenant`` (``None`` is a tenant of its own), if any."""
        ...

    async def list_sessions(self, tenant: str | None, till: str | None = None) -> list[DrawerSession]:
        """The sessions of ``tenant`` (exactly that tenant; ``None`` is the tenant-less one),
        of one ``till`` if given, oldest first (by ``opened_at``, then ``id``)."""
        ...

    async def add_movement(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        """Store ``movement`` and return it; or return the one stored already. Atomically:

        1. if a movement with the same ``id``, or (for a SALE) with the same
           ``payment_id`` and kind SALE, or (for a REFUND) with the same
           ``refund_id``, is stored already, return that stored movement
           unchanged (a retry is a no-op, even after its session closed);
        2. otherwise a REFUND's ``refund_id`` must not have been given up through
           ``payment_version`` (the payment version its call was written down at; ``None``: given up at all;
           :meth:`give_up_refund`, :class:`~paycore_cash.errors.RefundGivenUp`);
           the session ``movement.session_id`` must exist
           (:class:`~paycore_cash.errors.DrawerNotFound`) and be OPEN
           (:class:`~paycore_cash.errors.DrawerClosed`);
        3. if ``expected_version`` is given, the session's stored ``version``
           must be it, else :class:`~paycore.errors.ConcurrentUpdate`;
        4. store it, add one to the session's ``version`` (so a close computed
           before this movement fails its version check and is recomputed),
           and return it.

        ``expected_version`` is how cash leaves a drawer without overdrawing
        it: the caller reads the session, sums its movements, checks that the
        drawer holds the amount, and passes the version it read. Of two
        pay-outs checked against the same version, one is stored and the
        other raises ``ConcurrentUpdate``; its caller reads again and checks
        again. Returning a stored movement changes nothing (the version stays),
        and every refusal stores nothing.
        SQL sketch: ``UPDATE sessions SET version = version + 1 WHERE id = :id
        AND status = 'open' [AND version = :expected_version]`` then ``INSERT``
        the movement, in one transaction, with unique indexes on the movement
        id, on SALE ``payment_id`` and on REFUND ``refund_id``.
        """
        ...

    async def give_up_refund(self, refund_id: str, payment_id: str, through: int) -> CashMovement | None:
        """Settle a refund nothing answered for: the REFUND movement stored under ``refund_id`` if there is
        one (it was paid out); else record ``refund_id`` as given up, for ``payment_id``, ``through`` a version
        of the payment, and return ``None``.

        Atomically, as one unit of work with respect to :meth:`add_movement`: of a give-up and the add of a
        REFUND under the same ``refund_id`` racing, exactly one takes effect. Once given up, ``add_movement``
        of a REFUND under ``refund_id`` sent by a call written down at payment version ``through`` or earlier
        raises :class:`~paycore_cash.errors.RefundGivenUp` and stores nothing (whatever session, version or
        movement id it names): that is a call the flow gave up, whose owner was only asleep. A call written
        down later (a keyed retry that sends the refund again under the same id) pays it out. Giving it up again
        keeps the highest ``through``.
        SQL sketch: one row per given-up ``refund_id`` (``INSERT``, or raise its ``through``) unless a REFUND
        movement with that ``refund_id`` exists, in one transaction; ``add_movement`` of a REFUND refuses when
        the row's ``through`` reaches its call's version, and else writes a row of its own (or updates that
        one), so that of two concurrent transactions one fails or waits and reads again.
        """
        ...

    async def find_movement(
        self,
        *,
        kind: MovementKind,
        payment_id: str | None = None,
        refund_id: str | None = None,
    ) -> CashMovement | None:
        """The stored movement of ``kind`` for ``payment_id`` (a SALE) or ``refund_id``
        (a REFUND); ``None`` if there is none. Given both, both must match."""
        ...

    async def get_movements(self, movement_ids: Sequence[str]) -> list[CashMovement]:
        """The stored movements among ``movement_ids`` (those there are, in any order): how a keyed operation's
        retry finds what its first attempt stored, whatever session holds it."""
        ...

    async def list_movements(self, session_id: str) -> list[CashMovement]:
        """The session's movements in the order they were added (empty if none)."""
        ...

    async def close_session(self, session: DrawerSession) -> None:
        """Replace the stored OPEN session with ``session``, its CLOSED record.

        ``session.version`` must be the stored version plus one; its
        ``close_id`` (if any) is stored with it. Raises
        :class:`~paycore_cash.errors.DrawerNotFound` if it does not exist,
        :class:`~paycore_cash.errors.DrawerClosed` if the stored one is closed
        already, :class:`~paycore.errors.ConcurrentUpdate` if the version does
        not follow the stored one; and changes nothing then. After it,
        ``add_movement`` into the session raises ``DrawerClosed``: a closed
        session and its movements never change.
        """


def given_up_through(through: int | None, payment_version: int | None) -> bool:
    """True when a refund given up through payment version ``through`` (``None``: every version) refuses a REFUND
    sent by a call written down at ``payment_version`` (``None``: unknown, so refused): the rule of
    :meth:`DrawerStorage.add_movement` for a refund id :meth:`DrawerStorage.give_up_refund` gave up."""
    return payment_version is None or through is None or payment_version <= through


async def open_refused(storage: DrawerStorage, session: DrawerSession) -> DrawerAlreadyOpen:
    """Why ``storage`` could not store ``session`` (its database refused the row): its id is taken, or its till
    has an open session, named (for a backend whose database enforces both rules and says only that one broke)."""
    try:
        await storage.get_session(session.id)
    except DrawerNotFound:
        held = await storage.get_open_session(session.tenant, session.till)
        return DrawerAlreadyOpen.of_till(session.till, session.tenant, held.id if held is not None else None)
    return DrawerAlreadyOpen.of_id(session.id)
