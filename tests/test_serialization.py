"""The JSON wire format: every record survives a round trip exactly."""

from __future__ import annotations

import json

from paycore import Checkout, Money, serialization
from paycore.records import Payment, PaymentEvent, Refund
from paycore.testing.records import make_event, rich_payment


def test_a_payment_with_every_field_set_round_trips() -> None:
    payment = rich_payment()
    assert serialization.loads(serialization.dumps(payment), Payment) == payment


def test_a_checkout_round_trips_as_idempotent_replays_need() -> None:
    payment = rich_payment()
    checkout = Checkout(payment, payment.next_action)
    assert serialization.structure(serialization.unstructure(checkout), Checkout) == checkout


def test_refunds_and_events_round_trip() -> None:
    payment = rich_payment()
    for refund in payment.refunds:
        assert serialization.loads(serialization.dumps(refund), Refund) == refund
    event = make_event(payment, 3, amount=Money.of("1.001", "KWD"), refund_id="re_b")
    assert serialization.loads(serialization.dumps(event), PaymentEvent) == event


def test_money_is_written_as_minor_units_and_code_never_as_a_float() -> None:
    data = json.loads(serialization.dumps(Money.of("12.50", "EUR")))
    assert data == {"currency": "EUR", "minor_units": 1250}


def test_times_keep_their_utc_offset() -> None:
    payment = rich_payment()
    data = json.loads(serialization.dumps(payment))
    assert data["created_at"].endswith("+00:00")
