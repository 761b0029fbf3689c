"""The hosted checkout page in a real headless Chromium, driven by Playwright.

Playwright's sync API runs in a thread of its own, so the tests run under asyncio
and trio alike while the gateway and the merchant are served in the test's loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
import pytest

from paycore.money import Money
from paycore.status import PaymentStatus

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Browser:
    """One headless Chromium for the whole session, driven from one dedicated thread.

    Playwright's sync objects belong to the thread that made them, so every
    call goes through a single-thread executor; tests await it from a worker
    thread, under asyncio or trio.
    """

    def __init__(self, executable: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._executable = executable
        self._playwright: Any = None
        self._browser: Any = None
        self._page: Any = None

    def _launch(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=self._executable, args=CHROMIUM_ARGS)
        self._page = self._browser.new_page()

    def _click(self, url: str, button: str) -> tuple[str, str]:
        if self._browser is None:
            self._launch()
        page = self._page
        page.goto(url)
        page.get_by_role("button", name=button).click()
        status = page.get_by_test_id("status")
        status.wait_for(timeout=10_000)
        result = status.get_attribute("data-status") or "", status.inner_text()
        page.goto("about:blank")  # leave the server, so that it shuts down at once
        return result

    async def click(self, url: str, button: str) -> tuple[str, str]:
        """Open ``url``, click ``button``; the status the page then shows (data-status, text)."""
        future = self._executor.submit(self._click, url, button)
        return await anyio.to_thread.run_sync(future.result)

    def _in_two_tabs(self, url: str, first: str, second: str) -> tuple[str, str, str]:
        if self._browser is None:
            self._launch()
        page, stale = self._page, self._browser.new_page()
        try:
            page.goto(url)
            stale.goto(url)
            page.get_by_role("button", name=first).click()
            page.get_by_test_id("status").wait_for(timeout=10_000)
            stale.get_by_role("button", name=second).click()
            refusal = stale.get_by_test_id("refusal")
            refusal.wait_for(timeout=10_000)
            told = refusal.inner_text()
            stale.get_by_test_id("again").click()
            status = stale.get_by_test_id("status")
            status.wait_for(timeout=10_000)
            return told, status.get_attribute("data-status") or "", status.inner_text()
        finally:
            page.goto("about:blank")
            stale.close()

    async def in_two_tabs(self, url: str, first: str, second: str) -> tuple[str, str, str]:
        """Open ``url`` in two tabs, click ``first`` in one, then ``second`` in the other, stale one: what the
        stale tab is told, then the status (data-status, text) its link to the payment shows."""
        future = self._executor.submit(self._in_two_tabs, url, first, second)
        return await anyio.to_thread.run_sync(future.result)

    def _framed(self, url: str) -> int:
        if self._browser is None:
            self._launch()
        page = self._browser.new_page()  # a new tab: none of the checkout's pages was ever open in it
        try:
            page.set_content(f"<iframe src='{url}' width='600' height='600'></iframe>")  # waits for its load
            (frame,) = page.main_frame.child_frames
            frame.wait_for_load_state("load")
            return int(frame.locator("button").count())
        finally:
            page.close()

    async def framed(self, url: str) -> int:
        """The Pay buttons a page of another origin shows when it frames ``url``."""
        future = self._executor.submit(self._framed, url)
        return await anyio.to_thread.run_sync(future.result)

    def _close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._playwright.stop()

    def close(self) -> None:
        """Close Chromium and the thread."""
        self._executor.submit(self._close).result()
        self._executor.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (a clear failure when it is not installed)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    shared = Browser(CHROMIUM)
    yield shared
    shared.close()


async def pay(flow: Any, **options: Any) -> Any:
    return await flow.create_payment(
        amount=Money.of("12500", "XOF"),
        provider="wave",
        order_id="T3-0021",
        tenant="chez-awa",
        description="Yassa poulet x2",
        **options,
    )


async def test_clicking_pay_on_the_checkout_page_succeeds_the_payment(
    live: Callable[..., Any], wait_for: Callable[..., Any], browser: Browser
) -> None:
    async with live() as (flow, _, _):
        checkout = await pay(flow)
        shown = await browser.click(checkout.action.url, "Pay")
        assert shown == ("succeeded", "Payment approved.")
        payment = await wait_for(flow, checkout.payment.id, PaymentStatus.SUCCEEDED)
        assert payment.captured_amount == Money.of("12500", "XOF")


async def test_clicking_decline_on_the_checkout_page_fails_the_payment(
    live: Callable[..., Any], wait_for: Callable[..., Any], browser: Browser
) -> None:
    async with live() as (flow, _, _):
        checkout = await pay(flow)
        shown = await browser.click(checkout.action.url, "Decline")
        assert shown == ("failed", "Payment declined.")
        payment = await wait_for(flow, checkout.payment.id, PaymentStatus.FAILED)
        assert payment.captured_amount is None


async def test_approving_on_the_phone_page_succeeds_a_mobile_money_payment(
    live: Callable[..., Any], wait_for: Callable[..., Any], browser: Browser
) -> None:
    async with live() as (flow, _, _):
        checkout = await pay(flow, metadata={"dummy_method": "mobile_money"})
        assert checkout.action.kind == "ussd"
        shown = await browser.click(checkout.action.url, "Approve")
        assert shown[0] == "succeeded"
        await wait_for(flow, checkout.payment.id, PaymentStatus.SUCCEEDED)


async def test_a_stale_tab_is_told_nothing_changed_and_shown_the_payment_as_it_is(
    live: Callable[..., Any], wait_for: Callable[..., Any], browser: Browser
) -> None:
    async with live() as (flow, _, _):
        checkout = await pay(flow)
        told, status, text = await browser.in_two_tabs(checkout.action.url, "Decline", "Pay")
        assert "cannot act on it" in told
        assert (status, text) == ("failed", "Payment declined.")
        payment = await wait_for(flow, checkout.payment.id, PaymentStatus.FAILED)
        assert payment.captured_amount is None


async def test_another_site_cannot_frame_the_checkout_page(live: Callable[..., Any], browser: Browser) -> None:
    async with live() as (flow, _, _):
        checkout = await pay(flow)
        assert await browser.framed(checkout.action.url) == 0
