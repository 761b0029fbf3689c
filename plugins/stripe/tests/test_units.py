"""Amounts in Stripe's units: zero-decimal, three-decimal, ISK, and what Stripe cannot take."""

from __future__ import annotations

import pytest

from paycore.errors import InvalidReport, UnsupportedCurrency
from paycore.money import Money
from paycore_stripe.units import MAX_STRIPE_AMOUNT, AmountNotAccepted, from_stripe, stripe_currency, to_stripe


def test_a_two_decimal_currency_is_sent_in_cents() -> None:
    assert to_stripe(Money.of("12.50", "EUR")) == 1250
    assert from_stripe(1250, "eur") == Money.of("12.50", "EUR")


@pytest.mark.parametrize("currency", ["XOF", "JPY"])
def test_a_zero_decimal_currency_is_sent_in_whole_units(currency: str) -> None:
    assert to_stripe(Money.of("5000", currency)) == 5000
    assert from_stripe(5000, currency.lower()) == Money.of("5000", currency)


def test_a_three_decimal_currency_is_sent_in_thousandths_ending_in_zero() -> None:
    assert to_stripe(Money.of("5.120", "KWD")) == 5120
    assert from_stripe(5120, "kwd") == Money.of("5.120", "KWD")


def test_a_three_decimal_amount_stripe_cannot_take_is_refused_not_rounded() -> None:
    with pytest.raises(AmountNotAccepted, match=r"5\.124 KWD.*5\.120 KWD or 5\.130 KWD"):
        to_stripe(Money.of("5.124", "KWD"))


def test_a_fraction_of_a_currency_stripe_takes_in_whole_units_is_refused() -> None:
    assert to_stripe(Money.of("300", "MGA")) == 300
    with pytest.raises(AmountNotAccepted, match="whole units"):
        to_stripe(Money.of("300.50", "MGA"))


def test_isk_is_sent_with_two_zero_decimals() -> None:
    assert to_stripe(Money.of("500", "ISK")) == 50000
    assert from_stripe(50000, "isk") == Money.of("500", "ISK")
    with pytest.raises(InvalidReport, match="not a whole number of ISK"):
        from_stripe(50050, "isk")


@pytest.mark.parametrize("currency", ["iqd", "xts", "abc"])
def test_an_amount_reported_in_a_currency_stripe_does_not_take_is_unreadable(currency: str) -> None:
    with pytest.raises(InvalidReport, match=currency):
        from_stripe(5000, currency)


@pytest.mark.parametrize("currency", ["IQD", "LYD", "CLF"])
def test_a_currency_stripe_does_not_take_is_refused(currency: str) -> None:
    with pytest.raises(UnsupportedCurrency, match=currency):
        stripe_currency(currency)


@pytest.mark.parametrize("currency", ["XOF", "EUR", "JPY", "USD"])
def test_more_than_eight_digits_is_refused(currency: str) -> None:
    assert to_stripe(Money.minor(MAX_STRIPE_AMOUNT, currency)) == MAX_STRIPE_AMOUNT
    with pytest.raises(AmountNotAccepted, match=f"{currency} amounts of at most eight digits"):
        to_stripe(Money.minor(MAX_STRIPE_AMOUNT + 1, currency))


def test_idr_takes_up_to_twelve_digits() -> None:
    """Stripe's one documented exception: 9,999,999,999.99 IDR is 999999999999."""
    assert to_stripe(Money.of("1000000.00", "IDR")) == 100_000_000
    assert to_stripe(Money.of("9999999999.99", "IDR")) == 999_999_999_999
    with pytest.raises(AmountNotAccepted, match="IDR amounts of at most twelve digits"):
        to_stripe(Money.of("10000000000.00", "IDR"))
