"""Every scenario through ``PaymentFlow``, with the gateway in the same process (no port)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown, StorageUnavailable
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import Customer
from paycore.status import PaymentStatus, RefundStatus, ReviewReason
from paycore_dummy import DummyGateway, GatewayRefused
from paycore_dummy.errors import GatewayApiError
from paycore_dummy.provider import DummyProvider

pytestmark = pytest.mark.anyio

Setup = tuple[PaymentFlow, DummyGateway]
S = PaymentStatus


async def pay(flow: PaymentFlow, amount: str = "5000", **options: Any) -> Any:
    return await flow.create_payment(
        amount=Money.of(amount, "XOF"), provider="wave", order_id="T12-0042", tenant="chez-awa", **options
    )


async def test_a_payment_waits_for_the_customer_on_the_hosted_checkout_page(in_process: Setup) -> None:
    flow, gateway = in_process
    checkout = await pay(flow)
    assert checkout.payment.status is S.PROCESSING
    assert checkout.action.kind == "redirect"
    assert checkout.action.url.endswith(f"/checkout/{checkout.payment.external_id}")
    assert gateway.payments[checkout.payment.external_id].reference == checkout.payment.id


async def test_an_approved_payment_succeeds_by_signed_webhook(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow)
    gateway.customer_action(checkout.payment.external_id, "approve")
    payment = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    assert payment.captured_amount == Money.of("5000", "XOF")
    events = await flow.list_events(payment.id)
    assert events[-1].cause == "webhook"
    assert events[-1].provider_event_id == gateway.events[-1].id


class _ShipperDown(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        raise OSError("log shipper unreachable")


async def test_a_log_handler_that_raises_never_stops_the_gateways_webhooks(
    in_process: Setup, wait_for: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway logs a delivery the merchant refused, then tries again: a handler raising on that line must
    not end its retries."""
    flow, gateway = in_process
    handle = flow.handle_webhook
    refusals = [StorageUnavailable("the database is restarting")]  # the merchant answers 503 once

    async def once_unavailable(*args: Any, **kwargs: Any) -> Any:
        if refusals:
            raise refusals.pop()
        return await handle(*args, **kwargs)

    monkeypatch.setattr(flow, "handle_webhook", once_unavailable)
    handler, logger = _ShipperDown(), logging.getLogger("paycore_dummy")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        checkout = await pay(flow)
        gateway.customer_action(checkout.payment.external_id, "approve")  # each attempt is logged
        payment = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert payment.captured_amount == Money.of("5000", "XOF")
    assert [attempt.status_code for attempt in gateway.deliveries] == [503, 200]


async def test_an_amount_ending_in_01_is_declined(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, "5001")
    gateway.customer_action(checkout.payment.external_id, "approve")
    payment = await wait_for(flow, checkout.payment.id, S.FAILED)
    assert payment.captured_amount is None


async def test_metadata_names_a_scenario_whatever_the_amount(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, "5000", metadata={"dummy_scenario": "decline"})
    gateway.customer_action(checkout.payment.external_id, "approve")
    await wait_for(flow, checkout.payment.id, S.FAILED)


async def test_a_customer_who_abandons_the_page_expires_the_payment(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow)
    gateway.customer_action(checkout.payment.external_id, "abandon")
    await wait_for(flow, checkout.payment.id, S.EXPIRED)


async def test_authorize_then_capture_part_releases_the_rest(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, capture=False)
    gateway.customer_action(checkout.payment.external_id, "approve")
    await wait_for(flow, checkout.payment.id, S.AUTHORIZED)
    payment = await flow.capture(checkout.payment.id, amount=Money.of("3000", "XOF"))
    assert (payment.status, payment.captured_amount) == (S.SUCCEEDED, Money.of("3000", "XOF"))
    assert gateway.payments[payment.external_id].captured_amount == 3000


async def test_an_amount_ending_in_02_only_authorizes_even_when_capture_is_asked(
    in_process: Setup, wait_for: Callable
) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, "5002")
    gateway.customer_action(checkout.payment.external_id, "approve")
    await wait_for(flow, checkout.payment.id, S.AUTHORIZED)
    payment = await flow.capture(checkout.payment.id)
    assert payment.status is S.SUCCEEDED


async def test_an_authorization_can_be_canceled(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, capture=False)
    gateway.customer_action(checkout.payment.external_id, "approve")
    await wait_for(flow, checkout.payment.id, S.AUTHORIZED)
    payment = await flow.cancel(checkout.payment.id)
    assert payment.status is S.CANCELED
    assert gateway.payments[payment.external_id].status == "canceled"


async def test_partial_refunds_add_up_to_a_full_refund(in_process: Setup, wait_for: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow)
    gateway.customer_action(checkout.payment.external_id, "approve")
    await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    first = await flow.refund(checkout.payment.id, amount=Money.of("2000", "XOF"), reason="cold dish")
    assert first.status is RefundStatus.SUCCEEDED
    assert (await flow.get_payment(checkout.payment.id)).status is S.PARTIALLY_REFUNDED
    await flow.refund(checkout.payment.id, amount=Money.of("3000", "XOF"))
    payment = await wait_for(flow, checkout.payment.id, S.REFUNDED)
    assert [r.amount.minor_units for r in payment.refunds] == [2000, 3000]
    assert gateway.payments[payment.external_id].refunded_amount == 5000


async def test_a_timeout_leaves_the_outcome_unknown_until_polling_finds_it(
    in_process: Setup, wait_for: Callable
) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, "5003")
    assert checkout.payment.status is S.PROCESSING
    assert checkout.payment.pending_call is not None
    assert checkout.payment.pending_call.unknown
    await anyio.sleep(0.1)
    assert gateway.deliveries == []
    payment = await flow.refresh(checkout.payment.id)
    assert (payment.status, payment.pending_call) == (S.SUCCEEDED, None)
    assert payment.external_id is not None


async def test_a_gateway_5xx_leaves_the_outcome_unknown_and_polling_finds_it_was_never_made(
    in_process_on_clock: Setup, moved_clock: Any
) -> None:
    flow, gateway = in_process_on_clock
    checkout = await pay(flow, "5004")
    assert checkout.payment.pending_call is not None
    assert checkout.payment.pending_call.unknown
    early = await flow.refresh(checkout.payment.id)  # the create may still be on its way: nothing is concluded
    assert (early.status, early.pending_call) == (S.PROCESSING, checkout.payment.pending_call)
    moved_clock.advance(seconds=flow.config.idempotency_lease + flow.config.provider_timeout + 1)
    payment = await flow.refresh(checkout.payment.id)  # no create can still arrive: it never will
    assert (payment.status, payment.pending_call) == (S.EXPIRED, None)
    assert gateway.payments == {}


async def test_duplicate_and_out_of_order_webhooks_leave_one_success(in_process: Setup, eventually: Callable) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, "5005")
    gateway.customer_action(checkout.payment.external_id, "approve")
    await eventually(lambda: sum(a.delivered for a in gateway.deliveries) >= 3)
    delivered = [(a.event_type, a.event_id) for a in gateway.deliveries]
    assert [t for t, _ in delivered] == ["payment.succeeded", "payment.authorized", "payment.succeeded"]
    assert delivered[0][1] == delivered[2][1]
    payment = await flow.get_payment(checkout.payment.id)
    assert payment.status is S.SUCCEEDED
    changes = [e.to_status for e in await flow.list_events(payment.id) if e.kind == "status_changed"]
    assert changes.count("succeeded") == 1
    assert "authorized" not in changes[changes.index("succeeded") :]


async def test_a_success_after_local_expiry_is_recorded_and_flagged(in_process: Setup, wait_for: Callable) -> None:
    flow, _ = in_process
    checkout = await pay(flow, "5006")
    await wait_for(flow, checkout.payment.id, S.EXPIRED)
    payment = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    assert payment.needs_review
    assert payment.review_reason is ReviewReason.LATE_CONFIRMATION


async def test_mobile_money_is_approved_on_the_phone_page(in_process: Setup, wait_for: Callable, api_key: str) -> None:
    flow, gateway = in_process
    checkout = await pay(flow, metadata={"dummy_method": "mobile_money"})
    assert checkout.action.kind == "ussd"
    assert "on your phone" in checkout.action.message
    transport = httpx.ASGITransport(app=gateway)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as phone:
        response = await phone.post(checkout.action.url.split(".invalid")[-1], data={"action": "approve"})
    assert response.status_code == 303
    await wait_for(flow, checkout.payment.id, S.SUCCEEDED)


async def test_a_simulated_customer_approves_without_a_browser(in_process: Setup, wait_for: Callable) -> None:
    flow, _ = in_process
    checkout = await pay(flow, metadata={"dummy_customer": "approve"})
    await wait_for(flow, checkout.payment.id, S.SUCCEEDED)


async def test_a_gateway_that_cannot_be_reached_changes_nothing(
    flow_factory: Callable[..., PaymentFlow], secret: str, unused_port: int
) -> None:
    flow = flow_factory(base_url=f"http://127.0.0.1:{unused_port}", webhook_secret=secret)
    async with flow:
        with pytest.raises(ProviderNotSent, match="not reached"):
            await pay(flow)
        [payment] = await flow.list_payments(tenant="chez-awa")
    assert (payment.status, payment.pending_call, payment.external_id) == (S.PENDING, None, None)


async def test_the_reaper_closes_an_abandoned_payment_at_the_gateway_so_it_can_no_longer_be_paid(
    in_process: Setup,
) -> None:
    flow, gateway = in_process
    checkout = await pay(flow)
    [expired] = await flow.expire_stale(older_than=0)
    assert expired.status is S.EXPIRED
    assert not expired.needs_review
    assert gateway.payment(checkout.payment.external_id).status == "canceled"
    with pytest.raises(GatewayApiError, match="cannot act on it"):
        gateway.customer_action(checkout.payment.external_id, "approve")
    assert (await flow.get_payment(checkout.payment.id)).status is S.EXPIRED


async def test_a_wrong_api_key_is_refused_by_the_gateway_and_changes_nothing(
    flow_factory: Callable[..., PaymentFlow], make_gateway: Callable[..., DummyGateway], secret: str
) -> None:
    gateway = make_gateway()
    flow = flow_factory(gateway=gateway, webhook_secret=secret, api_key="sk_test_wrong")
    async with flow, gateway:
        with pytest.raises(GatewayRefused, match="401 unauthorized") as refused:
            await pay(flow)
        [payment] = await flow.list_payments(tenant="chez-awa")
    assert (payment.status, payment.pending_call) == (S.PENDING, None)
    assert gateway.payments == {}
    assert "sk_test_wrong" not in str(refused.value)


async def test_a_refund_that_never_reached_the_gateway_is_failed_by_the_reapers_poll(
    in_process_on_clock: Setup, moved_clock: Any, wait_for: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow, gateway = in_process_on_clock
    checkout = await pay(flow)
    gateway.customer_action(checkout.payment.external_id, "approve")
    paid = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    sent = DummyProvider._call

    async def lost_before_leaving(provider: DummyProvider, method: str, path: str, **options: Any) -> Any:
        if path.endswith("/refunds"):
            raise ProviderOutcomeUnknown("no answer within 1s")  # and the gateway never got it
        return await sent(provider, method, path, **options)

    monkeypatch.setattr(DummyProvider, "_call", lost_before_leaving)
    refund = await flow.refund(paid.id, amount=Money.of("2000", "XOF"))
    monkeypatch.setattr(DummyProvider, "_call", sent)
    assert refund.status is RefundStatus.PENDING
    assert gateway.payments[paid.external_id].refunds == []
    moved_clock.advance(hours=1)
    await flow.expire_stale(older_than=1800)  # its fresh poll lists every refund, and not this one
    after = await flow.get_payment(paid.id)
    assert (after.refunds[0].status, after.pending_call, after.needs_review) == (RefundStatus.FAILED, None, False)
    assert (await flow.refund(paid.id)).amount == Money.of("5000", "XOF"), "all of it refundable again"


@pytest.mark.parametrize("status", [301, 307, 308, 101])
async def test_a_refund_answered_with_a_redirect_is_unknown_until_a_poll_finds_it(
    in_process: Setup, wait_for: Callable, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """A redirect (a proxy's, or an address that moved: httpx follows none) carries no answer of the gateway's,
    even with a body that reads like one: whether the refund was made is not known until the gateway is asked."""
    flow, gateway = in_process
    checkout = await pay(flow)
    gateway.customer_action(checkout.payment.external_id, "approve")
    paid = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    answer = DummyGateway.__call__

    async def moved(self: DummyGateway, scope: Any, receive: Any, send: Any) -> None:
        async def send_moved(message: Any) -> None:
            if message["type"] == "http.response.start" and scope["path"].endswith("/refunds"):
                message = {**message, "status": status}
            await send(message)

        await answer(self, scope, receive, send_moved)

    monkeypatch.setattr(DummyGateway, "__call__", moved)
    made = await flow.refund(paid.id, amount=Money.of("2000", "XOF"))
    monkeypatch.setattr(DummyGateway, "__call__", answer)
    (refund,) = (await flow.get_payment(paid.id)).refunds
    assert made.status is refund.status is RefundStatus.PENDING, "a redirect is not the gateway's word"
    polled = await flow.refresh(paid.id)  # the gateway did refund: its poll lists the refund
    assert (polled.refund(refund.id).status, polled.refunded_amount) == (RefundStatus.SUCCEEDED, refund.amount)


async def test_a_request_that_cannot_be_built_was_not_sent_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    flow_factory: Callable[..., PaymentFlow],
    make_gateway: Callable[..., DummyGateway],
    secret: str,
) -> None:
    """An error raised while the request is built (a header value httpx cannot encode) is "not sent": it was
    "outcome unknown", which left the payment processing until a refresh that failed the same way, for ever."""
    import uuid

    from paycore.secrets import Settings
    from paycore_dummy import register_gateway, unregister_gateway

    # The core refuses such an API key when the flow is built; here it gets through, as a key that cannot be
    # sent in a header would if that check missed it.
    monkeypatch.setattr(Settings, "credential", Settings.secret)
    name = f"test-{uuid.uuid4().hex}"
    gateway = make_gateway()
    register_gateway(name, gateway)
    try:
        flow = flow_factory(gateway=name, webhook_secret=secret, api_key="sk_test_caf\u00e9")
        async with flow, gateway:
            with pytest.raises(ProviderNotSent, match="could not be built: UnicodeEncodeError") as refused:
                await pay(flow)
            assert "caf" not in str(refused.value)
            [payment] = await flow.list_payments(tenant="chez-awa")
            assert (payment.status, payment.pending_call, payment.external_id) == (S.PENDING, None, None)
            assert gateway.payments == {}
    finally:
        unregister_gateway(name)


async def test_a_refusal_echoing_the_api_key_or_the_webhook_secret_shows_neither(
    in_process_on_clock: Setup, moved_clock: Any, monkeypatch: pytest.MonkeyPatch, api_key: str, secret: str
) -> None:
    """A gateway may quote the key it was shown ("API key ... was revoked"): its text is kept, the secrets not."""
    flow, gateway = in_process_on_clock
    checkout = await pay(flow)

    def revoked(presented: str | None) -> None:
        raise GatewayApiError(401, "revoked", f"API key {presented} was revoked; webhooks stay signed with {secret}")

    monkeypatch.setattr(gateway, "check_api_key", revoked)
    with pytest.raises(GatewayRefused, match=r"API key \*\*\* was revoked") as refused:
        await flow.refresh(checkout.payment.id)
    moved_clock.advance(hours=5)
    await flow.expire_stale(older_than=1800)
    payment = await flow.get_payment(checkout.payment.id)
    events = await flow.list_events(checkout.payment.id)
    assert payment.needs_review
    assert "was revoked" in payment.review_message
    for shown in (str(refused.value), repr(refused.value), repr(payment), *map(repr, events)):
        assert api_key not in shown
        assert secret not in shown


@pytest.mark.parametrize("written", ["+221761234567", "+221 76 123 45 67", "0761234567", "76-123-45-67"])
async def test_a_refusal_echoing_the_customer_s_phone_shows_it_however_written_as_stars(
    in_process_on_clock: Setup, moved_clock: Any, monkeypatch: pytest.MonkeyPatch, written: str, caplog: Any
) -> None:
    """A mobile-money gateway may name the wallet it refused; the phone reaches no message, review or log line."""
    flow, gateway = in_process_on_clock
    checkout = await pay(flow, customer=Customer(phone="+221761234567"))

    def rate_limited(presented: str | None) -> None:
        raise GatewayApiError(429, "rate_limited", f"too many requests for wallet {written}")

    monkeypatch.setattr(gateway, "check_api_key", rate_limited)
    with pytest.raises(GatewayRefused, match=r"too many requests for wallet \*\*\*$") as refused:
        await flow.refresh(checkout.payment.id)
    with caplog.at_level(logging.DEBUG, logger="paycore"):
        moved_clock.advance(hours=5)
        await flow.expire_stale(older_than=1800)  # the reaper's cancel is refused the same way
    payment = await flow.get_payment(checkout.payment.id)
    assert payment.needs_review
    assert "too many requests for wallet ***" in payment.review_message
    logged = [record.getMessage() for record in caplog.records]
    assert any("too many requests for wallet ***" in line for line in logged)
    for shown in (str(refused.value), payment.review_message or "", *logged):
        assert "1234567" not in shown.replace(" ", "").replace("-", "")


async def test_a_second_gateway_payment_paid_for_the_same_payment_is_refused_never_merged(
    in_process: Setup, wait_for: Callable, eventually: Callable
) -> None:
    """Another system (or a create retried without its key) made a second gateway payment for paycore's payment,
    and the customer paid both: the second's webhooks are refused at the door (the gateway holds twice the money,
    and its failed deliveries say so), never taken as the payment's own id, with the money of the first."""
    flow, gateway = in_process
    checkout = await pay(flow)
    first = gateway.payments[checkout.payment.external_id]
    second = gateway.create_payment(
        {"amount": 5000, "currency": "XOF", "reference": checkout.payment.id, "webhook_url": first.webhook_url}
    )
    gateway.customer_action(first.id, "approve")
    paid = await wait_for(flow, checkout.payment.id, S.SUCCEEDED)
    gateway.customer_action(second.id, "approve")
    await eventually(lambda: [a.status_code for a in gateway.deliveries if a.attempt == 1] == [200, 400])
    payment = await flow.get_payment(checkout.payment.id)
    assert payment == paid, "nothing of the second gateway payment was recorded"
    assert (payment.external_id, payment.references) == (first.id, (first.id,))
