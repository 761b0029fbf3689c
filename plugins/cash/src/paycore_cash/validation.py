"""Checks on what cashiers type: names, amounts and currencies, refused before anything changes."""

from __future__ import annotations

from typing import Any

from paycore.money import Money
from paycore_cash.errors import ForeignCurrency, InvalidCashRequest

__all__ = ["check_amount", "check_name"]

_MAX_NAME = 200


def check_name(value: Any, what: str, *, limit: int = _MAX_NAME) -> str:
    """Return ``value`` stripped if it is a non-blank printable string of at most ``limit`` characters."""
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise InvalidCashRequest(
            f"{what} must be a non-blank printable string of at most {limit} characters, not {value!r}"
        )
    return value.strip()


def check_amount(value: Any, what: str, *, currency: str | None, allow_zero: bool = False) -> Money:
    """Return ``value`` if it is a positive (or zero, if allowed) Money in ``currency`` (any if None)."""
    if not isinstance(value, Money):
        raise InvalidCashRequest(
            f"{what} must be a Money amount (Money.of('1500', 'XOF')), not {type(value).__name__} {value!r}"
        )
    if value.is_negative() or (value.is_zero() and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidCashRequest(f"{what} must be {bound}, not {value}")
    if currency is not None and value.currency != currency:
        raise ForeignCurrency(f"{what} {value} is not in the drawer's currency {currency}")
    return value
