"""``paycore.rows``: a payment as the flat values a relational store keeps; ``paycore.key_rows``: claims."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from attrs import evolve

from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidAmount, ValidationError
from paycore.key_rows import ClaimMove, KeyRow, claim_move
from paycore.money import Money
from paycore.rows import (
    BIGINT_MAX,
    EVENT_COLUMNS,
    PAYMENT_COLUMNS,
    RECEIPT_COLUMNS,
    REFUND_COLUMNS,
    VALUES_OF_FIELD,
    changed_fields,
    event_from_values,
    event_values,
    lookup_references,
    payment_from_values,
    payment_values,
    receipt_values,
    refund_from_values,
    refund_values,
)
from paycore.testing.records import make_event, make_payment, make_receipt, rich_payment


def _stored(values: dict[str, object]) -> dict[str, object]:
    """``values`` as a JSON column gives them back (documents through ``json``)."""
    return {key: json.loads(json.dumps(value)) if isinstance(value, (dict, list)) else value
            for key, value in values.items()}  # fmt: skip


def test_every_value_of_a_payment_is_the_value_of_one_field() -> None:
    stored = [name for names in VALUES_OF_FIELD.values() for name in names]
    assert sorted(stored) == sorted(PAYMENT_COLUMNS)


@pytest.mark.parametrize("field", sorted(VALUES_OF_FIELD))
def test_the_values_of_some_fields_are_those_of_the_whole_row(field: str) -> None:
    payment = rich_payment()
    whole = payment_values(payment)
    assert payment_values(payment, [field]) == {name: whole[name] for name in VALUES_OF_FIELD[field]}


def test_the_rows_of_some_refunds_are_those_of_all_of_them() -> None:
    payment = rich_payment()
    every = refund_values(payment)
    assert refund_values(payment, [1]) == [every[1]]
    assert refund_values(payment, []) == []


def test_the_changed_fields_are_those_that_differ_and_not_the_refunds() -> None:
    stored = rich_payment()
    paid = evolve(stored, version=stored.version + 1, description="table 9", refunds=stored.refunds[:1])
    assert changed_fields(stored, paid) == ("description", "version")
    assert changed_fields(paid, evolve(paid, metadata=dict(paid.metadata), references=tuple(paid.references))) == ()


def test_a_value_of_a_field_given_alone_is_still_checked() -> None:
    payment = evolve(make_payment(amount=Money.of("10", "XOF")), captured_amount=Money.of("10", "EUR"))
    with pytest.raises(InvalidAmount):
        payment_values(payment, ["captured_amount"])


def test_a_payment_with_every_field_set_survives_its_values() -> None:
    payment = rich_payment()
    refunds = [refund_from_values(_stored(row), payment.id) for row in refund_values(payment)]
    assert payment_from_values(_stored(payment_values(payment)), refunds) == payment


def test_a_payment_row_has_exactly_the_named_columns() -> None:
    assert tuple(payment_values(rich_payment())) == PAYMENT_COLUMNS


def test_money_is_minor_units_beside_the_currency() -> None:
    payment = make_payment(amount=Money.of("12.500", "KWD"), captured_amount=Money.of("12.500", "KWD"))
    values = payment_values(payment)
    assert (values["amount"], values["captured"], values["currency"]) == (12500, 12500, "KWD")


def test_provider_state_and_references_are_json_documents() -> None:
    payment = make_payment(external_id="cs_1", references=("cs_1", "pi_2"), provider_state={"session": {"n": 1}})
    values = payment_values(payment)
    assert (values["references"], values["provider_state"]) == (["cs_1", "pi_2"], {"session": {"n": 1}})
    json.dumps(values["references"])
    json.dumps(values["provider_state"])


def test_a_payment_with_no_provider_state_reads_back_empty() -> None:
    values = payment_values(make_payment()) | {"provider_state": None, "references": None}
    read = payment_from_values(values)
    assert (dict(read.provider_state), read.references) == ({}, ())


def test_an_amount_a_bigint_cannot_hold_is_refused_naming_it() -> None:
    payment = make_payment(amount=Money(BIGINT_MAX + 1, "XOF"))
    with pytest.raises(InvalidAmount, match=r"amount .* too large to store \(at most 9223372036854775807"):
        payment_values(payment)


def test_a_captured_amount_in_another_currency_is_refused() -> None:
    payment = make_payment(captured_amount=Money.of("10", "EUR"))
    with pytest.raises(InvalidAmount, match=r"captured amount .*EUR.* not in the payment's currency XOF"):
        payment_values(payment)


def test_a_naive_time_is_refused() -> None:
    payment = make_payment(created_at=datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValidationError, match="created_at 2026-01-01T12:00:00 has no time zone"):
        payment_values(payment)


def test_metadata_that_is_not_json_is_refused() -> None:
    payment = make_payment(metadata={"when": {1, 2}})
    with pytest.raises(ValidationError, match="payment metadata cannot be stored as JSON"):
        payment_values(payment)


@pytest.mark.parametrize(
    ("external_id", "references", "lookup"),
    [
        (None, (), ()),
        ("cs_1", (), ("cs_1",)),
        ("cs_1", ("cs_1", "pi_2"), ("cs_1", "pi_2")),
        ("cs_1", ("pi_2",), ("cs_1", "pi_2")),
        (None, ("pi_2", "pi_2"), ("pi_2",)),
    ],
)
def test_a_payment_is_looked_up_by_its_external_id_and_every_reference_once(
    external_id: str | None, references: tuple[str, ...], lookup: tuple[str, ...]
) -> None:
    assert lookup_references(make_payment(external_id=external_id, references=references)) == lookup


def test_refunds_are_numbered_and_read_back_from_a_join() -> None:
    payment = rich_payment()
    rows = refund_values(payment)
    assert [(row["position"], row["payment_id"]) for row in rows] == [(0, payment.id), (1, payment.id)]
    joined = {f"refund_{key}": value for key, value in rows[1].items()}
    assert refund_from_values(joined, payment.id, prefix="refund_") == payment.refunds[1]


def test_a_refund_keeps_what_its_caller_said_about_it_as_a_json_document() -> None:
    payment = rich_payment()
    (first, second) = refund_values(payment)
    assert set(first) == {"payment_id", *REFUND_COLUMNS}
    assert json.loads(json.dumps(first["metadata"])) == {"till": "T2", "cashier": "Awa"}
    assert refund_from_values(_stored(first), payment.id).metadata == {"till": "T2", "cashier": "Awa"}
    assert refund_from_values(_stored(second), payment.id).metadata == payment.refunds[1].metadata


def test_a_refund_stored_before_it_had_metadata_reads_back_with_none() -> None:
    payment = rich_payment()
    (row, _) = refund_values(payment)
    assert refund_from_values({**row, "metadata": None}, payment.id).metadata == {}


def test_refund_metadata_that_is_not_json_is_refused_naming_it() -> None:
    payment = rich_payment()
    odd = evolve(payment.refunds[0], metadata={"till": object()})
    with pytest.raises(ValidationError, match="refund metadata"):
        refund_values(evolve(payment, refunds=(odd, payment.refunds[1])))


def test_an_event_survives_its_values() -> None:
    payment = make_payment()
    for event in (make_event(payment, 1, "created"), make_event(payment, 2, amount=Money.of("0.001", "KWD"))):
        values = event_values(event)
        assert tuple(values) == EVENT_COLUMNS
        assert event_from_values(values) == event


def test_a_receipt_has_its_columns() -> None:
    payment = make_payment(tenant="chez-awa")
    values = receipt_values(make_receipt(payment, "evt-1"))
    assert tuple(values) == RECEIPT_COLUMNS
    assert (values["tenant"], values["event_id"], values["payment_id"]) == ("chez-awa", "evt-1", payment.id)


# -- the claim decision table ------------------------------------------------------------------

NOW = 1_000.0


def _row(*, fingerprint: str = "fp", token: str | None = None, expires_at: float = NOW + 60) -> KeyRow:
    return KeyRow(fingerprint=fingerprint, token=token, result=None if token else {"ok": 1}, expires_at=expires_at)


def test_a_completed_request_is_replayed() -> None:
    assert claim_move(_row(), key="k", fingerprint="fp", now=NOW) is ClaimMove.REPLAY


def test_a_completed_result_past_its_retention_frees_the_key_whatever_the_request() -> None:
    lapsed = _row(expires_at=NOW)
    for fingerprint in ("fp", "other"):
        assert claim_move(lapsed, key="k", fingerprint=fingerprint, now=NOW) is ClaimMove.REPLACE_EXPIRED_RESULT


def test_a_key_used_for_another_request_is_refused_naming_it() -> None:
    for row in (_row(), _row(token="t1"), _row(token="t1", expires_at=NOW - 1)):
        with pytest.raises(IdempotencyKeyReused, match="idempotency key 'k' was already used"):
            claim_move(row, key="k", fingerprint="other", now=NOW)


def test_a_key_whose_first_request_still_runs_is_refused() -> None:
    with pytest.raises(IdempotencyInProgress, match="'k': the first request with it is still running"):
        claim_move(_row(token="t1"), key="k", fingerprint="fp", now=NOW)


def test_a_holder_whose_lease_expired_is_taken_over() -> None:
    for expires_at in (NOW, NOW - 1):
        assert claim_move(_row(token="t1", expires_at=expires_at), key="k", fingerprint="fp", now=NOW) is (
            ClaimMove.TAKE_OVER
        )
