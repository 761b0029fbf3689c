"""The webhook endpoint, the pay view and the return pages, through Django's test client.

Each test runs on a flow over the Django ORM with the scriptable
``FakeProvider``; ``paycore_django.flow()``/``blocking_flow()`` are pointed at it.
The webhook view is async: under the client it runs on Django's event loop,
and :func:`test_the_webhook_view_runs_under_each_backend` awaits it directly under
asyncio and trio.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings
from django.urls import include, path

import paycore.testing.fake
import paycore_django
from paycore.asgi import MAX_BODY_BYTES
from paycore.blocking import BlockingPaymentFlow
from paycore.errors import ProviderNotSent, StorageUnavailable, UnsupportedOperation
from paycore.money import Money
from paycore.status import Outcome, PaymentStatus
from paycore.testing.fake import FakeProvider
from paycore_django import views

SECRET = "whsec_fake_0123456789abcdef"
TENANT = "chez-awa"
ORDER_TOTALS = {"T4-17": Money.of("12500", "XOF"), "EU-1": Money.of("9.90", "EUR")}

urlpatterns = [path("payments/", include("paycore_django.urls"))]


def resolve_order(request: HttpRequest, order_id: str) -> tuple[Money, str] | None:
    """Orders of the tests: a fixed price list."""
    amount = ORDER_TOTALS.get(order_id)
    return None if amount is None else (amount, f"Order {order_id}")


def resolve_tenant(request: HttpRequest) -> str:
    """Every request of the tests belongs to the restaurant."""
    return TENANT


CONFIG = {
    "repository": "django",
    "idempotency": "django",
    "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
    "tenants": {
        TENANT: {
            "providers": {
                "fake": {"type": "fake", "webhook_secret": SECRET, "label": "Card"},
                "wave": {"type": "fake", "webhook_secret": SECRET, "label": "Wave"},
            }
        }
    },
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


def fake(flow: BlockingPaymentFlow, tenant: str | None = TENANT, code: str = "fake") -> FakeProvider:
    provider = flow.flow.provider(code, tenant=tenant)
    assert isinstance(provider, FakeProvider)
    return provider


def pending_payment(flow: BlockingPaymentFlow, tenant: str | None = TENANT) -> str:
    """A payment sent to the fake provider, awaiting its confirmation."""
    fake(flow, tenant).script("initiate", "pending")
    checkout = flow.create_payment(amount=Money.of("12500", "XOF"), provider="fake", order_id="T4-17", tenant=tenant)
    return checkout.payment.id


def post_webhook(client: Client, url: str, body: bytes, headers: dict[str, str]) -> Any:
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return client.post(url, data=body, content_type="application/json", **extra)


HOOK = f"/payments/webhooks/{TENANT}/fake/"


# -- webhooks ----------------------------------------------------------------------------------


def test_a_good_webhook_is_answered_200_after_the_payment_changed(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    response = post_webhook(Client(), HOOK, body, headers)
    assert response.status_code == 200
    assert response.json() == {"received": True, "payments": [payment_id]}
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


def test_a_repeated_delivery_is_200_and_adds_no_event(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(
        payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"), event_id="evt_once"
    )
    assert post_webhook(Client(), HOOK, body, headers).status_code == 200
    events = len(flow.list_events(payment_id))
    again = post_webhook(Client(), HOOK, body, headers)
    assert again.status_code == 200
    assert len(flow.list_events(payment_id)) == events


def test_the_url_without_a_trailing_slash_is_the_same_endpoint(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    assert post_webhook(Client(), HOOK.rstrip("/"), body, headers).status_code == 200


def test_a_payment_without_tenant_is_confirmed_at_the_tenantless_url(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow, tenant=None)
    body, headers = fake(flow, None).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    assert post_webhook(Client(), "/payments/webhooks/fake/", body, headers).status_code == 200
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


def test_a_bad_signature_is_401_and_changes_nothing(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, secret="whsec_forged")
    response = post_webhook(Client(), HOOK, body, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING


def test_a_signed_but_unreadable_body_is_400(flow: BlockingPaymentFlow) -> None:
    body = b'{"payment_id": 17}'
    headers = {"x-fake-signature": paycore.testing.fake.sign(body, SECRET)}
    response = post_webhook(Client(), HOOK, body, headers)
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_webhook"


def test_an_unknown_provider_is_404(flow: BlockingPaymentFlow) -> None:
    response = post_webhook(Client(), f"/payments/webhooks/{TENANT}/stripe/", b"{}", {})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_another_tenants_url_cannot_touch_the_payment(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    response = post_webhook(Client(), "/payments/webhooks/fake/", body, headers)
    assert response.status_code == 404
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING


def test_an_oversized_body_is_413(flow: BlockingPaymentFlow) -> None:
    response = post_webhook(Client(), HOOK, b"x" * (MAX_BODY_BYTES + 1), {})
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_get_is_405(flow: BlockingPaymentFlow) -> None:
    assert Client().get(HOOK).status_code == 405


@pytest.mark.parametrize("method", ["get", "head", "put", "patch", "delete", "options"])
def test_a_webhook_not_posted_is_405_naming_post_as_the_allowed_method(flow: BlockingPaymentFlow, method: str) -> None:
    response = getattr(Client(), method)(HOOK)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_webhooks_need_no_csrf_token(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    assert post_webhook(Client(enforce_csrf_checks=True), HOOK, body, headers).status_code == 200


@pytest.mark.anyio
async def test_the_webhook_view_runs_under_each_backend(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    extra = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    request = RequestFactory().post(HOOK, data=body, content_type="application/json", **extra)
    response = await views.webhook(request, code="fake", tenant=TENANT)
    assert response.status_code == 200
    assert json.loads(response.content)["payments"] == [payment_id]


# -- the source-address allowlist -----------------------------------------------------------------


def allowlist(**options: Any) -> Any:
    return override_settings(PAYCORE_DJANGO={**WEB_SETTINGS["PAYCORE_DJANGO"], **options})


def test_an_address_outside_the_allowlist_is_403_and_changes_nothing(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.0/24"]):
        response = post_webhook(Client(REMOTE_ADDR="198.51.100.9"), HOOK, body, headers)
    assert response.status_code == 403
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING


def test_a_refused_address_posting_a_forged_line_in_its_path_writes_one_quoted_log_line(
    flow: BlockingPaymentFlow, caplog: pytest.LogCaptureFixture
) -> None:
    forged = f"/payments/webhooks/{TENANT}/fake%0ACRITICAL paycore refund approved/"
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.0/24"]), caplog.at_level(logging.WARNING):
        response = post_webhook(Client(REMOTE_ADDR="198.51.100.9"), forged, b"{}", {})
    assert response.status_code == 403
    (refused,) = [record.getMessage() for record in caplog.records if record.name == "paycore_django.views"]
    assert refused.startswith("webhook '/payments/webhooks/")
    assert "\n" not in refused


class ShipperDown(logging.Handler):
    """The application's log shipper, down: every line it is handed raises."""

    def emit(self, record: logging.LogRecord) -> None:
        raise OSError("log shipper unreachable")


@pytest.fixture
def shipper_down() -> Iterator[None]:
    """A handler that raises on every line of paycore_django's loggers, as an application may configure one."""
    handler, logger = ShipperDown(), logging.getLogger("paycore_django")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def test_a_log_handler_that_raises_changes_no_answer_of_the_views(
    flow: BlockingPaymentFlow, shipper_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**_: Any) -> None:
        raise StorageUnavailable("the database is restarting")

    with monkeypatch.context() as patched:  # the pay page logs the error and tells the customer generically
        patched.setattr(flow, "create_payment", refused)
        client = Client()
        pay_page(client)
        response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
        assert (response.status_code, NOT_STARTED in response.content) == (400, True)
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.0/24"]):  # a refused address is logged, then answered 403
        assert post_webhook(Client(REMOTE_ADDR="198.51.100.9"), HOOK, body, headers).status_code == 403

    async def down(*_: Any, **__: Any) -> None:
        raise StorageUnavailable("the database is restarting")

    with monkeypatch.context() as patched:  # a delivery that cannot be stored is logged, then answered 503
        patched.setattr(flow.flow, "handle_webhook", down)
        assert post_webhook(Client(), HOOK, body, headers).status_code == 503
    assert post_webhook(Client(), HOOK, body, headers).status_code == 200
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


def test_an_address_inside_the_allowlist_is_served(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.0/24"]):
        response = post_webhook(Client(REMOTE_ADDR="203.0.113.7"), HOOK, body, headers)
    assert response.status_code == 200


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    forged = {**headers, "x-forwarded-for": "203.0.113.7"}
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.7"]):
        response = post_webhook(Client(REMOTE_ADDR="198.51.100.9"), HOOK, body, forged)
    assert response.status_code == 403


def test_x_forwarded_for_from_a_trusted_proxy_names_the_sender(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    body, headers = fake(flow).webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
    forwarded = {**headers, "x-forwarded-for": "203.0.113.7, 10.0.0.2"}
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.7"], TRUSTED_PROXIES=["10.0.0.0/8"]):
        response = post_webhook(Client(REMOTE_ADDR="10.0.0.1"), HOOK, body, forwarded)
    assert response.status_code == 200


def test_a_forged_left_entry_behind_a_trusted_proxy_does_not_pass(flow: BlockingPaymentFlow) -> None:
    forwarded = {"x-forwarded-for": "203.0.113.7, 198.51.100.9"}
    with allowlist(WEBHOOK_ALLOWED_IPS=["203.0.113.7"], TRUSTED_PROXIES=["10.0.0.1"]):
        response = post_webhook(Client(REMOTE_ADDR="10.0.0.1"), HOOK, b"{}", forwarded)
    assert response.status_code == 403


# -- paying for an order -------------------------------------------------------------------------


def pay_page(client: Client, order_id: str = "T4-17") -> Any:
    return client.get(f"/payments/pay/{order_id}/")


def test_the_pay_page_offers_the_tenants_providers_for_the_orders_currency(flow: BlockingPaymentFlow) -> None:
    page = pay_page(Client())
    assert page.status_code == 200
    assert dict(page.context["form"].fields["provider"].choices) == {"fake": "Card", "wave": "Wave"}
    assert Money.of("12500", "XOF").display() in page.content.decode()


def test_an_order_the_resolver_does_not_know_is_404(flow: BlockingPaymentFlow) -> None:
    assert Client().get("/payments/pay/NOPE/").status_code == 404


def test_the_amount_comes_from_the_order_never_from_the_form(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    fake(flow).script("initiate", "pending")
    response = client.post(
        "/payments/pay/T4-17/",
        {"provider": "fake", "amount": "1", "currency": "EUR"},
    )
    assert response.status_code == 302
    assert response["Location"].startswith("https://fake.invalid/pay/")
    (payment,) = flow.list_payments(order_id="T4-17", tenant=TENANT)
    assert payment.amount == Money.of("12500", "XOF")
    assert payment.tenant == TENANT


def test_submitting_the_same_form_twice_starts_one_payment(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    fake(flow).script("initiate", "pending", "pending")
    first = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    second = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert first["Location"] == second["Location"]
    assert len(flow.list_payments(order_id="T4-17")) == 1


def test_a_provider_not_offered_is_refused(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    response = client.post("/payments/pay/T4-17/", {"provider": "cash"})
    assert response.status_code == 400
    assert flow.list_payments(order_id="T4-17") == []


def test_a_payment_without_a_next_action_goes_to_its_confirmation_page(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"}, follow=True)
    assert response.status_code == 200
    status = response.context["payment"].status
    assert status is PaymentStatus.SUCCEEDED
    assert b'data-status="succeeded"' in response.content


NOT_STARTED = b"The payment could not be started. Please try again later."


def test_a_declined_payment_shows_the_form_again_with_no_error_500(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    fake(flow).script("initiate", "not_sent")
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert response.status_code == 400
    assert NOT_STARTED in response.content
    assert b"<form" in response.content


GATEWAY_TEXT = "key sk_live_51HxSECRETxyz refused: dummy gateway at http://10.20.0.7:8443/v1/charges not reached"


def pay_failing_with(client: Client, caplog: pytest.LogCaptureFixture) -> Any:
    """Post the pay form of order T4-17, capturing what the views log."""
    pay_page(client)
    with caplog.at_level(logging.WARNING, logger="paycore_django.views"):
        return client.post("/payments/pay/T4-17/", {"provider": "fake"})


def assert_told_generically(response: Any, caplog: pytest.LogCaptureFixture, detail: str) -> None:
    """The customer read only the generic sentence; the operator's log holds ``detail``."""
    assert response.status_code == 400
    page = response.content.decode()
    assert NOT_STARTED.decode() in page
    for hidden in ("sk_live_51HxSECRETxyz", "10.20.0.7", "dummy gateway", "postgres://"):
        assert hidden not in page
    logged = [r.getMessage() for r in caplog.records if r.name == "paycore_django.views"]
    assert any(detail in message for message in logged)
    assert {r.levelno for r in caplog.records if r.name == "paycore_django.views"} == {logging.WARNING}


def test_a_providers_error_text_is_logged_not_shown_to_the_customer(
    flow: BlockingPaymentFlow, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(payment: Any) -> None:
        raise ProviderNotSent(GATEWAY_TEXT)

    monkeypatch.setattr(fake(flow), "initiate", unreachable)
    response = pay_failing_with(Client(), caplog)
    assert_told_generically(response, caplog, "sk_live_51HxSECRETxyz")


def test_a_storage_error_text_is_logged_not_shown_to_the_customer(
    flow: BlockingPaymentFlow, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(**_: Any) -> None:
        raise StorageUnavailable("postgres://paycore@10.20.0.7:5432/pay: connection timed out")

    monkeypatch.setattr(flow, "create_payment", down)
    response = pay_failing_with(Client(), caplog)
    assert_told_generically(response, caplog, "10.20.0.7:5432")


def test_a_refusal_of_the_payment_itself_is_still_told_to_the_customer(
    flow: BlockingPaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refusing(payment: Any) -> None:
        raise UnsupportedOperation("Card takes no payment above 10 000 XOF")

    monkeypatch.setattr(fake(flow), "initiate", refusing)
    client = Client()
    pay_page(client)
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert response.status_code == 400
    assert b"Card takes no payment above 10 000 XOF" in response.content
    assert NOT_STARTED not in response.content


# -- paying an order once ------------------------------------------------------------------------


def paid_payment(flow: BlockingPaymentFlow, amount: str = "12500", tenant: str | None = TENANT) -> str:
    """A payment of order ``T4-17`` that the fake provider captured at once."""
    checkout = flow.create_payment(amount=Money.of(amount, "XOF"), provider="fake", order_id="T4-17", tenant=tenant)
    assert checkout.payment.status is PaymentStatus.SUCCEEDED
    return checkout.payment.id


def test_a_second_tab_on_a_paid_order_charges_nothing(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    pay_page(client)  # the same bill open in a second tab
    assert client.post("/payments/pay/T4-17/", {"provider": "fake"}).status_code == 302
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert response.status_code == 400
    assert b'data-testid="paid"' in response.content
    assert b"Pay 12" not in response.content
    (payment,) = flow.list_payments(order_id="T4-17", tenant=TENANT)
    assert payment.status is PaymentStatus.SUCCEEDED


def test_the_pay_page_of_a_paid_order_says_so_and_offers_no_button(flow: BlockingPaymentFlow) -> None:
    paid_payment(flow)
    page = Client().get("/payments/pay/T4-17/")
    assert page.status_code == 200
    assert b"This order is paid: nothing is left to pay." in page.content
    assert b"<form" not in page.content
    assert b"Pay 12" not in page.content


def test_a_second_tab_while_a_payment_is_under_way_goes_on_with_that_payment(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    pay_page(client)
    fake(flow).script("initiate", "pending", "pending")
    first = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    second = client.post("/payments/pay/T4-17/", {"provider": "wave"})
    assert second.status_code == 302
    assert second["Location"] == first["Location"]  # the checkout page of the payment under way
    (payment,) = flow.list_payments(order_id="T4-17", tenant=TENANT)
    page = client.get("/payments/pay/T4-17/")
    assert b'data-testid="under-way"' in page.content
    assert f'href="/payments/{payment.id}/"'.encode() in page.content
    assert b"<form" not in page.content


def test_an_authorized_payment_sends_a_second_tab_to_its_page(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    fake(flow).script("initiate", "authorize")
    payment_id = flow.create_payment(
        amount=Money.of("12500", "XOF"), provider="fake", order_id="T4-17", tenant=TENANT
    ).payment.id
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert response.status_code == 302
    assert response["Location"] == f"/payments/{payment_id}/"
    assert len(flow.list_payments(order_id="T4-17", tenant=TENANT)) == 1


def stale_listing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The pay view sees the order without payments, as two requests do that check it at the same instant.

    Returns the order ids it was asked for.
    """
    asked: list[str] = []

    def no_payments_yet(flow: BlockingPaymentFlow, order_id: str, tenant: str | None) -> list[Any]:
        asked.append(order_id)
        return []

    monkeypatch.setattr(views, "_payments_of", no_payments_yet, raising=False)
    return asked


def test_two_tabs_posting_at_once_with_one_provider_share_one_payment(
    flow: BlockingPaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    pay_page(client)
    pay_page(client)
    asked = stale_listing(monkeypatch)
    fake(flow).script("initiate", "pending", "pending")
    first = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    second = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert second.status_code == 302
    assert second["Location"] == first["Location"]  # the first one's checkout, replayed
    assert len(flow.list_payments(order_id="T4-17", tenant=TENANT)) == 1
    assert asked == ["T4-17", "T4-17"]  # both requests checked the order before either started a payment


def test_two_tabs_posting_at_once_with_two_providers_start_one_payment(
    flow: BlockingPaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client()
    pay_page(client)
    pay_page(client)
    asked = stale_listing(monkeypatch)
    fake(flow).script("initiate", "pending")
    assert client.post("/payments/pay/T4-17/", {"provider": "fake"}).status_code == 302
    second = client.post("/payments/pay/T4-17/", {"provider": "wave"})
    assert second.status_code == 400
    assert b"A payment for this order was just started." in second.content
    assert len(flow.list_payments(order_id="T4-17", tenant=TENANT)) == 1
    assert asked == ["T4-17", "T4-17"]  # both requests checked the order before either started a payment


def test_a_partly_paid_order_is_charged_what_is_left(flow: BlockingPaymentFlow) -> None:
    paid_payment(flow, "10000")
    client = Client()
    page = pay_page(client)
    assert b"Pay 2 500 XOF" in page.content
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"})
    assert response.status_code == 302
    _, second = flow.list_payments(order_id="T4-17", tenant=TENANT)
    assert second.amount == Money.of("2500", "XOF")


def test_what_was_refunded_is_due_again(flow: BlockingPaymentFlow) -> None:
    payment_id = paid_payment(flow)
    flow.refund(payment_id, amount=Money.of("2500", "XOF"), tenant=TENANT)
    client = Client()
    pay_page(client)
    client.post("/payments/pay/T4-17/", {"provider": "fake"})
    amounts = [payment.amount for payment in flow.list_payments(order_id="T4-17", tenant=TENANT)]
    assert amounts == [Money.of("12500", "XOF"), Money.of("2500", "XOF")]


def test_after_a_declined_payment_the_order_can_be_paid_again(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    fake(flow).script("initiate", "decline")
    client.post("/payments/pay/T4-17/", {"provider": "fake"})
    pay_page(client)
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"}, follow=True)
    assert b'data-status="succeeded"' in response.content
    statuses = [payment.status for payment in flow.list_payments(order_id="T4-17", tenant=TENANT)]
    assert statuses == [PaymentStatus.FAILED, PaymentStatus.SUCCEEDED]


def test_a_payment_the_provider_never_received_does_not_hold_the_order(flow: BlockingPaymentFlow) -> None:
    client = Client()
    pay_page(client)
    fake(flow).script("initiate", "not_sent")
    assert client.post("/payments/pay/T4-17/", {"provider": "fake"}).status_code == 400
    page = pay_page(client)
    assert b"Pay 12 500 XOF" in page.content
    response = client.post("/payments/pay/T4-17/", {"provider": "wave"}, follow=True)
    assert b'data-status="succeeded"' in response.content
    never_sent, paid = flow.list_payments(order_id="T4-17", tenant=TENANT)
    assert (never_sent.status, never_sent.external_id) == (PaymentStatus.PENDING, None)  # the reaper expires it
    assert (paid.provider, paid.status) == ("wave", PaymentStatus.SUCCEEDED)


def test_the_pay_view_and_the_order_mixin_agree_on_what_is_due(flow: BlockingPaymentFlow) -> None:
    from paycore_django.orders import PaycoreOrderMixin

    class Order(PaycoreOrderMixin):
        pk = "T4-17"
        paycore_tenant_field = "restaurant"
        restaurant = TENANT

        def paycore_total(self) -> Money:
            return Money.of("12500", "XOF")

    flow.refund(paid_payment(flow, "10000"), amount=Money.of("1000", "XOF"), tenant=TENANT)
    page = pay_page(Client())
    assert Order().balance_due() == page.context["due"] == Money.of("3500", "XOF")


def test_an_order_whose_tenant_field_is_blank_has_the_payments_without_a_tenant(flow: BlockingPaymentFlow) -> None:
    from paycore_django.orders import PaycoreOrderMixin

    class Order(PaycoreOrderMixin):
        pk = "TAKEAWAY-3"
        paycore_tenant_field = "restaurant"
        restaurant = ""  # a blank CharField: no restaurant

        def paycore_total(self) -> Money:
            return Money.of("2500", "XOF")

    fake(flow).script("initiate", "approve")
    flow.create_payment(amount=Money.of("2500", "XOF"), provider="fake", order_id="TAKEAWAY-3", tenant=TENANT)
    assert Order().payments() == [], "another tenant's"
    assert Order().balance_due() == Money.of("2500", "XOF")
    fake(flow).script("initiate", "approve")
    mine = flow.create_payment(amount=Money.of("2500", "XOF"), provider="fake", order_id="TAKEAWAY-3")
    assert [payment.id for payment in Order().payments()] == [mine.payment.id]
    assert Order().balance_due() == Money.of("0", "XOF")


# -- an order whose payments are in another currency ---------------------------------------------


def xof_payment_of_the_euro_order(flow: BlockingPaymentFlow, initiate: str = "approve") -> str:
    """A payment in XOF of order ``EU-1``, whose total the resolver now gives in EUR."""
    fake(flow).script("initiate", initiate)
    checkout = flow.create_payment(amount=Money.of("12500", "XOF"), provider="fake", order_id="EU-1", tenant=TENANT)
    return checkout.payment.id


def test_an_order_paid_in_another_currency_is_409_and_charged_nothing(flow: BlockingPaymentFlow) -> None:
    xof_payment_of_the_euro_order(flow)
    client = Client()
    for response in (client.get("/payments/pay/EU-1/"), client.post("/payments/pay/EU-1/", {"provider": "fake"})):
        assert response.status_code == 409
        assert b"This order has payments in XOF, but its total is in EUR" in response.content
        assert b"<form" not in response.content
    assert len(flow.list_payments(order_id="EU-1", tenant=TENANT)) == 1


def test_a_declined_payment_in_another_currency_does_not_hold_the_order(flow: BlockingPaymentFlow) -> None:
    xof_payment_of_the_euro_order(flow, initiate="decline")
    page = Client().get("/payments/pay/EU-1/")
    assert page.status_code == 200
    assert page.context["due"] == Money.of("9.90", "EUR")


def test_a_payment_in_another_currency_refunded_in_full_does_not_hold_the_order(flow: BlockingPaymentFlow) -> None:
    """Paid in the wrong currency by mistake, then given back: the order is paid as if it never was."""
    payment_id = xof_payment_of_the_euro_order(flow)
    flow.refund(payment_id, amount=Money.of("5000", "XOF"))
    assert Client().get("/payments/pay/EU-1/").status_code == 409, "7 500 XOF still kept for it"
    flow.refund(payment_id)
    page = Client().get("/payments/pay/EU-1/")
    assert page.status_code == 200
    assert page.context["due"] == Money.of("9.90", "EUR")


def test_the_order_mixin_names_the_currencies_it_cannot_add_up(flow: BlockingPaymentFlow) -> None:
    from paycore_django.orders import OrderCurrencyMismatch, PaycoreOrderMixin

    class Order(PaycoreOrderMixin):
        pk = "EU-1"
        paycore_tenant_field = "restaurant"
        restaurant = TENANT

        def paycore_total(self) -> Money:
            return Money.of("9.90", "EUR")

    payment_id = xof_payment_of_the_euro_order(flow)
    said = re.escape(f"order 'EU-1' costs EUR but has payments in XOF ({payment_id})")
    for amount in (Order().balance_due, Order().paid_amount, Order().refunded_amount):
        with pytest.raises(OrderCurrencyMismatch, match=said):
            amount()


# -- PROVIDER_FILTER --------------------------------------------------------------------------------


def card_only_for_customers(request: HttpRequest, providers: dict[str, Any]) -> dict[str, Any]:
    """A PROVIDER_FILTER: ``wave`` for staff only (the test client is an anonymous customer)."""
    if request.headers.get("X-Staff") == "yes":
        return providers
    return {code: provider for code, provider in providers.items() if code != "wave"}


@pytest.fixture
def provider_filter(flow: BlockingPaymentFlow) -> Iterator[None]:
    options = {**WEB_SETTINGS["PAYCORE_DJANGO"], "PROVIDER_FILTER": card_only_for_customers}
    with override_settings(PAYCORE_DJANGO=options):
        yield


@pytest.mark.usefixtures("provider_filter")
def test_the_pay_page_offers_only_the_providers_the_filter_keeps(flow: BlockingPaymentFlow) -> None:
    assert dict(pay_page(Client()).context["form"].fields["provider"].choices) == {"fake": "Card"}
    staff = Client(HTTP_X_STAFF="yes")
    assert dict(pay_page(staff).context["form"].fields["provider"].choices) == {"fake": "Card", "wave": "Wave"}


@pytest.mark.usefixtures("provider_filter")
def test_a_provider_the_filter_leaves_out_is_refused_when_posted(flow: BlockingPaymentFlow) -> None:
    response = Client().post("/payments/pay/T4-17/", {"provider": "wave"})
    assert response.status_code == 400
    assert flow.list_payments(order_id="T4-17", tenant=TENANT) == []


@pytest.mark.usefixtures("provider_filter")
def test_the_providers_tag_shows_only_the_providers_the_filter_keeps(flow: BlockingPaymentFlow) -> None:
    from django.template import Context, Template

    request = RequestFactory().get("/")
    html = Template("{% load paycore %}{% paycore_providers 'T4-17' %}").render(Context({"request": request}))
    assert 'value="fake">Card</button>' in html
    assert 'value="wave"' not in html


# -- coming back ----------------------------------------------------------------------------------


def test_the_return_page_polls_the_provider_before_showing_the_payment(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    fake(flow).settle(payment_id, Outcome.SUCCEEDED)
    response = Client().get(f"/payments/{payment_id}/")
    assert response.status_code == 200
    assert b'data-status="succeeded"' in response.content
    assert flow.get_payment(payment_id).status is PaymentStatus.SUCCEEDED


def test_the_success_url_shows_the_truth_not_the_url(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    fake(flow).settle(payment_id, Outcome.FAILED)
    response = Client().get(f"/payments/{payment_id}/success/")
    assert b'data-status="failed"' in response.content


def test_the_order_return_url_shows_the_orders_latest_payment(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    fake(flow).settle(payment_id, Outcome.SUCCEEDED)
    response = Client().get("/payments/orders/T4-17/return/")
    assert response.context["payment"].id == payment_id
    assert b'data-status="succeeded"' in response.content


def paid_then_left_open(flow: BlockingPaymentFlow) -> tuple[str, str]:
    """Order ``T4-17`` paid by one payment while a later one was left open (e.g. in a second tab)."""
    paid = paid_payment(flow)
    return paid, pending_payment(flow)


def test_the_order_return_shows_the_payment_its_url_names(flow: BlockingPaymentFlow) -> None:
    paid, _ = paid_then_left_open(flow)
    response = Client().get(f"/payments/orders/T4-17/return/?payment={paid}&status=succeeded")
    assert response.context["payment"].id == paid
    assert b"Paid: 12 500 XOF" in response.content


def test_the_order_return_without_a_named_payment_prefers_the_paid_one(flow: BlockingPaymentFlow) -> None:
    paid, _ = paid_then_left_open(flow)
    response = Client().get("/payments/orders/T4-17/return/")
    assert response.context["payment"].id == paid
    assert b"Waiting" not in response.content


def test_the_order_return_takes_the_status_from_the_store_not_the_url(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow)
    response = Client().get(f"/payments/orders/T4-17/return/?payment={payment_id}&status=succeeded")
    assert response.context["payment"].id == payment_id
    assert b"Waiting for the payment to be confirmed." in response.content
    fake(flow).settle(payment_id, Outcome.FAILED)
    response = Client().get(f"/payments/orders/T4-17/return/?payment={payment_id}&status=succeeded")
    assert b'data-status="failed"' in response.content  # polled, as without payment=


@pytest.mark.parametrize("other", ["another tenant's", "another order's"])
def test_the_order_return_ignores_a_named_payment_not_of_this_order(flow: BlockingPaymentFlow, other: str) -> None:
    own = paid_payment(flow)
    if other == "another tenant's":
        named = pending_payment(flow, tenant=None)
    else:
        named = flow.create_payment(amount=Money.of("9.90", "EUR"), provider="fake", order_id="EU-1", tenant=TENANT)
        named = named.payment.id
    response = Client().get(f"/payments/orders/T4-17/return/?payment={named}")
    assert response.context["payment"].id == own
    assert named.encode() not in response.content


def test_another_tenants_payment_is_not_shown(flow: BlockingPaymentFlow) -> None:
    payment_id = pending_payment(flow, tenant=None)
    assert Client().get(f"/payments/{payment_id}/").status_code == 404


def test_the_providers_tag_renders_one_button_per_provider(flow: BlockingPaymentFlow) -> None:
    from django.template import Context, Template

    request = RequestFactory().get("/")
    html = Template("{% load paycore %}{% paycore_providers 'T4-17' %}").render(Context({"request": request}))
    assert 'action="/payments/pay/T4-17/"' in html
    assert 'value="fake">Card</button>' in html
    assert 'value="wave">Wave</button>' in html


# -- requests without a tenant ----------------------------------------------------------------------


KNOWN_HOSTS = {"chez-awa.example": TENANT}


def resolve_unknown_host(request: HttpRequest) -> str | None:
    """A resolver by host; the test client's ``testserver`` is a host it does not know."""
    return KNOWN_HOSTS.get(request.get_host())


@pytest.fixture(params=["no resolver", "resolver answers None"])
def no_tenant(request: pytest.FixtureRequest, flow: BlockingPaymentFlow) -> Iterator[None]:
    """Requests resolved to no tenant: without ``TENANT_RESOLVER``, or with one that answers ``None``."""
    options: dict[str, Any] = {"ORDER_RESOLVER": resolve_order}
    if request.param == "resolver answers None":
        options["TENANT_RESOLVER"] = resolve_unknown_host
    with override_settings(PAYCORE_DJANGO=options):
        yield


@pytest.mark.parametrize("page", ["", "success/", "failure/"])
def test_a_request_without_a_tenant_does_not_see_a_tenants_payment(
    flow: BlockingPaymentFlow, no_tenant: None, page: str
) -> None:
    payment_id = pending_payment(flow)
    fake(flow).settle(payment_id, Outcome.SUCCEEDED)
    response = Client().get(f"/payments/{payment_id}/{page}")
    assert response.status_code == 404
    assert payment_id.encode() not in response.content
    assert flow.get_payment(payment_id).status is PaymentStatus.PROCESSING  # not polled either


def test_a_request_without_a_tenant_does_not_see_a_tenants_order(flow: BlockingPaymentFlow, no_tenant: None) -> None:
    pending_payment(flow)
    assert Client().get("/payments/orders/T4-17/return/").status_code == 404


def test_without_tenants_a_payment_without_a_tenant_is_shown(flow: BlockingPaymentFlow, no_tenant: None) -> None:
    payment_id = pending_payment(flow, tenant=None)
    fake(flow, None).settle(payment_id, Outcome.SUCCEEDED)
    response = Client().get(f"/payments/{payment_id}/")
    assert response.status_code == 200
    assert b'data-status="succeeded"' in response.content


def test_without_tenants_the_order_return_shows_the_payment_without_a_tenant(
    flow: BlockingPaymentFlow, no_tenant: None
) -> None:
    own = pending_payment(flow, tenant=None)
    pending_payment(flow)  # a restaurant's later payment for an order with the same id
    response = Client().get("/payments/orders/T4-17/return/")
    assert response.status_code == 200
    assert response.context["payment"].id == own


def test_without_tenants_an_order_is_paid_with_the_providers_without_a_tenant(
    flow: BlockingPaymentFlow, no_tenant: None
) -> None:
    client = Client()
    page = pay_page(client)
    assert list(dict(page.context["form"].fields["provider"].choices)) == ["fake"]
    response = client.post("/payments/pay/T4-17/", {"provider": "fake"}, follow=True)
    assert response.status_code == 200
    payment = response.context["payment"]
    assert payment.tenant is None
    assert payment.status is PaymentStatus.SUCCEEDED


def test_an_orders_payments_are_those_of_its_tenant_only(flow: BlockingPaymentFlow) -> None:
    from paycore_django.orders import PaycoreOrderMixin

    class Order(PaycoreOrderMixin):
        pk = "T4-17"

        def paycore_total(self) -> Money:
            return Money.of("12500", "XOF")

    pending_payment(flow)  # the restaurant's payment for its own order "T4-17"
    order = Order()
    assert order.payments() == []
    assert order.balance_due() == Money.of("12500", "XOF")
    own = pending_payment(flow, tenant=None)
    assert [payment.id for payment in order.payments()] == [own]


def test_a_tenant_named_with_a_space_is_reached_at_its_escaped_url(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {**CONFIG, "webhook_url": "https://pos.example/payments/webhooks"}
    config["tenants"] = {"le baobab": {"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}}}
    blocking = BlockingPaymentFlow.from_config(config, plugins=[paycore.testing.fake]).open()
    monkeypatch.setattr(paycore_django, "blocking_flow", lambda: blocking, raising=False)
    monkeypatch.setattr(paycore_django, "flow", lambda: blocking.flow, raising=False)
    try:
        with override_settings(**WEB_SETTINGS):
            payment_id = pending_payment(blocking, tenant="le baobab")
            provider = fake(blocking, tenant="le baobab")
            url = provider.context.webhook_url or ""
            assert url == "https://pos.example/payments/webhooks/le%20baobab/fake"
            body, headers = provider.webhook(payment_id, outcome=Outcome.SUCCEEDED, captured=Money.of("12500", "XOF"))
            response = post_webhook(Client(), url.removeprefix("https://pos.example"), body, headers)
            assert response.status_code == 200, response.content
            assert blocking.get_payment(payment_id, tenant="le baobab").status is PaymentStatus.SUCCEEDED
    finally:
        blocking.close()
