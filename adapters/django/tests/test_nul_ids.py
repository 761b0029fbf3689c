"""Ids and filter values holding a NUL: not found, never a 500, on SQLite and on PostgreSQL.

PostgreSQL refuses a NUL in any text it is sent (psycopg raises ``DataError``
before the query leaves), so a URL with ``%00`` must be answered before a query:
the admin's payment page, its list's filters, and an ``ORDER_RESOLVER`` made by
``model_order_resolver`` for a model keyed by text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.urls import include, path

import paycore.testing.fake
import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.money import Money
from paycore_django.orders import model_order_resolver

SECRET = "whsec_fake_0123456789abcdef"
CHANGELIST = "/admin/paycore_django/payment/"

urlpatterns = [path("admin/", admin.site.urls), path("payments/", include("paycore_django.urls"))]


class PaycoreModelsTo:
    """A database router sending paycore_django's models to one alias (the admin and resolvers read through it)."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return self.alias if model._meta.app_label == "paycore_django" else None

    db_for_write = db_for_read


@pytest.fixture(
    params=[
        pytest.param("default", marks=pytest.mark.django_db(transaction=True), id="sqlite"),
        pytest.param(
            "postgres",
            marks=[pytest.mark.postgres, pytest.mark.django_db(transaction=True, databases=["default", "postgres"])],
            id="postgresql",
        ),
    ]
)
def flow(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[BlockingPaymentFlow]:
    """The process's flow on the alias of the test, paycore's models routed there; users stay on ``default``."""
    alias = str(request.param)
    config = {
        "repository": {"type": "django", "using": alias},
        "idempotency": {"type": "django", "using": alias},
        "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
    }
    blocking = BlockingPaymentFlow.from_config(config, plugins=[paycore.testing.fake]).open()
    monkeypatch.setattr(paycore_django, "blocking_flow", lambda: blocking)
    monkeypatch.setattr(paycore_django, "flow", lambda: blocking.flow)
    text_keyed = model_order_resolver("paycore_django.Payment")  # any model keyed by text; this one is at hand
    with override_settings(
        ROOT_URLCONF=__name__,
        DATABASE_ROUTERS=[PaycoreModelsTo(alias)],
        PAYCORE_DJANGO={"ORDER_RESOLVER": text_keyed},
    ):
        yield blocking
    blocking.close()


@pytest.fixture
def superuser_client(flow: BlockingPaymentFlow) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
    return client


def test_the_admin_page_of_an_id_with_a_nul_is_not_found(flow: BlockingPaymentFlow, superuser_client: Client) -> None:
    flow.create_payment(amount=Money.of("12500", "XOF"), provider="fake", order_id="T4-17")
    for page in ("change/", "history/"):
        response = superuser_client.get(f"{CHANGELIST}a%00b/{page}")
        assert response.status_code == 302, (page, response.status_code)  # Django's "doesn't exist" redirect
        assert response["Location"] == "/admin/"


@pytest.mark.parametrize("name", ["status", "provider", "tenant", "currency"])
def test_a_list_filter_with_a_nul_shows_the_list_again(
    flow: BlockingPaymentFlow, superuser_client: Client, name: str
) -> None:
    response = superuser_client.get(CHANGELIST, {name: "a\x00b"})
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}?e=1"  # what Django answers to any lookup it cannot use


@pytest.mark.parametrize("url", ["/payments/pay/a%00b/", "/payments/orders/a%00b/return/"])
def test_an_order_id_with_a_nul_names_no_order_of_a_text_keyed_model(flow: BlockingPaymentFlow, url: str) -> None:
    response = Client(raise_request_exception=False).get(url)
    assert response.status_code == 404
