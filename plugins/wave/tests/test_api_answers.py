"""The provider against Wave's API answers as Wave's reference shows them, served by ``respx`` (no network)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

import paycore_wave.plugin
from paycore.clock import utcnow
from paycore.errors import (
    InvalidAmount,
    ProviderError,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    UnsupportedCurrency,
    UnsupportedOperation,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Customer
from paycore.secrets import Secret
from paycore.status import PaymentStatus, RefundStatus, ReviewReason
from paycore_wave import MissingRedirectUrl
from paycore_wave.client import WaveClient

pytestmark = pytest.mark.anyio

API = "https://api.wave.com"
API_KEY = "wave_sn_prod_YhUNb9dRespxKeyi4bA6"
WEBHOOK_SECRET = "wave_sn_WHS_respx"
SESSION_ID = "cos-18qq25rgr100a"


def session(**fields: Any) -> dict[str, Any]:
    """A checkout session object as Wave's reference shows it (open, awaiting the customer)."""
    return {
        "id": SESSION_ID,
        "amount": "5000",
        "checkout_status": "open",
        "client_reference": None,  # the answers below name no payment unless a test says which
        "currency": "XOF",
        "error_url": "https://chez-awa.example/not-paid",
        "last_payment_error": None,
        "business_name": "Chez Awa",
        "payment_status": "processing",
        "success_url": "https://chez-awa.example/paid",
        "wave_launch_url": f"https://pay.wave.com/c/{SESSION_ID}",
        "when_completed": None,
        "when_created": "2024-01-15T10:00:00Z",
        "when_expires": "2024-01-15T10:30:00Z",
        **fields,
    }


def error(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "message": f"{code} (as Wave says it)"})


@pytest.fixture
def wave() -> Iterator[respx.MockRouter]:
    """Wave's API, mocked: nothing leaves the process."""
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


def make_flow(*, clock: Callable[[], datetime] = utcnow, **settings: Any) -> PaymentFlow:
    provider = {
        "type": "wave",
        "api_key": API_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "success_url": "https://chez-awa.example/paid",
        "error_url": "https://chez-awa.example/not-paid",
        "timeout": 1.0,
        **settings,
    }
    return PaymentFlow.from_config({"providers": {"wave": provider}}, plugins=[paycore_wave.plugin], clock=clock)


@pytest.fixture
async def flow(wave: respx.MockRouter) -> AsyncIterator[PaymentFlow]:
    async with make_flow() as flow:
        yield flow


async def create(flow: PaymentFlow, amount: str = "5000", **options: Any) -> Any:
    return await flow.create_payment(amount=Money.of(amount, "XOF"), provider="wave", order_id="T7", **options)


def found_by_reference(request: httpx.Request) -> httpx.Response:
    """Wave's search answer: the session whose ``client_reference`` was asked for."""
    return httpx.Response(200, json={"result": [session(client_reference=request.url.params["client_reference"])]})


def sent_json(route: respx.Route) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(route.calls.last.request.content)
    return body


# -- creating a checkout session -------------------------------------------------------------------


async def test_a_payment_creates_a_checkout_session_as_wave_documents_it(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent_json(route) == {
        "amount": "5000",
        "currency": "XOF",
        "client_reference": checkout.payment.id,
        "success_url": "https://chez-awa.example/paid",
        "error_url": "https://chez-awa.example/not-paid",
    }
    assert checkout.action is not None
    assert (checkout.action.kind, checkout.action.url) == ("redirect", f"https://pay.wave.com/c/{SESSION_ID}")
    assert checkout.payment.status is PaymentStatus.PROCESSING
    assert checkout.payment.external_id == SESSION_ID
    assert checkout.payment.provider_state == {"session_id": SESSION_ID, "transaction_id": None}


async def test_the_payments_return_url_is_where_wave_sends_the_customer_back(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    await create(flow, return_url="https://chez-awa.example/orders/T7")
    assert sent_json(route)["success_url"] == sent_json(route)["error_url"] == "https://chez-awa.example/orders/T7"


async def test_an_aggregator_and_a_restricted_payer_are_sent_when_configured(wave: respx.MockRouter) -> None:
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    async with make_flow(aggregated_merchant_id="am-7wbj1", restrict_payer=True) as flow:
        await create(flow, customer=Customer(phone="+221761110001"))
    assert sent_json(route)["aggregated_merchant_id"] == "am-7wbj1"
    assert sent_json(route)["restrict_payer_mobile"] == "+221761110001"


@pytest.mark.parametrize(
    "customer",
    [
        None,
        Customer(email="awa@example.com"),
        Customer(phone="0761110001"),
        Customer(phone="221761110001"),
        Customer(phone="+221 76 111 00 01"),
        Customer(phone="+0761110001"),
        Customer(phone="+221761110001\n"),
    ],
    ids=["no-customer", "no-phone", "national", "no-plus", "spaces", "leading-zero", "trailing-newline"],
)
async def test_a_restricted_payer_without_an_e164_phone_is_refused_before_anything_is_stored(
    wave: respx.MockRouter, customer: Customer | None
) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    async with make_flow(restrict_payer=True) as flow:
        with pytest.raises(ValidationError, match="restrict_payer"):
            await create(flow, customer=customer)
        assert await flow.list_payments(order_id="T7") == []
    assert not wave.calls


@pytest.mark.parametrize("phone", ["+221 76 111 00 01", "0761110001", "+221761110001\n"])
async def test_a_refused_restricted_payer_phone_is_not_quoted_in_the_refusal(
    wave: respx.MockRouter, phone: str
) -> None:
    async with make_flow(restrict_payer=True) as flow:
        with pytest.raises(ValidationError, match=r"E\.164") as refused:
            await create(flow, customer=Customer(phone=phone))
    assert "761110001" not in str(refused.value)
    assert "111 00 01" not in str(refused.value)


async def test_a_payment_with_nowhere_to_send_the_customer_back_is_refused_before_anything_is_stored(
    wave: respx.MockRouter,
) -> None:
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    async with make_flow(success_url=None, error_url=None) as flow:
        with pytest.raises(MissingRedirectUrl, match="return_url"):
            await create(flow)
        assert await flow.list_payments(order_id="T7") == []
    assert not route.called


@pytest.mark.parametrize("currency", ["EUR", "USD", "XAF", "GHS"])
async def test_a_payment_in_another_currency_never_reaches_wave(
    flow: PaymentFlow, wave: respx.MockRouter, currency: str
) -> None:
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    with pytest.raises(UnsupportedCurrency):
        await flow.create_payment(amount=Money.minor(5000, currency), provider="wave", order_id="T8")
    assert not route.called
    assert await flow.list_payments(order_id="T8") == []


async def test_a_fraction_of_a_franc_cannot_even_be_written(wave: respx.MockRouter) -> None:
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    with pytest.raises(InvalidAmount, match="XOF"):
        Money.of("4999.5", "XOF")
    assert not route.called


# -- how a call ends -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "request-validation-error"),
        (401, "missing-auth-header"),
        (401, "invalid-auth"),
        (401, "no-matching-api-key"),
        (401, "api-key-revoked"),
        (403, "invalid-wallet"),
        (403, "disabled-wallet"),
        (403, "unauthorized-wallet"),
        (429, "rate-limit-exceeded"),
    ],
)
async def test_a_create_wave_refused_was_not_sent_and_may_be_retried(
    flow: PaymentFlow, wave: respx.MockRouter, status: int, code: str
) -> None:
    route = wave.post("/v1/checkout/sessions")
    route.side_effect = [error(status, code), httpx.Response(200, json=session())]
    with pytest.raises(ProviderNotSent, match=code):
        await create(flow, idempotency_key="T7-create")
    (stored,) = await flow.list_payments(order_id="T7")
    assert (stored.status, stored.external_id, stored.pending_call) == (PaymentStatus.PENDING, None, None)
    retried = await create(flow, idempotency_key="T7-create")
    assert retried.payment.status is PaymentStatus.PROCESSING
    assert route.call_count == 2


def revoked(request: httpx.Request) -> httpx.Response:
    """Wave refusing a revoked key, quoting the key it was shown (and, carelessly, the webhook secret)."""
    key = request.headers["authorization"].removeprefix("Bearer ")
    message = f"API key {key} was revoked; webhooks are still signed with {WEBHOOK_SECRET}"
    return httpx.Response(401, json={"code": f"api-key-revoked:{key}", "message": message})


async def test_wave_s_error_text_is_quoted_without_the_api_key_or_the_webhook_secret(wave: respx.MockRouter) -> None:
    now = [datetime.now(UTC)]
    wave.post("/v1/checkout/sessions").mock(side_effect=[revoked, httpx.Response(200, json=session())])
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").mock(side_effect=revoked)
    async with make_flow(clock=lambda: now[0]) as flow:
        with pytest.raises(ProviderNotSent, match=r"API key \*\*\* was revoked") as refused:
            await create(flow, idempotency_key="T7-create")
        checkout = await create(flow, idempotency_key="T7-create")
        now[0] += timedelta(hours=5)
        await flow.expire_stale(older_than=1800)  # the reaper asks Wave, which refuses: the payment needs review
        payment = await flow.get_payment(checkout.payment.id)
        events = await flow.list_events(payment.id)
    assert payment.needs_review
    assert "was revoked" in payment.review_message
    for shown in (str(refused.value), repr(refused.value), repr(payment), *map(repr, events)):
        assert API_KEY not in shown
        assert WEBHOOK_SECRET not in shown


def echoing(status: int) -> httpx.MockTransport:
    """A Wave answering ``status`` whose error repeats the request it was sent, the customer's phone with it."""

    def answer(request: httpx.Request) -> httpx.Response:
        sent = request.content.decode()
        phone = json.loads(sent)["restrict_payer_mobile"]
        return httpx.Response(status, json={"code": f"bad-{phone}", "message": sent})

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("status", [400, 500])
async def test_wave_s_error_text_is_quoted_without_the_customer_s_phone_it_echoes(status: int) -> None:
    client = WaveClient(Secret("wave_sn_prod_key"), transport=echoing(status))
    body = {"amount": "5000", "currency": "XOF", "restrict_payer_mobile": "+221771234567"}
    with pytest.raises(ProviderNotSent if status < 500 else ProviderOutcomeUnknown) as refused:
        await client.request("POST", "/v1/checkout/sessions", body=body)
    await client.aclose()
    assert "+221771234567" not in str(refused.value)
    assert "bad-***" in str(refused.value)


@pytest.mark.parametrize(
    "echoed",
    ["221771234567", "+221 77 123 45 67", "(+221) 77-123-45-67", "0771234567", "77.123.45.67", "771234567"],
)
async def test_wave_s_error_text_is_quoted_without_the_phone_however_it_writes_it(echoed: str) -> None:
    answer = {"code": "request-validation-error", "message": f"restrict_payer_mobile {echoed} is not a Wave account"}
    refusing = httpx.MockTransport(lambda _: httpx.Response(400, json=answer))
    client = WaveClient(Secret("wave_sn_prod_key"), transport=refusing)
    body = {"amount": "5000", "currency": "XOF", "restrict_payer_mobile": "+221771234567"}
    with pytest.raises(ProviderNotSent) as refused:
        await client.request("POST", "/v1/checkout/sessions", body=body)
    await client.aclose()
    shown = str(refused.value)
    assert "restrict_payer_mobile *** is not a Wave account" in shown
    assert not any(digits in shown.replace(" ", "") for digits in ("1234567", "12345", "4567"))


def wallet_refused(request: httpx.Request) -> httpx.Response:
    """Wave refusing a call about a session, naming the wallet of its customer, though the request did not carry it."""
    message = f"too many requests for wallet +221 77 123 45 67 ({request.method} {request.url.path})"
    return httpx.Response(429, json={"code": "rate-limit-exceeded", "message": message})


@pytest.mark.parametrize("call", ["cancel", "refund", "refresh"])
async def test_wave_s_error_about_a_session_is_quoted_without_its_customer_s_phone(
    flow: PaymentFlow, wave: respx.MockRouter, call: str
) -> None:
    paid = session(payment_status="succeeded", checkout_status="complete", client_reference=None)
    wave.post("/v1/checkout/sessions").respond(200, json=paid if call == "refund" else session())
    checkout = await create(flow, customer=Customer(phone="+221771234567"))
    for route in (
        wave.post(f"/v1/checkout/sessions/{SESSION_ID}/expire"),
        wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund"),
        wave.get(f"/v1/checkout/sessions/{SESSION_ID}"),
    ):
        route.mock(side_effect=wallet_refused)
    calls = {
        "cancel": lambda: flow.cancel(checkout.payment.id),
        "refund": lambda: flow.refund(checkout.payment.id, amount=Money.of("5000", "XOF")),
        "refresh": lambda: flow.refresh(checkout.payment.id),
    }
    with pytest.raises(ProviderError) as refused:
        await calls[call]()
    shown = str(refused.value)
    assert "too many requests for wallet ***" in shown
    assert "1234567" not in shown.replace(" ", "")


@pytest.mark.parametrize("phone", ["-", "e", "+221771234567"])
async def test_wave_s_error_codes_are_read_as_wave_wrote_them_whatever_the_customer_s_phone(
    flow: PaymentFlow, wave: respx.MockRouter, phone: str
) -> None:
    paid = session(payment_status="succeeded", checkout_status="complete")
    wave.post("/v1/checkout/sessions").respond(200, json=paid)
    checkout = await create(flow, customer=Customer(phone=phone))
    wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").mock(return_value=error(400, "checkout-refund-failed"))
    refund = await flow.refund(checkout.payment.id, amount=Money.of("5000", "XOF"))
    assert refund.status is RefundStatus.FAILED, "Wave declined the refund: it is failed, not an error"
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").mock(return_value=error(404, "checkout-session-not-found"))
    polled = await flow.refresh(checkout.payment.id)
    assert polled.review_reason is ReviewReason.UNKNOWN_OUTCOME, "Wave has no such session: an operator looks"


async def test_a_token_in_the_base_url_s_query_is_not_quoted_when_wave_is_not_reached() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = WaveClient(
        Secret("k"), base_url="http://127.0.0.1:1/?api_key=QUERYTOKEN", transport=httpx.MockTransport(unreachable)
    )
    with pytest.raises(ProviderNotSent, match=r"Wave at http://127\.0\.0\.1:1/\?api_key=\*\*\* not reached"):
        await client.request("GET", "/v1/checkout/sessions/cos-1")
    await client.aclose()


async def test_an_unreachable_wave_is_a_call_not_sent(flow: PaymentFlow, wave: respx.MockRouter) -> None:
    wave.post("/v1/checkout/sessions").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ProviderNotSent, match="not reached"):
        await create(flow)


async def test_a_request_that_cannot_be_built_was_not_sent_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, wave: respx.MockRouter
) -> None:
    """An error raised while the request is built (a header value httpx cannot encode) is "not sent": it was
    "outcome unknown", which left the payment processing until a refresh that failed the same way, for ever."""
    from paycore.secrets import Settings

    # The core refuses such an API key when the flow is built; here it gets through, as a key that cannot be
    # sent in a header would if that check missed it.
    monkeypatch.setattr(Settings, "credential", Settings.secret)
    route = wave.post("/v1/checkout/sessions").respond(200, json=session())
    async with make_flow(api_key="wave_sn_prod_caf\u00e9") as flow:
        with pytest.raises(ProviderNotSent, match="could not be built: UnicodeEncodeError") as refused:
            await create(flow)
        assert "caf" not in str(refused.value)
        (stored,) = await flow.list_payments(order_id="T7")
    assert (stored.status, stored.external_id, stored.pending_call) == (PaymentStatus.PENDING, None, None)
    assert route.call_count == 0


@pytest.mark.parametrize(
    "answer",
    [
        error(500, "internal-server-error"),
        error(503, "service-unavailable"),
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("connection reset"),
        httpx.Response(200, content=b"<html>maintenance</html>"),
        httpx.Response(200, json=session(wave_launch_url=None)),
        httpx.Response(200, json=session(checkout_status="pending")),
    ],
    ids=["500", "503", "timeout", "reset", "not-json", "no-launch-url", "unknown-status"],
)
async def test_a_create_without_a_usable_answer_is_unknown_and_settled_by_asking(
    flow: PaymentFlow, wave: respx.MockRouter, answer: Any
) -> None:
    create_route = wave.post("/v1/checkout/sessions")
    create_route.side_effect = [answer]
    search = wave.get("/v1/checkout/sessions/search").mock(side_effect=found_by_reference)
    with contextlib.suppress(ProviderOutcomeUnknown):
        await create(flow)
    (payment,) = await flow.list_payments(order_id="T7")
    assert payment.status in (PaymentStatus.PENDING, PaymentStatus.PROCESSING)
    assert payment.pending_call is not None
    assert payment.pending_call.unknown
    refreshed = await flow.refresh(payment.id)
    assert search.calls.last.request.url.params["client_reference"] == payment.id
    assert refreshed.pending_call is None
    assert refreshed.external_id == SESSION_ID
    assert refreshed.status is PaymentStatus.PROCESSING
    assert create_route.call_count == 1


async def test_a_create_whose_session_wave_never_made_expires_when_asked_once_its_lease_ran_out(
    wave: respx.MockRouter,
) -> None:
    now = [datetime.now(UTC)]
    wave.post("/v1/checkout/sessions").mock(side_effect=httpx.ReadTimeout("no answer"))
    wave.get("/v1/checkout/sessions/search").respond(200, json={"result": []})
    async with make_flow(clock=lambda: now[0]) as flow:
        with contextlib.suppress(ProviderOutcomeUnknown):
            await create(flow)
        (payment,) = await flow.list_payments(order_id="T7")
        # Wave has no such session yet: the request may still be on its way, so nothing is concluded
        assert (await flow.refresh(payment.id)).status is PaymentStatus.PROCESSING
        now[0] += timedelta(seconds=flow.config.idempotency_lease)  # the lease ran out: a timeout more to wait
        assert (await flow.refresh(payment.id)).status is PaymentStatus.PROCESSING
        now[0] += timedelta(seconds=flow.config.provider_timeout)
        assert (await flow.refresh(payment.id)).status is PaymentStatus.EXPIRED


# -- polling -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkout_status", "payment_status", "expected"),
    [
        ("open", "processing", PaymentStatus.PROCESSING),
        ("complete", "processing", PaymentStatus.PROCESSING),
        ("complete", "succeeded", PaymentStatus.SUCCEEDED),
        ("open", "cancelled", PaymentStatus.PROCESSING),  # a failed attempt: the session is still payable
        ("complete", "cancelled", PaymentStatus.FAILED),
        ("expired", "processing", PaymentStatus.EXPIRED),
        ("expired", "cancelled", PaymentStatus.EXPIRED),
    ],
)
async def test_a_polled_session_maps_to_the_payment_status_of_the_readme_table(
    flow: PaymentFlow, wave: respx.MockRouter, checkout_status: str, payment_status: str, expected: PaymentStatus
) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    fields: dict[str, Any] = {"checkout_status": checkout_status, "payment_status": payment_status}
    if payment_status == "succeeded":
        fields["transaction_id"] = "TCQWRRRB4QSCAZ4KM"
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").respond(200, json=session(**fields))
    polled = await flow.refresh(checkout.payment.id)
    assert polled.status is expected
    if expected is PaymentStatus.SUCCEEDED:
        assert polled.captured_amount == Money.of("5000", "XOF")
        assert "TCQWRRRB4QSCAZ4KM" in polled.references
        assert polled.provider_state["transaction_id"] == "TCQWRRRB4QSCAZ4KM"
    else:
        assert polled.captured_amount is None


async def test_a_session_paid_for_less_is_flagged_for_review_not_marked_paid(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    paid_less = session(checkout_status="complete", payment_status="succeeded", amount="4000")
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").respond(200, json=paid_less)
    polled = await flow.refresh(checkout.payment.id)
    assert polled.status is not PaymentStatus.SUCCEEDED
    assert polled.needs_review


async def test_a_session_wave_says_it_does_not_know_is_flagged_not_expired(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").mock(return_value=error(404, "checkout-session-not-found"))
    polled = await flow.refresh(checkout.payment.id)  # Wave made that session: it is not a payment never made
    assert (polled.status, polled.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    assert f"no record of {SESSION_ID}" in polled.review_message


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(404, html="<html><body>Not Found</body></html>"), error(404, "not-found")],
    ids=["a-proxy-s-html-page", "another-code"],
)
async def test_a_404_that_is_not_wave_s_no_such_session_leaves_the_payment_as_it_was(
    flow: PaymentFlow, wave: respx.MockRouter, answer: httpx.Response
) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    retrieve = wave.get(f"/v1/checkout/sessions/{SESSION_ID}").mock(return_value=answer)
    before = await flow.get_payment(checkout.payment.id)
    with pytest.raises(ProviderNotSent, match="404"):
        await flow.refresh(checkout.payment.id)
    assert await flow.get_payment(checkout.payment.id) == before
    paid = session(checkout_status="complete", payment_status="succeeded", transaction_id="T_3")
    retrieve.mock(return_value=httpx.Response(200, json=paid))
    assert (await flow.refresh(checkout.payment.id)).status is PaymentStatus.SUCCEEDED


# -- cancel and refund -----------------------------------------------------------------------------


async def test_a_cancel_expires_the_open_session(flow: PaymentFlow, wave: respx.MockRouter) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    expire = wave.post(f"/v1/checkout/sessions/{SESSION_ID}/expire").respond(200)
    canceled = await flow.cancel(checkout.payment.id)
    assert expire.called
    assert canceled.status is PaymentStatus.CANCELED


async def test_a_cancel_of_a_session_paid_meanwhile_reports_the_payment(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    wave.post(f"/v1/checkout/sessions/{SESSION_ID}/expire").mock(return_value=error(409, "checkout-session-not-open"))
    paid = session(checkout_status="complete", payment_status="succeeded", transaction_id="T_1")
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").respond(200, json=paid)
    after = await flow.cancel(checkout.payment.id)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == Money.of("5000", "XOF")


async def paid_payment(flow: PaymentFlow, wave: respx.MockRouter) -> Any:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    paid = session(checkout_status="complete", payment_status="succeeded", transaction_id="T_2")
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").respond(200, json=paid)
    return await flow.refresh(checkout.payment.id)


async def test_a_refund_refunds_the_whole_session(flow: PaymentFlow, wave: respx.MockRouter) -> None:
    payment = await paid_payment(flow, wave)
    route = wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").respond(200)
    refund = await flow.refund(payment.id, reason="cold food")
    assert route.call_count == 1
    assert route.calls.last.request.content in (b"", b"null")
    assert (refund.status, refund.amount) == (RefundStatus.SUCCEEDED, Money.of("5000", "XOF"))
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.REFUNDED


async def test_part_of_a_session_cannot_be_refunded_and_nothing_is_sent(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    payment = await paid_payment(flow, wave)
    route = wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").respond(200)
    with pytest.raises(UnsupportedOperation, match="part"):
        await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
    assert not route.called
    assert await flow.get_payment(payment.id) == payment


async def test_a_refund_wave_refuses_fails_and_leaves_the_amount_refundable(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    payment = await paid_payment(flow, wave)
    wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").mock(return_value=error(400, "checkout-refund-failed"))
    refund = await flow.refund(payment.id)
    assert refund.status is RefundStatus.FAILED
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.refundable_amount == Money.of("5000", "XOF")


async def test_a_refund_whose_answer_is_lost_stays_pending_and_a_poll_never_fails_it(
    flow: PaymentFlow, wave: respx.MockRouter
) -> None:
    payment = await paid_payment(flow, wave)
    route = wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund")
    route.mock(return_value=error(500, "internal-server-error"))
    with contextlib.suppress(ProviderOutcomeUnknown):
        await flow.refund(payment.id)
    (refund,) = (await flow.get_payment(payment.id)).refunds
    assert refund.status is RefundStatus.PENDING
    polled = await flow.refresh(payment.id)
    assert polled.refund(refund.id).status is RefundStatus.PENDING
    assert polled.status is PaymentStatus.SUCCEEDED
    assert route.call_count == 1


async def test_a_poll_wave_refuses_changes_nothing(flow: PaymentFlow, wave: respx.MockRouter) -> None:
    wave.post("/v1/checkout/sessions").respond(200, json=session())
    checkout = await create(flow)
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").mock(return_value=error(401, "api-key-revoked"))
    before = await flow.get_payment(checkout.payment.id)
    with pytest.raises(ProviderError):
        await flow.refresh(checkout.payment.id)
    assert await flow.get_payment(checkout.payment.id) == before


@pytest.mark.parametrize("status", [301, 302, 307, 308, 204])
async def test_a_redirect_to_a_refund_or_a_cancel_is_never_read_as_done(
    flow: PaymentFlow, wave: respx.MockRouter, status: int
) -> None:
    # A proxy, or an http:// base_url, answers with a redirect httpx does not follow: Wave never saw the call,
    # or no one can tell. A 204 stays Wave's answer (an empty 2xx body) and is the control.
    moved = {"location": "https://api.wave.com/elsewhere"} if status != 204 else {}
    payment = await paid_payment(flow, wave)
    wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").respond(status, headers=moved)
    if status == 204:
        assert (await flow.refund(payment.id)).status is RefundStatus.SUCCEEDED
        return
    with contextlib.suppress(ProviderOutcomeUnknown):
        await flow.refund(payment.id)
    after = await flow.get_payment(payment.id)
    assert (after.status, after.refunded_amount) == (PaymentStatus.SUCCEEDED, Money.of("0", "XOF"))
    assert [refund.status for refund in after.refunds] == [RefundStatus.PENDING]

    wave.post("/v1/checkout/sessions").respond(200, json=session(id="cos-open"))
    checkout = await create(flow)
    wave.post("/v1/checkout/sessions/cos-open/expire").respond(status, headers=moved)
    wave.get("/v1/checkout/sessions/cos-open").respond(200, json=session(id="cos-open"))
    with contextlib.suppress(ProviderOutcomeUnknown):
        await flow.cancel(checkout.payment.id)
    assert (await flow.get_payment(checkout.payment.id)).status is not PaymentStatus.CANCELED


@pytest.mark.parametrize("secrets", ["fail found", "ref"], ids=["in-both-codes", "in-refund"])
async def test_wave_s_error_codes_are_read_as_wave_wrote_them_whatever_the_secrets_they_hold(
    wave: respx.MockRouter, secrets: str
) -> None:
    """A configured secret that occurs in a code ("fail" in checkout-refund-failed) is hidden where the code is
    shown, never where it is compared: Wave's decline stays a decline, its lost session a lost session."""
    paid = session(payment_status="succeeded", checkout_status="complete")
    wave.post("/v1/checkout/sessions").respond(200, json=paid)
    wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").mock(return_value=error(400, "checkout-refund-failed"))
    wave.get(f"/v1/checkout/sessions/{SESSION_ID}").mock(return_value=error(404, "checkout-session-not-found"))
    async with make_flow(webhook_secret=f"{secrets} {WEBHOOK_SECRET}") as flow:
        checkout = await create(flow)
        refund = await flow.refund(checkout.payment.id, amount=Money.of("5000", "XOF"))
        polled = await flow.refresh(checkout.payment.id)
        events = await flow.list_events(checkout.payment.id)
    assert refund.status is RefundStatus.FAILED, "Wave declined the refund: it is failed, not an error"
    assert [e.message for e in events if e.refund_id == refund.id and e.to_status == "failed"] != [
        "not sent: the request never reached the provider"
    ]
    assert polled.review_reason is ReviewReason.UNKNOWN_OUTCOME, "Wave has no such session: an operator looks"
    assert "reports no record of" in polled.review_message


async def test_a_secret_in_an_error_code_is_still_hidden_where_the_code_is_shown(wave: respx.MockRouter) -> None:
    wave.post("/v1/checkout/sessions").mock(return_value=error(400, "checkout-refused-respx"))
    async with make_flow(webhook_secret=f"respx {WEBHOOK_SECRET}") as flow:
        with pytest.raises(ProviderNotSent) as refused:
            await create(flow)
    assert "checkout-refused-***" in str(refused.value)
    assert "respx" not in str(refused.value)


async def test_an_answer_that_cannot_be_decoded_is_an_unknown_outcome(wave: respx.MockRouter) -> None:
    """A 2xx whose body its Content-Encoding does not decode was sent and answered unreadably: unknown, never
    the HTTP library's own error."""
    paid = session(payment_status="succeeded", checkout_status="complete")
    wave.post("/v1/checkout/sessions").respond(200, json=paid)

    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all"))

    wave.post(f"/v1/checkout/sessions/{SESSION_ID}/refund").mock(side_effect=garbled)
    client = WaveClient(Secret(API_KEY), base_url=API)
    with pytest.raises(ProviderOutcomeUnknown, match=r"answer to POST .*/refund could not be read: DecodingError"):
        await client.request("POST", f"/v1/checkout/sessions/{SESSION_ID}/refund")
    await client.aclose()
    async with make_flow() as flow:
        checkout = await create(flow)
        refund = await flow.refund(checkout.payment.id, amount=Money.of("5000", "XOF"))
    assert refund.status is RefundStatus.PENDING, "sent, its answer unreadable: the refund waits for Wave's word"
