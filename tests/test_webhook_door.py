"""Nothing a delivery can send ends in a 500: the safe JSON reader and the webhook door's answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx
import pytest

from paycore import hookimpl
from paycore.asgi import create_app
from paycore.errors import CurrencyMismatch, InvalidAmount, InvalidTransition, MalformedWebhook, PaymentNotFound
from paycore.flow import PaymentFlow
from paycore.hookspecs import ProviderRegistrar
from paycore.money import Money
from paycore.providers import Capabilities
from paycore.records import ProviderUpdate
from paycore.status import Outcome
from paycore.testing.fake import SIGNATURE_HEADER, FakeProvider, sign
from paycore.wire import MAX_JSON_DEPTH, InvalidReport, load_json_object

# -- load_json_object --------------------------------------------------------------------------


def test_a_json_object_is_read_as_a_dict() -> None:
    body = json.dumps({"id": "evt_1", "data": {"amount": 5000, "items": [1, 2.5, None, True]}}).encode()
    assert load_json_object(body, what="body") == {
        "id": "evt_1",
        "data": {"amount": 5000, "items": [1, 2.5, None, True]},
    }


def test_nesting_up_to_the_bound_is_read() -> None:
    body = b'{"a":' * (MAX_JSON_DEPTH - 1) + b"[]" + b"}" * (MAX_JSON_DEPTH - 1)
    assert load_json_object(body, what="body")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param(b"\xff\xfe{}", "dummy body is not UTF-8", id="not-utf8"),
        pytest.param(b'{"a": "\xc3"}', "not UTF-8", id="truncated-utf8"),
        pytest.param(b"{not json", "dummy body is not JSON", id="not-json"),
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"\xef\xbb\xbf{}", "not JSON", id="bom"),
        pytest.param(b"[1, 2]", "must be a JSON object, not a JSON array", id="array"),
        pytest.param(b'"text"', "not a JSON string", id="string"),
        pytest.param(b"null", "not a JSON null", id="null"),
        pytest.param(b"5000", "not a JSON number", id="number"),
        pytest.param(b'{"a":' * 1000 + b"1" + b"}" * 1000, "nests deeper than", id="1000-deep"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nests deeper than", id="100000-deep"),
        pytest.param(b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "nests", id="bound+1"),
        pytest.param(b'{"id": "\\ud800"}', "lone surrogate", id="surrogate-value"),
        pytest.param(b'{"\\udfff": 1}', "lone surrogate", id="surrogate-key"),
        pytest.param(b'{"a": [{"b": "x\\ud83d"}]}', "lone surrogate", id="nested-surrogate"),
        pytest.param(b'{"state": {"note": "a\\u0000b"}}', "NUL character", id="nul-value"),
        pytest.param(b'{"\\u0000": 1}', "NUL character", id="nul-key"),
        pytest.param(b'{"amount": NaN}', "NaN, which is not JSON", id="nan"),
        pytest.param(b'{"amount": -Infinity}', "-Infinity", id="infinity"),
        pytest.param(b'{"amount": 1e999}', "too large for a float", id="huge-float"),
        pytest.param(b'{"amount": ' + b"9" * 5000 + b"}", "not JSON paycore reads", id="5000-digits"),
        pytest.param(b'{"status": "failed", "status": "succeeded"}', "repeats the key 'status'", id="duplicate-key"),
    ],
)
def test_what_a_strict_reader_would_not_read_the_same_way_is_malformed(body: bytes, match: str) -> None:
    with pytest.raises(MalformedWebhook, match=match):
        load_json_object(body, what="dummy body")


def test_a_valid_surrogate_pair_is_text() -> None:
    assert load_json_object(b'{"name": "\\ud83d\\ude00"}', what="body") == {"name": "\U0001f600"}


@pytest.mark.parametrize("body", ["{}", None, 5], ids=repr)
def test_only_bytes_are_read(body: Any) -> None:
    with pytest.raises(MalformedWebhook, match="must be bytes"):
        load_json_object(body, what="body")


def test_bytearray_and_memoryview_bodies_are_read() -> None:
    assert load_json_object(bytearray(b'{"a": 1}'), what="body") == {"a": 1}
    assert load_json_object(memoryview(b'{"a": 1}'), what="body") == {"a": 1}


# -- the door: what paycore.asgi answers ------------------------------------------------------


class RaisingProvider(FakeProvider):
    """A fake provider whose webhook parsing raises the exception the test gives it."""

    name = "raising"
    capabilities = Capabilities(webhooks=True)
    failure: Exception = MalformedWebhook("unset")

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Every delivery is taken as signed: the test is about what follows."""

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """Raise what the test asked for."""
        raise type(self).failure


class RaisingPlugin:
    """Registers :class:`RaisingProvider` (type ``raising``)."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(RaisingProvider)


@pytest.fixture
async def door(make_flow: Callable[..., PaymentFlow]) -> AsyncIterator[tuple[PaymentFlow, httpx.AsyncClient]]:
    """A flow with ``raising`` and ``fake`` (no tenant), ``fake`` for tenant ``chez-awa``, and a client of its door."""
    config = {
        "providers": {
            "raising": {"type": "raising", "webhook_secret": "whsec-test"},
            "fake": {"type": "fake", "webhook_secret": "whsec-test"},
        },
        "tenants": {"chez-awa": {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}}},
    }
    async with make_flow(config, plugins=(RaisingPlugin(),)) as flow:
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield flow, client


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        InvalidReport("RefundUpdate.amount must not be negative: -1 XOF"),
        InvalidAmount("Money.of('1.5', 'XOF'): XOF has no minor unit"),
        CurrencyMismatch("cannot compare 5000 XOF and 50.00 EUR"),
        InvalidTransition("payment pay_1 is succeeded; it cannot be canceled"),
        MalformedWebhook("dummy webhook body nests deeper than 64 levels"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_refused_reports_and_amounts_are_answered_400_not_500(
    door: tuple[PaymentFlow, httpx.AsyncClient], failure: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = door
    monkeypatch.setattr(RaisingProvider, "failure", failure)
    response = await client.post("/raising", content=b"{}")
    assert response.status_code == 400
    assert str(failure) in response.json()["detail"]


@pytest.mark.anyio
async def test_a_long_refusal_detail_is_cut_short(
    door: tuple[PaymentFlow, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = door
    monkeypatch.setattr(RaisingProvider, "failure", MalformedWebhook("x" * 10_000))
    response = await client.post("/raising", content=b"{}")
    assert response.status_code == 400
    assert len(response.json()["detail"]) <= 300


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        PaymentNotFound("no payment 'pay_1'"),
        PaymentNotFound("no payment 'pay_1' of provider 'wave' for tenant 'chez-awa'"),
    ],
    ids=["unknown", "another-tenants"],
)
async def test_a_404_says_not_found_and_the_provider_code_only(
    door: tuple[PaymentFlow, httpx.AsyncClient], failure: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = door
    monkeypatch.setattr(RaisingProvider, "failure", failure)
    response = await client.post("/raising", content=b"{}")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "detail": "not found (provider 'raising')"}


@pytest.mark.anyio
async def test_an_unknown_payment_and_another_tenants_payment_get_the_same_answer(
    door: tuple[PaymentFlow, httpx.AsyncClient],
) -> None:
    flow, client = door
    fake = flow.provider("fake", tenant="chez-awa")
    assert isinstance(fake, FakeProvider)
    fake.script("initiate", "pending")
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="fake", order_id="T1", tenant="chez-awa"
    )
    theirs, theirs_headers = fake.webhook(checkout.payment.id)
    report = {"id": "evt_1", "payment_id": "pay_missing", "outcome": "succeeded", "captured": [5000, "XOF"]}
    missing = json.dumps(report).encode()
    unknown = await client.post("/fake", content=missing, headers={SIGNATURE_HEADER: sign(missing, "whsec-test")})
    another_tenants = await client.post("/fake", content=theirs, headers=theirs_headers)
    assert unknown.status_code == another_tenants.status_code == 404
    assert unknown.json() == another_tenants.json() == {"error": "not_found", "detail": "not found (provider 'fake')"}


@pytest.mark.anyio
async def test_a_body_above_the_flows_configured_limit_is_answered_413(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    config = {"webhook_max_bytes": 64, "providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}}
    async with make_flow(config) as flow:
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            refused = await client.post("/fake", content=b"x" * 65)
            assert refused.status_code == 413
            assert "64 bytes" in refused.json()["detail"]
            within = await client.post("/fake", content=b"x" * 64)
            assert within.status_code == 401  # read, then refused for its signature


@pytest.mark.anyio
async def test_an_app_reading_more_than_the_flow_accepts_still_answers_413(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    config = {"webhook_max_bytes": 64, "providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}}
    async with make_flow(config) as flow:
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False, max_body_bytes=1000))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            refused = await client.post("/fake", content=b"x" * 65)
    assert refused.status_code == 413
    assert refused.json()["error"] == "body_too_large"


@pytest.mark.anyio
async def test_a_declared_length_above_the_limit_is_refused_before_the_body_is_read(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    config = {"webhook_max_bytes": 64, "providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}}}
    async with make_flow(config) as flow:
        app = create_app(flow, manage_flow=False)
        received: list[str] = []
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            received.append("body")
            return {"type": "http.request", "body": b"x" * 10, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/fake", "headers": [(b"content-length", b"1000000")]}
        await app(scope, receive, send)
        assert sent[0]["status"] == 413
        assert received == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(
            lambda body: body.replace(b'"outcome": "succeeded"', b'"outcome": "failed", "outcome": "succeeded"'),
            id="duplicate-key",
        ),
        pytest.param(
            lambda body: body.replace(b'"refunds": []', b'"refunds": [], "note": "\\ud800"'), id="lone-surrogate"
        ),
    ],
)
async def test_the_fake_providers_deliveries_are_read_as_strictly_as_every_providers(
    door: tuple[PaymentFlow, httpx.AsyncClient], rewrite: Callable[[bytes], bytes]
) -> None:
    flow, client = door
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T-1")).payment
    fake.settle(payment.id, Outcome.SUCCEEDED)
    body, _ = fake.webhook(payment.id)  # paid, as the delivery's last word
    rewritten = rewrite(body)  # re-signed: only the reading is under test
    assert rewritten != body
    body = rewritten
    response = await client.post("/fake", content=body, headers={SIGNATURE_HEADER: sign(body, "whsec-test")})
    assert response.status_code == 400
    assert await flow.get_payment(payment.id) == payment
