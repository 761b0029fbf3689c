"""The restaurant POS example, clicked through in a real headless Chromium.

The example runs as its own process (``manage.py demo``: Django and the dummy
gateway on one loopback port, a SQLite file of the test); Playwright's sync API
drives Debian's Chromium: an order is paid on the gateway's hosted page, the
webhook marks it paid, and an admin refunds part of it with the admin action.
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def test_an_order_paid_on_the_gateway_page_is_refunded_from_the_admin(pos_site: str) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{pos_site}/orders/2/")
            expect(page.get_by_test_id("order-paid")).to_have_attribute("data-paid", "no")
            page.get_by_role("button", name="Card (hosted page)").click()
            page.get_by_role("button", name="Pay").click()
            expect(page.get_by_test_id("status")).to_have_attribute("data-status", "succeeded", timeout=10_000)

            page.goto(f"{pos_site}/orders/2/")
            for _ in range(50):  # the webhook lands in the background
                if page.get_by_test_id("order-paid").get_attribute("data-paid") == "yes":
                    break
                time.sleep(0.2)
                page.reload()
            expect(page.get_by_test_id("order-paid")).to_have_attribute("data-paid", "yes")

            page.goto(f"{pos_site}/admin/login/?next=/admin/paycore_django/payment/")
            page.fill("#id_username", "admin")
            page.fill("#id_password", "admin")
            page.get_by_role("button", name="Log in").click()
            page.locator("input.action-select").first.check()
            page.select_option("select[name=action]", "refund_payments")
            page.locator("div.actions button[type=submit]").click()  # "Go" before Django 6, "Run" since
            page.fill("input[name=amount]", "2500")
            page.fill("input[name=reason]", "one dish sent back")
            page.get_by_role("button", name="Refund payments").click()
            expect(page.locator("ul.messagelist")).to_contain_text("Refunded 1 payment(s).")
            expect(page.locator("#result_list")).to_contain_text("partially_refunded", timeout=10_000)
        finally:
            browser.close()
