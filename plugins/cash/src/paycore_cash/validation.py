"""Checks on what cashiers type: names, amounts, currencies, flags and tenants, refused before anything changes."""

from __future__ import annotations

from typing import Any, Final

from paycore.config import PaycoreConfig, is_code
from paycore.errors import UnknownCurrency
from paycore.money import MAX_MINOR_UNITS, Money, currency_exponent
from paycore.wire import shown
from paycore_cash.errors import CashNotEnabled, DrawerNotFound, ForeignCurrency, InvalidCashRequest

__all__ = [
    "MAX_ID",
    "MAX_TILL",
    "check_amount",
    "check_currency",
    "check_flag",
    "check_name",
    "check_session_id",
    "check_tenant",
    "check_till",
    "enables_cash",
    "is_currency",
    "is_name",
]

_MAX_NAME = 200
MAX_TILL: Final = 64
"""The longest till name: every drawer storage keeps tills in 64 characters (``VARCHAR(64)``)."""
MAX_ID: Final = 64
"""The longest drawer session id a storage keeps."""


def is_name(value: Any, *, limit: int = _MAX_NAME) -> bool:
    """True if ``value`` is a non-blank printable string of at most ``limit`` characters.

    Printable excludes control characters, line breaks and lone surrogates (which no
    database can store as text).
    """
    return isinstance(value, str) and bool(value.strip()) and len(value) <= limit and value.isprintable()


def check_name(value: Any, what: str, *, limit: int = _MAX_NAME) -> str:
    """Return ``value`` stripped if it is a non-blank printable string of at most ``limit`` characters."""
    if not is_name(value, limit=limit):
        raise InvalidCashRequest(
            f"{what} must be a non-blank printable string of at most {limit} characters, not {shown(value)}"
        )
    return str(value).strip()


def check_till(value: Any) -> str:
    """Return the till name ``value`` stripped: a non-blank printable string of at most 64 characters."""
    return check_name(value, "till", limit=MAX_TILL)


def check_session_id(value: Any) -> str:
    """Return ``value`` if it can name a drawer session; :class:`DrawerNotFound` if it cannot."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not value.isprintable():
        raise DrawerNotFound(f"no drawer session {shown(value)}")
    return value


def check_amount(value: Any, what: str, *, currency: str | None, allow_zero: bool = False) -> Money:
    """Return ``value`` if it is a positive (or zero, if allowed) Money in ``currency`` (any if None),
    of at most :data:`~paycore.money.MAX_MINOR_UNITS` minor units (what every storage can hold)."""
    if not isinstance(value, Money):
        raise InvalidCashRequest(
            f"{what} must be a Money amount (Money.of('1500', 'XOF')), not {type(value).__name__} {shown(value)}"
        )
    if value.is_negative() or (value.is_zero() and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise InvalidCashRequest(f"{what} must be {bound}, not {value}")
    if value.minor_units > MAX_MINOR_UNITS:
        raise InvalidCashRequest(f"{what} must be at most {MAX_MINOR_UNITS} minor units, not {value}")
    if currency is not None and value.currency != currency:
        raise ForeignCurrency(f"{what} {value} is not in the drawer's currency {currency}")
    return value


def is_currency(value: Any) -> bool:
    """True if ``value`` is a currency code :class:`~paycore.money.Money` accepts (``"XOF"``, ``"EUR"``)."""
    if not isinstance(value, str):
        return False
    try:
        currency_exponent(value)
    except UnknownCurrency:
        return False
    return True


def check_currency(value: Any, what: str) -> str:
    """Return ``value`` if it is a currency code :class:`~paycore.money.Money` accepts; :class:`InvalidCashRequest`
    otherwise (a list, a number, a lower-case or unknown code)."""
    if not is_currency(value):
        raise InvalidCashRequest(f"{what} must be an ISO 4217 currency code such as 'XOF', not {shown(value)}")
    return str(value)


def check_flag(value: Any, what: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False``; :class:`InvalidCashRequest` otherwise.

    A flag is never read from its truthiness: ``"no"``, ``"False"`` or ``1`` are refused, not taken as true.
    """
    if type(value) is not bool:
        raise InvalidCashRequest(f"{what} must be True or False, not {shown(value)}")
    return value


def enables_cash(config: PaycoreConfig, tenant: str | None) -> bool:
    """True if ``tenant`` (``None``: the tenant-less default) enables a provider of type ``cash``."""
    return any(provider.type == "cash" for provider in config.provider_configs(tenant).values())


def check_tenant(config: PaycoreConfig, tenant: Any) -> str | None:
    """Return ``tenant`` if it is ``None`` (the tenant-less default) or the name of a tenant ``config``
    names, and it enables the cash provider; :class:`CashNotEnabled` otherwise.

    An empty name, a typo or a tenant without cash is refused: it never reaches
    another tenant's drawers (SQL storage keeps the tenant-less default as ``''``)
    nor opens drawers for a tenant the configuration does not know. ``None`` is
    refused too when the configuration enables no cash provider outside its tenants:
    no cash payment could use the tenant-less default's drawers.
    """
    if tenant is None:
        _check_default(config)
        return None
    if not is_code(tenant):
        raise CashNotEnabled(
            f"tenant must be the name of a configured tenant (or None for no tenant), not {shown(tenant)}"
        )
    name = str(tenant)
    if name not in config.tenants:
        raise CashNotEnabled(f"tenant {name!r} is not configured: check its name ([tenants.NAME] in the configuration)")
    if not enables_cash(config, name):
        enabled = ", ".join(sorted(config.provider_configs(name))) or "none"
        raise CashNotEnabled(f"the cash provider is not enabled for tenant {name!r}; enabled: {enabled}")
    return name


def _check_default(config: PaycoreConfig) -> None:
    """Refuse the tenant-less default with :class:`CashNotEnabled` unless it enables the cash provider."""
    if not enables_cash(config, None):
        enabled = ", ".join(sorted(config.provider_configs(None))) or "none"
        raise CashNotEnabled(
            f"the no-tenant default has no cash provider (enabled: {enabled}); name the tenant whose "
            "drawers these are (tenant=..., or --tenant on the command line)"
        )
