"""``CashDrawers``: open, fill, empty, close and report on a tenant's cash drawers.

Built on a :class:`~paycore.flow.PaymentFlow`, it uses the drawer storage
beside the flow's repository (the same one the cash provider records sales
and refunds in) and the flow's idempotency store.

Every mutation takes an optional ``idempotency_key`` and runs through the
core's :class:`~paycore.idempotency.IdempotentRunner`, as the flow's own
operations do: the same key and the same request replay the first answer and
never write twice; the same key with another request is refused with
:class:`~paycore.errors.IdempotencyKeyReused`; a key whose first request still
runs is refused with :class:`~paycore.errors.IdempotencyInProgress`. Sessions
and movements made under a key get ids from its
:class:`~paycore.keys.KeyBinding`, so a retry after a crash (once the
lease on the key has passed) finds what its first attempt wrote. After
``idempotency_ttl`` the key is free again and names a new operation.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from attrs import evolve

from paycore.awaiting import run_to_end
from paycore.errors import ConcurrentUpdate, ConfigurationError, IdempotencyKeyReused
from paycore.idempotency import IdempotentRunner
from paycore.keys import KeyBinding, check_key, scope_of
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.secrets import Settings
from paycore.wire import shown
from paycore_cash.backends import drawer_storage
from paycore_cash.earlier_release import earlier_close, earlier_movement_id, earlier_session_id
from paycore_cash.errors import (
    DrawerClosed,
    DrawerNotFound,
    ForeignCurrency,
    InsufficientDrawerCash,
    InvalidCashRequest,
    NoOpenDrawer,
)
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
from paycore_cash.validation import (
    check_amount,
    check_currency,
    check_name,
    check_session_id,
    check_tenant,
    check_till,
)

if TYPE_CHECKING:
    import pluggy

__all__ = ["CashDrawers", "FlowLike", "cash_settings", "runner_for"]

_CLOSE_ATTEMPTS = 20
_WRITE_ATTEMPTS = 50
"""How many times a pay-out (or a keyed movement) is checked again when cash moved between its check and its
write."""


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

    def now(self) -> datetime: ...


def cash_settings(flow: FlowLike, tenant: str | None) -> Settings:
    """The settings of the provider of type ``cash`` the tenant enables (empty if none): of one that fixes a
    ``currency``, when any does.

    A tenant's drawers hold one currency, so two cash providers of one tenant fixing different ``currency``
    settings are refused with :class:`~paycore.errors.ConfigurationError`; one that fixes none takes the cash
    of the drawer it is given.
    """
    found = [
        (code, provider.settings)
        for code, provider in flow.config.provider_configs(tenant).items()
        if provider.type == "cash"
    ]
    fixing = [(code, settings) for code, settings in found if settings.get("currency") is not None]
    if len({settings.get("currency") for _, settings in fixing}) > 1:
        owner = "the no-tenant default" if tenant is None else f"tenant {tenant!r}"
        named = ", ".join(f"{code!r} ({settings.get('currency')})" for code, settings in fixing)
        raise ConfigurationError(
            f"{owner} enables cash providers {named}: a till's drawer holds one currency, so they must name "
            "the same 'currency' (or leave it out)"
        )
    chosen = fixing or found
    if not chosen:
        return Settings(owner="cash")
    settings: Settings = chosen[0][1]
    return settings


def runner_for(flow: FlowLike) -> IdempotentRunner:
    """The flow's idempotency runner (``flow.idempotency``), or one on its store, lease, ttl and clock."""
    ready = getattr(flow, "idempotency", None)
    if isinstance(ready, IdempotentRunner):
        return ready
    return IdempotentRunner(
        flow.idempotency_store,
        lease_seconds=flow.config.idempotency_lease,
        ttl_seconds=flow.config.idempotency_ttl,
        clock=flow.now,
    )


def _money(amount: Money) -> dict[str, Any]:
    return {"minor_units": amount.minor_units, "currency": amount.currency}


class CashDrawers:
    """The cash drawers of one tenant (``None``: the tenant-less default).

    ``tenant`` must be ``None`` or the name of a tenant the flow's configuration
    names, and it must enable the cash provider; any other (``""``, a typo, a
    tenant without cash, ``None`` when cash is enabled only for tenants) is
    refused with :class:`~paycore_cash.errors.CashNotEnabled` (a
    :class:`~paycore.errors.ProviderNotEnabled`) before anything is read or stored.

    ``currency`` fixes the drawers' currency (default: the ``currency``
    setting of the tenant's cash provider; if neither, a drawer takes the
    currency of its opening float); a currency that is not an ISO 4217 code
    (``"xof"``, ``["XOF"]``) is refused with
    :class:`~paycore_cash.errors.InvalidCashRequest`. A session is found by its
    till while open and by its id always; sessions of other tenants are invisible.
    """

    def __init__(self, flow: FlowLike, *, tenant: str | None = None, currency: str | None = None) -> None:
        self.flow = flow
        self.tenant = check_tenant(flow.config, tenant)
        fixed = cash_settings(flow, tenant).get("currency")
        configured = currency if currency is not None else fixed
        if configured is not None:
            configured = check_currency(configured, "currency")
        if fixed is not None and configured != fixed:
            raise ForeignCurrency(
                f"the drawers of {'the no-tenant default' if tenant is None else f'tenant {tenant!r}'} hold "
                f"{fixed}, the currency its cash provider takes, not {configured}"
            )
        self.currency: str | None = configured
        self.storage: DrawerStorage = drawer_storage(flow.plugin_manager, flow.repository)
        self.idempotency: IdempotentRunner = runner_for(flow)
        in_flight = getattr(flow, "in_flight", None)
        self._in_flight: AbstractContextManager[None] = in_flight if in_flight is not None else nullcontext()
        """The flow's operations under way (:mod:`paycore.in_flight`): a drawer's change counts among them, so
        closing the flow waits for it, and once the flow is closed none starts (:class:`~paycore.errors.FlowClosed`)."""

    def __repr__(self) -> str:
        return f"<CashDrawers tenant={self.tenant!r} currency={self.currency!r}>"

    @property
    def _scope(self) -> str:
        return f"{scope_of(self.tenant)}|cash-drawers"

    def _now(self) -> datetime:
        return self.idempotency.clock()

    # -- reading -------------------------------------------------------------------------------

    async def current(self, till: str) -> DrawerSession | None:
        """The open session of ``till``, or ``None`` if its drawer is closed."""
        return await self.storage.get_open_session(self.tenant, check_till(till))

    async def require_open(self, till: str) -> DrawerSession:
        """The open session of ``till``; :class:`NoOpenDrawer` if there is none."""
        session = await self.current(till)
        if session is None:
            raise _no_open_drawer(till)
        return session

    async def get(self, session_id: str) -> DrawerSession:
        """The session with ``session_id`` in this tenant; :class:`DrawerNotFound` otherwise."""
        session = await self.storage.get_session(check_session_id(session_id))
        if session.tenant != self.tenant:
            raise DrawerNotFound(f"no drawer session {session_id!r}")
        return session

    async def sessions(self, till: str | None = None) -> list[DrawerSession]:
        """This tenant's sessions (of one till if given), oldest first."""
        return await self.storage.list_sessions(self.tenant, None if till is None else check_till(till))

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

        Refused (nothing stored) if the float is negative, above
        ``MAX_MINOR_UNITS`` or not in the drawer's currency, or if the till has
        an open session already.
        """
        till = check_till(till)
        opened_by = check_name(opened_by, "opened_by")
        opening_float = check_amount(opening_float, "opening float", currency=self.currency, allow_zero=True)

        async def execute(binding: KeyBinding | None) -> DrawerSession:
            return await self._open(till, opening_float, opened_by, binding)

        with self._in_flight:
            return await self.idempotency.run(
                operation="cash.drawer.open",
                scope=self._scope,
                key=idempotency_key,
                arguments={"till": till, "opening_float": _money(opening_float), "opened_by": opened_by},
                execute=execute,
                result_type=DrawerSession,
            )

    async def _open(self, till: str, opening_float: Money, opened_by: str, binding: KeyBinding | None) -> DrawerSession:
        session = DrawerSession(
            id=new_session_id() if binding is None else binding.new_id("drw"),
            tenant=self.tenant,
            till=till,
            currency=opening_float.currency,
            opening_float=opening_float,
            opened_by=opened_by,
            opened_at=self._now(),
        )
        if binding is not None:
            earlier = await self._earlier_open(binding)
            if earlier is not None:
                return _same_open(earlier, session, binding.key)
        # Made to its end: a caller cancelled while the write runs (asyncio's own Task.cancel, the storage's unit in
        # its worker thread) hears so once the session is stored, so the retry under its key finds it.
        await run_to_end(partial(self.storage.open_session, session))
        return session

    async def _earlier_open(self, binding: KeyBinding) -> DrawerSession | None:
        """The session an earlier attempt under the key opened, while the key still names it."""
        for session_id in (*binding.candidate_ids("drw"), earlier_session_id(self.tenant, binding.key)):
            try:
                session = await self.get(session_id)
            except DrawerNotFound:
                continue
            if binding.binds(session.opened_at):
                return session
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
        till = check_till(till)
        actor = check_name(actor, "actor")
        reason = check_name(reason, "reason", limit=500)
        # Its currency is checked against the drawer's once it is read (in the runner: a refusal keeps nothing under
        # the key, and a retry of what the key stored replays it): one opened before the configuration named another
        # currency takes cash in its own until it is closed.
        check_amount(amount, f"{kind.value.replace('_', '-')} amount", currency=None)

        async def execute(binding: KeyBinding | None) -> CashMovement:
            return await self._record(kind, till, amount, reason, actor, binding)

        with self._in_flight:
            return await self.idempotency.run(
                operation=f"cash.drawer.{kind.value}",
                scope=self._scope,
                key=idempotency_key,
                arguments={"till": till, "amount": _money(amount), "reason": reason, "actor": actor},
                execute=execute,
                result_type=CashMovement,
            )

    async def _record(
        self, kind: MovementKind, till: str, amount: Money, reason: str, actor: str, binding: KeyBinding | None
    ) -> CashMovement:
        movement_id = new_movement_id() if binding is None else binding.new_id("mov")
        for _ in range(_WRITE_ATTEMPTS):
            session = await self.storage.get_open_session(self.tenant, till)
            if binding is not None:
                # Looked up after the drawer was read, and the movement stored only at the version read: an attempt
                # that stalled past its key's lease, its key taken over by a retry in the next window of
                # idempotency_ttl (which gives the movement another id), finds the retry's movement on its next
                # round instead of storing a second one.
                earlier = await self._earlier_movement(till, binding)
                if earlier is not None:
                    return _same_movement(earlier, kind, amount, reason, actor, binding.key)
            if session is None:
                raise _no_open_drawer(till)
            check_amount(amount, f"{kind.value.replace('_', '-')} amount", currency=session.currency)
            expected_version = None if binding is None else session.version
            if kind is MovementKind.PAY_OUT:
                in_drawer = drawer_totals(session, await self.storage.list_movements(session.id)).expected
                if amount > in_drawer:
                    raise InsufficientDrawerCash(
                        f"pay-out of {amount} is more than the {in_drawer} drawer {till!r} should hold"
                    )
                expected_version = session.version  # the check holds only if nothing moved since
            movement = CashMovement(
                id=movement_id,
                session_id=session.id,
                kind=kind,
                amount=amount,
                at=self._now(),
                actor=actor,
                reason=reason,
            )
            try:
                stored = await self.storage.add_movement(movement, expected_version=expected_version)
            except DrawerClosed:
                # Closed since it was read; keyed, a retry of the key may have stored the movement before the close.
                if binding is not None and (earlier := await self._earlier_movement(till, binding)) is not None:
                    return _same_movement(earlier, kind, amount, reason, actor, binding.key)
                raise NoOpenDrawer(f"the drawer of till {till!r} was closed; open one first") from None
            except ConcurrentUpdate:
                continue  # cash moved since the check: read the drawer again and check again
            if binding is not None and stored.session_id != session.id:  # its id was already another session's
                await self._check_till(stored, till, binding.key)
            return _same_movement(stored, kind, amount, reason, actor, None if binding is None else binding.key)
        moving = "paid out" if kind is MovementKind.PAY_OUT else "paid in"
        raise ConcurrentUpdate(f"the drawer of till {till!r} kept changing while {amount} was {moving}; try again")

    async def _check_counted_currency(self, counted: Money, till: str | None, session_id: str | None) -> None:
        """Refuse a count in another currency than the configured one (:class:`ForeignCurrency`), unless the drawer
        it closes (open at ``till``, or ``session_id``) holds that currency: opened before the configuration named
        another, it is closed in its own. Asked in the runner, after what its key stored was looked up: a refusal
        keeps nothing under the key. The drawer's own currency is checked again once it is read to close."""
        if self.currency is None or counted.currency == self.currency:
            return
        drawer = await self.get(session_id) if session_id is not None else await self.current(till or "")
        if drawer is None or drawer.currency != counted.currency:
            raise ForeignCurrency(f"counted cash {counted} is not in the drawer's currency {self.currency}")

    async def _earlier_movement(self, till: str, binding: KeyBinding) -> CashMovement | None:
        """The movement an earlier attempt under the key stored at ``till``, while the key binds it, however many
        sessions the till opened since (looked up by the ids the key derives); :class:`IdempotencyKeyReused` for
        one it stored at another till (the key's record lost: never taken for a movement of this one)."""
        ids = [
            binding.next_window_id("mov"),
            *binding.candidate_ids("mov"),
            earlier_movement_id(self.tenant, binding.key),
        ]
        for movement in await self.storage.get_movements(ids):
            if binding.binds(movement.at):
                await self._check_till(movement, till, binding.key)
                return movement
        return None

    async def _check_till(self, movement: CashMovement, till: str, key: str) -> None:
        """Refuse ``key`` when ``movement``, stored under it, is of another till than ``till``."""
        session = await self.storage.get_session(movement.session_id)
        if session.till != till:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was already used for a drawer movement at till {session.till!r}, not {till!r}"
            )

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
        replay of the same close under the same ``idempotency_key``), and if
        the drawer should hold more than ``MAX_MINOR_UNITS`` (no storage can
        record that: pay the excess out first).

        ``till`` names the session open at that till when the close is asked:
        if a movement lands while the drawer is counted, that session is
        counted again and closed, and if someone closes it meanwhile the close
        is refused with :class:`DrawerClosed`; it never closes a session the
        till opened after it was asked.

        A keyed close is bound to the session it closed: the session keeps an
        id derived from the key (``close_id``), so a retry under the key
        replays that close whatever the till's state now, even after a crash
        before the answer was stored, or after the till was opened again; it
        never closes another session. A keyed close by ``till`` names the
        session open there when it is first asked: a retry whose first attempt
        died before closing anything closes that session, or is refused with
        :class:`DrawerClosed` if someone closed it since, never the session
        the till opened since. A keyed close refused because someone else
        closed its session keeps that answer too: a retry under the key is
        refused again, however the till stands by then; so does one asked
        while the till had none open (refused with :class:`DrawerClosed`
        naming the session last closed there).
        """
        if (till is None) == (session_id is None):
            raise InvalidCashRequest("close needs exactly one of till= and session_id=")
        closed_by = check_name(closed_by, "closed_by")
        counted = check_amount(counted, "counted cash", currency=None, allow_zero=True)
        if till is not None:
            till = check_till(till)
        if session_id is not None:
            session_id = check_session_id(session_id)

        with self._in_flight:
            if idempotency_key is not None and not await self._closed_under_key(till, session_id, idempotency_key):
                # a close the release of November 2026 made under the key; asked only when no session was closed
                # under it since: a claim that probe left behind (its process killed) never hides this release's
                closed_before = await earlier_close(
                    self.idempotency.store,
                    self.tenant,
                    check_key(idempotency_key),
                    till=till,
                    session_id=session_id,
                    counted=counted,
                    closed_by=closed_by,
                    lease_seconds=self.idempotency.lease_seconds,
                )
                if closed_before is not None:
                    return await self.get(closed_before)
            if idempotency_key is None or till is None:
                closed = await self._close_once(counted, closed_by, till, session_id, idempotency_key)
            else:
                closed = await self._keyed_close_by_till(counted, closed_by, till, idempotency_key)
        if idempotency_key is not None and not self._closed_under(closed, idempotency_key):
            # Someone else closed the session this close counted: the key keeps that answer, so a retry (its
            # first answer lost) is refused again instead of closing the session the till opened since.
            raise _closed_already(closed)
        return closed

    async def _close_once(
        self,
        counted: Money,
        closed_by: str,
        till: str | None,
        session_id: str | None,
        key: str | None,
        *,
        none_open: bool = False,
        last_closed: DrawerSession | None = None,
    ) -> DrawerSession:
        """The close of ``session_id``, or of the session open at ``till`` now, under ``key`` if any: run once,
        replayed after. ``none_open``: a keyed close asked while ``till`` had no session open, however the till
        stands once its key is claimed: answered with ``last_closed``, the session last closed there, which the key
        keeps (:meth:`close` refuses it as closed already); with none, refused with :class:`NoOpenDrawer`."""

        async def execute(binding: KeyBinding | None) -> DrawerSession:
            if binding is not None and not none_open:
                earlier = await self._earlier_close(till, session_id, binding)
                if earlier is not None:
                    return _same_close(earlier, counted, closed_by, binding.key)
            await self._check_counted_currency(counted, till, session_id)
            if none_open:
                if last_closed is None:
                    raise _no_open_drawer(till or "")
                return last_closed
            return await self._close(counted, closed_by, till, session_id, binding)

        return await self.idempotency.run(
            operation="cash.drawer.close",
            scope=self._scope,
            key=key,
            arguments={"till": till, "session_id": session_id, "counted": _money(counted), "closed_by": closed_by},
            execute=execute,
            result_type=DrawerSession,
        )

    async def _keyed_close_by_till(self, counted: Money, closed_by: str, till: str, key: str) -> DrawerSession:
        """A keyed close of the session open at ``till`` when it was first asked: the request names that session.

        A close made under the key is replayed whatever the till holds now. Otherwise the key is claimed for the
        session open now; with none open, for none: refused with :class:`DrawerClosed` naming the session last
        closed there, an answer the key keeps (a retry is refused so, even once a session has opened since), or,
        the till never having had one, with :class:`NoOpenDrawer`, the key let go. A key first claimed for another
        session (its first attempt closed nothing, or lost that session to another close, and the till has opened
        another since) is another request for that session: it is run as that one (a close of a session closed
        since is refused with :class:`DrawerClosed`), never as a close of the session opened since. The till's
        sessions closed while the key binds are the ones it may name.
        """
        binding = self.idempotency.binding(self._scope, key)
        sessions = list(reversed(await self.storage.list_sessions(self.tenant, till)))
        earlier = self._closed_among(sessions, binding)
        if earlier is not None:
            return _same_close(earlier, counted, closed_by, binding.key)
        open_now = [session.id for session in sessions if session.status is DrawerStatus.OPEN][:1]
        named = [
            session.id
            for session in sessions
            if session.closed_at is not None and binding.binds(session.closed_at) and session.id not in open_now
        ]
        # The session open now, which a new key's first request is for; none, which a request asked while the
        # till had none is for (refused with the session last closed there, an answer the key keeps: never a close
        # of a session opened once it was claimed); then the sessions closed since, while the key binds, for a key
        # first claimed for one of them.
        last_closed = next((session for session in sessions if session.status is DrawerStatus.CLOSED), None)
        refused: IdempotencyKeyReused | None = None
        for asked_for in [*open_now, None, *named]:
            try:
                if asked_for is None:
                    return await self._close_once(
                        counted, closed_by, till, None, key, none_open=True, last_closed=last_closed
                    )
                return await self._close_once(counted, closed_by, None, asked_for, key)
            except IdempotencyKeyReused as reused:
                refused = refused or reused
        raise refused or AssertionError("a close under a key names a session or none")

    def _closed_among(self, sessions: list[DrawerSession], binding: KeyBinding) -> DrawerSession | None:
        """The session among ``sessions`` that a close under the binding's key closed, while the key binds it."""
        close_ids = set(binding.candidate_ids("cls"))
        for session in sessions:
            if session.close_id in close_ids and session.closed_at is not None and binding.binds(session.closed_at):
                return session
        return None

    def _closed_under(self, session: DrawerSession, key: str) -> bool:
        """True when ``session`` was closed by a close under ``key`` (it carries the key's ``close_id``)."""
        return session.close_id in self.idempotency.binding(self._scope, key).candidate_ids("cls")

    async def _closed_under_key(self, till: str | None, session_id: str | None, key: str) -> bool:
        """True when a session of ``till`` (or ``session_id``) keeps the close id ``key`` gives, while it binds."""
        return (
            await self._earlier_close(till, session_id, self.idempotency.binding(self._scope, check_key(key)))
            is not None
        )

    async def _earlier_close(
        self, till: str | None, session_id: str | None, binding: KeyBinding
    ) -> DrawerSession | None:
        """The session an earlier attempt under the key closed (it carries the key's ``close_id``), while the
        key binds it: the session ``session_id``, or any session of ``till``, however many it opened since."""
        if session_id is not None:
            try:
                sessions = [await self.get(session_id)]
            except DrawerNotFound:
                return None
        else:
            sessions = list(reversed(await self.storage.list_sessions(self.tenant, till)))
        return self._closed_among(sessions, binding)

    async def _close(
        self, counted: Money, closed_by: str, till: str | None, session_id: str | None, binding: KeyBinding | None
    ) -> DrawerSession:
        """Close the session ``session_id``, or the one open at ``till`` now, with ``counted``.

        The session is resolved once: when a movement (or another close) lands between the count and its
        write, only that session is read and closed again. If it was closed meanwhile, the close is refused
        with :class:`DrawerClosed` (or replayed, if an earlier attempt under the key closed it), never
        turned into a close of a session the till opened since.
        """
        close_id = None if binding is None else binding.new_id("cls")
        session = await self.get(session_id) if session_id is not None else await self.require_open(till or "")
        for _ in range(_CLOSE_ATTEMPTS):
            if session.status is DrawerStatus.CLOSED:
                if binding is not None:
                    earlier = await self._earlier_close(None, session.id, binding)
                    if earlier is not None:
                        return _same_close(earlier, counted, closed_by, binding.key)
                    return session  # closed by someone else: the key keeps it, and close() refuses it
                raise _closed_already(session)
            check_amount(counted, "counted cash", currency=session.currency, allow_zero=True)
            movements = await self.storage.list_movements(session.id)
            expected = drawer_totals(session, movements).expected
            if expected.minor_units > MAX_MINOR_UNITS:
                excess = Money.minor(expected.minor_units - MAX_MINOR_UNITS, expected.currency)
                raise InvalidCashRequest(
                    f"drawer session {session.id} of till {session.till!r} should hold {expected}, more than the "
                    f"{MAX_MINOR_UNITS} minor units a closed drawer can record; pay out at least {excess} first"
                )
            closed = evolve(
                session,
                status=DrawerStatus.CLOSED,
                closed_by=closed_by,
                closed_at=self._now(),
                counted=counted,
                expected=expected,
                variance=counted - expected,
                close_id=close_id,
                version=session.version + 1,
            )
            try:  # made to its end, as an open is (see _open): the retry under its key finds the close
                await run_to_end(partial(self.storage.close_session, closed))
            except (ConcurrentUpdate, DrawerClosed):
                # A movement landed meanwhile (count it and try again), or someone closed it: read this very
                # session again, never the one its till has open now (a close counted one drawer, not the next).
                session = await self.get(session.id)
                continue
            return closed
        raise ConcurrentUpdate(
            f"drawer session {session.id} of till {shown(session.till)} kept changing while it was being closed; "
            "try again"
        )


def _closed_already(session: DrawerSession) -> DrawerClosed:
    return DrawerClosed(
        f"drawer session {session.id} of till {session.till!r} was closed already "
        f"by {session.closed_by} at {session.closed_at:%Y-%m-%d %H:%M}; "
        "a closed session never changes"
    )


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


def _same_close(stored: DrawerSession, counted: Money, closed_by: str, key: str) -> DrawerSession:
    if (stored.counted, stored.closed_by) != (counted, closed_by):
        raise IdempotencyKeyReused(
            f"idempotency key {key!r} was already used to close drawer session {stored.id} "
            f"with {stored.counted} counted by {stored.closed_by}"
        )
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
