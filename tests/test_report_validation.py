"""What a provider reports is checked where it is built: a report paycore could not store never exists."""

from __future__ import annotations

from typing import Any

import pytest

from paycore.errors import ValidationError
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.records import NextAction, ProviderUpdate, RefundUpdate
from paycore.status import FraudStatus, Outcome, RefundStatus
from paycore.wire import MAX_ID_LENGTH, MAX_TEXT_LENGTH, InvalidReport

XOF = "XOF"

BAD_IDS = [
    pytest.param("", id="empty"),
    pytest.param("x" * (MAX_ID_LENGTH + 1), id="too-long"),
    pytest.param({"id": "gp_1"}, id="object"),
    pytest.param(12345, id="int"),
    pytest.param(["gp_1"], id="list"),
    pytest.param("gp_\ud800", id="lone-surrogate"),
    pytest.param("gp_1\x00", id="nul"),
    pytest.param("gp\n1", id="newline"),
    pytest.param(b"gp_1", id="bytes"),
]


def test_an_invalid_report_is_a_validation_error_and_a_value_error() -> None:
    # ValueError: parsing code that already turns ValueError into MalformedWebhook keeps doing so.
    assert issubclass(InvalidReport, ValidationError)
    assert issubclass(InvalidReport, ValueError)


@pytest.mark.parametrize("field", ["external_id", "payment_id", "provider_event_id"])
@pytest.mark.parametrize("value", BAD_IDS)
def test_an_update_refuses_ids_that_are_not_short_plain_strings(field: str, value: object) -> None:
    with pytest.raises(InvalidReport, match=f"ProviderUpdate.{field}"):
        ProviderUpdate(**{field: value})


@pytest.mark.parametrize("field", ["refund_id", "external_id"])
@pytest.mark.parametrize("value", BAD_IDS)
def test_a_refund_update_refuses_ids_that_are_not_short_plain_strings(field: str, value: object) -> None:
    with pytest.raises(InvalidReport, match=f"RefundUpdate.{field}"):
        RefundUpdate(RefundStatus.SUCCEEDED, **{field: value})


def test_ids_up_to_the_bound_with_any_printable_text_are_accepted() -> None:
    longest = "é" * MAX_ID_LENGTH
    update = ProviderUpdate(external_id=longest, payment_id="pay_1", provider_event_id="evt 2024-01-01/1")
    assert update.external_id == longest


@pytest.mark.parametrize("minor_units", [-1, -3000])
def test_a_negative_refund_is_refused(minor_units: int) -> None:
    with pytest.raises(InvalidReport, match=r"RefundUpdate\.amount must not be negative"):
        RefundUpdate(RefundStatus.SUCCEEDED, refund_id="ref_1", amount=Money.minor(minor_units, XOF))


@pytest.mark.parametrize("field", ["authorized", "captured"])
def test_an_amount_beyond_what_a_bigint_holds_is_refused(field: str) -> None:
    ProviderUpdate(**{field: Money.minor(MAX_MINOR_UNITS, XOF)})
    with pytest.raises(InvalidReport, match=f"at most {MAX_MINOR_UNITS}"):
        ProviderUpdate(**{field: Money.minor(10**19, XOF)})


@pytest.mark.parametrize("field", ["authorized", "captured"])
@pytest.mark.parametrize("value", [5000, "5000", {"amount": 5000}, Money.minor(-1, XOF)], ids=repr)
def test_an_amount_that_is_not_non_negative_money_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidReport, match=f"ProviderUpdate.{field}"):
        ProviderUpdate(**{field: value})


def test_the_bound_is_a_signed_64_bit_integer() -> None:
    assert MAX_MINOR_UNITS == 9_223_372_036_854_775_807


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("outcome", "succeeded"),
        ("fraud_status", "rejected"),
        ("message", 5),
        ("message", {"text": "declined"}),
        ("message", "x" * (MAX_TEXT_LENGTH + 1)),
        ("message", "declined\x00"),
        ("fraud_message", "\udfff"),
        ("next_action", {"kind": "redirect", "url": "https://pay.example/c/1"}),
        ("refunds", "ref_1"),
        ("refunds", [{"status": "succeeded"}]),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_an_update_refuses_fields_of_the_wrong_type_or_shape(field: str, value: object) -> None:
    with pytest.raises(InvalidReport, match=f"ProviderUpdate.{field}"):
        ProviderUpdate(**{field: value})


def test_a_well_formed_update_is_accepted_as_given() -> None:
    refund = RefundUpdate(RefundStatus.SUCCEEDED, refund_id="ref_1", external_id="gr_1", amount=Money.of("500", XOF))
    update = ProviderUpdate(
        outcome=Outcome.SUCCEEDED,
        external_id="gp_1",
        payment_id="pay_1",
        authorized=Money.of("5000", XOF),
        captured=Money.of("5000", XOF),
        provider_event_id="evt_1",
        refunds=[refund],
        fraud_status=FraudStatus.ACCEPTED,
        message="approved\non the phone",
    )
    assert update.refunds == (refund,)
    assert update.captured == Money.of("5000", XOF)


def test_a_refund_update_needs_a_refund_status() -> None:
    with pytest.raises(InvalidReport, match=r"RefundUpdate\.status must be a RefundStatus"):
        RefundUpdate("succeeded")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "never_arrived"),
    [(RefundStatus.SUCCEEDED, True), (RefundStatus.PENDING, True), (RefundStatus.FAILED, 1), (RefundStatus.FAILED, "")],
)
def test_never_arrived_is_true_only_of_a_failed_refund(status: RefundStatus, never_arrived: object) -> None:
    with pytest.raises(InvalidReport, match=r"RefundUpdate\.never_arrived"):
        RefundUpdate(status, "re_1", never_arrived=never_arrived)  # type: ignore[arg-type]
    assert RefundUpdate(RefundStatus.FAILED, "re_1", never_arrived=True).never_arrived is True


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "/checkout/gp_1",
        "ftp://pay.example/c/1",
        "https://",
        "https://user:pw@pay.example/c/1",
        "https://pay.example/c 1",
        "https://pay.example/\ud800",
        "https://pay.example/" + "c" * 3000,
        42,
        {"href": "https://pay.example"},
    ],
    ids=lambda url: repr(url)[:30],
)
def test_a_next_action_url_must_be_an_absolute_http_url(url: Any) -> None:
    with pytest.raises(InvalidReport, match=r"NextAction\.url"):
        NextAction("redirect", url=url)


@pytest.mark.parametrize("url", ["https://pay.example/c/1", "HTTP://127.0.0.1:8765/phone/gp_1?x=1#top"])
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert NextAction("redirect", url=url).url == url


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"kind": "pop_up", "url": "https://pay.example"}, "NextAction.kind must be one of"),
        ({"kind": "redirect"}, "'redirect' NextAction needs a url"),
        ({"kind": "form_post", "method": "POST"}, "'form_post' NextAction needs a url"),
        ({"kind": "qr"}, "'qr' NextAction needs a data"),
        ({"kind": "display"}, "'display' NextAction needs a message"),
        ({"kind": "ussd"}, "'ussd' NextAction needs the code to dial"),
        ({"kind": "redirect", "url": "https://pay.example", "method": "DELETE"}, "method must be 'GET' or 'POST'"),
        ({"kind": "display", "message": {"text": "approve"}}, r"NextAction\.message"),
        ({"kind": "qr", "data": 12345}, r"NextAction\.data"),
        ({"kind": "form_post", "url": "https://pay.example", "fields": "t=1"}, r"NextAction\.fields"),
        ({"kind": "form_post", "url": "https://pay.example", "fields": {"t": 1}}, r"NextAction\.fields\['t'\]"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_next_action_carries_what_its_kind_needs_with_the_right_types(options: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidReport, match=match):
        NextAction(**options)


def test_a_next_action_of_each_kind_is_accepted_with_what_it_needs() -> None:
    NextAction("form_post", url="https://gw.example/pay", method="POST", fields={"token": "t1"})
    NextAction("qr", data="000201010212")
    NextAction("ussd", data="*144*4*1#", message="Approve on your phone")
    NextAction("display", message="Pay at the counter")


def test_the_message_of_a_refused_report_shows_only_the_start_of_a_large_value() -> None:
    with pytest.raises(InvalidReport) as refused:
        ProviderUpdate(external_id="A" * 100_000)
    assert len(str(refused.value)) < 300


@pytest.mark.parametrize(
    "state",
    [{"note": "a\x00b"}, {"a\x00": 1}, {"deep": [{"x": "\x00"}]}],
    ids=["value", "key", "nested"],
)
def test_a_provider_state_holding_a_nul_character_is_refused(state: dict[str, Any]) -> None:
    # PostgreSQL keeps no U+0000 in text or jsonb: refused as built, the same on every store.
    with pytest.raises(InvalidReport, match="NUL character"):
        ProviderUpdate(provider_state=state)


def test_a_provider_state_holding_an_escaped_nul_in_its_text_is_kept() -> None:
    assert ProviderUpdate(provider_state={"note": "\\u0000"}).provider_state == {"note": "\\u0000"}
