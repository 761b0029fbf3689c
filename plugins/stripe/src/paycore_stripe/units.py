"""Amounts between paycore's :class:`~paycore.money.Money` and Stripe's integer ``amount``.

Stripe takes every amount as an integer in the currency's smallest unit, with
its own exceptions to ISO 4217 (Stripe's "Supported currencies" page):

* **zero-decimal currencies** (``XOF``, ``JPY``, ``KRW``...): the amount is in
  whole units (``5000`` XOF is ``5000``). ``MGA`` is zero-decimal at Stripe but
  has two decimals in ISO 4217, so only whole ariary can be sent.
* **three-decimal currencies** (``BHD``, ``JOD``, ``KWD``, ``OMR``, ``TND``):
  the amount is in thousandths, and its last digit must be ``0`` (Stripe's
  partners settle to the hundredth): ``5.120 KWD`` is ``5120``; ``5.124 KWD``
  cannot be sent. Stripe tells integrations to round; paycore never changes an
  amount, so it refuses one Stripe cannot take before anything is sent.
* **ISK** is zero-decimal, but Stripe still takes it with two decimals (for
  backwards compatibility): ``500 ISK`` is ``50000``.
* every other currency is sent in its ISO 4217 minor units (cents).

Currencies whose ISO exponent is neither of these (``IQD``, ``LYD``, ``CLF``...)
are refused: Stripe takes none of them. No list of the currencies Stripe takes is
kept (it changes, and differs by account): Stripe refuses any other currency it
does not take itself, before acting. An amount has at most eight digits in
Stripe's units, twelve in ``IDR`` (:func:`max_stripe_amount`).
"""

from __future__ import annotations

from typing import Final

from paycore.errors import InvalidReport, MoneyError, UnsupportedCurrency, ValidationError
from paycore.money import Money, currency_exponent

__all__ = [
    "MAX_STRIPE_AMOUNT",
    "MAX_STRIPE_AMOUNTS",
    "THREE_DECIMAL_CURRENCIES",
    "ZERO_DECIMAL_CURRENCIES",
    "AmountNotAccepted",
    "from_stripe",
    "max_stripe_amount",
    "stripe_currency",
    "to_stripe",
]

ZERO_DECIMAL_CURRENCIES: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
"""Currencies Stripe takes in whole units."""
THREE_DECIMAL_CURRENCIES: Final = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
"""Currencies Stripe takes in thousandths whose last digit must be 0."""
_TWO_DECIMALS_FOR_WHOLE_UNITS: Final = frozenset({"ISK"})
"""Zero-decimal currencies Stripe still takes with two (zero) decimals."""
MAX_STRIPE_AMOUNT: Final = 99_999_999
"""The largest ``amount`` Stripe takes in a currency not in :data:`MAX_STRIPE_AMOUNTS`: eight digits."""
MAX_STRIPE_AMOUNTS: Final = {"IDR": 999_999_999_999}
"""The currencies whose largest ``amount`` is not eight digits, and that amount.

Stripe's "Minimum and maximum charge amounts": up to twelve digits for IDR, up to
eight for all other currencies (card networks may allow less).
"""
_DIGITS: Final = {8: "eight", 12: "twelve"}


class AmountNotAccepted(ValidationError):
    """An amount Stripe cannot take exactly (``5.124 KWD``, a fraction of an ariary, too many digits)."""


def max_stripe_amount(currency: str) -> int:
    """The largest ``amount`` Stripe takes in ``currency`` (an ISO code, upper case), in Stripe's units."""
    return MAX_STRIPE_AMOUNTS.get(currency, MAX_STRIPE_AMOUNT)


def _scale(currency: str) -> int:
    """Stripe's unit per paycore minor unit as a power of ten (positive: multiply, negative: divide)."""
    exponent = currency_exponent(currency)
    if currency in ZERO_DECIMAL_CURRENCIES:
        return -exponent
    if currency in _TWO_DECIMALS_FOR_WHOLE_UNITS:
        return 2 - exponent
    if currency in THREE_DECIMAL_CURRENCIES or exponent == 2:
        return 0
    raise UnsupportedCurrency(
        f"Stripe does not take {currency} ({exponent} decimals in ISO 4217): it takes two-decimal currencies, "
        f"the zero-decimal {', '.join(sorted(ZERO_DECIMAL_CURRENCIES))} and the three-decimal "
        f"{', '.join(sorted(THREE_DECIMAL_CURRENCIES))}"
    )


def stripe_currency(currency: str) -> str:
    """The currency code as Stripe writes it (lower case); refuses a currency Stripe does not take."""
    _scale(currency)
    return currency.lower()


def to_stripe(amount: Money) -> int:
    """``amount`` as Stripe's integer ``amount``; :class:`AmountNotAccepted` if Stripe cannot take it exactly."""
    scale = _scale(amount.currency)
    minor = amount.minor_units
    if scale < 0:
        divisor = int(10 ** (-scale))
        if minor % divisor:
            raise AmountNotAccepted(
                f"Stripe takes {amount.currency} in whole units only, not {amount}: use a multiple of "
                f"{Money.minor(divisor, amount.currency)}"
            )
        units = minor // divisor
    else:
        units = minor * int(10**scale)
    if amount.currency in THREE_DECIMAL_CURRENCIES and units % 10:
        rounded = Money.minor(minor - minor % 10, amount.currency)
        raise AmountNotAccepted(
            f"Stripe takes {amount.currency} amounts whose last (thousandth) digit is 0, not {amount}: "
            f"use {rounded} or {rounded + Money.minor(10, amount.currency)}"
        )
    most = max_stripe_amount(amount.currency)
    if not 0 <= units <= most:
        digits = len(str(most))
        raise AmountNotAccepted(
            f"Stripe takes {amount.currency} amounts of at most {_DIGITS.get(digits, digits)} digits "
            f"({most} in its units), not {amount}"
        )
    return units


def from_stripe(units: int, currency: str) -> Money:
    """Stripe's integer ``amount`` in ``currency`` (any case), as Stripe reported it, as :class:`~paycore.money.Money`.

    An amount paycore cannot read (a currency unknown to ISO 4217 or one Stripe
    does not take, an ISK amount that is not in whole krónur) raises
    :class:`~paycore.errors.InvalidReport`: Stripe's answer is unreadable, which
    a provider call takes for an unknown outcome (settled by asking), never for
    a request refused before it was sent.
    """
    code = currency.upper()
    try:
        scale = _scale(code)
    except (ValidationError, MoneyError) as error:
        raise InvalidReport(f"Stripe reported an amount in {currency!r:.12}: {error}") from None
    if scale >= 0:
        divisor = int(10**scale)
        if units % divisor:
            raise InvalidReport(f"Stripe reported {units} {code}, which is not a whole number of {code}")
        return Money.minor(units // divisor, code)
    return Money.minor(units * int(10 ** (-scale)), code)
