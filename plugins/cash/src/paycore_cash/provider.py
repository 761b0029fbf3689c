"""``CashProvider``: cash handed over at a till, recorded in that till's open drawer.

A cash payment succeeds at once: :meth:`CashProvider.initiate` checks the
tender, records a SALE movement (tendered and change) in the open session of
the payment's till and reports the payment captured; a drawer that closed
after the payment was checked and stored, before the sale was recorded, fails
it (no cash recorded, nothing left pending), even when the till was opened
again meanwhile: the sale never goes into the till's next session. A refund
pays cash out of the till's open drawer as a REFUND movement. Both are
idempotent per payment and per refund (a REFUND movement another payment's
refund stored under the same refund id is never taken for this payment's),
and :meth:`CashProvider.check_status` reads the drawer to settle a call whose
answer was lost.

The payment's ``metadata`` carries the till (``"till"``, required), the cash
tendered (``"tendered"``, a decimal string; default: exactly the amount) and
who took it (``"cashier"``). :func:`paycore_cash.sales.take_cash` fills them in.

A refund's ``metadata`` may say which open till pays it out (``"till"``) and
who hands the cash back (``"cashier"``); by default the sale's till and
cashier. A refund whose sale's till is closed and that names no other till is
refused with :class:`~paycore_cash.errors.NoOpenDrawer`, naming the open tills.
Cash leaves a drawer only at the session version its check read
(``expected_version``), so concurrent refunds and pay-outs never overdraw it.

A SALE or REFUND movement is dated by the flow's clock, as drawer operations
and payments are: the time the flow wrote the call down just before making it
(``payment.pending_call.started_at``), so under an injected clock movements,
sessions and payments share one timeline (and one day in the reports). A
refund paid out of a drawer opened after its call started is dated when that
drawer opened: no movement is dated before its session opened.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable
from datetime import datetime
from typing import ClassVar, TypeVar

from paycore.errors import (
    ConcurrentUpdate,
    ConfigurationError,
    InvalidAmount,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    StorageError,
)
from paycore.money import Money
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.secrets import shown_setting
from paycore.status import Outcome, RefundStatus
from paycore.wire import shown
from paycore_cash.backends import drawer_storage
from paycore_cash.errors import (
    CashError,
    DrawerClosed,
    ForeignCurrency,
    InsufficientDrawerCash,
    InsufficientTender,
    InvalidCashRequest,
    NoOpenDrawer,
    RefundGivenUp,
    RefundIdTaken,
)
from paycore_cash.records import CashMovement, DrawerSession, MovementKind, new_movement_id
from paycore_cash.sales import GOODWILL, drawer_closed_before_the_sale
from paycore_cash.storage import DrawerStorage
from paycore_cash.totals import drawer_totals
from paycore_cash.validation import MAX_TILL, check_amount, is_currency, is_name

__all__ = ["CashProvider", "cashier_of", "refund_cashier_of", "refund_till_of", "tendered_of", "till_of"]

T = TypeVar("T")

_WRITE_ATTEMPTS = 50
"""How many times a refund is checked again when cash moved between its check and its write."""
_MAX_CASHIER = 200
"""The longest cashier name a sale or a refund records (as :func:`~paycore_cash.sales.take_cash` checks it)."""


def till_of(payment: Payment) -> str:
    """The till a cash payment was taken at (``metadata["till"]``: printable, at most 64 characters)."""
    till = payment.metadata.get("till")
    if not is_name(till, limit=MAX_TILL):
        raise InvalidCashRequest(
            f"cash payment {payment.id} needs metadata['till'] naming the till it is taken at "
            f"(printable, at most {MAX_TILL} characters), not {shown(till)}"
        )
    return str(till).strip()


def refund_till_of(refund: Refund) -> str | None:
    """The till a refund names to pay it out (``refund.metadata["till"]``); ``None``: the sale's till."""
    till = refund.metadata.get("till")
    if till is None:
        return None
    if not is_name(till, limit=MAX_TILL):
        raise InvalidCashRequest(
            f"refund {refund.id}: metadata['till'] must name the open till that pays it out "
            f"(printable, at most {MAX_TILL} characters), not {shown(till)}"
        )
    return str(till).strip()


def refund_cashier_of(payment: Payment, refund: Refund) -> str:
    """Who pays a refund out (``refund.metadata["cashier"]``, checked as :func:`cashier_of` checks a sale's);
    by default the cashier who took the sale."""
    cashier = refund.metadata.get("cashier")
    if cashier is None:
        return _text(payment.metadata.get("cashier"))
    return _cashier(cashier, f"refund {refund.id}", "pays it out")


def cashier_of(payment: Payment) -> str:
    """Who took a cash payment (``metadata["cashier"]``, stripped; ``""`` if the metadata names no one).

    A cashier that is not a non-blank printable string of at most 200 characters (a number,
    a blank, a control character, a lone surrogate, which no database stores as text, or a
    longer name) is refused with :class:`InvalidCashRequest`, as a refund's cashier is and
    :func:`~paycore_cash.sales.take_cash` refuses it: never recorded as no one or cut short.
    """
    cashier = payment.metadata.get("cashier")
    return "" if cashier is None else _cashier(cashier, f"cash payment {payment.id}", "took it")


def _cashier(value: object, where: str, role: str) -> str:
    """``value`` stripped if it names a cashier: a non-blank printable string of at most 200 characters."""
    if not is_name(value, limit=_MAX_CASHIER):
        raise InvalidCashRequest(
            f"{where}: metadata['cashier'] must name who {role} "
            f"(printable, at most {_MAX_CASHIER} characters), not {shown(value)}"
        )
    return str(value).strip()


def tendered_of(payment: Payment) -> Money:
    """The cash handed over (``metadata["tendered"]``, a decimal string); the amount if absent."""
    raw = payment.metadata.get("tendered")
    if raw is None:
        return payment.amount
    try:
        tendered = Money.of(raw, payment.currency)
    except InvalidAmount as error:
        raise InvalidCashRequest(f"metadata['tendered'] of cash payment {payment.id}: {error}") from None
    return check_amount(tendered, "tendered cash", currency=None, allow_zero=True)


class CashProvider(Provider):
    """Cash at a till: succeeds at once, refunds pay out of the drawer.

    Settings: ``currency`` (optional) fixes the drawers' currency: an ISO 4217
    code such as ``"XOF"``; any other value is refused with
    :class:`~paycore.errors.ConfigurationError` when the flow is built. A
    payment in another currency is then refused with
    :class:`~paycore.errors.UnsupportedCurrency` before it is stored.
    """

    name: ClassVar[str] = "cash"
    capabilities: ClassVar[Capabilities] = Capabilities(refund=True, partial_refund=True, polling=True)
    settings_names: ClassVar[frozenset[str] | None] = frozenset({"currency"})

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self.currency: str | None = _check_currency_setting(context)
        """The one currency this provider takes (its ``currency`` setting), or ``None``: any, as its drawer holds."""
        if self.currency is not None:
            self.currencies = frozenset({self.currency})  # the flow refuses another before anything is stored
        self._storage: DrawerStorage | None = None
        self._checked: OrderedDict[str, str] = OrderedDict()  # payment id -> the session its sale was checked against
        if context.repository is not None:
            # Fail when the flow is built, not at the first sale, if drawers cannot be kept beside the repository.
            self._storage = drawer_storage(context.plugin_manager, context.repository)

    @property
    def storage(self) -> DrawerStorage:
        """The drawer storage beside the flow's repository."""
        if self._storage is None:
            self._storage = drawer_storage(self.context.plugin_manager, self.context.repository)
        return self._storage

    async def check_payment(self, payment: Payment) -> None:
        """Refuse a cash payment that cannot be taken, before the flow stores it; remember the drawer session it
        was checked against, the one :meth:`initiate` records its sale in."""
        _, _, session = await self._accept(payment)
        self._checked[payment.id] = session.id
        while len(self._checked) > _CHECKED_KEPT:  # sales checked and never sent: the oldest are forgotten
            self._checked.popitem(last=False)

    async def check_refund(self, payment: Payment, refund: Refund) -> None:
        """Refuse a cash refund its till's open drawer cannot pay out, before the flow stores it.

        The till is the one ``refund.metadata["till"]`` names, else the sale's. A
        ``metadata["goodwill"]`` that is not ``True`` or ``False`` is refused with
        :class:`InvalidCashRequest`.
        """
        goodwill = refund.metadata.get(GOODWILL)
        if goodwill is not None and type(goodwill) is not bool:
            raise InvalidCashRequest(
                f"refund {refund.id}: metadata[{GOODWILL!r}] must be True or False, not {shown(goodwill)}"
            )
        refund_cashier_of(payment, refund)
        await self._drawer_for_refund(payment, refund)

    async def _drawer_for_refund(self, payment: Payment, refund: Refund) -> tuple[str, DrawerSession]:
        """The till that pays ``refund`` out and its open session, read at the version the check was made on."""
        named = refund_till_of(refund)
        sale_till = till_of(payment)
        till = sale_till if named is None else named
        session = await self._read(self.storage.get_open_session(payment.tenant, till))
        if session is None:
            raise await self._no_drawer_for_refund(payment, refund, sale_till, named)
        self._check_currency(payment, session)
        movements = await self._read(self.storage.list_movements(session.id))
        in_drawer = drawer_totals(session, movements).expected
        if refund.amount > in_drawer:
            raise InsufficientDrawerCash(
                f"refund of {refund.amount} is more than the {in_drawer} drawer {till!r} should hold"
            )
        return till, session

    async def _no_drawer_for_refund(
        self, payment: Payment, refund: Refund, sale_till: str, named: str | None
    ) -> NoOpenDrawer:
        sessions = await self._read(self.storage.list_sessions(payment.tenant))
        open_tills = ", ".join(sorted({s.till for s in sessions if s.is_open})) or "none"
        if named is not None:
            return NoOpenDrawer(
                f"till {named!r} named to pay out refund {refund.id} has no open cash drawer; open tills: {open_tills}"
            )
        return NoOpenDrawer(
            f"the drawer of till {sale_till!r}, where cash payment {payment.id} was taken, is closed; "
            f"name an open till to pay the refund out (metadata={{'till': ...}}); open tills: {open_tills}"
        )

    async def _accept(self, payment: Payment) -> tuple[str, Money, DrawerSession]:
        """Refuse a cash payment that cannot be taken: no till, too little tender, drawer closed.

        Returns the till, the cash tendered and the till's open session.
        Called before the payment is stored, so a refused payment leaves no trace.
        """
        till, tendered = _tender(payment)
        return till, tendered, await self._open_session(payment, till)

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Record the cash sale in the till's open drawer; the payment is captured at once.

        A drawer found closed now (it closed after :meth:`check_payment` let the
        payment be stored) is the drawer's answer: no cash was recorded, and the
        payment fails with a message saying the drawer closed first. So is a
        session of the till opened after the payment was made: the drawer the
        sale was checked against closed, and the till was opened again since.
        """
        stored = await self._read(self.storage.find_movement(kind=MovementKind.SALE, payment_id=payment.id))
        if stored is not None:
            return _sale_update(stored)
        till, tendered = _tender(payment)
        session = await self._read(self.storage.get_open_session(payment.tenant, till))
        if session is None or not await self._open_when_made(session, payment):
            return _closed_before_the_sale(till)
        self._check_currency(payment, session)
        movement = CashMovement(
            id=new_movement_id(),
            session_id=session.id,
            kind=MovementKind.SALE,
            amount=payment.amount,
            at=_call_time(payment),
            actor=cashier_of(payment),
            reason=f"order {payment.order_id}",
            payment_id=payment.id,
            tendered=tendered,
            change=tendered - payment.amount,
        )
        try:
            return _sale_update(await self._write(movement))
        except DrawerClosed:  # closed between the read and the write: the sale was not recorded
            return _closed_before_the_sale(till)

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Pay ``refund.amount`` out of the open drawer of the till the refund names (default: the sale's).

        The movement names who paid it out (the refund's cashier, default the
        sale's) and is stored only at the session version the "drawer holds
        enough" check read: if cash moved meanwhile, the drawer is read and
        checked again. It is dated when the call started, or when the drawer
        opened if that is later. A refund whose id another payment's refund was
        paid out under is refused with :class:`RefundIdTaken`: nothing is paid out.
        """
        stored = await self._paid_out(payment, refund)
        if stored is not None:
            return _refund_update(stored, refund)
        movement_id = new_movement_id()
        cashier = refund_cashier_of(payment, refund)
        sale_till = till_of(payment)
        for _ in range(_WRITE_ATTEMPTS):
            till, session = await self._drawer_for_refund(payment, refund)
            reason = refund.reason or f"refund of order {payment.order_id}"
            movement = CashMovement(
                id=movement_id,
                session_id=session.id,
                kind=MovementKind.REFUND,
                amount=refund.amount,
                at=_paid_out_at(payment, session),
                actor=cashier,
                reason=reason if till == sale_till else f"{reason} (sold at till {sale_till})",
                payment_id=payment.id,
                refund_id=refund.id,
            )
            try:
                paid = await self._write(movement, expected_version=session.version, payment_version=payment.version)
            except RefundGivenUp:  # this call ran out of time and a poll gave it up: it failed, nothing is paid out
                return RefundUpdate(status=RefundStatus.FAILED, refund_id=refund.id, never_arrived=True)
            except DrawerClosed:
                raise NoOpenDrawer(f"the drawer of till {till!r} was closed; open it before paying out cash") from None
            except ConcurrentUpdate:
                continue  # cash moved since the check: read the drawer again and check again
            return _refund_update(_paid_for(payment, refund, paid), refund)
        raise ProviderNotSent(f"the drawer of the till paying out refund {refund.id} kept changing; try again")

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """What the drawer holds for ``payment``: its sale and the refunds paid out.

        The drawer is the truth: no SALE movement means no cash was taken
        (failed). A pending refund with no REFUND movement of this payment was
        not paid out (another payment's refund stored under its id is not it)
        and never will be by a call written down so far: the drawer storage
        gives it up first, through the payment's version
        (:meth:`~paycore_cash.storage.DrawerStorage.give_up_refund`), so a till
        that was paying it out and stopped (asleep, frozen) is refused when it
        wakes, and the drawers never pay out a refund the flow failed; a keyed
        retry that sends it again, written down later, pays it out. The refund
        of a call whose request may still arrive (by the flow's rule: within
        its lease and timeout, or awaited by this process) is left to that
        call: nothing is said of it.
        """
        sale = await self._read(self.storage.find_movement(kind=MovementKind.SALE, payment_id=payment.id))
        refunds = []
        for refund in payment.refunds:
            paid = await self._paid_out(payment, refund)
            if paid is not None:
                refunds.append(_refund_update(paid, refund))
            elif refund.status is RefundStatus.PENDING and not self._paying_out(payment, refund):
                held = await self.give_up_refund(payment, refund)  # or paid out since it was looked for
                refunds.append(held or RefundUpdate(RefundStatus.FAILED, refund_id=refund.id, never_arrived=True))
        if sale is None:
            return ProviderUpdate(
                outcome=Outcome.FAILED,
                refunds=tuple(refunds),
                message="no cash was recorded in the drawer for this payment",
            )
        update = _sale_update(sale)
        return ProviderUpdate(
            outcome=update.outcome,
            captured=update.captured,
            external_id=update.external_id,
            refunds=tuple(refunds),
        )

    async def give_up_refund(self, payment: Payment, refund: Refund) -> RefundUpdate | None:
        """Give ``refund`` up in the drawer storage, through ``payment``'s version, as :meth:`check_status` does
        before it reports a refund never arrived and the flow does before an operator fails one: a till that
        stopped while paying it out is refused when it wakes. The REFUND movement of this payment it was paid
        out by, if any, is answered instead (it refuses an operator's resolution)."""
        given_up = await self._read(self.storage.give_up_refund(refund.id, payment.id, payment.version))
        if given_up is None or given_up.payment_id != payment.id:
            return None
        return _refund_update(given_up, refund)

    async def _open_when_made(self, session: DrawerSession, payment: Payment) -> bool:
        """True when ``session`` is the drawer session the sale was checked against, so it records the sale.

        The flow has :meth:`check_payment` read the till's open session, then writes the call down (its
        ``started_at``, by the flow's clock) and calls :meth:`initiate`. The session checked is remembered, and
        only it is the sale's: another is the till's next one, the drawer the cash was taken at closed meanwhile.
        Without it (the sale was checked by a process that stopped since), the times tell: a session opened after
        the call started is the next one, and one opened at the very instant the call started (a clock that did
        not move: frozen, or coarse) is the sale's only if no session of the till closed at that instant or later;
        else the sale fails rather than land in the next drawer.
        """
        checked = self._checked.pop(payment.id, None)
        if checked is not None:  # checked by this process: that very drawer, whatever the clock says
            return session.id == checked
        made = _call_time(payment)  # checked elsewhere (a create retried after a crash): by the clock
        if session.opened_at != made:
            return session.opened_at < made
        sessions = await self._read(self.storage.list_sessions(payment.tenant, session.till))
        return not any(other.closed_at is not None and other.closed_at >= made for other in sessions)

    def _paying_out(self, payment: Payment, refund: Refund) -> bool:
        """True while the call that pays ``refund`` out may still be writing it, by the flow's rule
        (:attr:`~paycore.providers.ProviderContext.may_still_arrive`)."""
        call = payment.pending_call
        return call is not None and call.refund_id == refund.id and self.context.may_still_arrive(call)

    async def _paid_out(self, payment: Payment, refund: Refund) -> CashMovement | None:
        """The REFUND movement that paid out ``refund`` of ``payment``, if any; never another payment's."""
        found = await self._read(
            self.storage.find_movement(kind=MovementKind.REFUND, payment_id=payment.id, refund_id=refund.id)
        )
        return found if found is not None and found.payment_id == payment.id else None

    async def _open_session(self, payment: Payment, till: str) -> DrawerSession:
        session = await self._read(self.storage.get_open_session(payment.tenant, till))
        if session is None:
            raise NoOpenDrawer(f"till {till!r} has no open cash drawer; open it before taking cash")
        self._check_currency(payment, session)
        return session

    @staticmethod
    def _check_currency(payment: Payment, session: DrawerSession) -> None:
        if session.currency != payment.currency:
            raise ForeignCurrency(
                f"cash payment {payment.id} is in {payment.currency} but the drawer of till {session.till!r} "
                f"holds {session.currency}"
            )

    async def _read(self, call: Awaitable[T]) -> T:
        """Await a storage read: if the storage fails, nothing was recorded (not sent)."""
        try:
            return await call
        except CashError:
            raise
        except (StorageError, OSError) as error:
            raise ProviderNotSent(f"cash drawer storage unavailable: {type(error).__name__}") from error

    async def _write(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        """Store a movement; a storage failure leaves it unknown (settled by check_status).

        :class:`~paycore.errors.ConcurrentUpdate` (the session moved past
        ``expected_version``) and :class:`~paycore_cash.errors.DrawerClosed`
        (the session closed since it was read) stored nothing: the caller says what follows.
        """
        try:
            return await self.storage.add_movement(
                movement, expected_version=expected_version, payment_version=payment_version
            )
        except CashError:
            raise
        except (StorageError, OSError) as error:
            raise ProviderOutcomeUnknown(
                f"cash drawer storage failed while recording a {movement.kind.value}: {type(error).__name__}"
            ) from error


_CHECKED_KEPT = 4096
"""How many checked sales a provider remembers the drawer of until they are sent (a till sends each at once)."""


def _check_currency_setting(context: ProviderContext) -> str | None:
    """The ``currency`` setting; refuse one that is neither left out nor an ISO 4217 code, naming the setting."""
    currency = context.settings.get("currency")
    if currency is None or is_currency(currency):
        return currency
    owner = "the no-tenant default" if context.tenant is None else f"tenant {context.tenant!r}"
    raise ConfigurationError(
        f"provider {context.code!r} of {owner}: the cash setting 'currency' must be an ISO 4217 code "
        f"such as 'XOF' (or left out), not {shown_setting(currency)}"
    )


def _tender(payment: Payment) -> tuple[str, Money]:
    """The till and the cash tendered of a cash payment that can be taken; refuse one with too little tender."""
    till = till_of(payment)
    tendered = tendered_of(payment)
    cashier_of(payment)
    if tendered < payment.amount:
        raise InsufficientTender(
            f"{tendered} tendered is less than the {payment.amount} due; take more cash, "
            "or pay the rest another way (take_cash(..., split_tender=True))"
        )
    return till, tendered


def _closed_before_the_sale(till: str) -> ProviderUpdate:
    """The drawer's answer for a sale its till's drawer closed before: failed, no cash recorded."""
    return ProviderUpdate(outcome=Outcome.FAILED, message=drawer_closed_before_the_sale(till))


def _paid_for(payment: Payment, refund: Refund, movement: CashMovement) -> CashMovement:
    """``movement``, the REFUND the drawer holds under ``refund.id``, if it paid out ``payment``'s refund.

    Refunds stored before refund ids named their payment could share an id; the drawer keeps one REFUND per
    refund id, so another payment's is refused with :class:`RefundIdTaken` (nothing was paid out for this one).
    """
    if movement.payment_id != payment.id:
        raise RefundIdTaken(
            f"refund {refund.id} of payment {payment.id} was not paid out: the drawer paid out a refund of "
            f"payment {movement.payment_id} under this refund id; refund again under a new idempotency key"
        )
    return movement


def _paid_out_at(payment: Payment, session: DrawerSession) -> datetime:
    """When a refund is paid out of ``session``: when its call started, or when the session opened if later."""
    return max(_call_time(payment), session.opened_at)


def _call_time(payment: Payment) -> datetime:
    """When the flow started the provider call ``payment`` carries, by the flow's clock.

    The flow writes a call down (``payment.pending_call``, its ``started_at``
    read from the flow's clock) just before it asks the provider, so this is
    "now" for the flow, injected clock included; a payment carrying no call
    gives its last update, also the flow's clock.
    """
    call = payment.pending_call
    return call.started_at if call is not None else payment.updated_at


def _text(value: object) -> str:
    return value.strip()[:200] if isinstance(value, str) and value.isprintable() else ""


def _sale_update(movement: CashMovement) -> ProviderUpdate:
    return ProviderUpdate(outcome=Outcome.SUCCEEDED, captured=movement.amount, external_id=movement.id)


def _refund_update(movement: CashMovement, refund: Refund) -> RefundUpdate:
    return RefundUpdate(
        status=RefundStatus.SUCCEEDED, refund_id=refund.id, external_id=movement.id, amount=movement.amount
    )
