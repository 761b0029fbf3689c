"""The API version an event is rendered for, and what an event before basil is not trusted with.

Before ``2025-03-31.basil`` a Refund paycore did not make may record uncaptured
money an authorization released (reason null: Stripe's enum has no value for a
partial capture's remainder nor a canceled authorization). Such an event names
the PaymentIntent whose refunds the provider lists through the API instead.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from paycore.money import Money
from paycore_stripe.webhooks import (
    StripeEvent,
    before_basil,
    load_event,
    read_event,
    unlisted_refunds,
    untrusted_refund,
)

MISSING = object()
"""An event without an ``api_version``."""
PAYCORES = {"paycore_payment_id": "pay_1", "paycore_refund_id": "ref_1"}
"""The metadata of a refund paycore made."""


def body(event_type: str, obj: dict[str, Any], api_version: object = MISSING) -> bytes:
    event: dict[str, Any] = {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}
    if api_version is not MISSING:
        event["api_version"] = api_version
    return json.dumps(event).encode()


def refund(metadata: dict[str, str] | None = None, reason: str | None = None) -> dict[str, Any]:
    """A succeeded Refund of 20.00 EUR of ``pi_1``."""
    return {
        "id": "re_1",
        "object": "refund",
        "amount": 2000,
        "currency": "eur",
        "metadata": metadata or {},
        "payment_intent": "pi_1",
        "reason": reason,
        "status": "succeeded",
    }


def charge(*, captured: int, refunds: list[dict[str, Any]], tenant: str | None = None) -> dict[str, Any]:
    """A charge of 100.00 EUR of paycore's (of ``tenant``), ``captured`` in Stripe's units, listing ``refunds``."""
    metadata = {"paycore_payment_id": "pay_1"} | ({} if tenant is None else {"paycore_tenant": tenant})
    return {
        "id": "ch_1",
        "object": "charge",
        "amount": 10000,
        "amount_captured": captured,
        "amount_refunded": sum(r["amount"] for r in refunds),
        "captured": captured > 0,
        "currency": "eur",
        "metadata": metadata,
        "payment_intent": "pi_1",
        "refunds": {"object": "list", "data": refunds, "has_more": False},
    }


@pytest.mark.parametrize(
    ("shown", "read", "before"),
    [
        ("2024-12-18.acacia", "2024-12-18.acacia", True),
        ("2024-06-20", "2024-06-20", True),
        ("2024-06-20; checkout_server_update_beta=v1", "2024-06-20; checkout_server_update_beta=v1", True),
        ("2025-03-31.basil", "2025-03-31.basil", False),
        ("2025-09-30.clover", "2025-09-30.clover", False),
        ("2026-10-28.endive; some_beta=v2", "2026-10-28.endive; some_beta=v2", False),
        (MISSING, None, False),
        (None, None, False),
        (20240620, "20240620", True),
        ("acacia", "acacia", True),
        ("2024-06-20 or so", "2024-06-20 or so", True),
    ],
)
def test_an_events_api_version_is_read_beta_flags_aside_and_an_unreadable_one_is_not_trusted(
    shown: object, read: str | None, before: bool
) -> None:
    event = load_event(body("refund.created", refund(), shown))
    assert (event.api_version, before_basil(event)) == (read, before)
    assert (untrusted_refund(event) == "pi_1") is before


@pytest.mark.parametrize(
    ("event_type", "api_version", "obj", "tenant", "named"),
    [
        ("refund.created", "2024-12-18.acacia", refund(), None, "pi_1"),
        ("refund.updated", "2024-12-18.acacia", refund(), "t1", "pi_1"),
        ("charge.refund.updated", "2024-06-20", refund(), None, "pi_1"),
        ("refund.created", "2025-03-31.basil", refund(), None, None),
        ("refund.created", "2024-12-18.acacia", refund(PAYCORES), None, None),
        ("charge.refund.updated", "2024-06-20", refund(PAYCORES), None, None),
        ("refund.created", "2024-12-18.acacia", refund(reason="expired_uncaptured_charge"), None, None),
        ("refund.created", "2024-12-18.acacia", refund({"paycore_tenant": "t2"}), "t1", None),
        ("refund.created", "2024-12-18.acacia", refund({"paycore_tenant": "t2"}), "t2", "pi_1"),
    ],
)
def test_before_basil_a_refund_event_names_its_intent_unless_paycore_made_its_refund(
    event_type: str, api_version: str, obj: dict[str, Any], tenant: str | None, named: str | None
) -> None:
    assert untrusted_refund(load_event(body(event_type, obj, api_version)), tenant=tenant) == named


@pytest.mark.parametrize(
    ("api_version", "obj", "tenant", "named"),
    [
        ("2020-08-27", charge(captured=10000, refunds=[refund()]), None, "pi_1"),  # a Dashboard's, or a release
        ("2020-08-27", charge(captured=10000, refunds=[refund(PAYCORES)]), None, None),
        ("2020-08-27", charge(captured=6000, refunds=[]), None, "pi_1"),  # captured in part
        ("2020-08-27", charge(captured=0, refunds=[refund()]), None, None),  # a canceled authorization: no refund
        ("2020-08-27", charge(captured=10000, refunds=[refund()], tenant="t2"), "t1", None),
        ("2020-08-27", charge(captured=10000, refunds=[refund()], tenant="t2"), "t2", "pi_1"),
        ("2025-03-31.basil", charge(captured=10000, refunds=[refund()]), None, None),
        ("2025-03-31.basil", charge(captured=6000, refunds=[]), None, None),
    ],
)
def test_before_basil_a_charge_refunded_names_its_intent_when_it_may_show_a_release(
    api_version: str, obj: dict[str, Any], tenant: str | None, named: str | None
) -> None:
    assert unlisted_refunds(load_event(body("charge.refunded", obj, api_version)), tenant=tenant) == named


def test_a_refund_event_reports_the_refunds_listed_through_the_api_instead_of_its_own() -> None:
    event = StripeEvent("evt_1", "refund.created", refund(), "2024-12-18.acacia")
    (nothing,) = read_event(event, refunds=[])
    (listed,) = read_event(event, refunds=[{**refund(), "id": "re_2", "amount": 1000}])
    assert (nothing.external_id, nothing.refunds, nothing.provider_event_id) == ("pi_1", (), "evt_1")
    assert [(r.external_id, r.amount) for r in listed.refunds] == [("re_2", Money.of("10.00", "EUR"))]
