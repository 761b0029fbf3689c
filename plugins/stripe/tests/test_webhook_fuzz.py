"""Fuzzed, correctly signed Stripe deliveries: refused with a paycore error and changing nothing, or consistent.

Each example takes a fresh payment through the flow against the Stripe simulator
to the point where Stripe sends one of its real events (an intent paid,
authorized, captured or declined, a refund, a Checkout Session completed or
expired, a delayed payment of one succeeded or failed), breaks that event
(fields of another JSON type, fields missing or added, amounts negative, zero,
fractional, enormous or strings, currencies foreign or unknown, ids empty, huge
or holding control characters and lone surrogates, deep nesting, the event type
swapped, bodies that are not JSON or not UTF-8) and signs the result again as
Stripe documents it, so the parser is fuzzed and not only the signature check. A
few examples break the ``Stripe-Signature`` header instead.

The rule: the provider and the flow refuse what they cannot accept with a
:class:`~paycore.errors.PaycoreError` (the HTTP endpoint with a 4xx, never a
500), and a refused delivery changes nothing (the payment, its history, and the
event id, which the genuine delivery may still use). An accepted delivery leaves
the payment where its event type may take it, with amounts that fit: never
captured above what was authorized, never refunded above what was captured.
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
from paycore.errors import InvalidSignature, PaycoreError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore.testing.fuzz import TRICKY_VALUES, json_values, provider_refusal
from paycore_stripe import StripeSimulator
from paycore_stripe.disputes import DISPUTE_EVENTS
from paycore_stripe.provider import StripeProvider
from paycore_stripe.simulator import SignedEvent
from paycore_stripe.webhooks import EVENT_TYPES

pytestmark = pytest.mark.anyio

SECRET: Final = "whsec_paycoreSimulatedSigningSecret"
"""The webhook secret of the provider the ``flow_with`` fixture builds (``conftest.WEBHOOK_SECRET``)."""
OTHER_SECRET: Final = "whsec_anotherSigningSecret"
"""A secret the provider does not hold."""
CODE: Final = "card"
"""The provider code of the flows (``conftest.CODE``)."""
ANSWERS: Final = {200, 400, 401, 404, 413, 503}
"""What the endpoint may answer a delivery; a 500 would mean paycore broke on what it was sent."""
SAFETY_NETS: Final = ("could not be verified (", "could not be read (")
"""Words of the flow's last-resort refusals: a provider that raised something else than a paycore error."""
PRICES: Final = [
    (Money.of("5000", "XOF"), Money.of("2000", "XOF")),
    (Money.of("50.00", "EUR"), Money.of("20.00", "EUR")),
    (Money.of("5.120", "KWD"), Money.of("2.040", "KWD")),
]
"""What a fuzzed payment costs, and the part of it refunded: a zero-, a two- and a three-decimal currency."""

S = PaymentStatus
"""Short for :class:`~paycore.status.PaymentStatus`."""
SCENARIOS: Final = {
    "paid": ("payment_intent", "payment_intent.succeeded", S.SUCCEEDED),
    "authorized": ("payment_intent", "payment_intent.amount_capturable_updated", S.AUTHORIZED),
    "captured": ("payment_intent", "payment_intent.succeeded", S.SUCCEEDED),
    "declined": ("payment_intent", "payment_intent.payment_failed", S.PROCESSING),
    "refunded": ("payment_intent", "refund.created", S.PARTIALLY_REFUNDED),
    "charge_refunded": ("payment_intent", "charge.refunded", S.PARTIALLY_REFUNDED),
    "session_completed": ("checkout", "checkout.session.completed", S.PROCESSING),
    "session_paid": ("checkout", "payment_intent.succeeded", S.SUCCEEDED),
    "session_expired": ("checkout", "checkout.session.expired", S.EXPIRED),
    "session_delayed_paid": ("checkout", "checkout.session.async_payment_succeeded", S.SUCCEEDED),
    "session_delayed_failed": ("checkout", "checkout.session.async_payment_failed", S.FAILED),
    "disputed": ("payment_intent", "charge.dispute.created", S.SUCCEEDED),
}
"""Where a payment is taken before the event is sent: the provider's mode, the event fuzzed, and the status
the genuine event leaves the payment in."""
ANY_REPORT: Final = {S.PROCESSING, S.AUTHORIZED, S.SUCCEEDED, S.CANCELED, S.EXPIRED, S.PARTIALLY_REFUNDED, S.REFUNDED}
"""Every status a report may lead to (an event whose object may be in any state)."""
REFUNDED: Final = {S.PARTIALLY_REFUNDED, S.REFUNDED}
"""What refunds may turn a captured payment into."""
REACHABLE: Final = {
    "payment_intent.created": ANY_REPORT,
    "payment_intent.partially_funded": ANY_REPORT,
    "payment_intent.processing": {S.PROCESSING},
    "payment_intent.requires_action": {S.PROCESSING},
    "payment_intent.payment_failed": {S.PROCESSING},
    "payment_intent.amount_capturable_updated": {S.AUTHORIZED},
    "payment_intent.succeeded": {S.SUCCEEDED},
    "payment_intent.canceled": {S.CANCELED},
    "refund.created": REFUNDED,
    "refund.updated": REFUNDED,
    "refund.failed": set(),
    "charge.refund.updated": REFUNDED,
    "charge.refunded": {S.SUCCEEDED, *REFUNDED},
    "checkout.session.completed": {S.PROCESSING},
    "checkout.session.async_payment_succeeded": {S.SUCCEEDED},
    "checkout.session.async_payment_failed": {S.FAILED},
    "checkout.session.expired": {S.EXPIRED},
    **{event_type: set() for event_type in DISPUTE_EVENTS},  # a dispute flags the payment; its status and amounts stay
}
"""Where an accepted event of each type may take a payment (besides leaving its status): the type decides."""
REFUNDING: Final = {"refund.created", "refund.updated", "charge.refund.updated", "charge.refunded"}
"""The event types that may report a refund succeeded; no other accepted event changes what was refunded."""

OBJECT_FIELDS: Final = [
    "id",
    "object",
    "status",
    "amount",
    "amount_capturable",
    "amount_received",
    "amount_captured",
    "amount_refunded",
    "amount_total",
    "amount_subtotal",
    "currency",
    "metadata",
    "payment_intent",
    "client_reference_id",
    "captured",
    "refunds",
    "last_payment_error",
    "capture_method",
    "latest_charge",
    "charge",
]
"""Fields of the objects Stripe's events carry (intents, refunds, charges, sessions)."""
TRICKY: Final = [
    *TRICKY_VALUES,
    "pi_\udfff",
    "pi_\n1",
    "re_\x7f",
    "p" * 255,
    "p" * 256,
    "xof",
]
"""Values that have broken parsers: lone surrogates, control characters, empty and huge ids, odd numbers."""
AMOUNTS: Final = [
    0,
    1,
    10,
    2040,
    2000,
    4999,
    5000,
    5001,
    5120,
    10_000,
    99_999_999,
    2**63 - 1,
    2**63,
    10**30,
    10**40,
    -1,
    -5000,
    5000.0,
    5000.5,
    1e300,
    "5000",
    "",
    True,
    None,
    [5000],
    {"value": 5000},
]
"""Amounts in Stripe's integer units, and things that are not."""
CURRENCIES: Final = [
    "xof",
    "XOF",
    "eur",
    "kwd",
    "usd",
    "isk",
    "mga",
    "jpy",
    "iqd",
    "clf",
    "zzz",
    "xxx",
    "",
    "ß",
    None,
    978,
]
"""The currencies of the payments, their upper-case forms, foreign ones, ones Stripe does not take, and not codes."""
STATUSES: Final = [
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "processing",
    "requires_capture",
    "succeeded",
    "canceled",
    "pending",
    "failed",
    "open",
    "complete",
    "expired",
    "paid",
    "",
]
"""Statuses of intents, refunds and sessions, each one in the place of the others."""
EVENT_NAMES: Final = [*sorted(EVENT_TYPES), "customer.created", "charge.succeeded", "PAYMENT_INTENT.SUCCEEDED", ""]
"""Event types: every one the plugin reads, and a few it does not."""

junk = json_values(TRICKY)
"""Any JSON value, small, or one of :data:`TRICKY`."""
refund_like = st.fixed_dictionaries(
    {
        "object": st.just("refund"),
        "status": st.sampled_from(STATUSES),
        "currency": st.sampled_from(CURRENCIES),
        "amount": st.sampled_from(AMOUNTS),
    },
    optional={
        "id": st.sampled_from(TRICKY) | st.just("re_elsewhere"),
        "metadata": st.fixed_dictionaries({}, optional={"paycore_refund_id": junk, "paycore_payment_id": junk}),
        "payment_intent": junk,
    },
)
"""A Refund object as a charge lists it, possibly broken."""
mutation = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(OBJECT_FIELDS) | st.text(max_size=8), junk),
    st.tuples(st.just("set"), st.sampled_from([f for f in OBJECT_FIELDS if "amount" in f]), st.sampled_from(AMOUNTS)),
    st.tuples(st.just("set"), st.just("currency"), st.sampled_from(CURRENCIES)),
    st.tuples(st.just("set"), st.just("status"), st.sampled_from(STATUSES)),
    st.tuples(
        st.just("set"), st.sampled_from(["id", "payment_intent", "client_reference_id"]), st.sampled_from(TRICKY)
    ),
    st.tuples(st.just("set"), st.just("captured"), st.sampled_from([True, False, None, "true", 1])),
    st.tuples(st.just("delete"), st.sampled_from(OBJECT_FIELDS), st.none()),
    st.tuples(st.just("elsewhere"), st.just("id"), st.sampled_from(["re_elsewhere", "pi_elsewhere", "cs_elsewhere"])),
    st.tuples(st.just("meta"), st.sampled_from(["paycore_payment_id", "paycore_refund_id"]), junk),
    st.tuples(st.just("refunds"), st.just("refunds"), st.lists(refund_like, max_size=3)),
    st.tuples(st.just("top"), st.sampled_from(["id", "object", "type", "data"]), junk),
    st.tuples(st.just("top"), st.just("type"), st.sampled_from(EVENT_NAMES)),
    st.tuples(st.just("top"), st.just("id"), st.sampled_from(TRICKY)),
    st.tuples(st.just("untop"), st.sampled_from(["id", "object", "type", "data"]), st.none()),
    st.tuples(st.just("unobject"), st.just("object"), junk),
    st.tuples(st.just("extra"), st.text(max_size=8), junk),
    st.tuples(st.just("nest"), st.sampled_from(OBJECT_FIELDS), st.integers(min_value=2, max_value=3000)),
)
"""One way of breaking an event: ``(kind, key, value)``."""
RAW_BODIES: Final = [
    b"",
    b"null",
    b"[]",
    b'"payment_intent.succeeded"',
    b"\xff\xfe{}",
    b'{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": NaN}}',
    b'{"id": "evt_1", "id": "evt_2", "object": "event", "type": "payment_intent.succeeded", "data": {}}',
    b'{"id": "\\ud800", "object": "event", "type": "payment_intent.succeeded", "data": {}}',
    b'{"id": "evt_1", "object": "event", "type": "charge.refunded", "data": {"object": {"amount": 1'
    + b"0" * 5000
    + b"}}}",
    b'{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"amount": 1e400}}}',
    b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
]
"""Bodies that are not a Stripe event at all: not JSON, not UTF-8, duplicate keys, NaN, huge numbers, deep nesting."""
header_tweaks = st.one_of(
    st.tuples(st.just("stamp"), st.sampled_from(["9" * 400, "9" * 13, "0", "-1", "1e9", "", " 1", "\uff11"])),
    st.tuples(st.just("skew"), st.sampled_from([-3600, -301, 301, 10**9])),
    st.tuples(st.just("secret"), st.just(OTHER_SECRET)),
    st.tuples(st.just("missing"), st.none()),
    st.tuples(st.just("v1"), st.sampled_from(["", "00", "\ud800", "é" * 64, "x" * 5000])),
    st.tuples(st.just("scheme"), st.sampled_from(["v0", "V1", "v2", "t"])),
)
"""One way of breaking the ``Stripe-Signature`` header."""


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    """What to break in a real event: the scenario, mutations, the header, or a body that is not JSON at all."""
    odds = draw(st.sampled_from(range(10)))  # most examples: a signed event, only its body broken
    return {
        "scenario": draw(st.sampled_from(sorted(SCENARIOS))),
        "prices": draw(st.sampled_from(PRICES)),
        "mutations": draw(st.lists(mutation, max_size=4)),
        "retype": draw(st.none() | st.sampled_from(EVENT_NAMES)),
        "raw": draw(st.sampled_from(RAW_BODIES) | st.binary(max_size=64)) if odds == 0 else None,
        "header": draw(header_tweaks) if odds == 1 else None,
        "over_http": draw(st.booleans()),
    }


PLAN: Final = {
    "scenario": "paid",
    "prices": PRICES[0],
    "mutations": [],
    "retype": None,
    "raw": None,
    "header": None,
    "over_http": False,
}
"""A plan that breaks nothing: the base of the explicit examples."""


def the(events: list[SignedEvent], event_type: str) -> SignedEvent:
    """The one event of ``event_type`` among ``events``."""
    (found,) = [e for e in events if e.type == event_type]
    return found


async def prepare(flow: PaymentFlow, simulator: StripeSimulator, plan: dict[str, Any]) -> tuple[str, SignedEvent]:
    """Take a fresh payment where ``plan``'s scenario says; its id and the event Stripe sends then."""
    scenario = plan["scenario"]
    price, part = plan["prices"]
    checkout = await flow.create_payment(
        amount=price, provider=CODE, order_id="FUZZ", capture=scenario != "authorized" and scenario != "captured"
    )
    payment_id, stripe_id = checkout.payment.id, checkout.payment.external_id
    assert stripe_id is not None
    event_type = SCENARIOS[scenario][1]
    if scenario == "declined":
        return payment_id, the(await simulator.decline(stripe_id), event_type)
    if scenario == "session_expired":
        return payment_id, the(await simulator.expire(stripe_id), event_type)
    if scenario in ("session_delayed_paid", "session_delayed_failed"):
        for genuine in await simulator.pay(stripe_id, delayed=True):
            await flow.handle_webhook(CODE, genuine.body, genuine.headers)
        return payment_id, the(await simulator.settle(stripe_id, paid=scenario == "session_delayed_paid"), event_type)
    paid = await simulator.pay(stripe_id)
    if scenario in ("paid", "authorized", "session_completed", "session_paid"):
        return payment_id, the(paid, event_type)
    for genuine in paid:
        await flow.handle_webhook(CODE, genuine.body, genuine.headers)
    if scenario == "captured":
        return payment_id, the(await simulator.capture_in_dashboard(stripe_id), event_type)
    if scenario == "disputed":
        return payment_id, the(await simulator.dispute(stripe_id), event_type)
    already = len(simulator.events)
    await flow.refund(payment_id, amount=part)
    return payment_id, the(simulator.events[already:], event_type)


def broken_body(genuine: bytes, plan: dict[str, Any]) -> tuple[bytes, object]:
    """``genuine`` broken as ``plan`` says, and the event type it ends up with (``None``: not an event)."""
    if plan["raw"] is not None:
        return bytes(plan["raw"]), None
    event: dict[str, Any] = json.loads(genuine)
    for kind, key, value in plan["mutations"]:
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        target = obj if isinstance(obj, dict) else {}
        if kind == "set":
            target[key] = value
        elif kind == "delete":
            target.pop(key, None)
        elif kind == "elsewhere":  # another object, made at Stripe (its Dashboard): no paycore id in its metadata
            target[key] = value
            target["metadata"] = {}
        elif kind == "meta":
            metadata = target.setdefault("metadata", {})
            if isinstance(metadata, dict):
                metadata[key] = value
        elif kind == "refunds":
            target[key] = {"object": "list", "data": value, "has_more": False}
        elif kind == "top":
            event[key] = value
        elif kind == "untop":
            event.pop(key, None)
        elif kind == "unobject":
            event["data"] = {"object": value}
        elif kind == "extra":
            event[f"x-{key}"] = value
        else:  # nest: the field's value inside ``value`` levels of arrays
            text = json.dumps(target.get(key))
            target[key] = "\0NEST\0"
            body = json.dumps(event).replace('"\\u0000NEST\\u0000"', "[" * value + text + "]" * value)
            return body.encode(), event.get("type")
    if plan["retype"] is not None:
        event["type"] = plan["retype"]
    return json.dumps(event, separators=(",", ":")).encode(), event.get("type")


def signed_headers(body: bytes, tweak: tuple[str, Any] | None) -> dict[str, str]:
    """The headers of a delivery of ``body``, signed now as Stripe documents it unless ``tweak`` breaks them:
    ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    stamp, secret, scheme = str(int(time.time())), SECRET, "v1"
    kind, value = tweak if tweak is not None else ("", None)
    if kind == "missing":
        return {"content-type": "application/json"}
    if kind == "stamp":
        stamp = value
    elif kind == "skew":
        stamp = str(int(time.time()) + value)
    elif kind == "secret":
        secret = value
    elif kind == "scheme":
        scheme = value
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    header = f"t={stamp},{scheme}={value if kind == 'v1' else digest}"
    return {"content-type": "application/json; charset=utf-8", "Stripe-Signature": header}


def assert_consistent(after: Payment, before: Payment, event_type: object) -> None:
    """An accepted delivery took the payment only where its event type may, with amounts that fit."""
    assert isinstance(event_type, str), event_type
    assert event_type in REACHABLE, f"a {event_type!r} delivery was accepted and changed the payment"
    assert after.status is before.status or after.status in REACHABLE[event_type], (event_type, after.status)
    zero = Money.zero(after.currency)
    captured = after.captured_amount or zero
    for amount in (after.authorized_amount, after.captured_amount):
        assert amount is None or (amount.currency == after.currency and zero < amount <= after.amount), amount
    if after.authorized_amount is not None:
        assert captured <= after.authorized_amount
    if after.status in {S.SUCCEEDED, *REFUNDED}:
        assert captured.is_positive()
    if after.status is S.AUTHORIZED:
        assert after.authorized_amount == after.amount
    assert all(refund.currency == after.currency for refund in (r.amount for r in after.refunds))
    assert after.refunded_amount + after.pending_refund_amount <= captured
    if after.status is S.REFUNDED:
        assert after.refunded_amount == captured
    if after.status is S.PARTIALLY_REFUNDED:
        assert zero < after.refunded_amount < captured
    if event_type not in REFUNDING:
        assert after.refunded_amount == before.refunded_amount, (event_type, after.refunds)
    kept = {refund.id: refund for refund in after.refunds}
    for refund in before.refunds:  # a refund is never lost, nor its amount changed
        assert refund.id in kept
        assert kept[refund.id].amount == refund.amount


@asynccontextmanager
async def opened(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator, mode: str
) -> AsyncIterator[tuple[PaymentFlow, httpx.AsyncClient]]:
    """A fresh flow in ``mode`` reaching ``simulator`` (each example its own store), and its endpoint's client."""
    async with flow_with(simulator=simulator, mode=mode, success_url="https://shop.test/paid") as flow:
        transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            yield flow, client


async def deliver(
    flow: PaymentFlow, merchant: httpx.AsyncClient, body: bytes, headers: dict[str, str], *, over_http: bool
) -> bool:
    """Deliver through the flow or its HTTP endpoint; whether it was accepted (a refusal must be a paycore one)."""
    if over_http:
        raw_headers = {name: value.encode("utf-8", "surrogatepass") for name, value in headers.items()}
        response = await merchant.post(f"/{CODE}", content=body, headers=raw_headers)
        assert response.status_code in ANSWERS, response.text
        return response.status_code == 200
    try:
        await flow.handle_webhook(CODE, body, headers)
    except PaycoreError as error:
        refusal = str(error)
    else:
        return True
    assert not any(net in refusal for net in SAFETY_NETS), refusal  # the provider raised something else
    return False


def test_every_event_type_the_plugin_reads_says_where_it_may_take_a_payment() -> None:
    """:data:`REACHABLE` covers exactly the event types the plugin reads."""
    assert set(REACHABLE) == EVENT_TYPES


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=deliveries())
@example(plan=PLAN | {"mutations": [("nest", "status", 2)]})  # once a TypeError: a list is unhashable
@example(  # once a refund.failed event refunded the payment
    plan=PLAN | {"scenario": "refunded", "mutations": [("elsewhere", "id", "re_elsewhere")], "retype": "refund.failed"}
)
async def test_a_broken_signed_stripe_delivery_is_refused_with_a_paycore_error_and_changes_nothing(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator, plan: dict[str, Any]
) -> None:
    """Refused: a paycore error (a 4xx over HTTP) and nothing changed; accepted: where its type may lead."""
    mode, _, settled_status = SCENARIOS[plan["scenario"]]
    async with opened(flow_with, simulator, mode) as (flow, merchant):
        provider = flow.provider(CODE)
        assert isinstance(provider, StripeProvider)
        payment_id, genuine = await prepare(flow, simulator, plan)
        before = await flow.get_payment(payment_id)
        events_before = await flow.list_events(payment_id)
        body, event_type = broken_body(genuine.body, plan)
        headers = signed_headers(body, plan["header"])

        refused = await provider_refusal(provider, body, headers)  # anything else than a PaycoreError fails here
        accepted = await deliver(flow, merchant, body, headers, over_http=plan["over_http"])
        if plan["header"] is not None:
            assert isinstance(refused, InvalidSignature), plan["header"]
        if refused is not None:
            assert not accepted, f"the provider refused it ({refused}), the flow took it"
        event(f"the provider refused it: {type(refused).__name__}" if refused is not None else "the provider read it")
        event("accepted" if accepted else "refused")

        after = await flow.get_payment(payment_id)
        if not accepted:
            assert after == before
            assert await flow.list_events(payment_id) == events_before
            await flow.handle_webhook(CODE, genuine.body, signed_headers(genuine.body, None))  # its id is unused
            assert (await flow.get_payment(payment_id)).status is settled_status
        elif after != before:
            assert_consistent(after, before, event_type)
            assert await deliver(flow, merchant, body, headers, over_http=plan["over_http"])  # again: a no-op
            assert await flow.get_payment(payment_id) == after
        else:
            assert await flow.list_events(payment_id) == events_before


# -- what the fuzz found in the core (src/paycore) -----------------------------------------------------


async def test_a_signed_event_naming_another_payments_intent_is_refused_without_a_500(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    """A delivery about one payment that names the PaymentIntent of another is refused with a 4xx; nothing changes."""
    async with opened(flow_with, simulator, "payment_intent") as (flow, merchant):
        price = PRICES[0][0]
        first = (await flow.create_payment(amount=price, provider=CODE, order_id="A")).payment
        second = (await flow.create_payment(amount=price, provider=CODE, order_id="B")).payment
        assert first.external_id is not None
        assert second.external_id is not None
        event = json.loads(the(await simulator.pay(first.external_id), "payment_intent.succeeded").body)
        event["data"]["object"]["id"] = second.external_id  # the other payment's intent; the metadata names the first
        body = json.dumps(event).encode()
        response = await merchant.post(f"/{CODE}", content=body, headers=signed_headers(body, None))
        assert await flow.get_payment(first.id) == first
        assert await flow.get_payment(second.id) == second
        assert response.status_code in ANSWERS - {200}, response.text
