"""``paycore.secrets.hide_phones``: a customer's phone, however a gateway writes it back, is shown as ``***``;
nothing else of the text is touched."""

from __future__ import annotations

import pytest

from paycore.secrets import Secret, hide_phones

PHONE = "+221771234567"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("wallet +221771234567 is blocked", "wallet *** is blocked"),
        ("wallet 221771234567 is blocked", "wallet *** is blocked"),
        ("wallet +221 77 123 45 67 is blocked", "wallet *** is blocked"),
        ("wallet (+221) 77-123-45-67 is blocked", "wallet *** is blocked"),
        ("wallet 0771234567 is blocked", "wallet *** is blocked"),
        ("wallet 77.123.45.67 is blocked", "wallet *** is blocked"),
        ("bad-+221771234567", "bad-***"),
        ("5000 XOF for +221771234567, twice: 0771234567", "5000 XOF for ***, twice: ***"),
        ("+221771234567+221771234567", "******"),
        ("call (+221 77 123 45 67) now", "call *** now"),
        ("call (77 123 45 67).", "call ***."),
        ("(0771234567) or (+221771234567)", "*** or ***"),
    ],
)
def test_a_phone_is_hidden_however_it_is_written(text: str, shown: str) -> None:
    assert hide_phones(text, [PHONE]) == shown
    assert hide_phones(text, [Secret(PHONE), None]) == shown


@pytest.mark.parametrize(
    "text",
    [
        "checkout-refund-failed",
        "checkout-session-not-found",
        "amount 5000 XOF, ref 1234567",  # seven digits of the number: not it
        "wallet +221 76 123 45 67",  # another number
        "wallet (+221 76 123 45 67)",  # another number, its brackets too
        "order (5000 XOF)",
        "(((((((((((((((( 1 2 3 ----- ...",
    ],
)
def test_text_without_the_phone_is_left_as_it_is(text: str) -> None:
    assert hide_phones(text, [PHONE]) == text


@pytest.mark.parametrize("phone", ["-", "e", "x", "1234567", "", None])
def test_a_phone_of_fewer_than_eight_digits_hides_nothing_not_even_its_own_text(phone: str | None) -> None:
    text = "checkout-refund-failed: e-x 1234567"
    assert hide_phones(text, [phone]) == text


def test_runs_of_separators_and_digits_that_are_no_phone_come_back_unchanged() -> None:
    for text in ("(" * 2_000, "1" * 2_000, "(1" * 2_000, "1 " * 2_000, "+(" * 2_000):
        assert hide_phones(text, [PHONE]) == text
    assert hide_phones("71234567" * 1_000, [PHONE]) == "***" * 1_000
