"""Money: exact amounts in integer minor units, one currency at a time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paycore import Money
from paycore.currencies import CURRENCY_EXPONENTS
from paycore.errors import CurrencyMismatch, InvalidAmount, MoneyError, PaycoreError, UnknownCurrency
from paycore.money import currency_exponent

# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor_units"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("0.01", "EUR", 1),
        ("5000", "XOF", 5000),
        ("5000.00", "XOF", 5000),
        ("1500", "JPY", 1500),
        ("12.345", "KWD", 12345),
        ("0.001", "KWD", 1),
        ("1.2345", "CLF", 12345),
        ("-3.25", "EUR", -325),
        (" 7.00 ", "USD", 700),
    ],
)
def test_a_decimal_string_is_parsed_exactly_in_minor_units(text: str, currency: str, minor_units: int) -> None:
    assert Money.of(text, currency).minor_units == minor_units


def test_integers_and_decimals_are_accepted_as_major_units() -> None:
    assert Money.of(12, "EUR") == Money.minor(1200, "EUR")
    assert Money.of(Decimal("12.34"), "EUR") == Money.minor(1234, "EUR")


@pytest.mark.parametrize(("code", "exponent"), [("XOF", 0), ("JPY", 0), ("EUR", 2), ("KWD", 3), ("CLF", 4)])
def test_each_currency_has_its_iso_4217_exponent(code: str, exponent: int) -> None:
    assert currency_exponent(code) == exponent
    assert Money.minor(1, code).exponent == exponent


def test_more_decimal_places_than_the_currency_has_are_refused() -> None:
    with pytest.raises(InvalidAmount, match=r"Money\.of\('12\.345', 'EUR'\): EUR has 2 decimal places"):
        Money.of("12.345", "EUR")


def test_a_fraction_of_a_currency_without_minor_unit_is_refused() -> None:
    with pytest.raises(InvalidAmount, match=r"Money\.of\('100\.5', 'XOF'\): XOF has no minor unit"):
        Money.of("100.5", "XOF")


def test_a_fifth_decimal_place_of_clf_is_refused() -> None:
    with pytest.raises(InvalidAmount, match="CLF has 4 decimal places"):
        Money.of("1.23456", "CLF")


def test_a_float_is_refused_because_it_is_inexact() -> None:
    with pytest.raises(InvalidAmount, match=r"never float \(floats are inexact\)"):
        Money.of(12.5, "EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", Decimal("NaN"), Decimal("Infinity")])
def test_nan_and_infinity_are_refused(value: str | Decimal) -> None:
    with pytest.raises(InvalidAmount, match="not a finite number"):
        Money.of(value, "EUR")


@pytest.mark.parametrize("value", [True, False])
def test_a_bool_is_not_an_amount(value: bool) -> None:
    with pytest.raises(InvalidAmount, match="never bool"):
        Money.of(value, "EUR")


@pytest.mark.parametrize("text", ["", "twelve", "12,50", "1.2.3", "1 000", "12_50", "1_000", "1_0.00", "_1"])
def test_text_that_is_not_a_number_is_refused(text: str) -> None:
    with pytest.raises(InvalidAmount, match="not a number"):
        Money.of(text, "EUR")


@pytest.mark.parametrize("text", ["2500", "12.50", ".5", " 7 ", "0"])
def test_an_amount_as_typed_is_read_as_money_of_reads_it(text: str) -> None:
    assert Money.typed(text, "EUR") == Money.of(text, "EUR")


@pytest.mark.parametrize(
    "text",
    ["1e3", "+100", "-5", "\u0661\u0662\u0663", "\uff11\uff12", "1 000", "1,000", "12_50", "1..0", "", "NaN"],
)
def test_text_no_one_types_as_an_amount_is_not_read_as_one(text: str) -> None:
    """A refund typed ``1e3`` in the admin refunded 1 000 XOF; ``١٢٣`` (Arabic-Indic digits) refunded 123 XOF."""
    with pytest.raises(InvalidAmount, match="not digits with at most one"):
        Money.typed(text, "XOF")


@pytest.mark.parametrize(
    ("text", "currency"), [("10.000", "XOF"), ("1.5", "XOF"), ("10.000", "EUR"), ("1.2345", "KWD")]
)
def test_more_decimals_typed_than_the_currency_has_are_refused_not_read_as_trailing_zeros(
    text: str, currency: str
) -> None:
    """``10.000`` typed for a 10 000 XOF bill (``.`` grouping thousands) was read as 10 XOF."""
    with pytest.raises(InvalidAmount, match=f"{currency} has"):
        Money.typed(text, currency)


@pytest.mark.parametrize("code", ["ABC", "eur", "XAU", "", "EURO"])
def test_an_unknown_currency_code_is_refused_by_name(code: str) -> None:
    with pytest.raises(UnknownCurrency, match=f"{code!r} is not an active ISO 4217 currency code"):
        Money.of("1", code)


@pytest.mark.parametrize("text", ["1e40", "1e5000", "1e999999", "-1e999999999", "9" * 31, 10**40, -(10**40)], ids=repr)
def test_an_absurdly_large_amount_is_refused_as_an_amount(text: str | int) -> None:
    with pytest.raises(InvalidAmount, match="more than 30 digits"):
        Money.of(text, "EUR")


def test_amounts_beyond_the_28_digits_of_decimals_default_context_stay_exact() -> None:
    amount = Money.of("1234567890123456789012345678.91", "EUR")
    assert amount.minor_units == 123456789012345678901234567891
    assert str(amount) == "1234567890123456789012345678.91 EUR"
    with pytest.raises(InvalidAmount, match="EUR has 2 decimal places"):
        Money.of("1.0000000000000000000000000000000000001", "EUR")


@pytest.mark.parametrize("text", ["0e999999999", "-0.000", "0.00e-50"])
def test_zero_is_zero_whatever_its_exponent(text: str) -> None:
    assert Money.of(text, "EUR") == Money.zero("EUR")


def test_thirty_digits_of_minor_units_are_the_most_an_amount_holds() -> None:
    assert Money.of("9" * 28 + ".99", "EUR").minor_units == int("9" * 30)
    with pytest.raises(InvalidAmount, match="at most 30 digits"):
        Money.minor(10**30, "EUR")
    with pytest.raises(InvalidAmount, match="at most 30 digits"):
        Money.minor(10**5000, "EUR")
    with pytest.raises(InvalidAmount, match="more than 30 digits"):
        Money.of(10**5000, "EUR")
    with pytest.raises(InvalidAmount):
        Money.minor(int("9" * 30), "EUR") + Money.minor(1, "EUR")
    with pytest.raises(InvalidAmount):
        Money.sum([Money.minor(int("9" * 30), "EUR"), Money.minor(1, "EUR")], "EUR")
    with pytest.raises(InvalidAmount):
        Money.minor(int("9" * 30), "EUR") * 2
    assert -Money.minor(int("9" * 30), "EUR") == Money.minor(-int("9" * 30), "EUR")


@pytest.mark.parametrize("units", [1.0, "100", Decimal(100), True])
def test_minor_units_must_be_an_int(units: object) -> None:
    with pytest.raises(InvalidAmount, match="minor units must be an int"):
        Money.minor(units, "EUR")  # type: ignore[arg-type]


def test_money_errors_are_paycore_errors_and_value_errors() -> None:
    with pytest.raises(PaycoreError):
        Money.of("1.001", "EUR")
    assert issubclass(MoneyError, ValueError)


def test_every_table_entry_is_an_upper_case_iso_code_with_a_small_exponent() -> None:
    for code, exponent in CURRENCY_EXPONENTS.items():
        assert len(code) == 3
        assert code.isupper()
        assert exponent in (0, 2, 3, 4)


# -- arithmetic and comparison -------------------------------------------------------------


def test_amounts_of_one_currency_add_and_subtract_exactly() -> None:
    assert Money.of("0.10", "EUR") + Money.of("0.20", "EUR") == Money.of("0.30", "EUR")
    assert Money.of("5000", "XOF") - Money.of("5001", "XOF") == Money.minor(-1, "XOF")
    assert -Money.of("2", "EUR") == Money.of("-2", "EUR")
    assert abs(Money.of("-2", "EUR")) == Money.of("2", "EUR")


def test_adding_two_currencies_is_refused_naming_both() -> None:
    with pytest.raises(CurrencyMismatch, match=r"currencies differ \(EUR vs XOF\)"):
        Money.of("1", "EUR") + Money.of("1", "XOF")


def test_subtracting_two_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        Money.of("1", "EUR") - Money.of("1", "USD")


def test_comparing_two_currencies_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        _ = Money.of("1", "EUR") < Money.of("2", "USD")


def test_amounts_of_two_currencies_are_never_equal() -> None:
    assert Money.of("1", "EUR") != Money.of("1", "USD")
    assert Money.of("100", "XOF") != Money.of("100", "XAF")


def test_money_does_not_mix_with_plain_numbers() -> None:
    with pytest.raises(TypeError):
        _ = Money.of("1", "EUR") + 1  # type: ignore[operator]
    assert Money.of("1", "EUR") != 100


def test_comparisons_follow_the_amounts() -> None:
    small, large = Money.of("9.99", "EUR"), Money.of("10.00", "EUR")
    assert small < large
    assert small <= large
    assert large > small
    assert large >= small
    assert sorted([large, small]) == [small, large]


def test_multiplying_by_an_int_is_exact_and_by_a_float_is_refused() -> None:
    assert Money.of("2.50", "EUR") * 3 == Money.of("7.50", "EUR")
    assert 3 * Money.of("2.50", "EUR") == Money.of("7.50", "EUR")
    with pytest.raises(TypeError, match="use allocate"):
        _ = Money.of("2.50", "EUR") * 1.5  # type: ignore[operator]


def test_sum_adds_amounts_and_the_empty_sum_is_zero() -> None:
    assert Money.sum([Money.of("1", "EUR"), Money.of("2", "EUR")], "EUR") == Money.of("3", "EUR")
    assert Money.sum([], "XOF") == Money.zero("XOF")
    with pytest.raises(CurrencyMismatch):
        Money.sum([Money.of("1", "USD")], "EUR")


def test_money_is_hashable_and_immutable() -> None:
    amount = Money.of("1", "EUR")
    assert {amount: "x"}[Money.minor(100, "EUR")] == "x"
    with pytest.raises(AttributeError):
        amount.minor_units = 5  # type: ignore[misc]


# -- allocate and split -------------------------------------------------------------------


def test_split_gives_the_remainder_to_the_first_parts() -> None:
    parts = Money.of("100", "XOF").split(3)
    assert [p.minor_units for p in parts] == [34, 33, 33]


def test_allocate_follows_the_ratios() -> None:
    parts = Money.of("10.00", "EUR").allocate([1, 3])
    assert parts == (Money.of("2.50", "EUR"), Money.of("7.50", "EUR"))


def test_a_part_of_ratio_zero_gets_nothing_and_the_remainder_goes_to_the_first_positive_parts() -> None:
    assert Money.of("101", "XOF").allocate([0, 1, 1]) == (
        Money.zero("XOF"),
        Money.of("51", "XOF"),
        Money.of("50", "XOF"),
    )
    assert [p.minor_units for p in Money.minor(-5, "EUR").allocate([1, 0, 1, 0, 1])] == [-2, 0, -2, 0, -1]
    assert [p.minor_units for p in Money.minor(1, "XOF").allocate([0, 0, 3])] == [0, 0, 1]


@pytest.mark.parametrize("ratios", [[], [0, 0], [1, -1], [1.5, 1]])
def test_allocate_refuses_ratios_that_cannot_split(ratios: list[object]) -> None:
    with pytest.raises(InvalidAmount, match="allocate needs non-negative int ratios"):
        Money.of("1", "EUR").allocate(ratios)  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, -1, 2.0])
def test_split_refuses_a_count_that_is_not_a_positive_int(count: object) -> None:
    with pytest.raises(InvalidAmount, match="split needs a positive int count"):
        Money.of("1", "EUR").split(count)  # type: ignore[arg-type]


currencies = st.sampled_from(["XOF", "EUR", "KWD", "CLF", "JPY"])
units = st.integers(min_value=-(10**15), max_value=10**15)
any_units = st.integers(min_value=-(10**30) + 1, max_value=10**30 - 1)


@given(units=units, currency=currencies, ratios=st.lists(st.integers(0, 1000), min_size=1, max_size=12))
def test_allocate_never_loses_or_invents_a_minor_unit(units: int, currency: str, ratios: list[int]) -> None:
    if sum(ratios) == 0:
        ratios = [*ratios, 1]
    amount = Money.minor(units, currency)
    parts = amount.allocate(ratios)
    assert len(parts) == len(ratios)
    assert Money.sum(parts, currency) == amount
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        exact = abs(units) * ratio / total
        assert abs(abs(part.minor_units) - exact) < len(ratios) + 1
        assert part.minor_units == 0 or (part.minor_units > 0) == (units > 0)


@given(units=units, currency=currencies, ratios=st.lists(st.integers(0, 1000), min_size=1, max_size=12))
def test_allocate_gives_each_part_its_share_rounded_down_or_one_unit_more_and_ratio_zero_nothing(
    units: int, currency: str, ratios: list[int]
) -> None:
    if sum(ratios) == 0:
        ratios = [*ratios, 1]
    parts = Money.minor(units, currency).allocate(ratios)
    total = sum(ratios)
    extra = [abs(part.minor_units) - abs(units) * ratio // total for part, ratio in zip(parts, ratios, strict=True)]
    assert all(unit == 0 for unit, ratio in zip(extra, ratios, strict=True) if ratio == 0)
    positive = [unit for unit, ratio in zip(extra, ratios, strict=True) if ratio > 0]
    assert set(positive) <= {0, 1}
    assert positive == sorted(positive, reverse=True)  # the extra units go to the first parts, by index


@given(units=units, currency=currencies, count=st.integers(1, 50))
def test_split_parts_add_up_and_differ_by_at_most_one_unit(units: int, currency: str, count: int) -> None:
    parts = Money.minor(units, currency).split(count)
    assert Money.sum(parts, currency) == Money.minor(units, currency)
    sizes = [abs(p.minor_units) for p in parts]
    assert max(sizes) - min(sizes) <= 1


@given(units=any_units, currency=currencies)
def test_repr_and_str_round_trip_through_of(units: int, currency: str) -> None:
    amount = Money.minor(units, currency)
    assert eval(repr(amount), {"Money": Money}) == amount
    text, code = str(amount).split(" ")
    assert Money.of(text, code) == amount


# -- display ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Money.of("12.5", "EUR"), "12.50 EUR"),
        (Money.of("5000", "XOF"), "5000 XOF"),
        (Money.of("1.5", "KWD"), "1.500 KWD"),
        (Money.minor(1, "CLF"), "0.0001 CLF"),
        (Money.of("-0.05", "USD"), "-0.05 USD"),
    ],
)
def test_str_shows_every_decimal_place_of_the_currency(amount: Money, text: str) -> None:
    assert str(amount) == text


def test_repr_is_the_expression_that_builds_it() -> None:
    assert repr(Money.of("12.50", "EUR")) == "Money.of('12.50', 'EUR')"
    assert repr(Money.of("5000", "XOF")) == "Money.of('5000', 'XOF')"


@pytest.mark.parametrize(
    ("amount", "signed", "text"),
    [
        (Money.of("1500", "XOF"), False, "1 500 XOF"),
        (Money.of("1234567.5", "EUR"), False, "1 234 567.50 EUR"),
        (Money.of("-12.5", "EUR"), False, "-12.50 EUR"),
        (Money.of("200", "XOF"), True, "+200 XOF"),
        (Money.zero("XOF"), True, "0 XOF"),
        (Money.of("0.125", "KWD"), False, "0.125 KWD"),
    ],
)
def test_display_groups_thousands_for_people(amount: Money, signed: bool, text: str) -> None:
    assert amount.display(signed=signed) == text


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Money.minor(10**29 + 1, "XOF"), "100 000 000 000 000 000 000 000 000 001 XOF"),
        (Money.minor(-(10**29 + 1), "EUR"), "-1 000 000 000 000 000 000 000 000 000.01 EUR"),
        (Money.minor(10**30 - 1, "CLF"), "99 999 999 999 999 999 999 999 999.9999 CLF"),
    ],
)
def test_display_is_exact_beyond_the_28_digits_of_decimals_default_context(amount: Money, text: str) -> None:
    assert amount.display() == text


@given(units=any_units, currency=currencies, signed=st.booleans())
def test_display_reads_back_as_the_same_amount(units: int, currency: str, signed: bool) -> None:
    amount = Money.minor(units, currency)
    number, code = amount.display(signed=signed).rsplit(" ", 1)
    assert code == currency
    assert Money.of(number.replace(" ", ""), code) == amount
