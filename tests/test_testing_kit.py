"""The provider author's kit in ``paycore.testing``: deliveries, Standard Webhooks signing, scripted answers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money
from paycore.errors import ConfigurationError, ProviderNotSent, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.status import PaymentStatus
from paycore.testing import (
    Delivery,
    DeliveryInbox,
    FakeProvider,
    ScriptedAnswers,
    generate_standard_webhook_secret,
    interrupt_next_call,
    sign_standard_webhook,
    standard_webhook_delivery,
)

pytest_plugins = ["pytester"]

PROVIDERS_PAGE = Path(__file__).parents[1] / "docs" / "providers.md"

# The example of https://www.standardwebhooks.com (its specification's test vector).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _docs_blocks() -> list[str]:
    """The python code blocks of the "Conformance" section of docs/providers.md, in order."""
    page = PROVIDERS_PAGE.read_text()
    section = page[page.index("\n## Conformance\n") :]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


# -- Standard Webhooks signing ---------------------------------------------------------------


def test_signing_matches_the_standard_webhooks_specification() -> None:
    headers = sign_standard_webhook(SPEC_SECRET, SPEC_BODY, SPEC_ID, SPEC_TIMESTAMP)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


def test_a_delivery_is_signed_now_under_a_fresh_id_unless_told_otherwise() -> None:
    first = standard_webhook_delivery(SPEC_SECRET, SPEC_BODY)
    second = standard_webhook_delivery(SPEC_SECRET, SPEC_BODY)
    assert first.header("webhook-id") != second.header("webhook-id")
    assert first.header("content-type") == "application/json"
    pinned = standard_webhook_delivery(SPEC_SECRET, SPEC_BODY, msg_id=SPEC_ID, timestamp=SPEC_TIMESTAMP)
    assert pinned.header("webhook-signature") == SPEC_SIGNATURE


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not+base64!", "whsec_"])
def test_a_secret_that_is_not_whsec_and_base64_is_refused_without_being_shown(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="'whsec_' followed by") as raised:
        sign_standard_webhook(secret, SPEC_BODY, SPEC_ID, SPEC_TIMESTAMP)
    key = secret.removeprefix("whsec_")
    assert not key or key not in str(raised.value)


def test_a_generated_secret_signs_differently_from_another() -> None:
    one, other = generate_standard_webhook_secret(), generate_standard_webhook_secret()
    assert one.startswith("whsec_")
    signed = [sign_standard_webhook(s, SPEC_BODY, SPEC_ID, SPEC_TIMESTAMP)["webhook-signature"] for s in (one, other)]
    assert signed[0] != signed[1]


# -- Delivery ----------------------------------------------------------------------------------


def test_a_delivery_reads_its_headers_in_any_case() -> None:
    delivery = Delivery(b"{}", {"Webhook-Signature": "v1,abc"})
    assert delivery.header("WEBHOOK-SIGNATURE") == "v1,abc"
    assert dict(delivery.headers) == {"webhook-signature": "v1,abc"}
    assert delivery.without_headers("Webhook-Signature").header("webhook-signature") is None
    assert delivery.with_headers({"X-Extra": "1"}).header("x-extra") == "1"


def test_a_flipped_byte_changes_one_digit_and_keeps_the_signature() -> None:
    delivery = standard_webhook_delivery(SPEC_SECRET, b'{"amount": 5000, "currency": "XOF"}')
    flipped = delivery.with_flipped_byte()
    assert flipped.body == b'{"amount": 5001, "currency": "XOF"}'
    assert flipped.headers == delivery.headers


def test_a_body_without_digits_has_its_last_byte_flipped() -> None:
    assert Delivery(b"abc").with_flipped_byte().body == b"abb"


# -- DeliveryInbox -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_inbox_keeps_what_is_posted_to_it_and_answers_ok() -> None:
    inbox = DeliveryInbox()
    delivery = standard_webhook_delivery(SPEC_SECRET, SPEC_BODY, msg_id=SPEC_ID)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=inbox), base_url="http://merchant") as client:
        response = await client.post("/hooks", content=delivery.body, headers=dict(delivery.headers))
    assert response.status_code == 200
    (received,) = inbox.with_header("webhook-id", SPEC_ID)
    assert received.body == SPEC_BODY
    assert received.header("webhook-signature") == delivery.header("webhook-signature")


@pytest.mark.anyio
async def test_the_inbox_answers_413_to_a_body_longer_than_its_limit_as_paycore_s_endpoint_does() -> None:
    inbox = DeliveryInbox(204, max_body_bytes=10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=inbox), base_url="http://merchant") as client:
        short = await client.post("/hooks", content=b"0123456789")
        long = await client.post("/hooks", content=b"0123456789a")
    assert (short.status_code, long.status_code) == (204, 413)
    assert inbox.answers == [204, 413]
    assert [delivery.body for delivery in inbox.deliveries] == [b"0123456789", b"0123456789a"]


# -- ScriptedAnswers -------------------------------------------------------------------------------


def test_scripted_answers_come_in_order_then_the_default() -> None:
    answers = ScriptedAnswers()
    answers.script("capture", "first", "second")
    assert [answers.answer("capture", "default") for _ in range(3)] == ["first", "second", "default"]
    assert answers.calls == ["capture"] * 3


def test_a_scripted_exception_is_raised_whether_an_instance_or_a_class() -> None:
    answers = ScriptedAnswers()
    answers.script("initiate", ProviderNotSent("connection refused"), ProviderOutcomeUnknown)
    with pytest.raises(ProviderNotSent, match="connection refused"):
        answers.answer("initiate", None)
    with pytest.raises(ProviderOutcomeUnknown, match="initiate"):
        answers.answer("initiate", None)
    assert answers.remaining() == 0


def test_the_next_call_is_scripted_whatever_its_operation() -> None:
    answers = ScriptedAnswers()
    answers.script("refund", "refund answer")
    answers.script_next_call(ProviderNotSent("down"))
    with pytest.raises(ProviderNotSent):
        answers.answer("check_status", None)
    assert answers.answer("refund", None) == "refund answer"


def test_the_scripted_answers_example_of_the_docs_runs() -> None:
    exec(compile(_docs_blocks()[1], str(PROVIDERS_PAGE), "exec"), {})


# -- interrupt_next_call -----------------------------------------------------------------------------


@pytest.fixture
async def flow() -> AsyncIterator[PaymentFlow]:
    config = {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}}
    plugins = [paycore.testing.fake, paycore_memory.plugin]
    async with PaymentFlow.from_config(config, plugins=plugins, entry_points=False, environ={}) as flow:
        yield flow


def _fake(flow: PaymentFlow) -> FakeProvider:
    provider = flow.provider("fake")
    assert isinstance(provider, FakeProvider)
    return provider


@pytest.mark.anyio
async def test_a_call_interrupted_before_it_is_sent_never_reaches_the_provider(flow: PaymentFlow) -> None:
    interrupt_next_call(_fake(flow), sent=False)
    with pytest.raises(ProviderNotSent):
        await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T1")
    assert _fake(flow).calls == []
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T2")
    assert checkout.payment.status is PaymentStatus.SUCCEEDED


@pytest.mark.anyio
async def test_a_call_interrupted_after_it_is_sent_happens_at_the_provider_and_loses_its_answer(
    flow: PaymentFlow,
) -> None:
    interrupt_next_call(_fake(flow), sent=True)
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T1")
    assert checkout.payment.pending_call is not None
    assert checkout.payment.pending_call.unknown
    assert checkout.payment.id in _fake(flow).ledger
    settled = await flow.refresh(checkout.payment.id)
    assert settled.status is PaymentStatus.SUCCEEDED
    assert _fake(flow).calls == [("initiate", checkout.payment.id), ("check_status", checkout.payment.id)]


# -- the docs' example ---------------------------------------------------------------------------------


def test_the_conformance_example_of_the_docs_is_about_100_lines_and_passes_the_suite(
    pytester: pytest.Pytester,
) -> None:
    example = _docs_blocks()[0]
    assert len(example.splitlines()) <= 110, "docs/providers.md says: a whole provider package in about 100 lines"
    pytester.makepyfile(test_acme=example)
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:django")
    passed, _, failed = recorder.listoutcomes()
    assert failed == []
    ran = {report.nodeid.split("::")[-1].partition("[")[0] for report in passed}
    assert "test_a_delivery_with_a_stale_timestamp_is_refused" in ran
    assert "test_a_report_with_a_negative_refund_amount_is_refused" in ran
    assert "test_a_call_with_an_unknown_outcome_is_settled_by_asking_never_by_sending_again" in ran
    assert "test_a_refund_the_provider_declines_is_failed_and_refundable_again" in ran
    assert "test_a_payment_paid_short_is_never_recorded_as_paid_in_full" in ran
