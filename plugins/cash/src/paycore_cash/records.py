"""The records of a cash drawer: its sessions and the cash movements in them.

A :class:`DrawerSession` is one shift of one till, from the opening float to
the count at closing. Every cash amount that enters or leaves the drawer while
it is open is a :class:`CashMovement`. Both are frozen: a change is a new
record (``attrs.evolve``) written through :class:`~paycore_cash.storage.DrawerStorage`.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from attrs import evolve, field, frozen

from paycore.money import Money

__all__ = [
    "CashMovement",
    "DrawerSession",
    "DrawerStatus",
    "MovementKind",
    "evolve",
    "new_movement_id",
    "new_session_id",
]


class DrawerStatus(StrEnum):
    """Whether a drawer session takes cash (``open``) or was counted and closed."""

    OPEN = "open"
    CLOSED = "closed"


class MovementKind(StrEnum):
    """What a cash movement is; it also says which way the cash went."""

    SALE = "sale"
    """Cash taken for a payment (in)."""
    REFUND = "refund"
    """Cash paid back for a refund (out)."""
    PAY_IN = "pay_in"
    """Cash put in that is not a sale: a float top-up (in)."""
    PAY_OUT = "pay_out"
    """Cash taken out that is not a refund: a drop to the safe, a supplier paid (out)."""

    @property
    def is_inflow(self) -> bool:
        """True for the kinds that put cash into the drawer."""
        return self in (MovementKind.SALE, MovementKind.PAY_IN)


def new_session_id() -> str:
    """A fresh, random drawer session id: ``drw_...``."""
    return f"drw_{secrets.token_urlsafe(15)}"


def new_movement_id() -> str:
    """A fresh, random movement id: ``mov_...``."""
    return f"mov_{secrets.token_urlsafe(15)}"


def _positive(instance: Any, attribute: Any, value: Money) -> None:
    if not isinstance(value, Money) or not value.is_positive():
        raise ValueError(f"{attribute.name} must be a positive Money amount, not {value!r}")


@frozen
class DrawerSession:
    """One till's cash drawer from opening to closing, for one tenant.

    ``expected``, ``counted`` and ``variance`` are set when it closes:
    expected = float + sales + pay-ins - refunds - pay-outs, variance =
    counted - expected (negative: cash is missing). A closed session never
    changes again.
    """

    id: str
    tenant: str | None
    """The tenant (a restaurant); ``None`` is the tenant-less default, itself one tenant."""
    till: str
    """The till's name, unique within the tenant (``"T1"``)."""
    currency: str
    """The drawer's currency: its float's; every movement is in it."""
    opening_float: Money
    opened_by: str
    opened_at: datetime
    status: DrawerStatus = DrawerStatus.OPEN
    closed_by: str | None = None
    closed_at: datetime | None = None
    counted: Money | None = None
    expected: Money | None = None
    variance: Money | None = None
    close_id: str | None = None
    """The identity of the close that closed it, when that close had an idempotency key
    (derived from the key): a retried close finds the session it closed by it."""
    version: int = 1
    """1 when opened; each stored movement and the close add one."""

    @property
    def is_open(self) -> bool:
        """True while the drawer takes cash."""
        return self.status is DrawerStatus.OPEN


@frozen
class CashMovement:
    """Cash that entered or left a drawer during a session."""

    id: str
    session_id: str
    kind: MovementKind
    amount: Money = field(validator=_positive)
    """Always positive; ``kind`` says the direction."""
    at: datetime
    actor: str = ""
    """Who handled the cash (a cashier, a manager)."""
    reason: str = ""
    payment_id: str | None = None
    """The payment a sale is for, or the payment a refund refunds."""
    refund_id: str | None = None
    """The refund a refund movement pays out."""
    tendered: Money | None = None
    """Sales only: the cash the customer handed over."""
    change: Money | None = None
    """Sales only: the cash given back (``tendered - amount``, never negative)."""

    @property
    def signed_amount(self) -> Money:
        """The amount as it changes the drawer: positive in, negative out."""
        return self.amount if self.kind.is_inflow else -self.amount
