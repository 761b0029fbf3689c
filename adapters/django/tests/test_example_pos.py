"""The restaurant POS example over HTTP: cash is taken at the till by staff, never from a customer's browser.

The example runs as its own process (:func:`conftest.pos_site`); its
``PROVIDER_FILTER`` offers the cash provider to logged-in staff only, on the
order's page (the ``paycore_providers`` tag) and on the pay page.
"""

from __future__ import annotations

import re

import httpx
import pytest

pytestmark = pytest.mark.slow

ORDER = 2
"""An order ``manage.py demo`` seeds (table T3, 12 500 XOF), not paid."""


def form_token(page: httpx.Response) -> str:
    """The CSRF token of the first form on ``page``."""
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found is not None, page.text[:500]
    return found.group(1)


def log_in_as_staff(client: httpx.Client) -> None:
    """Log ``client`` in to the admin as the demo's ``admin``, a member of staff."""
    login = client.get("/admin/login/")
    response = client.post(
        "/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": form_token(login), "username": "admin", "password": "admin", "next": "/admin/"},
    )
    assert response.status_code == 302, response.text[:500]


def test_a_customer_is_not_offered_cash_and_cannot_post_it(pos_site: str) -> None:
    with httpx.Client(base_url=pos_site, timeout=30) as customer:
        order_page = customer.get(f"/orders/{ORDER}/")
        assert 'value="card"' in order_page.text
        assert 'value="cash"' not in order_page.text
        pay_page = customer.get(f"/payments/pay/{ORDER}/")
        assert 'value="cash"' not in pay_page.text
        posted = customer.post(
            f"/payments/pay/{ORDER}/", data={"csrfmiddlewaretoken": form_token(pay_page), "provider": "cash"}
        )
        assert posted.status_code == 400
        order_page = customer.get(f"/orders/{ORDER}/")
    assert 'data-paid="no"' in order_page.text
    assert "<h2>Payments</h2>" not in order_page.text  # nothing was recorded


def test_staff_take_cash_at_the_till(pos_site: str) -> None:
    with httpx.Client(base_url=pos_site, timeout=30) as cashier:
        log_in_as_staff(cashier)
        order_page = cashier.get(f"/orders/{ORDER}/")
        assert 'value="cash">Cash</button>' in order_page.text
        posted = cashier.post(
            f"/payments/pay/{ORDER}/", data={"csrfmiddlewaretoken": form_token(order_page), "provider": "cash"}
        )
        assert posted.status_code == 302
        order_page = cashier.get(f"/orders/{ORDER}/")
    assert 'data-paid="yes"' in order_page.text
    assert "cash: succeeded (12 500 XOF)" in order_page.text
