"""``CashDrawers``: open, fill, empty, close and report on a tenant's cash drawers.

Built on a :class:`~paycore.flow.PaymentFlow`, it uses the drawer storage
beside the flow's repository (the same one the cash provider records sales
and refunds in) and the flow's idempotency store.

Every mutation takes an optional ``idempotency_key``: the same key and the
same request replay the first answer and never write twice; the same key with
another request is refused with :class:`~paycore.errors.IdempotencyKeyReused`.
Opens and movements get ids derived from their key, so even a retry after a
crash finds the record its first attempt wrote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import anyio
from attrs import evolve

from paycore.errors import ConcurrentUpdate, IdempotencyKeyReused, NotFound, ValidationError
from paycore.idempotency import check_key, derived_id, fingerprint, scope_of
from paycore.money import Money
from paycore.records import utcnow
from paycore.secrets import Settings
from paycore_cash.errors import (
    DrawerAlreadyOpen,
    DrawerClosed,
    DrawerNotFound,
    InsufficientDrawerCash,
    InvalidCashRequest,
    NoOpenDrawer,
)
from paycore_cash.locate import drawer_storage
from paycore_cash.records import (
    CashMovement,
    DrawerSession,
    DrawerStatus,
    MovementKind,
    new_movement_id,
    new_session_id,
)
from paycore_cash.report import DrawerReport
from paycore_cash.storage import DrawerStorage
from paycore_cash.totals import DrawerTotals, drawer_totals
from paycore_cash.validation import check_amount, check_name

if TYPE_CHECKING:
    import pluggy

__all__ = ["CashDrawers", "FlowLike", "cash_settings"]

_CLOSE_ATTEMPTS = 20
_REPLAY_SESSIONS = 3
"""How many of a till's latest sessions a keyed pay-in/out retry is looked for in."""


class FlowLike(Protocol):
    """What :class:`CashDrawers` needs of a :class:`~paycore.flow.PaymentFlow`."""

    @property
    def repository(self) -> Any: ...

    @property
    def idempotency_store(self) -> Any: ...

    @property
    def plugin_manager(self) -> pluggy.PluginManager: ...

    @property
    def config(self) -> Any: ...


def cash_settings(flow: FlowLike, tenant: str | None) -> Settings:
    """The settings of the provider of type ``cash`` the tenant enables (empty if none)."""
    configs = flow.config.provider_configs(tenant)
    for provider in configs.values():
        if provider.type == "cash":
            settings: Settings = provider.settings
            return settings
    return Settings(owner="cash")


class CashDrawers:
    """The cash drawers of one tenant (``None``: the tenant-less default).

    ``currency`` fixes the drawers' currency (default: the ``currency``
    setting of the tenant's cash provider; if neither, a drawer takes the
    currency of its opening float). A session is found by its till while open
    and by its id always; sessions of other tenants are invisible.
    """

    def __init__(self, flow: FlowLike, *, tenant: str | None = None, currency: str | None = None) -> None:
        self.flow = flow
        self.tenant = tenant
        settings = cash_settings(flow, tenant)
        configured = currency if currency is not None else settings.get("currency")
        if configured is not None:
            Money.zero(configured)  # refuses an unknown code
        self.currency: str | None = configured
        self.storage: DrawerStorage = drawer_storage(flow.plugin_manager, flow.repository, settings)

    def __repr__(self) -> str:
        return f"<CashDrawers tenant={self.tenant!r} currency={self.currency!r}>"

    @property
    def _scope(self) -> str:
        return f"{scope_of(self.tenant)}|cash-drawer"

    # -- reading -------------------------------------------------------------------------------

    async def current(self, till: str) -> DrawerSession | None:
        """The open session of ``till``, or ``None`` if its drawer is closed."""
        return await self.storage.get_open_session(self.tenant, check_name(till, "till"))

    async def require_open(self, till: str) -> DrawerSession:
        """The open session of ``till``; :class:`NoOpenDrawer` if there is none."""
        session = await self.current(till)
        if session is None:
            raise _no_open_drawer(till)
        return session

    async def get(self, session_id: str) -> DrawerSession:
        """The session with ``session_id`` in this tenant; :class:`DrawerNotFound` otherwise."""
        session = await self.storage.get_session(session_id)
        if session.tenant != self.tenant:
            raise DrawerNotFound(f"no drawer session {session_id!r}")
        return session

    async def sessions(self, till: str | None = None) -> list[DrawerSession]:
        """This tenant's sessions (of one till if given), oldest first."""
        return await self.storage.list_sessions(self.tenant, till)

    async def movements(self, session_id: str) -> list[CashMovement]:
        """The session's movements in the order they happened."""
        await self.get(session_id)
        return await self.storage.list_movements(session_id)

    async def totals(self, session_id: str) -> DrawerTotals:
        """The session's sums by kind and the cash it should hold now."""
        session = await self.get(session_id)
        return drawer_totals(session, await self.storage.list_movements(session_id))

    async def report(self, session_id: str) -> DrawerReport:
        """The session's report (:meth:`DrawerReport.render` gives the text)."""
        session = await self.get(session_id)
        movements = await self.storage.list_movements(session_id)
        # Read the session again: a movement stored between the two reads is then counted.
        latest = await self.storage.get_session(session_id)
        if latest.version != session.version:
            movements = await self.storage.list_movements(session_id)
        return DrawerReport.build(latest, movements)

    # -- opening -------------------------------------------------------------------------------

    async def open(
        self,
        *,
        till: str,
        opening_float: Money,
        opened_by: str,
        idempotency_key: str | None = None,
    ) -> DrawerSession:
        """Open ``till``'s drawer with ``opening_float`` counted in by ``opened_by``.

        Refused (nothing stored) if the float is negative or not in the
        drawer's currency, or if the till has an open session already.
        """
        till = check_name(till, "till")
        opened_by = check_name(opened_by, "opened_by")
        opening_float = check_amount(opening_float, "opening float", currency=self.currency, allow_zero=True)
        session = DrawerSession(
            id=new_session_id(),
            tenant=self.tenant,
            till=till,
            currency=opening_float.currency,
            opening_float=opening_float,
            opened_by=opened_by,
            opened_at=utcnow(),
        )
        if idempotency_key is None:
            await self.storage.open_session(session)
            return session
        session = evolve(session, id=derived_id("drw", self._scope, check_key(idempotency_key)))
        replay = await self._stored_session(session.id)
        if replay is not None:
            return _same_open(replay, session, idempotency_key)
        try:
            await self.storage.open_session(session)
        except DrawerAlreadyOpen:
            replay = await self._stored_session(session.id)
            if replay is None:
                raise
            return _same_open(replay, session, idempotency_key)
        return session

    async def _stored_session(self, session_id: str) -> DrawerSession | None:
        try:
            return await self.get(session_id)
        except DrawerNotFound:
            return None

    # -- pay-ins and pay-outs ------------------------------------------------------------------

    async def pay_in(
        self, *, till: str, amount: Money, reason: str, actor: str, idempotency_key: str | None = None
    ) -> CashMovement:
        """Put ``amount`` into the drawer for ``reason`` (a float top-up)."""
        return await self._pay(MovementKind.PAY_IN, till, amount, reason, actor, idempotency_key)

    async def pay_out(
        self, *, till: str, amount: Money, reason: str, actor: str, idempotency_key: str | None = None
    ) -> CashMovement:
        """Take ``amount`` out of the drawer for ``reason`` (a drop to the safe).

        Refused with :class:`InsufficientDrawerCash` when the drawer should
        hold less than ``amount``.
        """
        return await self._pay(MovementKind.PAY_OUT, till, amount, reason, actor, idempotency_key)

    async def _pay(
        self,
        kind: MovementKind,
        till: str,
        amount: Money,
        reason: str,
        actor: str,
        idempotency_key: str | None,
    ) -> CashMovement:
        till = check_name(till, "till")
        actor = check_name(actor, "actor")
        reason = check_name(reason, "reason", limit=500)
        check_amount(amount, f"{kind.value.replace('_', '-')} amount", currency=self.currency)
        movement_id = (
            new_movement_id()
            if idempotency_key is None
            else derived_id("mov", self._scope, f"movement:{check_key(idempotency_key)}")
        )
        session = await self.storage.get_open_session(self.tenant, till)
        if session is None:
            if idempotency_key is not None:
                replay = await self._replay_movement(till, movement_id)
                if replay is not None:
                    return _same_movement(replay, kind, amount, reason, actor, idempotency_key)
            raise _no_open_drawer(till)
        check_amount(amount, f"{kind.value.replace('_', '-')} amount", currency=session.currency)
        needs_movements = idempotency_key is not None or kind is MovementKind.PAY_OUT
        movements = await self.storage.list_movements(session.id) if needs_movements else []
        for stored in movements:
            if stored.id == movement_id:
                return _same_movement(stored, kind, amount, reason, actor, idempotency_key)
        if kind is MovementKind.PAY_OUT:
            in_drawer = drawer_totals(session, movements).expected
            if amount > in_drawer:
                raise InsufficientDrawerCash(
                    f"pay-out of {amount} is more than the {in_drawer} drawer {till!r} should hold"
                )
        movement = CashMovement(
            id=movement_id,
            session_id=session.id,
            kind=kind,
            amount=amount,
            at=utcnow(),
            actor=actor,
            reason=reason,
        )
        try:
            stored = await self.storage.add_movement(movement)
        except DrawerClosed:
            raise NoOpenDrawer(f"the drawer of till {till!r} was closed; open one first") from None
        return _same_movement(stored, kind, amount, reason, actor, idempotency_key)

    async def _replay_movement(self, till: str, movement_id: str) -> CashMovement | None:
        """The movement stored under ``movement_id`` in one of the till's last sessions."""
        sessions = await self.storage.list_sessions(self.tenant, till)
        for session in reversed(sessions[-_REPLAY_SESSIONS:]):
            for movement in await self.storage.list_movements(session.id):
                if movement.id == movement_id:
                    return movement
        return None

    # -- closing -------------------------------------------------------------------------------

    async def close(
        self,
        *,
        counted: Money,
        closed_by: str,
        till: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> DrawerSession:
        """Close the drawer of ``till`` (or the session ``session_id``) with the ``counted`` cash.

        Stores expected = float + cash in - cash out and variance = counted -
        expected. Refused if the session is closed already (unless this is a
        replay of the same close under the same ``idempotency_key``).
        """
        if (till is None) == (session_id is None):
            raise InvalidCashRequest("close needs exactly one of till= and session_id=")
        closed_by = check_name(closed_by, "closed_by")
        counted = check_amount(counted, "counted cash", currency=self.currency, allow_zero=True)
        if till is not None:
            till = check_name(till, "till")
        if idempotency_key is None:
            return await self._close(counted, closed_by, till, session_id)
        store = self.flow.idempotency_store
        key = check_key(idempotency_key)
        print_ = fingerprint(
            "cash.close",
            {"till": till, "session_id": session_id, "counted": str(counted), "closed_by": closed_by},
        )
        lease = float(getattr(self.flow.config, "idempotency_lease", 120.0))
        ttl = float(getattr(self.flow.config, "idempotency_ttl", 86_400.0))
        claim = await store.claim(scope=self._scope, key=key, fingerprint=print_, lease_seconds=lease)
        if claim.result is not None:
            return await self.get(str(claim.result["session_id"]))
        assert claim.token is not None
        try:
            closed = await self._close(counted, closed_by, till, session_id)
        except (ValidationError, NotFound, ConcurrentUpdate):
            # Refused before anything was stored: free the key for a corrected retry.
            with anyio.CancelScope(shield=True):
                await store.release(scope=self._scope, key=key, token=claim.token)
            raise
        await store.complete(
            scope=self._scope, key=key, token=claim.token, result={"session_id": closed.id}, ttl_seconds=ttl
        )
        return closed

    async def _close(self, counted: Money, closed_by: str, till: str | None, session_id: str | None) -> DrawerSession:
        for _ in range(_CLOSE_ATTEMPTS):
            session = await self.get(session_id) if session_id is not None else await self.require_open(till or "")
            if session.status is DrawerStatus.CLOSED:
                raise DrawerClosed(
                    f"drawer session {session.id} of till {session.till!r} was closed already "
                    f"by {session.closed_by} at {session.closed_at:%Y-%m-%d %H:%M}; "
                    "a closed session never changes"
                )
            check_amount(counted, "counted cash", currency=session.currency, allow_zero=True)
            movements = await self.storage.list_movements(session.id)
            expected = drawer_totals(session, movements).expected
            closed = evolve(
                session,
                status=DrawerStatus.CLOSED,
                closed_by=closed_by,
                closed_at=utcnow(),
                counted=counted,
                expected=expected,
                variance=counted - expected,
                version=session.version + 1,
            )
            try:
                await self.storage.close_session(closed)
            except ConcurrentUpdate:
                continue  # a movement landed meanwhile: count it and try again
            return closed
        raise ConcurrentUpdate(f"drawer of till {till!r} kept changing while it was being closed; try again")


def _no_open_drawer(till: str) -> NoOpenDrawer:
    return NoOpenDrawer(f"till {till!r} has no open cash drawer; open one first (paycore drawer open --till {till})")


def _same_open(stored: DrawerSession, wanted: DrawerSession, key: str) -> DrawerSession:
    if (stored.till, stored.opening_float, stored.opened_by) != (
        wanted.till,
        wanted.opening_float,
        wanted.opened_by,
    ):
        raise IdempotencyKeyReused(f"idempotency key {key!r} was already used to open a different drawer")
    return stored


def _same_movement(
    stored: CashMovement, kind: MovementKind, amount: Money, reason: str, actor: str, key: str | None
) -> CashMovement:
    if key is not None and (stored.kind, stored.amount, stored.reason, stored.actor) != (
        kind,
        amount,
        reason,
        actor,
    ):
        raise IdempotencyKeyReused(f"idempotency key {key!r} was already used for a different drawer movement")
    return stored
