"""Drawer reports and amounts as a cashier reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
import pytest

from paycore.money import Money
from paycore_cash.errors import InvalidCashRequest
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.report import DrawerReport, format_money

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Money.of("1500", "XOF"), "1 500 XOF"),
        (Money.of("0", "XOF"), "0 XOF"),
        (Money.of("999", "XOF"), "999 XOF"),
        (Money.of("1234567", "XOF"), "1 234 567 XOF"),
        (Money.of("-2500", "XOF"), "-2 500 XOF"),
        (Money.of("12345.50", "EUR"), "12 345.50 EUR"),
        (Money.of("0.05", "EUR"), "0.05 EUR"),
        (Money.of("1000.125", "KWD"), "1 000.125 KWD"),
        (Money.of("150000", "JPY"), "150 000 JPY"),
    ],
)
def test_amounts_are_written_in_their_currency_with_thousands_grouped(amount: Money, text: str) -> None:
    assert format_money(amount) == text


def test_a_signed_amount_shows_its_plus_sign() -> None:
    assert format_money(Money.of("200", "XOF"), signed=True) == "+200 XOF"
    assert format_money(Money.of("-200", "XOF"), signed=True) == "-200 XOF"


@pytest.mark.parametrize("signed", ["no", "False", 1, None])
def test_a_signed_that_is_not_true_or_false_is_refused(signed: object) -> None:
    with pytest.raises(InvalidCashRequest, match="signed must be True or False"):
        format_money(Money.of("200", "XOF"), signed=signed)  # type: ignore[arg-type]


def _session(**fields: object) -> DrawerSession:
    values: dict[str, object] = {
        "id": "drw_1",
        "tenant": "chez-awa",
        "till": "T1",
        "currency": "XOF",
        "opening_float": Money.of("10000", "XOF"),
        "opened_by": "Awa",
        "opened_at": AT,
    }
    values.update(fields)
    return DrawerSession(**values)  # type: ignore[arg-type]


def _movements() -> list[CashMovement]:
    xof = lambda amount: Money.of(amount, "XOF")  # noqa: E731
    return [
        CashMovement(
            "mov_1",
            "drw_1",
            MovementKind.SALE,
            xof("3500"),
            AT,
            actor="Awa",
            reason="order T1-0001",
            payment_id="pay_1",
            tendered=xof("5000"),
            change=xof("1500"),
        ),
        CashMovement("mov_2", "drw_1", MovementKind.REFUND, xof("500"), AT, actor="Awa", reason="cold soup"),
        CashMovement("mov_3", "drw_1", MovementKind.PAY_OUT, xof("8000"), AT, actor="Moussa", reason="drop"),
        CashMovement("mov_4", "drw_1", MovementKind.PAY_IN, xof("2000"), AT, actor="Moussa", reason="coins"),
    ]


def _lines(text: str) -> dict[str, str]:
    return {line.split("  ")[0]: " ".join(line.split()) for line in text.splitlines() if line}


def test_an_open_drawers_report_shows_each_movement_and_what_is_expected() -> None:
    text = DrawerReport.build(_session(), _movements()).render()
    assert "Still open" in text
    assert "order T1-0001, tendered 5 000 XOF, change 1 500 XOF" in text
    lines = _lines(text)
    assert lines["Opening float"] == "Opening float 10 000 XOF"
    assert lines["Cash sales (1)"] == "Cash sales (1) +3 500 XOF"
    assert lines["Refunds (1)"] == "Refunds (1) -500 XOF"
    assert lines["Pay-ins"] == "Pay-ins +2 000 XOF"
    assert lines["Pay-outs"] == "Pay-outs -8 000 XOF"
    assert lines["Expected in drawer"] == "Expected in drawer 7 000 XOF"
    assert "Variance" not in lines


def test_a_closed_drawers_report_shows_counted_and_variance() -> None:
    session = _session(
        status=DrawerStatus.CLOSED,
        closed_by="Awa",
        closed_at=AT,
        counted=Money.of("7200", "XOF"),
        expected=Money.of("7000", "XOF"),
        variance=Money.of("200", "XOF"),
    )
    lines = _lines(DrawerReport.build(session, _movements()).render())
    assert lines["Counted"] == "Counted 7 200 XOF"
    assert lines["Variance"] == "Variance +200 XOF (over)"


def test_a_balanced_drawer_says_so() -> None:
    session = _session(
        status=DrawerStatus.CLOSED,
        closed_by="Awa",
        closed_at=AT,
        counted=Money.of("10000", "XOF"),
        expected=Money.of("10000", "XOF"),
        variance=Money.of("0", "XOF"),
    )
    lines = _lines(DrawerReport.build(session, []).render())
    assert lines["Variance"] == "Variance 0 XOF (balanced)"
    assert "No cash movements." in lines


def test_a_reason_given_with_line_breaks_prints_on_its_movements_one_line() -> None:
    forged = "cold soup\n\nVariance  0 XOF  (balanced)\r\nCounted\u2028 9 999 XOF"
    refund = CashMovement("mov_9", "drw_1", MovementKind.REFUND, Money.of("500", "XOF"), AT, actor="Awa", reason=forged)
    text = DrawerReport.build(_session(), [refund]).render()
    assert "cold soup Variance 0 XOF (balanced) Counted 9 999 XOF" in text
    assert "Variance" not in _lines(text), "no line of the summary is forged"
    assert "Counted" not in _lines(text)
    plain = DrawerReport.build(_session(), [attrs.evolve(refund, reason="cold soup")]).render()
    assert len(text.splitlines()) == len(plain.splitlines())


def test_the_report_as_data_keeps_exact_amounts() -> None:
    data = DrawerReport.build(_session(currency="EUR", opening_float=Money.of("100.10", "EUR")), []).as_dict()
    assert data["opening_float"] == {"amount": "100.10", "currency": "EUR"}
    assert data["expected"] == {"amount": "100.10", "currency": "EUR"}
    assert data["variance"] is None
