"""Fuzzed, correctly signed Wave deliveries: refused with a paycore error and changing nothing, or consistent.

Each example starts from the event Wave really sends about a fresh payment
(``checkout.session.completed`` or ``checkout.session.payment_failed``, built by
the simulator for a session the flow created), breaks it (fields of another
JSON type, fields missing or added, amounts negative, fractional, enormous or
not strings, foreign currencies, ids empty, huge or holding control characters
and lone surrogates, deep nesting, the event type swapped, bodies that are not
JSON or not UTF-8) and signs the result again as Wave does, so the parser is
fuzzed and not only the signature check. A few examples also break the
``Wave-Signature`` header itself.

The rule: the provider and the flow refuse what they cannot accept with a
:class:`~paycore.errors.PaycoreError` (the HTTP endpoint with a 4xx, never a
500), and a refused delivery changes nothing (the payment, its history, and the
event id, which a genuine delivery may still use). An accepted delivery leaves
the payment where its event type may take it, never paid for a wrong amount.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from paycore.asgi import create_app
from paycore.errors import InvalidSignature, MalformedWebhook, PaycoreError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore.testing.fuzz import TRICKY_VALUES, json_values, provider_refusal
from paycore_wave import WaveProvider, WaveSimulator
from paycore_wave.provider import EVENT_TYPES, IGNORED_EVENT_TYPES
from paycore_wave.sessions import CHECKOUT_STATUSES, PAYMENT_STATUSES

pytestmark = pytest.mark.anyio

SECRET: Final = "wave_sn_WHS_xz4m6g8rjs9bshxy05xj4khcvjv7j3hcp4fbpvv6met0zdrjvezg"
"""The webhook secret of the providers ``flow_factory`` builds (``conftest.WEBHOOK_SECRET``)."""
OTHER_SECRET: Final = "wave_sn_WHS_00000000000000000000000000000000000000000000000000000"
"""A secret the provider does not hold."""
PRICE: Final = Money.of("5000", "XOF")
"""What every fuzzed payment asks for."""
ANSWERS: Final = {200, 400, 401, 404, 413, 503}
"""What the endpoint may answer a delivery; a 500 would mean paycore broke on what it was sent."""
SAFETY_NETS: Final = ("could not be verified (", "could not be read (")
"""Words of the flow's last-resort refusals: a provider that raised something else than a paycore error."""
S = PaymentStatus
"""Short for :class:`~paycore.status.PaymentStatus`."""
REACHABLE: Final = {
    "checkout.session.completed": {S.SUCCEEDED},
    "checkout.session.payment_failed": {S.FAILED},
}
"""Where each checkout event may take a processing payment (besides leaving it): the type decides."""

SESSION_FIELDS: Final = [
    "id",
    "amount",
    "currency",
    "checkout_status",
    "payment_status",
    "client_reference",
    "transaction_id",
    "last_payment_error",
    "wave_launch_url",
    "when_completed",
    "when_created",
    "when_expires",
    "success_url",
    "error_url",
    "business_name",
]
"""The fields of a checkout session, as Wave's events carry it."""
TRICKY: Final = [
    *TRICKY_VALUES,
    "cos-\udfff",
    "cos-\n1",
    "cos-\x7f",
    "c" * 255,
    "c" * 256,
]
"""Values that have broken parsers: lone surrogates, control characters, empty and huge ids, odd numbers."""
AMOUNTS: Final = [
    "5000",
    "2500",
    "10000",
    "0",
    "-5000",
    "+5000",
    " 5000",
    "5000\n",
    "5000.5",
    "5000.0000",
    "5000.00001",
    "5e3",
    "5_000",
    "0x1388",
    "00005000",
    "\u0665\u0660\u0660\u0660",  # Arabic-Indic digits
    "NaN",
    "Infinity",
    "",
    "9" * 19,
    "9223372036854775808",
    "1" + "0" * 40,
    5000,
    5000.0,
    -5000,
    0,
    10**40,
    True,
    None,
    ["5000"],
    {"value": "5000"},
]
"""Amounts as Wave writes them (decimal strings of francs), and what it never writes."""
CURRENCIES: Final = [
    "XOF",
    "xof",
    "XOF ",
    "EUR",
    "XAF",
    "USD",
    "JPY",
    "KWD",
    "XO",
    "ZZZ",
    "XXX",
    "",
    None,
    952,
    ["XOF"],
]
"""The payments' currency, its other spellings, foreign and unknown currencies, and things that are not codes."""
EVENT_NAMES: Final = [
    *sorted(EVENT_TYPES),
    *sorted(IGNORED_EVENT_TYPES),
    "checkout.session.refunded",
    "checkout.session.expired",
    "CHECKOUT.SESSION.COMPLETED",
    "checkout.session.completed ",
    "",
]
"""Event types: the checkout events, the ones acknowledged without effect, and ones Wave does not send."""

junk = json_values(TRICKY)
"""Any JSON value, small, or one of :data:`TRICKY`."""
mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(SESSION_FIELDS) | st.text(max_size=8), junk),
    st.tuples(st.just("set"), st.just("amount"), st.sampled_from(AMOUNTS)),
    st.tuples(st.just("set"), st.just("currency"), st.sampled_from(CURRENCIES)),
    st.tuples(st.just("set"), st.just("checkout_status"), st.sampled_from([*CHECKOUT_STATUSES, "paid", "Complete"])),
    st.tuples(st.just("set"), st.just("payment_status"), st.sampled_from([*PAYMENT_STATUSES, "refunded", "failed"])),
    st.tuples(st.just("set"), st.sampled_from(["id", "client_reference", "transaction_id"]), st.sampled_from(TRICKY)),
    st.tuples(st.just("delete"), st.sampled_from(SESSION_FIELDS), st.none()),
    st.tuples(st.just("top"), st.sampled_from(["id", "type", "data"]), junk),
    st.tuples(st.just("top"), st.just("type"), st.sampled_from(EVENT_NAMES)),
    st.tuples(st.just("top"), st.just("id"), st.sampled_from(TRICKY)),
    st.tuples(st.just("untop"), st.sampled_from(["id", "type", "data"]), st.none()),
    st.tuples(st.just("extra"), st.text(max_size=8), junk),
    st.tuples(st.just("nest"), st.sampled_from(SESSION_FIELDS), st.integers(min_value=2, max_value=3000)),
)
"""One way of breaking an event: ``(kind, key, value)``."""
RAW_BODIES: Final = [
    b"",
    b"null",
    b"[]",
    b'"checkout.session.completed"',
    b"\xff\xfe{}",
    b'{"id": "AE_1", "type": "checkout.session.completed", "data": {"amount": NaN}}',
    b'{"id": "AE_1", "id": "AE_2", "type": "checkout.session.completed", "data": {}}',
    b'{"id": "\\ud800", "type": "checkout.session.completed", "data": {}}',
    b'{"id": "\xed\xa0\x80", "type": "checkout.session.completed", "data": {}}',  # a surrogate encoded in UTF-8
    b'{"id": "AE_1", "type": "checkout.session.completed", "data": {"amount": 1' + b"0" * 5000 + b"}}",
    b'{"id": "AE_1", "type": "checkout.session.completed", "data": {"amount": 1e400}}',
    b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
]
"""Bodies that are not a Wave event at all: not JSON, not UTF-8, duplicate keys, NaN, huge numbers, deep nesting."""
header_tweaks = st.one_of(
    st.tuples(st.just("stamp"), st.sampled_from(["9" * 400, "9" * 4000, "1" + "0" * 12, "0", "-1", "1e9", "", " 1"])),
    st.tuples(st.just("skew"), st.sampled_from([-3600, -301, 301, 10**9])),
    st.tuples(st.just("secret"), st.just(OTHER_SECRET)),
    st.tuples(st.just("missing"), st.none()),
    st.tuples(st.just("v1"), st.sampled_from(["", "00", "\ud800", "é" * 64, "x" * 5000])),
)
"""One way of breaking the ``Wave-Signature`` header."""


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    """What to break in a real event: mutations, the ``Wave-Signature`` header, or a body that is not JSON at all."""
    odds = draw(st.sampled_from(range(10)))  # most examples: a signed event, only its body broken
    return {
        "event_type": draw(st.sampled_from(sorted(EVENT_TYPES))),
        "mutations": draw(st.lists(mutation, max_size=4)),
        "retype": draw(st.none() | st.sampled_from(EVENT_NAMES)),
        "raw": draw(st.sampled_from(RAW_BODIES) | st.binary(max_size=64)) if odds == 0 else None,
        "header": draw(header_tweaks) if odds == 1 else None,
        "over_http": draw(st.booleans()),
    }


PLAN: Final = {
    "event_type": "checkout.session.completed",
    "mutations": [],
    "retype": None,
    "raw": None,
    "header": None,
    "over_http": False,
}
"""A plan that breaks nothing: the base of the explicit examples."""


def genuine_event(simulator: WaveSimulator, session_id: str, event_type: str) -> bytes:
    """The body Wave sends about ``session_id`` when its customer pays or fails (the simulator's own event)."""
    if event_type == "checkout.session.completed":
        return simulator.pay(session_id).body
    return simulator.fail(session_id, "insufficient-funds", "The payer does not have enough money").body


def broken_body(genuine: bytes, plan: dict[str, Any]) -> tuple[bytes, object]:
    """``genuine`` broken as ``plan`` says, and the event type it ends up with (``None``: not an event)."""
    if plan["raw"] is not None:
        return bytes(plan["raw"]), None
    event: dict[str, Any] = json.loads(genuine)
    for kind, key, value in plan["mutations"]:
        data = event.get("data")
        target = data if isinstance(data, dict) else {}
        if kind == "set":
            target[key] = value
        elif kind == "delete":
            target.pop(key, None)
        elif kind == "top":
            event[key] = value
        elif kind == "untop":
            event.pop(key, None)
        elif kind == "extra":
            event[f"x-{key}"] = value
        else:  # nest: the field's value inside ``value`` levels of arrays
            text = json.dumps(target.get(key))
            target[key] = "\0NEST\0"
            body = json.dumps(event).replace('"\\u0000NEST\\u0000"', "[" * value + text + "]" * value)
            return body.encode(), event.get("type")
    if plan["retype"] is not None:
        event["type"] = plan["retype"]
    return json.dumps(event).encode(), event.get("type")


def signature(secret: str, stamp: str, body: bytes) -> str:
    """A ``Wave-Signature`` value made here as Wave documents it (hex HMAC-SHA256 of the timestamp then the body)."""
    digest = hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def signed_headers(body: bytes, tweak: tuple[str, Any] | None) -> dict[str, str]:
    """The headers of a delivery of ``body``, correctly signed now unless ``tweak`` breaks them."""
    stamp, secret = str(int(time.time())), SECRET
    kind, value = tweak if tweak is not None else ("", None)
    if kind == "missing":
        return {"content-type": "application/json"}
    if kind == "stamp":
        stamp = value
    elif kind == "skew":
        stamp = str(int(time.time()) + value)
    elif kind == "secret":
        secret = value
    header = signature(secret, stamp, body)
    if kind == "v1":
        header = f"t={stamp},v1={value}"
    return {"content-type": "application/json", "Wave-Signature": header}


def assert_consistent(after: Payment, before: Payment, event_type: object) -> None:
    """An accepted delivery took the payment only where its event type may, and paid it only for its price."""
    assert isinstance(event_type, str), event_type
    assert event_type in REACHABLE, f"a {event_type!r} delivery was accepted and changed the payment"
    assert after.status is before.status or after.status in REACHABLE[event_type], (event_type, after.status)
    if after.status is S.SUCCEEDED:
        assert after.captured_amount == after.amount == PRICE
        assert after.authorized_amount == after.amount
    else:
        assert after.captured_amount is None
    assert after.refunds == before.refunds
    assert after.refunded_amount <= (after.captured_amount or Money.zero(after.currency))


@asynccontextmanager
async def opened(
    flow_factory: Callable[..., PaymentFlow], simulator: WaveSimulator
) -> AsyncIterator[tuple[PaymentFlow, httpx.AsyncClient]]:
    """A fresh flow talking to ``simulator`` (each example its own store), and an HTTP client of its endpoint."""
    async with flow_factory(simulator) as flow:
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://merchant.test") as client:
            yield flow, client


async def deliver(
    flow: PaymentFlow, merchant: httpx.AsyncClient, body: bytes, headers: dict[str, str], *, over_http: bool
) -> bool:
    """Deliver through the flow or its HTTP endpoint; whether it was accepted (a refusal must be a paycore one)."""
    if over_http:
        raw_headers = {name: value.encode("utf-8", "surrogatepass") for name, value in headers.items()}
        response = await merchant.post("/wave", content=body, headers=raw_headers)
        assert response.status_code in ANSWERS, response.text
        return response.status_code == 200
    try:
        await flow.handle_webhook("wave", body, headers)
    except PaycoreError as error:
        refusal = str(error)
    else:
        return True
    assert not any(net in refusal for net in SAFETY_NETS), refusal  # the provider raised something else
    return False


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=deliveries())
@example(plan=PLAN | {"header": ("stamp", "9" * 400)})  # once an OverflowError of the signature check
@example(plan=PLAN | {"mutations": [("top", "type", [])]})  # once a TypeError: a list is unhashable
async def test_a_broken_signed_wave_delivery_is_refused_with_a_paycore_error_and_changes_nothing(
    flow_factory: Callable[..., PaymentFlow], simulator: WaveSimulator, plan: dict[str, Any]
) -> None:
    """Refused: a paycore error (a 4xx over HTTP) and nothing changed; accepted: where its type may lead."""
    async with opened(flow_factory, simulator) as (flow, merchant):
        provider = flow.provider("wave")
        assert isinstance(provider, WaveProvider)
        checkout = await flow.create_payment(amount=PRICE, provider="wave", order_id="FUZZ")
        before = await flow.get_payment(checkout.payment.id)
        events_before = await flow.list_events(before.id)
        assert before.external_id is not None
        genuine = genuine_event(simulator, before.external_id, plan["event_type"])
        body, event_type = broken_body(genuine, plan)
        headers = signed_headers(body, plan["header"])

        refused = await provider_refusal(provider, body, headers)  # anything else than a PaycoreError fails here
        accepted = await deliver(flow, merchant, body, headers, over_http=plan["over_http"])
        if plan["header"] is not None:
            assert isinstance(refused, InvalidSignature), plan["header"]
        if refused is not None:
            assert not accepted, f"the provider refused it ({refused}), the flow took it"
        event(f"the provider refused it: {type(refused).__name__}" if refused is not None else "the provider read it")
        event("accepted" if accepted else "refused")

        after = await flow.get_payment(before.id)
        if not accepted:
            assert after == before
            assert await flow.list_events(before.id) == events_before
            await flow.handle_webhook("wave", genuine, signed_headers(genuine, None))  # its event id is still unused
            assert (await flow.get_payment(before.id)).status in REACHABLE[plan["event_type"]]
        elif after != before:
            assert_consistent(after, before, event_type)
            assert await deliver(flow, merchant, body, headers, over_http=plan["over_http"])  # again: a no-op
            assert await flow.get_payment(before.id) == after
        else:
            assert await flow.list_events(before.id) == events_before


# -- what the fuzz found in the core (src/paycore) -----------------------------------------------------


async def test_a_signed_event_naming_another_payments_session_is_refused_without_a_500(
    flow_factory: Callable[..., PaymentFlow], simulator: WaveSimulator
) -> None:
    """A delivery about one payment that names the session of another is refused with a 4xx; nothing changes."""
    async with opened(flow_factory, simulator) as (flow, merchant):
        first = (await flow.create_payment(amount=PRICE, provider="wave", order_id="A")).payment
        second = (await flow.create_payment(amount=PRICE, provider="wave", order_id="B")).payment
        assert first.external_id is not None
        assert second.external_id is not None
        event = json.loads(simulator.pay(first.external_id).body)
        event["data"]["id"] = second.external_id  # the other payment's checkout session
        body = json.dumps(event).encode()
        response = await merchant.post("/wave", content=body, headers=signed_headers(body, None))
        assert await flow.get_payment(first.id) == first
        assert await flow.get_payment(second.id) == second
        assert response.status_code in ANSWERS - {200}, response.text


async def test_a_paid_event_without_its_amount_is_refused_and_changes_nothing(
    flow_factory: Callable[..., PaymentFlow], simulator: WaveSimulator
) -> None:
    """A signed ``checkout.session.completed`` event without its amount is malformed: 400, the payment as it was."""
    async with opened(flow_factory, simulator) as (flow, merchant):
        payment = (await flow.create_payment(amount=PRICE, provider="wave", order_id="C")).payment
        assert payment.external_id is not None
        event = json.loads(simulator.pay(payment.external_id).body)
        del event["data"]["amount"]
        body = json.dumps(event).encode()
        with pytest.raises(MalformedWebhook, match="without its amount"):
            await flow.handle_webhook("wave", body, signed_headers(body, None))
        response = await merchant.post("/wave", content=body, headers=signed_headers(body, None))
        assert response.status_code == 400, response.text
        assert await flow.get_payment(payment.id) == payment
