"""The views under a request-wide transaction, and requests that must not end in a 500.

* ``ATOMIC_REQUESTS`` on the test project's SQLite database (``transaction_mode``
  ``IMMEDIATE``, as the README recommends), or on a second alias of it: the
  webhook, ``pay``, ``payment`` and ``order_return`` still reach paycore, whose
  units of work run on a worker thread with a connection of their own.
* A webhook whose ``Content-Length`` is not a number is ``400``, as Django's
  server hands it over; an order id or a tenant paycore refuses is ``404`` on
  the return page; an order id as long as paycore allows, or with a no-break
  space, is still paid once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest
from django.test import Client, override_settings
from django.urls import include, path
from paycore_django_test_databases import SECOND_ALIAS, atomic_requests_on

import paycore.testing.fake
import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore.status import Outcome, PaymentStatus
from paycore.testing.fake import FakeProvider

SECRET = "whsec_fake_0123456789abcdef"
TOTAL = Money.of("12500", "XOF")
LOCK_TIMEOUT = 1
"""Seconds SQLite waits for a lock in these tests (30 in the project): a wait that fails, fails fast."""

urlpatterns = [path("payments/", include("paycore_django.urls"))]


def resolve_order(request: HttpRequest, order_id: str) -> tuple[Money, str] | None:
    """Every order whose id starts with ``T`` costs 12 500 XOF, however long or odd its id."""
    return (TOTAL, f"Order {order_id[:20]}") if order_id.startswith("T") else None


def resolve_tenant(request: HttpRequest) -> str | None:
    """The tenant the request's ``X-Tenant`` header names (none without it)."""
    return request.headers.get("X-Tenant") or None


CONFIG = {
    "repository": "django",
    "idempotency": "django",
    "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
}

WEB_SETTINGS: dict[str, Any] = {
    "ROOT_URLCONF": __name__,
    "PAYCORE_DJANGO": {"ORDER_RESOLVER": resolve_order, "TENANT_RESOLVER": resolve_tenant},
}


@pytest.fixture
def flow(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingPaymentFlow]:
    """A blocking flow on the Django ORM, served as the process's flow to the views."""
    blocking = BlockingPaymentFlow.from_config(CONFIG, plugins=[paycore.testing.fake]).open()
    monkeypatch.setattr(paycore_django, "blocking_flow", lambda: blocking, raising=False)
    monkeypatch.setattr(paycore_django, "flow", lambda: blocking.flow, raising=False)
    with override_settings(**WEB_SETTINGS):
        yield blocking
    blocking.close()


@pytest.fixture(params=["default", SECOND_ALIAS], ids=["default", "second alias"])
def atomic_requests(
    flow: BlockingPaymentFlow, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    """``ATOMIC_REQUESTS`` on the SQLite ``default`` database (``IMMEDIATE``), or on a second alias of its file."""
    with atomic_requests_on(request.param, monkeypatch, LOCK_TIMEOUT):
        yield


def fake(flow: BlockingPaymentFlow) -> FakeProvider:
    provider = flow.flow.provider("fake")
    assert isinstance(provider, FakeProvider)
    return provider


def pending_payment(flow: BlockingPaymentFlow) -> str:
    """A payment of order ``T4-17`` sent to the fake provider, awaiting its confirmation."""
    fake(flow).script("initiate", "pending")
    return flow.create_payment(amount=TOTAL, provider="fake", order_id="T4-17").payment.id


# -- ATOMIC_REQUESTS ---------------------------------------------------------------------------


@pytest.mark.usefixtures("atomic_requests")
def test_paying_under_atomic_requests_starts_the_payment(flow: BlockingPaymentFlow) -> None:
    client = Client()
    assert client.get("/payments/pay/T4-17/").status_code == 200
    fake(flow).script("initiate", "pending")
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert response.status_code == 302, response.content.decode()[:500]
    (payment,) = flow.list_payments(order_id="T4-17")
    assert payment.amount == TOTAL


@pytest.mark.usefixtures("atomic_requests")
def test_the_return_page_under_atomic_requests_stores_what_the_provider_reports(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    fake(flow).settle(payment_id, Outcome.SUCCEEDED)
    response = Client().get(f"/payments/{payment_id}/")
    assert b'data-status="succeeded"' in response.content
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


@pytest.mark.usefixtures("atomic_requests")
def test_a_webhook_under_atomic_requests_is_received(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=TOTAL)
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = Client().post("/payments/webhooks/fake/", data=body, content_type="application/json", **extra)
    assert response.status_code == 200, response.content.decode()[:500]
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


@pytest.mark.usefixtures("atomic_requests")
def test_the_order_return_under_atomic_requests_stores_what_the_provider_reports(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    fake(flow).settle(payment_id, Outcome.SUCCEEDED)
    response = Client().get("/payments/orders/T4-17/return/")
    assert b'data-status="succeeded"' in response.content
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


# -- long and odd order ids --------------------------------------------------------------------


@pytest.mark.parametrize("order_id", ["T" + "x" * 254, "T4\u00a017"], ids=["255 characters", "no-break space"])
def test_a_long_or_odd_order_id_is_paid_once(flow: BlockingPaymentFlow, order_id: str) -> None:
    client = Client()
    assert all(client.get(f"/payments/pay/{order_id}/").status_code == 200 for _ in range(2))  # two tabs
    first, second = (client.post(f"/payments/pay/{order_id}/", {"provider": "fake"}) for _ in range(2))
    assert first.status_code == 302, first.content.decode()[:500]
    assert second.status_code == 400
    assert b"This order is paid" in second.content
    (payment,) = flow.list_payments(order_id=order_id)
    assert payment.status is PaymentStatus.SUCCEEDED


# -- webhooks with a Content-Length that is not a number ---------------------------------------


@pytest.mark.parametrize("length", ["abc", "1e3", "12.0", "0x10"])
def test_a_content_length_that_is_not_a_number_is_400_and_changes_nothing(
    flow: BlockingPaymentFlow, length: str
) -> None:
    payment_id = pending_payment(flow)
    before = flow.get_payment(payment_id)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=TOTAL)
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    response = Client(raise_request_exception=False).post(
        "/payments/webhooks/fake/", data=body, content_type="application/json", CONTENT_LENGTH=length, **extra
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_webhook"
    after = flow.get_payment(payment_id)
    assert (after.status, after.version) == (before.status, before.version)


# -- order ids and tenants paycore refuses -----------------------------------------------------


@pytest.mark.parametrize("order_id", ["T" + "x" * 5000, "Tab%00c"], ids=["5001 characters", "NUL"])
def test_an_order_id_paycore_refuses_has_no_return_page(flow: BlockingPaymentFlow, order_id: str) -> None:
    pending_payment(flow)
    response = Client(raise_request_exception=False).get(f"/payments/orders/{order_id}/return/")
    assert response.status_code == 404
    assert "paycore_django/not_found.html" in [template.name for template in response.templates]


def test_a_tenant_paycore_refuses_has_no_return_page(flow: BlockingPaymentFlow) -> None:
    pending_payment(flow)
    response = Client(raise_request_exception=False).get("/payments/orders/T4-17/return/", HTTP_X_TENANT="x" * 300)
    assert response.status_code == 404
    assert "paycore_django/not_found.html" in [template.name for template in response.templates]
