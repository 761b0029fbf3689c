"""How the hot path builds records without ``__init__``: the records equal what their classes make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from paycore import builders
from paycore.builders import compile_builder, compile_replace
from paycore.calls import CallOperation, CallState, ProviderCall
from paycore.changes import replace_refund
from paycore.keys import KeyBinding
from paycore.money import Money
from paycore.records import Payment, PaymentEvent, Refund, WebhookReceipt
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.records import make_payment

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _event_fields() -> dict[str, Any]:
    return {
        "id": "evt_1_3",
        "payment_id": "pay_1",
        "sequence": 3,
        "kind": "status_changed",
        "cause": "webhook",
        "tenant": "t1",
        "from_status": "processing",
        "to_status": "succeeded",
        "amount": Money.of("5000", "XOF"),
        "refund_id": None,
        "provider_event_id": "evt_fake_1",
        "message": "",
        "at": NOW,
    }


@pytest.fixture(params=["draft", "setters"])
def slow_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of filling a record: a draft class (Python 3.12+) and each slot's setter (older Pythons)."""
    if request.param == "setters":
        monkeypatch.setattr(builders, "_draft", lambda cls: None)


@pytest.mark.usefixtures("slow_path")
def test_a_built_record_equals_one_made_by_its_class() -> None:
    build = compile_builder(PaymentEvent)
    fields = _event_fields()
    built = build(**fields)
    assert type(built) is PaymentEvent
    assert built == PaymentEvent(**fields)
    assert hash(built) == hash(PaymentEvent(**fields))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.kind = "other"  # type: ignore[misc]


@pytest.mark.usefixtures("slow_path")
def test_a_replaced_record_equals_evolve_and_converts_only_what_changed() -> None:
    replace = compile_replace(Payment)
    payment = make_payment(id="pay_1", metadata={"a": "1"})
    replaced = replace(payment, {"status": PaymentStatus.PROCESSING, "version": 4, "metadata": {"b": "2"}})
    assert type(replaced) is Payment
    assert replaced == attrs.evolve(payment, status=PaymentStatus.PROCESSING, version=4, metadata={"b": "2"})
    assert replaced.amount is payment.amount  # unchanged fields are shared
    with pytest.raises(TypeError):
        replaced.metadata["c"] = "3"  # type: ignore[index]  # converted to a read-only mapping
    assert replace(payment, {}) == payment


def test_a_refund_is_replaced_as_evolve_would() -> None:
    refund = Refund(id="re_1", payment_id="pay_1", amount=Money.of("500", "XOF"), created_at=NOW, updated_at=NOW)
    changed = {"status": RefundStatus.SUCCEEDED, "external_id": "x_1"}
    assert replace_refund(refund, changed) == attrs.evolve(refund, **changed)


def test_a_receipt_is_built_with_every_field() -> None:
    build = compile_builder(WebhookReceipt)
    fields = {"provider": "fake", "event_id": "evt_1", "payment_id": "pay_1", "tenant": None, "received_at": NOW}
    assert build(**fields) == WebhookReceipt(**fields)
    with pytest.raises(TypeError):
        build(*fields.values())  # by keyword only: a field added or moved cannot take another's value


def test_a_field_with_a_plain_default_may_be_left_out_and_a_worked_out_one_may_not() -> None:
    @attrs.frozen
    class Tab:
        table: str
        covers: int = 2
        orders: list[str] = attrs.Factory(list)

    build = compile_builder(Tab)
    assert build(table="T4", orders=[]) == Tab("T4")
    assert build(table="T4", covers=6, orders=["thiebou"]) == Tab("T4", 6, ["thiebou"])
    with pytest.raises(TypeError):
        build(table="T4")  # a factory's value is never shared between records: it must be given


def test_a_class_with_a_check_to_run_gets_no_builder() -> None:
    @attrs.frozen
    class Checked:
        value: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(AssertionError):
        compile_builder(Checked)


def test_a_key_binding_built_for_now_equals_one_made_by_its_class() -> None:
    ttl = timedelta(hours=24)
    made = KeyBinding("order", "k-1", NOW, ttl)
    built = KeyBinding.at("order", "k-1", NOW, ttl)
    assert type(built) is KeyBinding
    assert built == made
    assert built.candidate_ids("pay") == made.candidate_ids("pay")  # the same window, so the same ids
    assert built.new_id("pay") == made.new_id("pay")


def test_a_claimed_binding_keeps_its_window_and_the_ids_worked_out() -> None:
    binding = KeyBinding.at("order", "k-1", NOW, timedelta(hours=24))
    first = binding.new_id("pay")
    claimed = binding.with_claim(completer=None, prefetched={})
    assert claimed == binding
    assert claimed.prefetched == {}
    assert claimed.candidate_ids("pay") == binding.candidate_ids("pay")
    assert claimed.new_id("pay") is first  # worked out once, not again


def test_a_started_provider_call_equals_one_made_by_its_class() -> None:
    call = ProviderCall.start(
        CallOperation.REFUND, now=NOW, lease=timedelta(seconds=30), amount=Money.of("500", "XOF"), refund_id="re_1"
    )
    assert type(call) is ProviderCall
    made = ProviderCall(
        id=call.id,
        operation=CallOperation.REFUND,
        started_at=NOW,
        lease_until=NOW + timedelta(seconds=30),
        amount=Money.of("500", "XOF"),
        refund_id="re_1",
    )
    assert call == made
    assert (call.state, call.reason, call.cause) == (CallState.SUBMITTING, "", "api")
    assert call.id != ProviderCall.start(CallOperation.REFUND, now=NOW, lease=timedelta(seconds=30)).id
