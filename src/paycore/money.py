"""``Money``: an exact amount in one currency, stored as integer minor units.

Money never touches ``float``. Amounts are parsed from strings, integers or
``Decimal`` and must be exact in their currency: ``Money.of("12.345", "EUR")``
is refused because euros have two decimal places, ``Money.of("100.5", "XOF")``
because the CFA franc has none. Arithmetic and comparison only combine amounts
of the same currency.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from attrs import field, frozen

from paycore.currencies import CURRENCY_EXPONENTS
from paycore.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

__all__ = ["MAX_MINOR_UNITS", "Money", "currency_exponent"]

_MAX_DIGITS: Final = 30
_LIMIT: Final = 10**_MAX_DIGITS
_TYPED: Final = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+", re.ASCII)
"""An amount as a person types it (:meth:`Money.typed`): ``2500``, ``12.50``, ``.5``."""

MAX_MINOR_UNITS: Final = 2**63 - 1
"""The largest count of minor units every store can hold (a signed 64-bit ``BIGINT``).

``Money`` itself computes exactly with up to 30 digits; what a provider reports,
and so what may be stored, must stay within this bound.
"""


def currency_exponent(code: str) -> int:
    """Return how many minor units (decimal places) ``code`` has: XOF 0, EUR 2, KWD 3."""
    try:
        return CURRENCY_EXPONENTS[code]
    except (KeyError, TypeError):
        raise UnknownCurrency(f"{code!r} is not an active ISO 4217 currency code (e.g. 'EUR', 'XOF')") from None


def _check_currency(instance: Money, attribute: Any, value: str) -> None:
    currency_exponent(value)


def _check_minor_units(instance: Money, attribute: Any, value: int) -> None:
    if type(value) is not int:
        raise InvalidAmount(f"minor units must be an int, not {type(value).__name__}: {value!r}")
    if abs(value) >= _LIMIT:
        raise InvalidAmount(f"minor units must have at most {_MAX_DIGITS} digits")


@frozen(order=False)
class Money:
    """An amount of one currency, as an integer count of its minor units.

    Build one with :meth:`of` (from a decimal string in major units) or
    :meth:`minor` (from minor units). ``Money.of("12.50", "EUR") ==
    Money.minor(1250, "EUR")``; ``Money.of("1500", "XOF").minor_units == 1500``.
    """

    minor_units: int = field(validator=_check_minor_units)
    """The amount in the currency's smallest unit (cents for EUR, francs for XOF)."""
    currency: str = field(validator=_check_currency)
    """The ISO 4217 code, upper case."""

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        """Parse ``amount`` in major units; refuse floats and inexact amounts.

        Text is a decimal number as :class:`~decimal.Decimal` reads it, but for ``_``: ``"12_50"`` is refused,
        not read as 1250, and so are ``"1,000"`` and ``"1 000"`` (a separator means nothing to an amount).

        >>> Money.of("12.50", "EUR")
        Money.of('12.50', 'EUR')
        """
        exponent = currency_exponent(currency)
        if isinstance(amount, bool) or not isinstance(amount, (str, int, Decimal)):
            raise InvalidAmount(
                f"Money.of({amount!r}, {currency!r}): amounts are str, int or Decimal, "
                f"never {type(amount).__name__} (floats are inexact)"
            )
        if isinstance(amount, int) and abs(amount) >= _LIMIT:
            raise InvalidAmount(f"Money.of(<an int>, {currency!r}): more than {_MAX_DIGITS} digits")
        if isinstance(amount, str) and "_" in amount:  # Decimal reads "12_50" as 1250: a separator, never a digit
            raise InvalidAmount(f"Money.of({amount!r}, {currency!r}): not a number ('_' separates no digits here)")
        try:
            value = Decimal(amount.strip() if isinstance(amount, str) else amount)
        except InvalidOperation:
            raise InvalidAmount(f"Money.of({amount!r}, {currency!r}): not a number") from None
        if not value.is_finite():
            raise InvalidAmount(f"Money.of({amount!r}, {currency!r}): not a finite number")
        if not value:
            return cls(0, currency)
        if value.adjusted() + exponent >= _MAX_DIGITS:
            raise InvalidAmount(f"Money.of({amount!r}, {currency!r}): more than {_MAX_DIGITS} digits")
        # Exact digit arithmetic: Decimal operations round to the context's 28 digits.
        sign, digits, places = value.as_tuple()
        assert isinstance(places, int)
        below_minor_unit = -exponent - places  # how many trailing digits are finer than the minor unit
        if below_minor_unit > 0:
            if any(digits[-below_minor_unit:]):
                if exponent == 0:
                    detail = f"{currency} has no minor unit"
                else:
                    detail = f"{currency} has {exponent} decimal place{'s' if exponent > 1 else ''}"
                raise InvalidAmount(f"Money.of({amount!r}, {currency!r}): {detail}")
            digits = digits[:-below_minor_unit]
        minor_units = int("".join(map(str, digits)) or "0") * 10 ** max(0, -below_minor_unit)
        return cls(-minor_units if sign else minor_units, currency)

    @classmethod
    def typed(cls, text: str, currency: str) -> Money:
        """Parse an amount as a person types it (a command-line option, a form's field): ASCII digits with at most
        one ``.``, spaces around, and no more decimals than the currency has; then as :meth:`of`. What :meth:`of`
        would also read but no one types as an amount is refused: an exponent (``"1e3"``), a sign (``"+100"``,
        ``"-5"``), another script's digits, and ``"10.000"`` of XOF or EUR (ten thousand, where ``.`` groups
        thousands: :meth:`of` reads it as ten).

        >>> Money.typed("2500", "XOF")
        Money.of('2500', 'XOF')
        """
        typed = text.strip() if isinstance(text, str) else None
        if typed is None or _TYPED.fullmatch(typed) is None:
            # a sign, an exponent, a separator or another script's digits: no amount as a person types one
            raise InvalidAmount(f"Money.typed({text!r}, {currency!r}): not digits with at most one '.'")
        places = len(typed.partition(".")[2])
        exponent = currency_exponent(currency)
        if places > exponent:  # "10.000" is ten thousand where '.' groups thousands: never read as ten
            detail = "no minor unit" if exponent == 0 else f"{exponent} decimal place{'s' if exponent > 1 else ''}"
            raise InvalidAmount(f"Money.typed({text!r}, {currency!r}): {currency} has {detail}")
        return cls.of(text, currency)

    @classmethod
    def minor(cls, minor_units: int, currency: str) -> Money:
        """Build from an integer count of minor units: ``Money.minor(1250, "EUR")``."""
        return cls(minor_units, currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """The zero amount of ``currency``."""
        zero = _ZEROS.get(currency) if cls is Money and type(currency) is str else None
        if zero is None:
            zero = cls(0, currency)
            if cls is Money:
                _ZEROS[currency] = zero
        return zero

    @property
    def exponent(self) -> int:
        """The currency's number of decimal places."""
        return CURRENCY_EXPONENTS[self.currency]

    @property
    def amount(self) -> Decimal:
        """The amount in major units as an exact ``Decimal`` (``Decimal("12.50")``)."""
        sign, digits, _ = Decimal(self.minor_units).as_tuple()
        return Decimal((sign, digits, -self.exponent))  # exact, unlike scaleb (28-digit context)

    def is_zero(self) -> bool:
        """True when the amount is zero."""
        return self.minor_units == 0

    def is_positive(self) -> bool:
        """True when the amount is above zero."""
        return self.minor_units > 0

    def is_negative(self) -> bool:
        """True when the amount is below zero."""
        return self.minor_units < 0

    def _same(self, other: object, operation: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {operation} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot {operation} {self} and {other}: currencies differ ({self.currency} vs {other.currency})"
            )
        return other

    def _of_same_currency(self, minor_units: int) -> Money:
        """``Money(minor_units, self.currency)``, checking only what arithmetic can break (the digit limit)."""
        if type(minor_units) is not int or abs(minor_units) >= _LIMIT:
            return Money(minor_units, self.currency)  # the validators say what is wrong
        money = object.__new__(Money)
        _SET_MINOR_UNITS(money, minor_units)
        _SET_CURRENCY(money, self.currency)
        return money

    def __add__(self, other: Money) -> Money:
        return self._of_same_currency(self.minor_units + self._same(other, "add").minor_units)

    def __sub__(self, other: Money) -> Money:
        return self._of_same_currency(self.minor_units - self._same(other, "subtract").minor_units)

    def __neg__(self) -> Money:
        return self._of_same_currency(-self.minor_units)

    def __abs__(self) -> Money:
        return self._of_same_currency(abs(self.minor_units))

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError(
                f"Money can only be multiplied by an int, not {type(factor).__name__}; "
                "use allocate() to split an amount by ratios"
            )
        return self._of_same_currency(self.minor_units * factor)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.minor_units < self._same(other, "compare").minor_units

    def __le__(self, other: Money) -> bool:
        return self.minor_units <= self._same(other, "compare").minor_units

    def __gt__(self, other: Money) -> bool:
        return self.minor_units > self._same(other, "compare").minor_units

    def __ge__(self, other: Money) -> bool:
        return self.minor_units >= self._same(other, "compare").minor_units

    def allocate(self, ratios: Sequence[int]) -> tuple[Money, ...]:
        """Split into parts proportional to integer ``ratios``, losing no minor unit.

        Each part gets its share rounded down; the minor units left over go one
        at a time to the first parts whose ratio is positive, so the parts always
        add up to exactly ``self`` and a part of ratio 0 gets nothing:
        ``Money.of("100", "XOF").allocate([1, 1, 1])`` gives 34, 33 and 33 XOF,
        ``Money.of("101", "XOF").allocate([0, 1, 1])`` 0, 51 and 50 XOF.
        """
        if not ratios or any(type(r) is not int or r < 0 for r in ratios) or sum(ratios) == 0:
            raise InvalidAmount(f"allocate needs non-negative int ratios with a positive sum, not {list(ratios)!r}")
        total = sum(ratios)
        sign = -1 if self.minor_units < 0 else 1
        units = abs(self.minor_units)
        parts = [units * r // total for r in ratios]
        remainder = units - sum(parts)  # fewer than the parts of positive ratio: each lost less than one unit
        for index in [i for i, r in enumerate(ratios) if r > 0][:remainder]:
            parts[index] += 1
        return tuple(Money(sign * p, self.currency) for p in parts)

    def split(self, count: int) -> tuple[Money, ...]:
        """Split into ``count`` near-equal parts that add up to exactly ``self``."""
        if type(count) is not int or count < 1:
            raise InvalidAmount(f"split needs a positive int count, not {count!r}")
        return self.allocate([1] * count)

    @staticmethod
    def sum(amounts: Iterable[Money], currency: str) -> Money:
        """Add ``amounts`` (all in ``currency``); the empty sum is zero."""
        total = Money.zero(currency)
        minor_units = 0
        for amount in amounts:
            minor_units += total._same(amount, "add").minor_units
        return total._of_same_currency(minor_units) if minor_units else total

    def display(self, *, signed: bool = False) -> str:
        """The amount as people write it, thousands grouped by spaces.

        ``1 500 XOF``, ``-12.50 EUR``, ``+200 XOF`` when ``signed``.
        """
        sign = "-" if self.minor_units < 0 else ("+" if signed and self.minor_units > 0 else "")
        exponent = self.exponent
        digits = str(abs(self.minor_units)).rjust(exponent + 1, "0")  # exact at any size, unlike Decimal's context
        whole, fraction = (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")
        groups: list[str] = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        number = " ".join(groups) + (f".{fraction}" if fraction else "")
        return f"{sign}{number} {self.currency}"

    def __str__(self) -> str:
        return f"{self.amount:f} {self.currency}"

    def __repr__(self) -> str:
        return f"Money.of({format(self.amount, 'f')!r}, {self.currency!r})"


_SET_MINOR_UNITS: Final = Money.__dict__["minor_units"].__set__
_SET_CURRENCY: Final = Money.__dict__["currency"].__set__
_ZEROS: dict[str, Money] = {}
"""The zero of each currency asked for: amounts are immutable, so one is shared."""
