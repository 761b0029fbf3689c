"""A customer pays through the Wave simulator, end to end: create, launch page, signed webhook, refund, poll.

In process (httpx's ASGITransport both ways), then over real HTTP on loopback.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from paycore.asgi import create_app
from paycore.errors import ProviderNotSent
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus, RefundStatus
from paycore_wave import WaveSimulator

pytestmark = pytest.mark.anyio

Serve = Callable[[Any], AbstractAsyncContextManager[str]]


def browser(simulator: WaveSimulator) -> httpx.AsyncClient:
    """The customer's browser, reaching the simulator's launch pages in process."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator), base_url=simulator.base_url)


async def test_a_customer_pays_on_the_launch_page_then_is_refunded(flow: PaymentFlow, simulator: WaveSimulator) -> None:
    checkout = await flow.create_payment(amount=Money.of("7500", "XOF"), provider="wave", order_id="T21")
    assert checkout.action is not None
    assert checkout.action.url is not None
    async with browser(simulator) as customer:
        page = await customer.get(checkout.action.url)
        assert page.status_code == 200
        assert "7500 F CFA" in page.text
        answer = await customer.post(checkout.action.url, data={"action": "pay"})
    assert (answer.status_code, answer.headers["location"]) == (303, "https://chez-awa.example/paid")

    paid = await flow.get_payment(checkout.payment.id)
    assert paid.status is PaymentStatus.SUCCEEDED
    assert paid.captured_amount == Money.of("7500", "XOF")
    session = simulator.sessions[paid.references[0]]
    assert paid.references == (session["id"], session["transaction_id"])
    changes = [e for e in await flow.list_events(paid.id) if e.kind == "status_changed"]
    assert (changes[-1].cause, changes[-1].to_status) == ("webhook", "succeeded")

    refund = await flow.refund(paid.id, reason="wrong order")
    assert refund.status is RefundStatus.SUCCEEDED
    assert simulator.refunded == {session["id"]}
    refunded = await flow.get_payment(paid.id)
    assert refunded.status is PaymentStatus.REFUNDED

    polled = await flow.refresh(paid.id)
    assert polled.status is PaymentStatus.REFUNDED
    assert polled.event_count == refunded.event_count


async def test_a_failed_payment_on_the_launch_page_fails_the_payment(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    checkout = await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T22")
    assert checkout.action is not None
    assert checkout.action.url is not None
    async with browser(simulator) as customer:
        answer = await customer.post(checkout.action.url, data={"action": "fail"})
    assert answer.headers["location"] == "https://chez-awa.example/not-paid"
    failed = await flow.get_payment(checkout.payment.id)
    assert failed.status is PaymentStatus.FAILED
    assert [e.message for e in await flow.list_events(failed.id) if e.to_status == "failed"] == [
        "insufficient-funds: Insufficient funds"
    ]


async def test_a_canceled_payment_expires_its_session_so_it_can_no_longer_be_paid(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    checkout = await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T23")
    canceled = await flow.cancel(checkout.payment.id)
    assert canceled.status is PaymentStatus.CANCELED
    assert canceled.external_id is not None
    assert simulator.sessions[canceled.external_id]["checkout_status"] == "expired"
    assert checkout.action is not None
    assert checkout.action.url is not None
    async with browser(simulator) as customer:
        answer = await customer.post(checkout.action.url, data={"action": "pay"})
    assert answer.status_code == 409
    assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.CANCELED


async def test_a_customer_who_pays_after_a_failed_attempt_ends_paid_without_review(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    checkout = await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T27")
    session_id = checkout.payment.external_id
    assert session_id is not None
    failed_attempt = simulator.fail(session_id, keep_open=True)
    await flow.handle_webhook("wave", failed_attempt.body, failed_attempt.headers)
    assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.PROCESSING
    paid = simulator.pay(session_id)  # the customer tops up and pays the same session
    await flow.handle_webhook("wave", paid.body, paid.headers)
    after = await flow.get_payment(checkout.payment.id)
    assert (after.status, after.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("3000", "XOF"))
    assert not after.needs_review


async def test_a_payment_canceled_after_a_failed_attempt_expires_its_session_so_it_can_no_longer_be_paid(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    checkout = await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T28")
    assert checkout.payment.external_id is not None
    failed_attempt = simulator.fail(checkout.payment.external_id, keep_open=True)
    await flow.handle_webhook("wave", failed_attempt.body, failed_attempt.headers)
    canceled = await flow.cancel(checkout.payment.id)
    assert canceled.status is PaymentStatus.CANCELED
    assert simulator.sessions[checkout.payment.external_id]["checkout_status"] == "expired"
    assert checkout.action is not None
    assert checkout.action.url is not None
    async with browser(simulator) as customer:
        answer = await customer.post(checkout.action.url, data={"action": "pay"})
    assert answer.status_code == 409
    assert (await flow.get_payment(checkout.payment.id)).status is PaymentStatus.CANCELED


async def test_a_poll_after_a_failed_attempt_leaves_the_payment_pending_while_the_session_is_open(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    checkout = await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T29")
    assert checkout.payment.external_id is not None
    simulator.fail(checkout.payment.external_id, keep_open=True)  # its webhook is never delivered
    polled = await flow.refresh(checkout.payment.id)
    assert polled.status is PaymentStatus.PROCESSING
    assert simulator.sessions[checkout.payment.external_id]["checkout_status"] == "open"


async def test_a_session_that_ran_out_is_expired_by_the_reaper(flow: PaymentFlow, simulator: WaveSimulator) -> None:
    checkout = await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T24")
    assert checkout.payment.external_id is not None
    simulator.time_out(checkout.payment.external_id)
    expired = await flow.expire_stale(0)
    assert [p.status for p in expired] == [PaymentStatus.EXPIRED]


async def test_a_wrong_api_key_sends_nothing_and_creates_nothing(
    simulator: WaveSimulator, flow_factory: Callable[..., PaymentFlow]
) -> None:
    async with flow_factory(simulator, api_key="wave_sn_prod_revoked") as flow:
        with pytest.raises(ProviderNotSent, match="no-matching-api-key"):
            await flow.create_payment(amount=Money.of("3000", "XOF"), provider="wave", order_id="T25")
    assert simulator.sessions == {}


async def test_the_whole_journey_over_real_http_on_loopback(
    simulator: WaveSimulator, flow_factory: Callable[..., PaymentFlow], serve: Serve
) -> None:
    async with serve(simulator) as wave_url:
        simulator.base_url = wave_url
        flow = flow_factory(simulator, base_url=wave_url, transport=None)
        async with flow, serve(create_app(flow, prefix="/hooks", manage_flow=False)) as merchant_url:
            simulator.webhook_url = f"{merchant_url}/hooks/wave"
            checkout = await flow.create_payment(amount=Money.of("12000", "XOF"), provider="wave", order_id="T26")
            assert checkout.action is not None
            assert checkout.action.url is not None
            assert checkout.action.url.startswith(wave_url)
            async with httpx.AsyncClient() as customer:
                answer = await customer.post(checkout.action.url, data={"action": "pay"})
            assert answer.status_code == 303
            paid = await flow.get_payment(checkout.payment.id)
            assert (paid.status, paid.captured_amount) == (PaymentStatus.SUCCEEDED, Money.of("12000", "XOF"))
            refund = await flow.refund(paid.id)
            assert refund.status is RefundStatus.SUCCEEDED
            assert (await flow.refresh(paid.id)).status is PaymentStatus.REFUNDED
