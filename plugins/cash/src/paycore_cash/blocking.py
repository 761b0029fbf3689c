"""``BlockingCashDrawers``: :class:`~paycore_cash.drawers.CashDrawers` for sync code.

Runs each call on the event loop of a :class:`paycore.blocking.BlockingPaymentFlow`
(a Django view, a Flask handler, a till's desktop app)::

    with BlockingPaymentFlow.from_config("paycore.toml") as flow:
        drawers = BlockingCashDrawers(flow, tenant="chez-awa")
        drawers.open(till="T1", opening_float=Money.of("20000", "XOF"), opened_by="Awa")
        sale = drawers.take_cash(amount=..., tendered=..., till="T1", order_id="T1-0001")
        drawers.refund_cash(sale.payment.id, amount=..., till="T2", cashier="Moussa")
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from paycore.errors import PaymentNotFound
from paycore.money import Money
from paycore.records import Refund
from paycore_cash.drawers import CashDrawers
from paycore_cash.records import CashMovement, DrawerSession
from paycore_cash.report import DrawerReport
from paycore_cash.sales import CashSale, refund_cash, take_cash
from paycore_cash.totals import DrawerTotals

if TYPE_CHECKING:
    from paycore.blocking import BlockingPaymentFlow

__all__ = ["BlockingCashDrawers"]


class BlockingCashDrawers:
    """The drawers of one tenant, with :class:`CashDrawers`' methods as blocking calls."""

    def __init__(self, flow: BlockingPaymentFlow, *, tenant: str | None = None, currency: str | None = None) -> None:
        self.blocking_flow = flow
        self.drawers = CashDrawers(flow.flow, tenant=tenant, currency=currency)

    def __repr__(self) -> str:
        return f"<BlockingCashDrawers tenant={self.drawers.tenant!r}>"

    def _run(self, method: Any, **kwargs: Any) -> Any:
        return self.blocking_flow.run(functools.partial(method, **kwargs))

    def open(
        self, *, till: str, opening_float: Money, opened_by: str, idempotency_key: str | None = None
    ) -> DrawerSession:
        """See :meth:`CashDrawers.open`."""
        result: DrawerSession = self._run(
            self.drawers.open,
            till=till,
            opening_float=opening_float,
            opened_by=opened_by,
            idempotency_key=idempotency_key,
        )
        return result

    def pay_in(
        self, *, till: str, amount: Money, reason: str, actor: str, idempotency_key: str | None = None
    ) -> CashMovement:
        """See :meth:`CashDrawers.pay_in`."""
        result: CashMovement = self._run(
            self.drawers.pay_in, till=till, amount=amount, reason=reason, actor=actor, idempotency_key=idempotency_key
        )
        return result

    def pay_out(
        self, *, till: str, amount: Money, reason: str, actor: str, idempotency_key: str | None = None
    ) -> CashMovement:
        """See :meth:`CashDrawers.pay_out`."""
        result: CashMovement = self._run(
            self.drawers.pay_out, till=till, amount=amount, reason=reason, actor=actor, idempotency_key=idempotency_key
        )
        return result

    def close(
        self,
        *,
        counted: Money,
        closed_by: str,
        till: str | None = None,
        session_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> DrawerSession:
        """See :meth:`CashDrawers.close`."""
        result: DrawerSession = self._run(
            self.drawers.close,
            counted=counted,
            closed_by=closed_by,
            till=till,
            session_id=session_id,
            idempotency_key=idempotency_key,
        )
        return result

    def current(self, till: str) -> DrawerSession | None:
        """See :meth:`CashDrawers.current`."""
        result: DrawerSession | None = self._run(self.drawers.current, till=till)
        return result

    def require_open(self, till: str) -> DrawerSession:
        """See :meth:`CashDrawers.require_open`."""
        result: DrawerSession = self._run(self.drawers.require_open, till=till)
        return result

    def get(self, session_id: str) -> DrawerSession:
        """See :meth:`CashDrawers.get`."""
        result: DrawerSession = self._run(self.drawers.get, session_id=session_id)
        return result

    def movements(self, session_id: str) -> list[CashMovement]:
        """See :meth:`CashDrawers.movements`."""
        result: list[CashMovement] = self._run(self.drawers.movements, session_id=session_id)
        return result

    def sessions(self, till: str | None = None) -> list[DrawerSession]:
        """See :meth:`CashDrawers.sessions`."""
        result: list[DrawerSession] = self._run(self.drawers.sessions, till=till)
        return result

    def totals(self, session_id: str) -> DrawerTotals:
        """See :meth:`CashDrawers.totals`."""
        result: DrawerTotals = self._run(self.drawers.totals, session_id=session_id)
        return result

    def report(self, session_id: str) -> DrawerReport:
        """See :meth:`CashDrawers.report`."""
        result: DrawerReport = self._run(self.drawers.report, session_id=session_id)
        return result

    def take_cash(
        self,
        *,
        amount: Money,
        tendered: Money,
        till: str,
        order_id: str,
        tenant: str | None = None,
        provider: str = "cash",
        cashier: str = "",
        split_tender: bool = False,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> CashSale:
        """:func:`~paycore_cash.sales.take_cash` on this flow; ``tenant`` defaults to the drawers' tenant."""
        result: CashSale = self._run(
            functools.partial(take_cash, self.blocking_flow.flow),
            amount=amount,
            tendered=tendered,
            till=till,
            order_id=order_id,
            tenant=self.drawers.tenant if tenant is None else tenant,
            provider=provider,
            cashier=cashier,
            split_tender=split_tender,
            description=description,
            idempotency_key=idempotency_key,
        )
        return result

    def refund_cash(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        till: str | None = None,
        cashier: str = "",
        reason: str = "",
        goodwill: bool = False,
        tenant: str | None = None,
        idempotency_key: str | None = None,
    ) -> Refund:
        """:func:`~paycore_cash.sales.refund_cash` on this flow; ``tenant`` defaults to the drawers' tenant.

        The drawers of no tenant refund the payments of no tenant only, as their tills take them: another
        tenant's payment is not found (a ``tenant=None`` given to the flow would name every tenant's)."""
        if tenant is None and self.drawers.tenant is None and self.blocking_flow.get_payment(payment_id).tenant:
            raise PaymentNotFound(f"no payment {payment_id!r} for the drawers of no tenant")
        result: Refund = self._run(
            functools.partial(refund_cash, self.blocking_flow.flow, payment_id),
            amount=amount,
            till=till,
            cashier=cashier,
            reason=reason,
            goodwill=goodwill,
            tenant=self.drawers.tenant if tenant is None else tenant,
            idempotency_key=idempotency_key,
        )
        return result
