"""A payment the gateway no longer holds (purged, or an in-memory gateway restarted).

A status poll answered ``404 not_found`` for the payment's own gateway id is a fact about the payment,
``Outcome.NOT_FOUND``, as Wave reports its ``checkout-session-not-found``: paycore flags a payment its gateway had
named for an operator. It is no poll that "could not be sent": read so, three lost payments would take the whole
gateway for down, and the reaper would flag healthy payments behind them without asking the gateway about them.
A capture, cancel or refund of a lost payment is refused (``GatewayRefused``, nothing happened), as Wave refuses
them; only a poll reports the payment lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

import paycore_dummy.plugin
from paycore.asgi import create_app
from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Payment
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.records import make_payment
from paycore_dummy import DummyGateway, GatewayRefused
from paycore_dummy.errors import GatewayApiError
from paycore_dummy.inprocess import register_gateway, unregister_gateway

pytestmark = pytest.mark.anyio

Setup = tuple[PaymentFlow, DummyGateway]
S = PaymentStatus
LOST = "the provider reports no record of"
"""How paycore's review message of a payment its provider lost begins."""


async def pay(flow: PaymentFlow, order_id: str = "T12-0042", **options: Any) -> Payment:
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="wave", order_id=order_id, tenant="chez-awa", **options
    )
    return checkout.payment


def gateway_id(payment: Payment) -> str:
    """The payment's id at the gateway (every payment here was created there)."""
    assert payment.external_id is not None
    return payment.external_id


def lose(gateway: DummyGateway, payment: Payment) -> None:
    """The gateway no longer holds ``payment`` (purged, or restarted with its memory gone)."""
    del gateway.payments[gateway_id(payment)]


def assert_flagged_as_lost(payment: Payment) -> None:
    assert payment.status is S.PROCESSING, "still open at paycore: an operator settles it"
    assert payment.needs_review
    assert payment.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert payment.review_message is not None
    assert f"{LOST} {payment.external_id}" in payment.review_message
    assert payment.pending_call is None


async def test_a_status_poll_of_a_payment_the_gateway_lost_reports_not_found(in_process: Setup) -> None:
    flow, gateway = in_process
    payment = await pay(flow)
    lose(gateway, payment)
    update = await flow.provider("wave", tenant="chez-awa").check_status(payment)
    assert update.outcome is Outcome.NOT_FOUND
    assert gateway_id(payment) in update.message


async def test_a_refresh_of_a_payment_the_gateway_lost_flags_it_for_an_operator(in_process: Setup) -> None:
    flow, gateway = in_process
    payment = await pay(flow)
    lose(gateway, payment)
    refreshed = await flow.refresh(payment.id, tenant="chez-awa")  # answered, not "could not be sent"
    assert_flagged_as_lost(refreshed)
    assert_flagged_as_lost(await flow.get_payment(payment.id))


async def test_a_refresh_over_http_of_a_payment_the_gateway_lost_flags_it(live: Callable[..., Any]) -> None:
    async with live() as (flow, gateway, _):
        payment = await pay(flow)
        lose(gateway, payment)
        assert_flagged_as_lost(await flow.refresh(payment.id, tenant="chez-awa"))


async def test_the_reaper_still_asks_about_a_healthy_payment_after_the_gateway_lost_three(
    in_process_on_clock: Setup, moved_clock: Any
) -> None:
    flow, gateway = in_process_on_clock
    made = [await pay(flow, order_id=f"T12-{n:04}") for n in range(4)]
    lost, healthy = made[:3], made[3]
    for payment in lost:  # the gateway restarted and kept none of these three
        lose(gateway, payment)
    moved_clock.advance(hours=3)  # all four past twice the deadline
    await flow.expire_stale(older_than=3600)
    settled = await flow.get_payment(healthy.id)
    assert (settled.status, settled.needs_review) == (S.EXPIRED, False), settled.review_message
    assert gateway.payment(gateway_id(healthy)).status == "canceled", "closed at the gateway: no longer payable"
    for payment in lost:
        assert_flagged_as_lost(await flow.get_payment(payment.id))


async def test_a_lost_payment_left_to_an_operator_is_not_asked_about_again_by_the_reaper(
    in_process_on_clock: Setup, moved_clock: Any
) -> None:
    flow, gateway = in_process_on_clock
    payment = await pay(flow)
    lose(gateway, payment)
    moved_clock.advance(hours=3)
    await flow.expire_stale(older_than=3600)
    flagged = await flow.get_payment(payment.id)
    assert_flagged_as_lost(flagged)
    await flow.expire_stale(older_than=3600)
    assert (await flow.get_payment(payment.id)).version == flagged.version


async def test_another_404_of_a_status_poll_still_says_nothing_about_the_payment(
    in_process: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the gateway's ``not_found`` says it holds no such payment; another code is a refusal, as before."""
    flow, gateway = in_process
    payment = await pay(flow)

    def elsewhere(payment_id: str) -> Any:
        raise GatewayApiError(404, "moved", "this account's payments moved to another region")

    monkeypatch.setattr(gateway, "payment", elsewhere)
    with pytest.raises(GatewayRefused, match="404 moved"):
        await flow.refresh(payment.id, tenant="chez-awa")
    after = await flow.get_payment(payment.id)
    assert (after.status, after.needs_review, after.version) == (S.PROCESSING, False, payment.version)


async def test_a_capture_or_cancel_of_a_payment_the_gateway_lost_is_refused_and_changes_nothing(
    in_process: Setup, wait_for: Callable[..., Any]
) -> None:
    flow, gateway = in_process
    authorized = [await pay(flow, order_id=f"T12-{n:04}", capture=False) for n in range(2)]
    for payment in authorized:
        gateway.customer_action(gateway_id(payment), "approve")
    authorized = [await wait_for(flow, payment.id, S.AUTHORIZED) for payment in authorized]
    for payment in authorized:
        lose(gateway, payment)
    with pytest.raises(GatewayRefused, match="404 not_found") as refused:
        await flow.capture(authorized[0].id, tenant="chez-awa")
    assert isinstance(refused.value, ProviderNotSent)
    with pytest.raises(GatewayRefused, match="404 not_found"):
        await flow.cancel(authorized[1].id, tenant="chez-awa")
    for payment in authorized:
        after = await flow.get_payment(payment.id)
        assert (after.status, after.pending_call, after.needs_review) == (S.AUTHORIZED, None, False)
    # The poll is what tells the payment lost.
    polled = await flow.refresh(authorized[0].id, tenant="chez-awa")
    assert (polled.status, polled.needs_review) == (S.AUTHORIZED, True)
    assert f"{LOST} {polled.external_id}" in (polled.review_message or "")


async def test_a_refund_of_a_payment_the_gateway_lost_is_refused_and_refunds_nothing(
    in_process: Setup, wait_for: Callable[..., Any]
) -> None:
    flow, gateway = in_process
    payment = await pay(flow)
    gateway.customer_action(gateway_id(payment), "approve")
    paid = await wait_for(flow, payment.id, S.SUCCEEDED)
    lose(gateway, paid)
    with pytest.raises(GatewayRefused, match="404 not_found"):
        await flow.refund(paid.id, amount=Money.of("2000", "XOF"), tenant="chez-awa")
    after = await flow.get_payment(paid.id)
    assert (after.status, after.pending_call, after.needs_review) == (S.SUCCEEDED, None, False)
    assert [refund.status for refund in after.refunds] == [RefundStatus.FAILED], "refused: nothing refunded"
    assert after.refundable_amount == Money.of("5000", "XOF")


async def test_a_poll_at_a_path_the_gateway_has_no_route_for_is_a_refusal_not_a_lost_payment(
    server: Any, make_gateway: Any, flow_factory: Any, secret: str
) -> None:
    """A ``base_url`` that no longer points at the API's root (a path prefix added in a redeploy) is answered
    ``404 no_route``, never the ``not_found`` of a payment the gateway does not hold: each poll would have reported
    its payment lost and flagged it for an operator."""
    async with server(make_gateway()) as url:
        async with flow_factory(base_url=url, webhook_secret=secret, timeout=2) as flow:
            payment = await pay(flow)
        async with flow_factory(base_url=url + "/api", webhook_secret=secret, timeout=2) as moved:
            with pytest.raises(GatewayRefused, match="404 no_route"):
                await moved.provider("wave", tenant="chez-awa").check_status(payment)


def _flow(**settings: Any) -> PaymentFlow:
    """An in-memory flow with a ``wave`` dummy provider for tenant ``chez-awa`` set up with ``settings``."""
    provider = {"type": "dummy", "timeout": 1.0, **settings}
    return PaymentFlow.from_config(
        {"tenants": {"chez-awa": {"providers": {"wave": provider}}}}, plugins=[paycore_dummy.plugin]
    )


async def test_a_lost_payment_is_reported_lost_whatever_secret_its_code_holds(secret: str) -> None:
    """The provider hides its secrets wherever it quotes the gateway (an API key "found" in "not_found"), never
    where it reads the gateway's code: the lost payment is still reported lost, not taken for a refusal."""
    name = f"test-{uuid.uuid4().hex}"
    flow = _flow(api_key="found", gateway=name, webhook_secret=secret, webhook_url="http://merchant/{tenant}/{code}")
    gateway = DummyGateway(
        api_key="found",
        webhook_secrets=secret,
        webhook_transport=httpx.ASGITransport(app=create_app(flow, manage_flow=False)),
    )
    register_gateway(name, gateway)
    try:
        async with flow, gateway:
            payment = await pay(flow)
            lose(gateway, payment)
            update = await flow.provider("wave", tenant="chez-awa").check_status(payment)
            with pytest.raises(GatewayRefused, match=r"\(404 not_\*\*\*\)") as refused:
                await flow.provider("wave", tenant="chez-awa").cancel(payment)
    finally:
        unregister_gateway(name)
    assert update.outcome is Outcome.NOT_FOUND
    assert refused.value.code == "not_found", "compared as written, shown without the secret"


async def test_an_answer_that_cannot_be_decoded_is_an_unknown_outcome(secret: str) -> None:
    """An answer whose body its Content-Encoding does not decode was sent and answered unreadably: unknown,
    never the HTTP library's own error."""

    def garbled(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all"))

    payment = make_payment(provider="wave", tenant="chez-awa", external_id="dpay_1")
    async with _flow(api_key="sk_test_dummy", base_url="http://dummy.test", webhook_secret=secret) as flow:
        with respx.mock(base_url="http://dummy.test") as gateway:
            gateway.get("/v1/payments/dpay_1").mock(side_effect=garbled)
            with pytest.raises(ProviderOutcomeUnknown, match="could not be read: DecodingError"):
                await flow.provider("wave", tenant="chez-awa").check_status(payment)
