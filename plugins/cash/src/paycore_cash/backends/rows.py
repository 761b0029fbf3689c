"""Drawer sessions and cash movements as the flat values a relational backend stores (SQL, Django).

Amounts are minor units beside the record's currency; a session without a tenant
is stored under :data:`NO_TENANT`, so "one open session per till" is one unique
index on every database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paycore.money import Money
from paycore.rows import money_from_units
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind

__all__ = [
    "GIVEN_UP",
    "NO_TENANT",
    "PAID_OUT",
    "movement_from_values",
    "movement_values",
    "session_from_values",
    "session_values",
    "store_tenant",
    "tenant_from_store",
]

NO_TENANT: Final = ""
"""How the tenant-less default tenant is stored."""

PAID_OUT: Final = "paid_out"
"""A refund claim's outcome when the refund's cash was paid out (its REFUND movement is stored)."""
GIVEN_UP: Final = "given_up"
"""A refund claim's outcome when the refund was given up: no REFUND sent under its refund id by a call written
down at its ``through`` payment version or before is ever stored."""


def store_tenant(tenant: str | None) -> str:
    """How ``tenant`` is stored (``None`` becomes :data:`NO_TENANT`)."""
    return NO_TENANT if tenant is None else tenant


def tenant_from_store(value: str | None) -> str | None:
    """The tenant a stored value stands for."""
    return None if value is None or value == NO_TENANT else value


def _units(money: Money | None) -> int | None:
    return None if money is None else money.minor_units


def session_values(session: DrawerSession) -> dict[str, Any]:
    """``session`` as column values."""
    return {
        "id": session.id,
        "tenant": store_tenant(session.tenant),
        "till": session.till,
        "currency": session.currency,
        "opening_float": session.opening_float.minor_units,
        "opened_by": session.opened_by,
        "opened_at": session.opened_at,
        "status": session.status.value,
        "closed_by": session.closed_by,
        "closed_at": session.closed_at,
        "counted": _units(session.counted),
        "expected": _units(session.expected),
        "variance": _units(session.variance),
        "close_id": session.close_id,
        "version": session.version,
    }


def session_from_values(row: Mapping[Any, Any]) -> DrawerSession:
    """The session stored as ``row``."""
    currency = row["currency"]
    return DrawerSession(
        id=row["id"],
        tenant=tenant_from_store(row["tenant"]),
        till=row["till"],
        currency=currency,
        opening_float=Money(int(row["opening_float"]), currency),
        opened_by=row["opened_by"],
        opened_at=row["opened_at"],
        status=DrawerStatus(row["status"]),
        closed_by=row["closed_by"],
        closed_at=row["closed_at"],
        counted=money_from_units(row["counted"], currency),
        expected=money_from_units(row["expected"], currency),
        variance=money_from_units(row["variance"], currency),
        close_id=row["close_id"],
        version=row["version"],
    )


def movement_values(movement: CashMovement, position: int) -> dict[str, Any]:
    """``movement``, the ``position``-th of its session, as column values."""
    return {
        "id": movement.id,
        "session_id": movement.session_id,
        "position": position,
        "kind": movement.kind.value,
        "currency": movement.amount.currency,
        "amount": movement.amount.minor_units,
        "at": movement.at,
        "actor": movement.actor,
        "reason": movement.reason,
        "payment_id": movement.payment_id,
        "refund_id": movement.refund_id,
        "tendered": _units(movement.tendered),
        "change": _units(movement.change),
    }


def movement_from_values(row: Mapping[Any, Any]) -> CashMovement:
    """The movement stored as ``row``."""
    currency = row["currency"]
    return CashMovement(
        id=row["id"],
        session_id=row["session_id"],
        kind=MovementKind(row["kind"]),
        amount=Money(int(row["amount"]), currency),
        at=row["at"],
        actor=row["actor"],
        reason=row["reason"],
        payment_id=row["payment_id"],
        refund_id=row["refund_id"],
        tendered=money_from_units(row["tendered"], currency),
        change=money_from_units(row["change"], currency),
    )
