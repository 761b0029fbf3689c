"""The gateway's REST API, pages and webhooks, called directly over an in-process transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from paycore_dummy import DummyGateway, GatewayNotRunning, RetryPolicy

pytestmark = pytest.mark.anyio

Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
async def gateway(make_gateway: Callable[..., DummyGateway]) -> AsyncIterator[DummyGateway]:
    async with make_gateway() as running:
        yield running


def api_client(gateway: DummyGateway, api_key: str) -> httpx.AsyncClient:
    """A client of ``gateway``'s API in the same process, authenticated with ``api_key``."""
    transport = httpx.ASGITransport(app=gateway)
    return httpx.AsyncClient(
        transport=transport, base_url="http://gateway.test", headers={"authorization": f"Bearer {api_key}"}
    )


@pytest.fixture
async def client(gateway: DummyGateway, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, api_key) as http:
        yield http


def payment_body(amount: int = 5000, **extra: object) -> dict[str, object]:
    return {"amount": amount, "currency": "XOF", "reference": "pay_1", **extra}


async def post_cut_short(gateway: DummyGateway, path: str, body: bytes, arrived: int, api_key: str) -> list[Any]:
    """POST ``body`` to ``path`` from a client that goes away after ``arrived`` bytes; what the gateway sent back."""
    messages = [{"type": "http.request", "body": body[:arrived], "more_body": True}, {"type": "http.disconnect"}]
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    headers = [
        (b"host", b"gateway.test"),
        (b"authorization", f"Bearer {api_key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "headers": headers}
    await gateway(scope, receive, send)
    return sent


async def test_creating_a_payment_answers_201_with_a_checkout_url(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/payments", json=payment_body())
    assert response.status_code == 201
    data = response.json()
    assert data["status"] == "requires_action"
    assert data["next_action"] == {"type": "redirect", "url": f"http://gateway.test/checkout/{data['id']}"}


async def test_a_mobile_money_payment_asks_to_approve_on_the_phone(client: httpx.AsyncClient) -> None:
    data = (await client.post("/v1/payments", json=payment_body(method="mobile_money"))).json()
    assert data["next_action"]["type"] == "approve_on_phone"
    assert data["next_action"]["url"].endswith(f"/phone/{data['id']}")
    assert data["next_action"]["ussd_code"].startswith("*144*")


async def test_a_wrong_api_key_is_refused_with_401(client: httpx.AsyncClient, gateway: DummyGateway) -> None:
    response = await client.post("/v1/payments", json=payment_body(), headers={"authorization": "Bearer sk_test_wrong"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert gateway.payments == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 0),
        ("amount", "5000"),
        ("currency", "francs"),
        ("currency", "ßab"),  # upper-cased, four letters: 'SSAB'
        ("currency", "ééé"),
        ("reference", None),
        ("reference", "p" * 256),
        ("capture", "yes"),
        ("items", [{"name": "Soup", "quantity": -2, "unit_price": 2500}]),
        ("items", [{"name": "Soup", "quantity": 0, "unit_price": 2500}]),
        ("items", [{"name": "Soup", "quantity": True, "unit_price": 2500}]),
        ("items", [{"name": "Soup", "quantity": 1, "unit_price": -1}]),
        ("items", [{"name": "Soup", "quantity": 1, "unit_price": False}]),
        ("items", [{"name": "Soup", "quantity": 1.5, "unit_price": 1}]),
        ("items", [{"name": "Soup", "quantity": 1, "unit_price": 1}] * 1001),
    ],
)
async def test_a_bad_field_is_refused_with_400_naming_it(
    client: httpx.AsyncClient, gateway: DummyGateway, field: str, value: object
) -> None:
    response = await client.post("/v1/payments", json=payment_body(**{field: value}))
    assert response.status_code == 400
    assert repr(field) in response.json()["error"]["message"]
    assert gateway.payments == {}


async def test_a_body_holding_a_nul_character_is_refused_with_400_and_changes_nothing(
    client: httpx.AsyncClient, gateway: DummyGateway
) -> None:
    response = await client.post("/v1/payments", json=payment_body(reference="pay_\x00"))
    assert response.status_code == 400
    assert "NUL character" in response.json()["error"]["message"]
    assert gateway.payments == {}
    created = (await client.post("/v1/payments", json=payment_body())).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    refund = await client.post(f"/v1/payments/{created['id']}/refunds", json={"amount": 1000, "reference": "re_\x00"})
    assert refund.status_code == 400
    assert gateway.payments[created["id"]].refunds == []


async def test_the_same_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, gateway: DummyGateway
) -> None:
    first = await client.post("/v1/payments", json=payment_body(), headers={"idempotency-key": "k1"})
    again = await client.post("/v1/payments", json=payment_body(), headers={"idempotency-key": "k1"})
    assert again.json()["id"] == first.json()["id"]
    assert len(gateway.payments) == 1


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 3000 + b"1" + b"}" * 3000, b'{"a":' * 65 + b"1" + b"}" * 65],
    ids=["100000-arrays", "3000-objects", "65-objects"],
)
async def test_a_body_nested_too_deeply_is_refused_with_400_invalid_json(
    client: httpx.AsyncClient, gateway: DummyGateway, body: bytes
) -> None:
    response = await client.post("/v1/payments", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == {"code": "invalid_json", "message": "the body nests deeper than 64 levels"}
    assert gateway.payments == {}


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": 5000, "currency": "XOF", "reference": "\\ud800"}',
        b'{"amount": 5000, "currency": "XOF", "reference": "pay_1", "reference": "pay_2"}',
        b'{"amount": NaN, "currency": "XOF", "reference": "pay_1"}',
    ],
    ids=["lone-surrogate", "duplicate-key", "nan"],
)
async def test_a_body_a_strict_reader_would_not_read_the_same_way_is_refused_with_400(
    client: httpx.AsyncClient, gateway: DummyGateway, body: bytes
) -> None:
    response = await client.post("/v1/payments", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert gateway.payments == {}


async def test_an_idempotency_key_reused_for_another_body_is_refused(client: httpx.AsyncClient) -> None:
    await client.post("/v1/payments", json=payment_body(), headers={"idempotency-key": "k1"})
    response = await client.post("/v1/payments", json=payment_body(6000), headers={"idempotency-key": "k1"})
    assert response.status_code == 422


async def test_an_amount_ending_in_04_gets_a_503_and_records_nothing(
    client: httpx.AsyncClient, gateway: DummyGateway
) -> None:
    response = await client.post("/v1/payments", json=payment_body(5004))
    assert response.status_code == 503
    assert gateway.payments == {}


async def test_an_unknown_scenario_name_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/payments", json=payment_body(metadata={"dummy_scenario": "explode"}))
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


async def test_payments_are_found_by_the_merchants_reference(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    found = (await client.get("/v1/payments", params={"reference": "pay_1"})).json()["data"]
    assert [p["id"] for p in found] == [created["id"]]
    assert (await client.get("/v1/payments", params={"reference": "pay_other"})).json()["data"] == []


async def test_approving_on_the_checkout_page_redirects_to_the_return_url(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body(return_url="https://shop.test/done?o=1"))).json()
    response = await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    assert response.status_code == 303
    assert response.headers["location"] == "https://shop.test/done?o=1&payment=pay_1&status=succeeded"


@pytest.mark.parametrize("field", ["return_url", "webhook_url"])
@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "//evil.example/x",
        "data:text/html,<script>alert(1)</script>",
        "/done",
        "ftp://shop.test/done",
        "https://shop.test/done\r\nSet-Cookie: a=b",
        "",
        17,
    ],
)
async def test_a_return_or_webhook_url_that_is_not_an_absolute_http_url_is_refused_with_400(
    client: httpx.AsyncClient, gateway: DummyGateway, field: str, url: object
) -> None:
    response = await client.post("/v1/payments", json=payment_body(**{field: url}))
    assert response.status_code == 400
    assert repr(field) in response.json()["error"]["message"]
    assert gateway.payments == {}


@pytest.mark.parametrize("arrived", [0, 5], ids=["no-byte", "part"])
@pytest.mark.parametrize("operation", ["capture", "refunds"])
async def test_a_capture_or_refund_whose_client_leaves_before_its_body_ends_changes_nothing_and_gets_no_answer(
    client: httpx.AsyncClient, gateway: DummyGateway, api_key: str, operation: str, arrived: int
) -> None:
    created = (await client.post("/v1/payments", json=payment_body(capture=operation == "refunds"))).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    before = (await client.get(f"/v1/payments/{created['id']}")).json()
    body = json.dumps({"amount": 100, "reference": "re_1"}).encode()
    sent = await post_cut_short(gateway, f"/v1/payments/{created['id']}/{operation}", body, arrived, api_key)
    assert sent == []
    assert (await client.get(f"/v1/payments/{created['id']}")).json() == before


async def test_an_authorized_payment_captures_part_and_reports_it(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body(capture=False))).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    captured = (await client.post(f"/v1/payments/{created['id']}/capture", json={"amount": 3000})).json()
    assert (captured["status"], captured["authorized_amount"], captured["captured_amount"]) == (
        "succeeded",
        5000,
        3000,
    )


async def test_capturing_more_than_authorized_is_refused(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body(capture=False))).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    response = await client.post(f"/v1/payments/{created['id']}/capture", json={"amount": 5001})
    assert response.status_code == 400
    assert "authorized 5000" in response.json()["error"]["message"]


async def test_refunds_beyond_the_captured_amount_are_refused(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    first = await client.post(f"/v1/payments/{created['id']}/refunds", json={"amount": 3000, "reference": "re_1"})
    second = await client.post(f"/v1/payments/{created['id']}/refunds", json={"amount": 3000, "reference": "re_2"})
    assert (first.status_code, second.status_code) == (201, 400)
    assert "refundable 2000" in second.json()["error"]["message"]


@pytest.mark.parametrize("reference", [["re_1"], {"id": "re_1"}, 17, ""], ids=repr)
async def test_a_refund_reference_that_is_not_an_id_is_refused_with_400(
    client: httpx.AsyncClient, gateway: DummyGateway, reference: object
) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    response = await client.post(f"/v1/payments/{created['id']}/refunds", json={"amount": 1000, "reference": reference})
    assert response.status_code == 400
    assert "'reference'" in response.json()["error"]["message"]
    assert gateway.payments[created["id"]].refunds == []


async def test_the_customer_cannot_act_twice(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    await client.post(f"/checkout/{created['id']}", data={"action": "decline"})
    response = await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
    assert response.status_code == 409
    assert (await client.get(f"/v1/payments/{created['id']}")).json()["status"] == "failed"


BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def test_a_browser_refused_on_a_customer_s_page_gets_a_page_saying_why_and_an_api_client_json(
    client: httpx.AsyncClient,
) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    page = f"/checkout/{created['id']}"
    await client.post(page, data={"action": "decline"})
    stale = await client.post(page, data={"action": "approve"}, headers=BROWSER)
    assert (stale.status_code, stale.headers["content-type"]) == (409, "text/html; charset=utf-8")
    assert "Nothing was changed" in stale.text
    assert "is failed; the customer cannot act on it" in stale.text
    assert f"href='{page}'" in stale.text  # to the page as it is now
    assert (await client.get(f"/v1/payments/{created['id']}")).json()["status"] == "failed"
    unknown = await client.get("/checkout/gpay_unknown", headers=BROWSER)
    assert (unknown.status_code, unknown.headers["content-type"]) == (404, "text/html; charset=utf-8")
    assert "data-testid='again'" not in unknown.text
    api = await client.post(page, data={"action": "approve"})
    assert (api.status_code, api.json()["error"]["code"]) == (409, "invalid_state")
    refused = await client.post("/v1/payments", json={"amount": "lots"}, headers=BROWSER)  # not a customer's page
    assert (refused.status_code, refused.headers["content-type"]) == (400, "application/json")


async def test_the_customer_s_pages_may_not_be_framed_or_sniffed(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    for path in (f"/checkout/{created['id']}", f"/phone/{created['id']}", "/"):
        headers = (await client.get(path)).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["content-security-policy"] == "frame-ancestors 'none'"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    assert (await client.get(f"/v1/payments/{created['id']}")).headers["x-content-type-options"] == "nosniff"


async def test_every_get_route_answers_head_with_its_headers_alone(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body())).json()
    for path in (f"/checkout/{created['id']}", f"/v1/payments/{created['id']}", "/health"):
        got, head = await client.get(path), await client.head(path)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers["content-length"] == str(len(got.content))
    assert (await client.head("/v1/payments/gpay_unknown")).status_code == 404


async def test_the_checkout_page_shows_the_amount_and_the_buttons(client: httpx.AsyncClient) -> None:
    created = (await client.post("/v1/payments", json=payment_body(description="Thieboudienne <x2>"))).json()
    page = (await client.get(f"/checkout/{created['id']}")).text
    assert "5000 XOF" in page
    assert "Thieboudienne &lt;x2&gt;" in page
    for action in ("approve", "decline", "abandon"):
        assert f"value='{action}'" in page


@pytest.mark.parametrize(
    ("amount", "currency", "shown", "line"),
    [
        (1250, "EUR", "12.50 EUR", "2 x Soup: 25.00 EUR"),
        (5120, "KWD", "5.120 KWD", "2 x Soup: 10.240 KWD"),
        (5000, "XOF", "5000 XOF", "2 x Soup: 10000 XOF"),
        (1250, "ZZZ", "1250 ZZZ (minor units)", "2 x Soup: 2500 ZZZ (minor units)"),  # a code paycore does not know
        (10**30, "EUR", f"{10**30} EUR (minor units)", f"2 x Soup: {2 * 10**30} EUR (minor units)"),  # too many digits
    ],
)
async def test_the_customer_s_pages_show_the_amount_in_the_currency_s_major_units(
    client: httpx.AsyncClient, amount: int, currency: str, shown: str, line: str
) -> None:
    items = [{"name": "Soup", "quantity": 2, "unit_price": amount}]
    for method in ("card", "mobile_money"):
        body = {"amount": amount, "currency": currency, "reference": f"pay_{method}", "method": method, "items": items}
        created = (await client.post("/v1/payments", json=body)).json()
        page = (await client.get(created["next_action"]["url"].removeprefix("http://gateway.test"))).text
        assert f"data-testid='amount'>{shown}</div>" in page
        assert f"<li>{line}</li>" in page
    assert created["next_action"]["message"] == f"Approve the payment of {shown} on your phone"
    assert f"{shown}: requires_action" in (await client.get("/")).text


async def test_an_unknown_route_is_404_and_a_wrong_method_405(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/nothing")).status_code == 404
    assert (await client.delete("/v1/payments")).status_code == 405


async def test_webhooks_are_signed_so_an_independent_implementation_verifies_them(
    secret: str, eventually: Eventually
) -> None:
    received: list[tuple[bytes, dict[str, str]]] = []

    async def merchant(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        message = await receive()
        received.append((message["body"], {k.decode(): v.decode() for k, v in scope["headers"]}))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gateway = DummyGateway(
        api_key="sk_test_direct",
        webhook_secrets=secret,
        webhook_url="http://merchant.test/hook",
        webhook_transport=httpx.ASGITransport(app=merchant),
    )
    async with gateway:
        payment = gateway.create_payment(payment_body())
        gateway.customer_action(payment.id, "approve")
        await eventually(lambda: received)
    body, headers = received[0]
    event = Webhook(secret).verify(body, headers)
    assert (event["type"], event["data"]["reference"], event["data"]["status"]) == (
        "payment.succeeded",
        "pay_1",
        "succeeded",
    )
    assert headers["webhook-id"] == event["id"]


async def test_during_rotation_each_delivery_carries_one_signature_per_secret(
    secret: str, eventually: Eventually
) -> None:
    from paycore_dummy import generate_secret

    new_secret = generate_secret()
    received: list[dict[str, str]] = []

    async def merchant(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        await receive()
        received.append({k.decode(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gateway = DummyGateway(
        api_key="sk_test_direct",
        webhook_secrets=[secret, new_secret],
        webhook_url="http://merchant.test/hook",
        webhook_transport=httpx.ASGITransport(app=merchant),
    )
    async with gateway:
        gateway.customer_action(gateway.create_payment(payment_body()).id, "decline")
        await eventually(lambda: received)
    assert len(received[0]["webhook-signature"].split()) == 2


async def test_a_merchant_answering_5xx_gets_the_event_again_with_backoff_then_the_gateway_gives_up(
    secret: str, eventually: Eventually
) -> None:
    calls: list[float] = []

    async def failing_merchant(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        await receive()
        calls.append(anyio.current_time())
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gateway = DummyGateway(
        api_key="sk_test_direct",
        webhook_secrets=secret,
        webhook_url="http://merchant.test/hook",
        webhook_transport=httpx.ASGITransport(app=failing_merchant),
        retry=RetryPolicy(attempts=3, backoff=0.05),
    )
    async with gateway:
        gateway.customer_action(gateway.create_payment(payment_body()).id, "approve")
        await eventually(lambda: len(gateway.deliveries) >= 3)
        await anyio.sleep(0.2)
    assert [a.status_code for a in gateway.deliveries] == [503, 503, 503]
    assert len({a.event_id for a in gateway.deliveries}) == 1
    assert calls[1] - calls[0] >= 0.05
    assert calls[2] - calls[1] >= 0.1


async def test_a_merchant_that_recovers_gets_the_event_on_a_later_attempt(secret: str, eventually: Eventually) -> None:
    answers = [500, 200]

    async def flaky_merchant(scope: dict, receive: Callable, send: Callable) -> None:  # type: ignore[type-arg]
        await receive()
        await send({"type": "http.response.start", "status": answers.pop(0), "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gateway = DummyGateway(
        api_key="sk_test_direct",
        webhook_secrets=secret,
        webhook_url="http://merchant.test/hook",
        webhook_transport=httpx.ASGITransport(app=flaky_merchant),
        retry=RetryPolicy(attempts=5, backoff=0.01),
    )
    async with gateway:
        gateway.customer_action(gateway.create_payment(payment_body()).id, "approve")
        await eventually(lambda: any(a.delivered for a in gateway.deliveries))
    assert [(a.attempt, a.status_code) for a in gateway.deliveries] == [(1, 500), (2, 200)]


@pytest.mark.parametrize("webhook_url", ["http://[::1", "http://merchant.test:port/hook"])
async def test_a_webhook_url_httpx_refuses_fails_its_deliveries_and_the_gateway_keeps_serving(
    make_gateway: Callable[..., DummyGateway], api_key: str, eventually: Eventually, webhook_url: str
) -> None:
    async with make_gateway(webhook_url=webhook_url) as gateway, api_client(gateway, api_key) as client:
        created = (await client.post("/v1/payments", json=payment_body())).json()
        await client.post(f"/checkout/{created['id']}", data={"action": "approve"})
        await eventually(lambda: len(gateway.deliveries) == gateway.retry.attempts)
        assert all(a.error is not None and a.error.startswith("InvalidURL") for a in gateway.deliveries)
        assert (await client.post("/v1/payments", json=payment_body(reference="pay_2"))).status_code == 201


async def test_a_gateway_that_is_not_running_refuses_to_take_payments(
    make_gateway: Callable[..., DummyGateway], api_key: str
) -> None:
    gateway = make_gateway()
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gateway.test", headers={"authorization": f"Bearer {api_key}"}
    ) as http:
        response = await http.post("/v1/payments", json=payment_body())
    assert response.status_code == 503
    assert "async with gateway" in response.json()["error"]["message"]
    with pytest.raises(GatewayNotRunning):
        gateway.create_payment(payment_body())


async def test_the_checkout_page_shows_the_basket(client: httpx.AsyncClient) -> None:
    items = [{"name": "Yassa poulet", "quantity": 2, "unit_price": 2500}]
    created = (await client.post("/v1/payments", json=payment_body(items=items))).json()
    page = (await client.get(f"/checkout/{created['id']}")).text
    assert "2 x Yassa poulet: 5000 XOF" in page


async def test_a_gateway_mounted_under_a_path_keeps_its_customer_within_the_mount(
    gateway: DummyGateway, api_key: str
) -> None:
    transport = httpx.ASGITransport(app=gateway, root_path="/gw")
    headers = {"authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test", headers=headers) as http:
        created = (await http.post("/gw/v1/payments", json=payment_body())).json()
        assert created["next_action"]["url"] == f"http://shop.test/gw/checkout/{created['id']}"
        response = await http.post(f"/gw/checkout/{created['id']}", data={"action": "approve"})
    assert response.headers["location"] == f"/gw/checkout/{created['id']}"


async def test_a_running_gateway_cannot_be_entered_twice(gateway: DummyGateway) -> None:
    from paycore_dummy import GatewayAlreadyRunning

    with pytest.raises(GatewayAlreadyRunning):
        await gateway.__aenter__()
