"""Wave's webhooks: the ``Wave-Signature`` check (before anything is parsed) and what each event reports."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

import paycore_wave.plugin
from paycore.errors import ConfigurationError, InvalidSignature, MalformedWebhook
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import Outcome, PaymentStatus
from paycore.testing.webhooks import Delivery
from paycore_wave import WaveProvider, WaveSimulator
from paycore_wave.signing import verify

pytestmark = pytest.mark.anyio

SECRET = "wave_sn_WHS_xz4m6g8rjs9bshxy05xj4khcvjv7j3hcp4fbpvv6met0zdrjvezg"
OTHER_SECRET = "wave_sn_WHS_00000000000000000000000000000000000000000000000000000"
PAYMENT_ID = "pay_5hVqZk2rXw9LmN3bTy7d"
"""A payment id as paycore makes them (``paycore.records.new_id``), the session's ``client_reference``."""

Signer = Callable[[str, int, bytes], str]


def completed_event(**session: Any) -> dict[str, Any]:
    """A ``checkout.session.completed`` event shaped as Wave sends it."""
    data = {
        "id": "cos-1ya2rewh0139m",
        "amount": "5000",
        "currency": "XOF",
        "error_url": "https://chez-awa.example/not-paid",
        "success_url": "https://chez-awa.example/paid",
        "when_created": "2025-06-25T16:55:44Z",
        "when_expires": "2025-06-25T17:25:44Z",
        "business_name": "Chez Awa",
        "payment_status": "succeeded",
        "transaction_id": "TRG7XHH6UNR2SOACI",
        "when_completed": "2025-06-25T16:56:03Z",
        "checkout_status": "complete",
        "wave_launch_url": "https://pay.wave.com/c/cos-1ya2rewh0139m?a=5000&c=XOF&m=Chez%20Awa",
        "client_reference": PAYMENT_ID,
        "last_payment_error": None,
        **session,
    }
    return {"id": "AE_sn_H1N-vRZsWyU1", "type": "checkout.session.completed", "data": data}


def failed_event() -> dict[str, Any]:
    """A ``checkout.session.payment_failed`` event."""
    event = completed_event(
        payment_status="cancelled",
        transaction_id=None,
        last_payment_error={"code": "insufficient-funds", "message": "The payer does not have enough money"},
    )
    return {**event, "id": "AE_sn_failed_1", "type": "checkout.session.payment_failed"}


def body_of(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


async def provider_of(flow: PaymentFlow) -> WaveProvider:
    provider = flow.provider("wave")
    assert isinstance(provider, WaveProvider)
    return provider


# -- the signature -------------------------------------------------------------------------------


def test_the_simulators_signature_is_the_one_computed_from_wave_s_documented_algorithm(
    simulator: WaveSimulator, wave_signature: Signer
) -> None:
    body = b'{"id":"AE_1","type":"test.test_event","data":{}}'
    assert simulator.sign(body, timestamp=1639081943) == {"wave-signature": wave_signature(SECRET, 1639081943, body)}


def test_a_signature_computed_independently_from_wave_s_documented_algorithm_verifies(wave_signature: Signer) -> None:
    body = body_of(completed_event())
    now = int(time.time())
    verify(body, {"Wave-Signature": wave_signature(SECRET, now, body)}, secrets=[SECRET])


def test_the_signature_covers_the_timestamp_and_the_body_concatenated_without_separator(wave_signature: Signer) -> None:
    body = b'{"a":1}'
    now = int(time.time())
    dotted = wave_signature(SECRET, now, b"." + body).split(",v1=")[1]
    with pytest.raises(InvalidSignature):
        verify(body, {"wave-signature": f"t={now},v1={dotted}"}, secrets=[SECRET])


def test_any_v1_of_a_rotation_verifies_with_the_secret_it_was_made_with(wave_signature: Signer) -> None:
    body, now = b'{"id":"AE_2"}', int(time.time())
    old = wave_signature(OTHER_SECRET, now, body).split(",v1=")[1]
    new = wave_signature(SECRET, now, body).split(",v1=")[1]
    header = {"wave-signature": f"t={now},v1={old},v1={new}"}
    verify(body, header, secrets=[SECRET])
    verify(body, header, secrets=[OTHER_SECRET])
    with pytest.raises(InvalidSignature, match="no Wave-Signature v1 matches"):
        verify(body, header, secrets=["wave_sn_WHS_neither"])


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_a_timestamp_outside_five_minutes_is_refused_even_when_correctly_signed(
    skew: int, wave_signature: Signer
) -> None:
    body = b'{"id":"AE_3"}'
    stamp = int(time.time()) + skew
    with pytest.raises(InvalidSignature, match="timestamp"):
        verify(body, {"wave-signature": wave_signature(SECRET, stamp, body)}, secrets=[SECRET])


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=abc",
        "t=abc,v1=abc",
        "t=1,t=2,v1=abc",
        "t=1639081943",
        "t=1639081943;v1=abc",
        "t=-5,v1=abc",
        "t=\uff11\uff12\uff13,v1=abc",  # fullwidth digits
    ],
)
def test_a_malformed_wave_signature_header_is_refused(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(b"{}", {"wave-signature": header}, secrets=[SECRET])


def test_a_timestamp_with_more_digits_than_a_float_holds_is_refused(wave_signature: Signer) -> None:
    """Refused as a bad signature, not an OverflowError (found by test_webhook_fuzz.py)."""
    body = b'{"id":"AE_8"}'
    with pytest.raises(InvalidSignature, match="timestamp"):
        verify(body, {"wave-signature": wave_signature(SECRET, 10**400, body)}, secrets=[SECRET])


def test_a_delivery_without_a_wave_signature_header_is_refused() -> None:
    with pytest.raises(InvalidSignature, match="no Wave-Signature header"):
        verify(b"{}", {"content-type": "application/json"}, secrets=[SECRET])


def test_an_error_never_quotes_the_secret_or_the_signature(wave_signature: Signer) -> None:
    body, now = b'{"id":"AE_4"}', int(time.time())
    header = wave_signature(OTHER_SECRET, now, body)
    with pytest.raises(InvalidSignature) as refused:
        verify(body, {"wave-signature": header}, secrets=[SECRET])
    assert SECRET not in str(refused.value)
    assert header.split("v1=")[1] not in str(refused.value)


async def test_the_signature_is_checked_before_the_body_is_read(flow: PaymentFlow, wave_signature: Signer) -> None:
    garbage = b"\xff not json"
    with pytest.raises(InvalidSignature):
        await flow.handle_webhook(
            "wave", garbage, {"wave-signature": wave_signature(OTHER_SECRET, int(time.time()), garbage)}
        )
    with pytest.raises(MalformedWebhook):
        await flow.handle_webhook(
            "wave", garbage, {"wave-signature": wave_signature(SECRET, int(time.time()), garbage)}
        )


async def test_a_provider_holding_old_and_new_secrets_accepts_deliveries_signed_with_either(
    simulator: WaveSimulator, flow_factory: Callable[..., PaymentFlow], wave_signature: Signer
) -> None:
    body = body_of({"id": "AE_5", "type": "test.test_event", "data": {}})
    now = int(time.time())
    async with flow_factory(simulator, webhook_secret=f"{OTHER_SECRET} {SECRET}") as flow:
        provider = await provider_of(flow)
        for secret in (OTHER_SECRET, SECRET):
            await provider.verify_webhook(body, {"wave-signature": wave_signature(secret, now, body)})


async def test_an_empty_webhook_secret_is_a_configuration_error(
    simulator: WaveSimulator, flow_factory: Callable[..., PaymentFlow]
) -> None:
    with pytest.raises(ConfigurationError, match="webhook_secret"):
        async with flow_factory(simulator, webhook_secret="  ") as flow:
            flow.provider("wave")


# -- what the events report ------------------------------------------------------------------------


async def test_a_completed_session_reports_its_amount_references_and_event_id(flow: PaymentFlow) -> None:
    (update,) = await (await provider_of(flow)).parse_webhook(body_of(completed_event()), {})
    assert update.outcome is Outcome.SUCCEEDED
    assert update.captured == Money.of("5000", "XOF")
    assert update.external_id == "cos-1ya2rewh0139m"
    assert update.references == ("TRG7XHH6UNR2SOACI",)
    assert update.payment_id == PAYMENT_ID
    assert update.provider_event_id == "AE_sn_H1N-vRZsWyU1"
    assert update.next_action is None


async def test_a_failed_payment_reports_failed_with_wave_s_error_code(flow: PaymentFlow) -> None:
    (update,) = await (await provider_of(flow)).parse_webhook(body_of(failed_event()), {})
    assert update.outcome is Outcome.FAILED
    assert update.captured is None
    assert update.message.startswith("insufficient-funds")


async def test_a_failed_attempt_on_a_session_still_open_reports_pending_with_wave_s_error_code(
    flow: PaymentFlow,
) -> None:
    """Wave keeps the session open after an attempt the customer may retry: it is still payable."""
    event = failed_event()
    event["data"].update(checkout_status="open", when_completed=None)
    (update,) = await (await provider_of(flow)).parse_webhook(body_of(event), {})
    assert update.outcome is Outcome.PENDING
    assert update.message.startswith("insufficient-funds")


@pytest.mark.parametrize("event_type", ["b2b.payment_received", "merchant.payment_received", "test.test_event"])
async def test_events_about_no_checkout_session_report_nothing(flow: PaymentFlow, event_type: str) -> None:
    body = body_of({"id": "AE_6", "type": event_type, "data": {"id": "T_1", "amount": "100"}})
    assert await (await provider_of(flow)).parse_webhook(body, {}) == []


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (completed_event(payment_status="cancelled"), "describes a session"),
        ({**completed_event(), "type": "checkout.session.payment_failed"}, "describes a session"),
        (completed_event(amount="5000.5"), "5000.5"),
        (completed_event(amount="-5000"), "decimal string"),
        (completed_event(amount=5000), "decimal string"),
        (completed_event(amount="5e3"), "decimal string"),
        (completed_event(currency="EURO"), "EURO"),
        (completed_event(checkout_status="paid"), "checkout_status"),
        (completed_event(payment_status="refunded"), "payment_status"),
        (completed_event(id=42), "'id'"),
        ({**completed_event(), "id": ""}, "'id'"),
        ({"id": "AE_7", "type": "checkout.session.completed", "data": "cos-1"}, "JSON object"),
    ],
)
async def test_a_body_paycore_cannot_trust_is_malformed(flow: PaymentFlow, event: dict[str, Any], why: str) -> None:
    with pytest.raises(MalformedWebhook, match=why):
        await (await provider_of(flow)).parse_webhook(body_of(event), {})


@pytest.mark.parametrize("event_type", [None, 7, [], ["checkout.session.completed"], {"checkout.session.completed": 1}])
async def test_an_event_type_that_is_not_a_string_is_malformed(flow: PaymentFlow, event_type: object) -> None:
    """A type that is missing, a list or an object is refused, not a TypeError (found by test_webhook_fuzz.py)."""
    body = body_of({**completed_event(), "type": event_type})
    with pytest.raises(MalformedWebhook, match="is not a string"):
        await (await provider_of(flow)).parse_webhook(body, {})


@pytest.mark.parametrize(
    "event_type",
    ["checkout.session.refunded", "merchant.payment_sent", "b2b.payment_sent", "CHECKOUT.SESSION.COMPLETED"],
)
async def test_a_signed_event_of_a_type_paycore_does_not_read_is_acknowledged_and_changes_nothing(
    flow: PaymentFlow, simulator: WaveSimulator, event_type: str
) -> None:
    """Wave retries a delivery it sees fail: one paycore does not read is answered 200 and touches no payment,
    even when its data looks like one of paycore's sessions."""
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave", order_id="T13")
    before = await flow.get_payment(checkout.payment.id)
    history = await flow.list_events(before.id)
    data = {**simulator.session(before.external_id or ""), "payment_status": "succeeded", "amount": "1"}
    body = body_of({"id": "AE_unread_1", "type": event_type, "data": data})
    assert await simulator.deliver(Delivery(body, simulator.sign(body))) == 200
    assert await flow.handle_webhook("wave", body, simulator.sign(body)) == []
    assert await flow.get_payment(before.id) == before
    assert await flow.list_events(before.id) == history


async def test_a_known_event_whose_session_is_broken_is_still_refused(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    """Only an unread type is acknowledged blindly: a checkout event paycore reads but cannot trust is a 400."""
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave", order_id="T14")
    before = await flow.get_payment(checkout.payment.id)
    event = json.loads(simulator.pay(before.external_id or "").body)
    event["data"]["amount"] = "5000.5"
    body = body_of(event)
    assert await simulator.deliver(Delivery(body, simulator.sign(body))) == 400
    with pytest.raises(MalformedWebhook, match=r"5000\.5"):
        await flow.handle_webhook("wave", body, simulator.sign(body))
    assert await flow.get_payment(before.id) == before


@pytest.mark.parametrize(
    "reference",
    ["ORDER-42", "pay_8812", "pay_order 42/2024", None, ""],
    ids=["another-systems-reference", "one-that-begins-as-paycores", "free-text", "none", "empty"],
)
async def test_a_session_another_system_made_on_the_account_is_acknowledged_and_changes_nothing(
    flow: PaymentFlow, simulator: WaveSimulator, reference: str | None
) -> None:
    """The restaurant's other till software takes Wave payments on the same account: their sessions name no paycore
    payment. Answered 404, Wave would send each again; even one paycore could not read is acknowledged."""
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave", order_id="T15")
    before = await flow.get_payment(checkout.payment.id)
    event = json.loads(simulator.pay(before.external_id or "").body)
    event["data"].update(id="cos-someone-else", client_reference=reference, amount="5000.5")
    body = body_of(event)
    assert await simulator.deliver(Delivery(body, simulator.sign(body))) == 200
    assert await flow.handle_webhook("wave", body, simulator.sign(body)) == []
    assert await flow.get_payment(before.id) == before


async def test_a_session_without_its_amount_never_marks_the_payment_paid(flow: PaymentFlow) -> None:
    event = completed_event()
    del event["data"]["amount"]
    (update,) = await (await provider_of(flow)).parse_webhook(body_of(event), {})
    assert update.outcome is Outcome.SUCCEEDED
    assert update.captured is None


async def test_a_failed_payment_delivered_to_the_flow_fails_the_payment(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    checkout = await flow.create_payment(amount=Money.of("2500", "XOF"), provider="wave", order_id="T12")
    assert checkout.payment.external_id is not None
    delivery = simulator.fail(checkout.payment.external_id, "payer-mobile-mismatch", "Another Wave account tried")
    await flow.handle_webhook("wave", delivery.body, delivery.headers)
    failed = await flow.get_payment(checkout.payment.id)
    assert failed.status is PaymentStatus.FAILED
    assert failed.captured_amount is None


async def test_a_stale_delivery_changes_nothing(
    flow: PaymentFlow, simulator: WaveSimulator, wave_signature: Signer
) -> None:
    checkout = await flow.create_payment(amount=Money.of("2500", "XOF"), provider="wave", order_id="T13")
    assert checkout.payment.external_id is not None
    genuine = simulator.pay(checkout.payment.external_id)
    stale = wave_signature(SECRET, int(time.time()) - 3600, genuine.body)
    before = await flow.get_payment(checkout.payment.id)
    with pytest.raises(InvalidSignature):
        await flow.handle_webhook("wave", genuine.body, {"wave-signature": stale})
    assert await flow.get_payment(checkout.payment.id) == before
    await flow.handle_webhook("wave", genuine.body, genuine.headers)
    assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("setting", ["webhook_tolerance", "timeout"])
@pytest.mark.parametrize("value", ["nan", float("inf"), -300, 0, True, "soon"])
def test_a_setting_of_seconds_that_is_not_a_usable_number_is_a_configuration_error(
    simulator: WaveSimulator, flow_factory: Callable[..., PaymentFlow], setting: str, value: object
) -> None:
    # NaN would turn the replay window off: every old delivery would pass the timestamp check.
    with pytest.raises(ConfigurationError, match=f"'{setting}' must be a (positive )?number of seconds"):
        flow_factory(simulator, **{setting: value})


def test_an_api_key_with_a_trailing_newline_is_refused_at_start_up_unshown() -> None:
    settings = {"type": "wave", "api_key": "wave_sn_chez_awa\n", "webhook_secret": SECRET}
    with pytest.raises(ConfigurationError, match="secret 'api_key' must be") as refused:
        PaymentFlow.from_config({"providers": {"pay": settings}}, plugins=[paycore_wave.plugin], environ={})
    assert "chez_awa" not in str(refused.value)


async def test_a_completed_event_of_another_session_for_the_payment_is_refused_and_changes_nothing(
    flow: PaymentFlow, simulator: WaveSimulator, wave_signature: Signer
) -> None:
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave", order_id="T14")
    own = checkout.payment.external_id
    assert own is not None
    event = completed_event(id="cos-another-session", client_reference=checkout.payment.id)  # a second checkout
    body = body_of(event)
    with pytest.raises(MalformedWebhook, match="cos-another-session"):
        await flow.handle_webhook("wave", body, {"wave-signature": wave_signature(SECRET, int(time.time()), body)})
    after = await flow.get_payment(checkout.payment.id)
    assert after == checkout.payment, "neither paid by another session's report nor pointed at that session"
    assert simulator.session(own)["checkout_status"] == "open"


async def test_aggregated_merchants_of_one_account_acknowledge_each_other_s_session_events(
    simulator: WaveSimulator,
) -> None:
    """Wave's webhooks belong to the account, so each aggregated merchant's endpoint gets every session event of
    the account: one about the other merchant's payment is acknowledged (200, nothing changed), not refused for
    Wave to send again."""
    from .conftest import provider_settings

    providers = {code: provider_settings(simulator, aggregated_merchant_id=merchant)
                 for code, merchant in (("wave_a", "am-aaaa"), ("wave_b", "am-bbbb"))}  # fmt: skip
    async with PaymentFlow.from_config({"providers": providers}, plugins=[paycore_wave.plugin]) as flow:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave_b", order_id="B1")
        delivery = simulator.pay(checkout.payment.external_id or "")
        assert await flow.handle_webhook("wave_a", delivery.body, dict(delivery.headers)) == []
        assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
        (paid,) = await flow.handle_webhook("wave_b", delivery.body, dict(delivery.headers))
        assert paid.status is PaymentStatus.SUCCEEDED
