"""The ISO 4217 table agrees with ISO's published list, as the ``iso4217`` package carries it."""

from __future__ import annotations

import iso4217
import pytest

from paycore import Money
from paycore.currencies import CURRENCY_EXPONENTS, WITHDRAWN_CURRENCIES
from paycore.errors import PaycoreError

ISO_EXPONENTS = {currency.code: currency.exponent for currency in iso4217.Currency}
"""ISO's active codes and their minor units; ``None`` where ISO says "N.A." (XAU, XTS, XXX...)."""

PAYABLE = {code: exponent for code, exponent in ISO_EXPONENTS.items() if exponent is not None}


def test_every_iso_currency_with_minor_units_is_in_the_table() -> None:
    missing = sorted(set(PAYABLE) - set(CURRENCY_EXPONENTS))
    assert missing == [], f"add these ISO 4217 codes to paycore.currencies: {missing}"


@pytest.mark.parametrize("code", sorted(PAYABLE))
def test_exponent_matches_iso(code: str) -> None:
    assert CURRENCY_EXPONENTS.get(code) == PAYABLE[code]


def test_codes_without_minor_units_are_not_payable() -> None:
    not_applicable = sorted(code for code, exponent in ISO_EXPONENTS.items() if exponent is None)
    assert "XXX" in not_applicable
    assert set(not_applicable).isdisjoint(CURRENCY_EXPONENTS)


def test_every_code_iso_does_not_list_is_declared_withdrawn() -> None:
    unlisted = set(CURRENCY_EXPONENTS) - set(ISO_EXPONENTS)
    assert unlisted == set(WITHDRAWN_CURRENCIES)


def test_withdrawn_codes_are_still_in_the_table() -> None:
    assert set(WITHDRAWN_CURRENCIES) <= set(CURRENCY_EXPONENTS)


def test_arab_accounting_dinar_has_two_minor_units() -> None:
    assert Money.of("12.34", "XAD").minor_units == 1234


def test_precious_metal_is_refused_with_its_code() -> None:
    with pytest.raises(PaycoreError, match="XAU"):
        Money.of("1", "XAU")
