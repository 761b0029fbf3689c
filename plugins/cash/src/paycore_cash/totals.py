"""``DrawerTotals``: what a drawer should hold, summed from its movements.

expected = opening float + sales + pay-ins - refunds - pay-outs; at closing,
variance = counted - expected. Integer minor units throughout: never a float.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import frozen

from paycore.errors import CurrencyMismatch
from paycore.money import Money
from paycore_cash.records import CashMovement, DrawerSession, MovementKind

__all__ = ["DrawerTotals", "drawer_totals"]


@frozen
class DrawerTotals:
    """The sums of one session's movements, by kind, and the cash expected in the drawer."""

    opening_float: Money
    sales: Money
    refunds: Money
    pay_ins: Money
    pay_outs: Money
    change_given: Money
    """Change handed back on sales (already netted out of ``sales``: for information)."""
    sale_count: int
    refund_count: int

    @property
    def cash_in(self) -> Money:
        """Sales plus pay-ins."""
        return self.sales + self.pay_ins

    @property
    def cash_out(self) -> Money:
        """Refunds plus pay-outs."""
        return self.refunds + self.pay_outs

    @property
    def expected(self) -> Money:
        """What the drawer should hold: float + cash in - cash out."""
        return self.opening_float + self.cash_in - self.cash_out


def drawer_totals(session: DrawerSession, movements: Iterable[CashMovement]) -> DrawerTotals:
    """Sum ``movements`` of ``session``; a movement in another currency is an error."""
    currency = session.currency
    units = dict.fromkeys(MovementKind, 0)
    counts = dict.fromkeys(MovementKind, 0)
    change = 0
    for movement in movements:
        amount = movement.amount
        if amount.currency != currency:
            raise CurrencyMismatch(
                f"movement {movement.id} is in {amount.currency}, its drawer session {session.id} in {currency}"
            )
        units[movement.kind] += amount.minor_units
        counts[movement.kind] += 1
        if movement.change is not None:
            change += movement.change.minor_units
    return DrawerTotals(
        opening_float=session.opening_float,
        sales=Money.minor(units[MovementKind.SALE], currency),
        refunds=Money.minor(units[MovementKind.REFUND], currency),
        pay_ins=Money.minor(units[MovementKind.PAY_IN], currency),
        pay_outs=Money.minor(units[MovementKind.PAY_OUT], currency),
        change_given=Money.minor(change, currency),
        sale_count=counts[MovementKind.SALE],
        refund_count=counts[MovementKind.REFUND],
    )
