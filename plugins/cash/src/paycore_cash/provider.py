"""``CashProvider``: cash handed over at a till, recorded in that till's open drawer.

A cash payment succeeds at once: :meth:`CashProvider.initiate` checks the
tender, records a SALE movement (tendered and change) in the open session of
the payment's till and reports the payment captured. A refund pays cash out of
the till's open drawer as a REFUND movement. Both are idempotent per payment
and per refund, and :meth:`CashProvider.check_status` reads the drawer to
settle a call whose answer was lost.

The payment's ``metadata`` carries the till (``"till"``, required), the cash
tendered (``"tendered"``, a decimal string; default: exactly the amount) and
who took it (``"cashier"``). :func:`paycore_cash.sales.take_cash` fills them in.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import ClassVar, TypeVar

from paycore.errors import (
    InvalidAmount,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    StorageError,
)
from paycore.money import Money
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import Payment, ProviderUpdate, Refund, RefundUpdate, utcnow
from paycore.status import Outcome, RefundStatus
from paycore_cash.errors import (
    CashError,
    DrawerClosed,
    ForeignCurrency,
    InsufficientDrawerCash,
    InsufficientTender,
    InvalidCashRequest,
    NoOpenDrawer,
)
from paycore_cash.locate import drawer_storage
from paycore_cash.records import CashMovement, DrawerSession, MovementKind, new_movement_id
from paycore_cash.storage import DrawerStorage
from paycore_cash.totals import drawer_totals

__all__ = ["CashProvider", "tendered_of", "till_of"]

T = TypeVar("T")


def till_of(payment: Payment) -> str:
    """The till a cash payment was taken at (``metadata["till"]``)."""
    till = payment.metadata.get("till")
    if not isinstance(till, str) or not till.strip():
        raise InvalidCashRequest(
            f"cash payment {payment.id} needs metadata['till'] naming the till it is taken at, not {till!r}"
        )
    return till.strip()


def tendered_of(payment: Payment) -> Money:
    """The cash handed over (``metadata["tendered"]``, a decimal string); the amount if absent."""
    raw = payment.metadata.get("tendered")
    if raw is None:
        return payment.amount
    try:
        tendered = Money.of(raw, payment.currency)
    except InvalidAmount as error:
        raise InvalidCashRequest(f"metadata['tendered'] of cash payment {payment.id}: {error}") from None
    if tendered.is_negative():
        raise InvalidCashRequest(f"tendered cash must not be negative, not {tendered}")
    return tendered


class CashProvider(Provider):
    """Cash at a till: succeeds at once, refunds pay out of the drawer.

    Settings: ``currency`` (optional) fixes the drawers' currency.
    """

    name: ClassVar[str] = "cash"
    capabilities: ClassVar[Capabilities] = Capabilities(refund=True, partial_refund=True, polling=True)
    currencies: ClassVar[frozenset[str] | None] = None

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        self._storage: DrawerStorage | None = None
        if context.plugin_manager is not None and context.repository is not None:
            # Fail when the flow is built, not at the first sale, if no adapter keeps drawers.
            self._storage = drawer_storage(context.plugin_manager, context.repository, context.settings)

    @property
    def storage(self) -> DrawerStorage:
        """The drawer storage beside the flow's repository."""
        if self._storage is None:
            self._storage = drawer_storage(self.context.plugin_manager, self.context.repository, self.context.settings)
        return self._storage

    async def check_payment(self, payment: Payment) -> None:
        """Refuse a cash payment that cannot be taken, before the flow stores it."""
        await self._accept(payment)

    async def check_refund(self, payment: Payment, amount: Money) -> None:
        """Refuse a cash refund the till's open drawer cannot pay out, before the flow stores it."""
        await self._drawer_for_refund(payment, amount)

    async def _drawer_for_refund(self, payment: Payment, amount: Money) -> tuple[str, DrawerSession]:
        till = till_of(payment)
        session = await self._open_session(payment, till)
        movements = await self._read(self.storage.list_movements(session.id))
        in_drawer = drawer_totals(session, movements).expected
        if amount > in_drawer:
            raise InsufficientDrawerCash(f"refund of {amount} is more than the {in_drawer} drawer {till!r} should hold")
        return till, session

    async def _accept(self, payment: Payment) -> tuple[str, Money, DrawerSession]:
        """Refuse a cash payment that cannot be taken: no till, too little tender, drawer closed.

        Returns the till, the cash tendered and the till's open session.
        Called before the payment is stored (so a refused payment leaves no
        trace) and again when it is initiated.
        """
        till = till_of(payment)
        tendered = tendered_of(payment)
        if tendered < payment.amount:
            raise InsufficientTender(
                f"{tendered} tendered is less than the {payment.amount} due; take more cash, "
                "or pay the rest another way (take_cash(..., split_tender=True))"
            )
        return till, tendered, await self._open_session(payment, till)

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Record the cash sale in the till's open drawer; the payment is captured at once."""
        stored = await self._read(self.storage.find_movement(kind=MovementKind.SALE, payment_id=payment.id))
        if stored is not None:
            return _sale_update(stored)
        till, tendered, session = await self._accept(payment)
        movement = CashMovement(
            id=new_movement_id(),
            session_id=session.id,
            kind=MovementKind.SALE,
            amount=payment.amount,
            at=utcnow(),
            actor=_text(payment.metadata.get("cashier")),
            reason=f"order {payment.order_id}",
            payment_id=payment.id,
            tendered=tendered,
            change=tendered - payment.amount,
        )
        return _sale_update(await self._write(movement, till))

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Pay ``refund.amount`` out of the open drawer of the payment's till."""
        stored = await self._read(self.storage.find_movement(kind=MovementKind.REFUND, refund_id=refund.id))
        if stored is not None:
            return _refund_update(stored, refund)
        till, session = await self._drawer_for_refund(payment, refund.amount)
        movement = CashMovement(
            id=new_movement_id(),
            session_id=session.id,
            kind=MovementKind.REFUND,
            amount=refund.amount,
            at=utcnow(),
            actor=_text(payment.metadata.get("cashier")),
            reason=refund.reason or f"refund of order {payment.order_id}",
            payment_id=payment.id,
            refund_id=refund.id,
        )
        return _refund_update(await self._write(movement, till), refund)

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """What the drawer holds for ``payment``: its sale and the refunds paid out.

        The drawer is the truth: no SALE movement means no cash was taken
        (failed), a pending refund with no REFUND movement was not paid out.
        """
        storage = self.storage
        sale = await self._read(storage.find_movement(kind=MovementKind.SALE, payment_id=payment.id))
        refunds = []
        for refund in payment.refunds:
            paid = await self._read(storage.find_movement(kind=MovementKind.REFUND, refund_id=refund.id))
            if paid is not None:
                refunds.append(_refund_update(paid, refund))
            elif refund.status is RefundStatus.PENDING:
                refunds.append(RefundUpdate(status=RefundStatus.FAILED, refund_id=refund.id))
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

    async def _open_session(self, payment: Payment, till: str) -> DrawerSession:
        session = await self._read(self.storage.get_open_session(payment.tenant, till))
        if session is None:
            raise NoOpenDrawer(f"till {till!r} has no open cash drawer; open it before taking or refunding cash")
        if session.currency != payment.currency:
            raise ForeignCurrency(
                f"cash payment {payment.id} is in {payment.currency} but the drawer of till {till!r} "
                f"holds {session.currency}"
            )
        return session

    async def _read(self, call: Awaitable[T]) -> T:
        """Await a storage read: if the storage fails, nothing was recorded (not sent)."""
        try:
            return await call
        except CashError:
            raise
        except (StorageError, OSError) as error:
            raise ProviderNotSent(f"cash drawer storage unavailable: {type(error).__name__}") from error

    async def _write(self, movement: CashMovement, till: str) -> CashMovement:
        """Store a movement; a storage failure leaves it unknown (settled by check_status)."""
        try:
            return await self.storage.add_movement(movement)
        except DrawerClosed:
            raise NoOpenDrawer(f"the drawer of till {till!r} was closed; open it before taking cash") from None
        except CashError:
            raise
        except (StorageError, OSError) as error:
            raise ProviderOutcomeUnknown(
                f"cash drawer storage failed while recording a {movement.kind.value}: {type(error).__name__}"
            ) from error


def _text(value: object) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""


def _sale_update(movement: CashMovement) -> ProviderUpdate:
    return ProviderUpdate(outcome=Outcome.SUCCEEDED, captured=movement.amount, external_id=movement.id)


def _refund_update(movement: CashMovement, refund: Refund) -> RefundUpdate:
    return RefundUpdate(
        status=RefundStatus.SUCCEEDED, refund_id=refund.id, external_id=movement.id, amount=movement.amount
    )
