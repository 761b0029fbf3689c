"""Stripe webhooks: the signature check (against a header built as Stripe documents it) and the events read."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import stripe

import paycore_stripe.plugin
from paycore.errors import ConfigurationError, InvalidSignature, MalformedWebhook
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import Outcome, RefundStatus
from paycore_stripe.webhooks import parse_event, verify

SECRET = "whsec_testSigningSecret"
OTHER = "whsec_anotherSigningSecret"


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """A Stripe-Signature header built by hand from Stripe's documentation: v1 = HMAC-SHA256(secret, "t.body")."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={stamp},v1={digest}"}


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}).encode()


def intent(status: str, **fields: Any) -> dict[str, Any]:
    data = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 5000,
        "amount_capturable": 0,
        "amount_received": 0,
        "currency": "xof",
        "status": status,
        "metadata": {"paycore_payment_id": "pay_1"},
    }
    return {**data, **fields}


BODY = event("payment_intent.succeeded", intent("succeeded", amount_received=5000))


def test_the_sdk_accepts_the_header_built_as_stripe_documents_it() -> None:
    headers = signed(BODY)
    constructed = stripe.Webhook.construct_event(BODY, headers["Stripe-Signature"], SECRET)
    assert constructed.id == "evt_1"
    verify(BODY, headers, secrets=[SECRET], tolerance=300)


def test_the_sdks_own_signing_helper_verifies() -> None:
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), SECRET)
    verify(BODY, {"stripe-signature": header}, secrets=[SECRET], tolerance=300)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (dict, "no Stripe-Signature"),
        (lambda: signed(BODY, OTHER), "no v1 signature matches"),  # signed when the test runs, not collected
        (lambda: {"Stripe-Signature": "t=99999999999999999999,v1=00"}, "malformed"),
        (lambda: {"Stripe-Signature": "t=abc,v1=00"}, "malformed"),
        (lambda: {"Stripe-Signature": "v1=00"}, "missing"),
    ],
    ids=["unsigned", "other-secret", "huge-timestamp", "text-timestamp", "no-timestamp"],
)
def test_a_delivery_that_stripe_did_not_sign_just_now_is_refused(
    headers: Callable[[], dict[str, str]], reason: str
) -> None:
    with pytest.raises(InvalidSignature, match=reason):
        verify(BODY, headers(), secrets=[SECRET], tolerance=300)


@pytest.mark.parametrize("offset", [-330, 330])
def test_a_delivery_signed_outside_the_tolerance_is_refused(offset: int) -> None:
    headers = signed(BODY, timestamp=int(time.time()) + offset)
    with pytest.raises(InvalidSignature, match="more than 300s"):
        verify(BODY, headers, secrets=[SECRET], tolerance=300)


def test_a_body_changed_after_signing_is_refused() -> None:
    with pytest.raises(InvalidSignature):
        verify(BODY.replace(b"5000", b"5001"), signed(BODY), secrets=[SECRET], tolerance=300)


def test_a_body_that_is_not_utf8_is_refused_before_anything_is_read() -> None:
    with pytest.raises(InvalidSignature, match="not UTF-8"):
        verify(b"\xff" + BODY, signed(BODY), secrets=[SECRET], tolerance=300)


def test_during_a_rotation_either_secret_verifies() -> None:
    verify(BODY, signed(BODY, OTHER), secrets=[SECRET, OTHER], tolerance=300)


def test_a_succeeded_intent_reports_the_amount_received_and_the_event_id() -> None:
    (update,) = parse_event(BODY)
    assert update.outcome is Outcome.SUCCEEDED
    assert update.captured == Money.of("5000", "XOF")
    assert (update.payment_id, update.external_id, update.provider_event_id) == ("pay_1", "pi_1", "evt_1")


def test_an_authorized_intent_reports_the_amount_capturable() -> None:
    body = event("payment_intent.amount_capturable_updated", intent("requires_capture", amount_capturable=5000))
    (update,) = parse_event(body)
    assert update.outcome is Outcome.AUTHORIZED
    assert update.authorized == Money.of("5000", "XOF")
    assert update.captured is None


def test_a_failed_attempt_leaves_the_payment_open_with_the_decline_as_message() -> None:
    error = {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    }
    body = event("payment_intent.payment_failed", intent("requires_payment_method", last_payment_error=error))
    (update,) = parse_event(body)
    assert update.outcome is Outcome.PENDING
    assert "insufficient_funds" in update.message


def test_an_event_whose_object_contradicts_its_type_is_malformed() -> None:
    with pytest.raises(MalformedWebhook, match="must be"):
        parse_event(event("payment_intent.succeeded", intent("requires_capture", amount_capturable=5000)))


@pytest.mark.parametrize(
    "obj",
    [
        intent("succeeded", amount_received=-5000),
        intent("succeeded", amount_received="5000"),
        intent("succeeded", amount_received=5000, currency="zzz"),
        intent("succeeded", amount_received=5000, metadata={"paycore_payment_id": 7}),
        intent("unheard_of"),
    ],
)
def test_a_value_paycore_cannot_accept_is_malformed(obj: dict[str, Any]) -> None:
    with pytest.raises(MalformedWebhook):
        parse_event(
            event((obj.get("status") == "unheard_of" and "payment_intent.created") or "payment_intent.succeeded", obj)
        )


@pytest.mark.parametrize("status", [["succeeded"], {"succeeded": True}])
def test_an_intent_whose_status_is_not_a_string_is_malformed(status: object) -> None:
    """A status that is a list or an object is refused, not a TypeError (found by test_webhook_fuzz.py)."""
    with pytest.raises(MalformedWebhook, match="must be"):
        parse_event(event("payment_intent.succeeded", {**intent("succeeded", amount_received=5000), "status": status}))


def session(payment_status: str, **fields: Any) -> dict[str, Any]:
    """A complete Checkout Session paid (or not yet) by a delayed payment method."""
    data = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "amount_subtotal": 1234,
        "amount_total": 1234,
        "client_reference_id": "pay_1",
        "currency": "eur",
        "metadata": {"paycore_payment_id": "pay_1"},
        "payment_intent": "pi_1",
        "payment_status": payment_status,
        "status": "complete",
    }
    return {**data, **fields}


def test_a_delayed_payment_that_succeeded_reports_the_session_total_as_captured() -> None:
    (update,) = parse_event(event("checkout.session.async_payment_succeeded", session("paid")))
    assert (update.outcome, update.captured) == (Outcome.SUCCEEDED, Money.of("12.34", "EUR"))
    assert (update.external_id, update.references, update.payment_id) == ("cs_test_1", ("pi_1",), "pay_1")


def test_a_delayed_payment_that_failed_reports_the_payment_failed() -> None:
    (update,) = parse_event(event("checkout.session.async_payment_failed", session("unpaid")))
    assert (update.outcome, update.captured) == (Outcome.FAILED, None)
    assert (update.external_id, update.references) == ("cs_test_1", ("pi_1",))


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("checkout.session.async_payment_failed", session("paid")),
        ("checkout.session.async_payment_succeeded", session("unpaid")),
        ("checkout.session.async_payment_succeeded", session("paid", status="open")),
        ("checkout.session.async_payment_succeeded", session("paid", amount_total=None)),
        ("checkout.session.async_payment_failed", session(["unpaid"])),
    ],
)
def test_a_delayed_payment_event_whose_session_contradicts_it_is_malformed(
    event_type: str, obj: dict[str, Any]
) -> None:
    with pytest.raises(MalformedWebhook, match=event_type):
        parse_event(event(event_type, obj))


def refund_object(status: str) -> dict[str, Any]:
    """A Refund object made at Stripe (no paycore id in its metadata), in ``status``."""
    return {
        "id": "re_dashboard",
        "object": "refund",
        "amount": 2000,
        "currency": "xof",
        "payment_intent": "pi_1",
        "status": status,
        "metadata": {"paycore_payment_id": "pay_1"},
    }


@pytest.mark.parametrize("status", ["succeeded", "pending", "requires_action", ["failed"]])
def test_a_refund_failed_event_whose_refund_did_not_fail_is_malformed(status: Any) -> None:
    """The type decides: a refund.failed event never reports a refund succeeded (found by test_webhook_fuzz.py)."""
    with pytest.raises(MalformedWebhook, match=r"refund\.failed"):
        parse_event(event("refund.failed", refund_object(status)))


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_a_refund_failed_event_reports_the_refund_failed(status: str) -> None:
    """A refund.failed event whose refund failed or was canceled reports it failed."""
    (update,) = parse_event(event("refund.failed", refund_object(status)))
    (reported,) = update.refunds
    assert reported.status is RefundStatus.FAILED
    assert (reported.external_id, reported.amount) == ("re_dashboard", Money.of("2000", "XOF"))


@pytest.mark.parametrize(
    ("status", "reported"), [("succeeded", RefundStatus.SUCCEEDED), ("failed", RefundStatus.FAILED)]
)
def test_a_charge_refund_updated_event_reports_its_refund_as_refund_updated_does(
    status: str, reported: RefundStatus
) -> None:
    """Before 2024-10-28.acacia, only charge.refund.updated tells that a refund of a payment settled."""
    (update,) = parse_event(event("charge.refund.updated", refund_object(status)))
    assert [update] == parse_event(event("refund.updated", refund_object(status)))
    (refund,) = update.refunds
    assert (refund.status, refund.external_id, refund.amount) == (reported, "re_dashboard", Money.of("2000", "XOF"))
    assert (update.external_id, update.payment_id) == ("pi_1", "pay_1")


def test_a_refund_event_reports_the_refund_with_paycores_ids() -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 2000,
        "currency": "xof",
        "payment_intent": "pi_1",
        "status": "succeeded",
        "metadata": {"paycore_payment_id": "pay_1", "paycore_refund_id": "re_paycore"},
    }
    (update,) = parse_event(event("refund.created", refund))
    (reported,) = update.refunds
    assert (reported.status, reported.refund_id, reported.external_id) == (RefundStatus.SUCCEEDED, "re_paycore", "re_1")
    assert reported.amount == Money.of("2000", "XOF")
    assert update.payment_id == "pay_1"


def test_an_event_type_paycore_does_not_read_is_acknowledged_and_reports_nothing() -> None:
    assert parse_event(event("customer.created", {"id": "cus_1", "object": "customer"})) == []


def test_an_event_without_its_id_is_malformed() -> None:
    body = json.dumps({"object": "event", "type": "payment_intent.succeeded", "data": {"object": intent("succeeded")}})
    with pytest.raises(MalformedWebhook, match="id"):
        parse_event(body.encode())


def test_an_api_key_with_a_trailing_newline_is_refused_at_start_up_unshown() -> None:
    settings = {"type": "stripe", "api_key": "sk_test_chez_awa\n", "webhook_secret": "whsec_x"}
    with pytest.raises(ConfigurationError, match="secret 'api_key' must be") as refused:
        PaymentFlow.from_config({"providers": {"pay": settings}}, plugins=[paycore_stripe.plugin], environ={})
    assert "chez_awa" not in str(refused.value)


def test_the_provider_s_attributes_never_show_its_api_key_or_webhook_secrets() -> None:
    """A debugger, an error tracker's locals or ``vars(provider)`` shows the provider's secrets as ``***``."""
    settings = {"type": "stripe", "api_key": "sk_test_chez_awa_51Hx", "webhook_secret": "whsec_old whsec_new"}
    flow = PaymentFlow.from_config({"providers": {"pay": settings}}, plugins=[paycore_stripe.plugin], environ={})
    shown = repr(vars(flow.provider("pay")))
    assert "chez_awa" not in shown
    assert "whsec_old" not in shown
    assert "whsec_new" not in shown


@pytest.mark.parametrize("event_type", ["refund.created", "refund.updated", "charge.refund.updated"])
def test_a_refund_event_of_an_expired_authorization_is_acknowledged_and_reports_nothing(event_type: str) -> None:
    """Before 2025-03-31.basil Stripe records an expired authorization as a Refund with reason
    expired_uncaptured_charge: no money the customer paid goes back, so the payment's refunds are not told of it."""
    refund = {**refund_object("succeeded"), "reason": "expired_uncaptured_charge"}
    assert parse_event(event(event_type, refund)) == []
