"""Fuzzed signed deliveries through ``paycore.asgi``: never a 500, and nothing changes unless the answer is 200.

Each example starts from the event the gateway would really send about a fresh
payment, correctly signed, then breaks it: fields of the wrong type, fields
missing, negative or enormous amounts, lone surrogates, deep nesting, a
timestamp that is not whole seconds, or bytes that are not JSON at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore.testing.fuzz import TRICKY_VALUES, json_values
from paycore_dummy import DummyGateway, WebhookSecret
from paycore_dummy.provider import EVENT_STATUSES
from paycore_dummy.signing import signature_headers

pytestmark = pytest.mark.anyio

Setup = tuple[PaymentFlow, DummyGateway]

ANSWERS = {200, 400, 401, 404, 413, 503}
"""What a delivery may be answered; a 500 would mean paycore broke on what it was sent."""
S = PaymentStatus
REACHABLE = {
    "payment.pending": set(),
    "payment.authorized": {S.AUTHORIZED},
    "payment.succeeded": {S.AUTHORIZED, S.SUCCEEDED},
    "payment.failed": {S.FAILED},
    "payment.canceled": {S.CANCELED},
    "payment.expired": {S.EXPIRED},
    "refund.succeeded": {S.SUCCEEDED, S.PARTIALLY_REFUNDED, S.REFUNDED},
}
"""Where each event type may take a payment that was processing: the type decides, not ``data.status``."""

DATA_FIELDS = [
    "id",
    "reference",
    "amount",
    "currency",
    "status",
    "authorized_amount",
    "captured_amount",
    "refunded_amount",
    "refunds",
    "failure_message",
    "next_action",
    "metadata",
    "capture",
]
TRICKY = [
    *TRICKY_VALUES,
    "gp_\udfff",
    "g" * 300,
    "https://evil.example/pay",
    "javascript:alert(1)",
    -3000,
]

junk = json_values(TRICKY)
"""Any JSON value, small, or one of :data:`TRICKY`."""
refund_like = st.fixed_dictionaries(
    {},
    optional={
        "id": junk,
        "reference": junk,
        "amount": junk,
        "status": st.sampled_from(["succeeded", "pending"]) | junk,
    },
)
ascii_header = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
timestamps = st.sampled_from(["1" + "0" * 309, "-1", "1700000000.5", "1e9", "", "9" * 5000]) | ascii_header

statuses = st.tuples(st.just("set"), st.just("status"), st.sampled_from(sorted(set(EVENT_STATUSES.values()))))
amounts = st.tuples(
    st.just("set"), st.sampled_from(["authorized_amount", "captured_amount"]), st.sampled_from([0, 2500, 5000])
)
mutation = st.one_of(
    statuses,
    statuses,
    amounts,
    st.tuples(st.just("set"), st.sampled_from(DATA_FIELDS) | st.text(max_size=8), junk),
    st.tuples(st.just("delete"), st.sampled_from(DATA_FIELDS), st.none()),
    st.tuples(st.just("top"), st.sampled_from(["id", "type", "data", "timestamp"]), junk),
    st.tuples(st.just("refund"), st.just("refunds"), refund_like),
    st.tuples(st.just("nest"), st.sampled_from(DATA_FIELDS), st.integers(min_value=2, max_value=3000)),
)


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    """What to break in a real event: mutations, a header to replace, or a body that is not JSON."""
    return {
        "event_type": draw(st.sampled_from(sorted(EVENT_STATUSES))),
        "mutations": draw(st.lists(mutation, max_size=4)),
        "timestamp": draw(st.none() | st.none() | timestamps),
        "raw": draw(st.none() | st.none() | st.none() | st.binary(max_size=64)),
    }


def broken_event(gateway: DummyGateway, external_id: str, plan: dict[str, Any]) -> tuple[bytes, Any]:
    """The event the gateway would send for ``plan["event_type"]``, broken as ``plan`` says, and its final type."""
    if plan["raw"] is not None:
        return bytes(plan["raw"]), None
    data = gateway.payments[external_id].to_json("")
    data["status"] = EVENT_STATUSES[plan["event_type"]]
    data["next_action"] = None  # as the gateway's events carry it
    if data["status"] in ("authorized", "succeeded"):
        data["authorized_amount"] = 5000
    if data["status"] == "succeeded":
        data["captured_amount"] = 5000
    event: dict[str, Any] = {"id": "evt_fuzz", "type": plan["event_type"], "data": data}
    if plan["event_type"].startswith("refund."):
        data["refund"] = {"id": "gr_1", "reference": None, "amount": 500, "status": "succeeded"}
    for kind, key, value in plan["mutations"]:
        target = event["data"] if isinstance(event["data"], dict) else {}
        if kind == "set":
            target[key] = value
        elif kind == "delete":
            target.pop(key, None)
        elif kind == "top":
            event[key] = value
        elif kind == "refund":
            target.setdefault("refunds", [])
            if isinstance(target["refunds"], list):
                target["refunds"].append(value)
        else:
            nested: Any = target.get(key)
            text = json.dumps(nested)
            target[key] = "\0NEST\0"
            body = json.dumps(event).replace('"\\u0000NEST\\u0000"', "[" * value + text + "]" * value)
            return body.encode(), event.get("type")
    return json.dumps(event).encode(), event.get("type")


@pytest.fixture
async def merchant(in_process: Setup) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client posting to paycore's webhook endpoint for the flow."""
    flow, _ = in_process
    transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
        yield client


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=deliveries())
async def test_a_broken_signed_delivery_is_refused_with_a_4xx_and_changes_nothing(
    in_process: Setup, merchant: httpx.AsyncClient, secret: str, plan: dict[str, Any]
) -> None:
    flow, gateway = in_process
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="wave", order_id="FUZZ", tenant="chez-awa"
    )
    before = await flow.get_payment(checkout.payment.id)
    events_before = await flow.list_events(before.id)
    assert before.external_id is not None
    body, event_type = broken_event(gateway, before.external_id, plan)
    event_id = f"evt_{uuid.uuid4().hex}"  # a fresh delivery each time, never a repeat of an earlier one
    headers = signature_headers(body, msg_id=event_id, secrets=[WebhookSecret(secret)])
    if plan["timestamp"] is not None:
        headers["webhook-timestamp"] = plan["timestamp"]
    response = await merchant.post("/chez-awa/wave", content=body, headers=headers)
    assert response.status_code in ANSWERS, response.text
    if response.status_code == 200:
        after = await flow.get_payment(before.id)
        reachable = REACHABLE.get(event_type, set()) if isinstance(event_type, str) else set()
        assert after.status is S.PROCESSING or after.status in reachable, (event_type, after.status)
    else:
        after = await flow.get_payment(before.id)
        assert after == before
        assert await flow.list_events(before.id) == events_before
