"""Answers lost on the way back from Stripe (the simulator does the work, then the connection resets).

A create whose answer is lost leaves the payment without the customer's next action: the poll that finds
the PaymentIntent or the Checkout Session still awaiting the customer gives it back, as the create would
have. A read whose answer is lost asked Stripe to change nothing: the operation it began was not sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest

from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import NextAction, Payment
from paycore.status import PaymentStatus
from paycore_stripe import StripeSimulator

pytestmark = pytest.mark.anyio

CODE = "card"
EUR = Money.of("12.34", "EUR")


@pytest.fixture
async def checkout_flow(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> AsyncIterator[PaymentFlow]:
    """A flow whose provider reaches ``simulator`` in process, in checkout mode."""
    async with flow_with(simulator=simulator, mode="checkout", success_url="https://shop.test/paid") as opened:
        yield opened


async def _lost_create(flow: PaymentFlow, simulator: StripeSimulator, order_id: str) -> Payment:
    """A payment whose create Stripe carried out but whose answer never came back: it has no next action."""
    simulator.drop_next_answer()
    with contextlib.suppress(ProviderOutcomeUnknown):  # the flow keeps the call as unknown
        await flow.create_payment(amount=EUR, provider=CODE, order_id=order_id)
    (payment,) = await flow.list_payments(order_id=order_id)
    assert (payment.external_id, payment.next_action) == (None, None)
    return payment


def _expire_posts(simulator: StripeSimulator) -> list[str]:
    return [path for method, path, _ in simulator.requests if method == "POST" and path.endswith("/expire")]


# -- a lost create: the poll gives the customer's next action back ---------------------------------


async def test_a_poll_gives_the_client_secret_of_an_intent_whose_create_answer_was_lost(
    flow: PaymentFlow, simulator: StripeSimulator
) -> None:
    lost = await _lost_create(flow, simulator, "L-1")
    polled = await flow.refresh(lost.id)
    (intent,) = simulator.intents.values()
    assert (polled.status, polled.external_id) == (PaymentStatus.PROCESSING, intent["id"])
    assert polled.next_action is not None
    assert (polled.next_action.kind, polled.next_action.data) == ("display", intent["client_secret"])
    assert (await flow.get_payment(lost.id)).next_action == polled.next_action


async def test_a_poll_gives_the_page_of_a_checkout_session_whose_create_answer_was_lost(
    checkout_flow: PaymentFlow, simulator: StripeSimulator
) -> None:
    lost = await _lost_create(checkout_flow, simulator, "L-2")
    polled = await checkout_flow.refresh(lost.id)
    (session,) = simulator.sessions.values()
    assert (polled.status, polled.external_id) == (PaymentStatus.PROCESSING, session["id"])
    assert polled.next_action == NextAction(kind="redirect", url=session["url"])


async def test_a_poll_gives_the_page_of_an_open_session_after_a_declined_card(
    checkout_flow: PaymentFlow, simulator: StripeSimulator
) -> None:
    """The session stays open for another card: the customer goes back to its page, not to the intent."""
    lost = await _lost_create(checkout_flow, simulator, "L-3")
    (session,) = simulator.sessions.values()
    await simulator.decline(session["id"])
    polled = await checkout_flow.refresh(lost.id)
    assert polled.status is PaymentStatus.PROCESSING
    assert polled.next_action == NextAction(kind="redirect", url=session["url"])


@pytest.mark.parametrize(
    ("settle", "status"),
    [
        pytest.param(lambda s, ident: s.pay(ident), PaymentStatus.SUCCEEDED, id="paid"),
        pytest.param(lambda s, ident: s.pay(ident, delayed=True), PaymentStatus.PROCESSING, id="processing"),
    ],
)
async def test_a_poll_of_an_intent_the_customer_is_done_with_gives_no_next_action(
    flow: PaymentFlow,
    simulator: StripeSimulator,
    settle: Callable[[StripeSimulator, str], Awaitable[Any]],
    status: PaymentStatus,
) -> None:
    lost = await _lost_create(flow, simulator, "L-4")
    (intent_id,) = simulator.intents
    await settle(simulator, intent_id)
    polled = await flow.refresh(lost.id)
    assert (polled.status, polled.next_action) == (status, None)


@pytest.mark.parametrize(
    ("settle", "status"),
    [
        pytest.param(lambda s, ident: s.pay(ident), PaymentStatus.SUCCEEDED, id="paid"),
        pytest.param(lambda s, ident: s.expire(ident), PaymentStatus.EXPIRED, id="expired"),
        pytest.param(lambda s, ident: s.pay(ident, delayed=True), PaymentStatus.PROCESSING, id="complete-processing"),
    ],
)
async def test_a_poll_of_a_session_no_longer_open_gives_no_next_action(
    checkout_flow: PaymentFlow,
    simulator: StripeSimulator,
    settle: Callable[[StripeSimulator, str], Awaitable[Any]],
    status: PaymentStatus,
) -> None:
    lost = await _lost_create(checkout_flow, simulator, "L-5")
    (session_id,) = simulator.sessions
    await settle(simulator, session_id)
    found = await checkout_flow.refresh(lost.id)  # finds the session among those Stripe lists
    assert (found.external_id, found.next_action) == (session_id, None)
    polled = await checkout_flow.refresh(lost.id)  # reads it, and its PaymentIntent
    assert (polled.status, polled.next_action) == (status, None)


@pytest.mark.parametrize("mode", ["payment_intent", "checkout"])
async def test_a_lost_create_is_found_on_an_account_busy_ever_since(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator, mode: str
) -> None:
    """Stripe lists newest first: the objects an account made after the create could reach Stripe (here 2,500,
    past the pages a lookup reads) are left out of the search, however many come after."""
    async with flow_with(simulator=simulator, mode=mode, success_url="https://shop.test/paid") as flow:
        lost = await _lost_create(flow, simulator, "L-6")
        objects = simulator.sessions if mode == "checkout" else simulator.intents
        (made,) = objects.values()
        later = int(made["created"]) + 3 * 3600  # hours after: the create's lease and any clock skew long past
        for number in range(2_500):
            objects[f"{made['id']}_later_{number}"] = {**made, "id": f"{made['id']}_later_{number}", "metadata": {}}
            objects[f"{made['id']}_later_{number}"]["created"] = later + number
        found = await flow.refresh(lost.id)
    assert found.external_id == made["id"]
    assert found.pending_call is None
    listed = ("/v1/payment_intents", "/v1/checkout/sessions")
    lists = [path for method, path, _ in simulator.requests if method == "GET" and path.endswith(listed)]
    assert len(lists) == 1, lists  # one page: the window holds the one object made then


# -- a lost read: nothing was sent -----------------------------------------------------------------


async def test_a_cancel_whose_session_read_lost_its_answer_was_not_sent_and_may_be_made_at_once(
    checkout_flow: PaymentFlow, simulator: StripeSimulator
) -> None:
    checkout = await checkout_flow.create_payment(amount=EUR, provider=CODE, order_id="R-1")
    simulator.drop_next_answer()  # the cancel's GET of the session: Stripe answers, the answer is lost
    with pytest.raises(ProviderNotSent, match="only reads"):
        await checkout_flow.cancel(checkout.payment.id, idempotency_key="cancel-1")
    after = await checkout_flow.get_payment(checkout.payment.id)
    assert (after.status, after.pending_call, after.needs_review) == (PaymentStatus.PROCESSING, None, False)
    assert _expire_posts(simulator) == []
    canceled = await checkout_flow.cancel(checkout.payment.id, idempotency_key="cancel-2")
    assert canceled.status is PaymentStatus.CANCELED
    assert simulator.sessions[checkout.payment.external_id or ""]["status"] == "expired"
    assert len(_expire_posts(simulator)) == 1


async def test_a_cancel_whose_expiry_lost_its_answer_is_unknown_and_never_sent_again(
    flow_with: Callable[..., PaymentFlow], simulator: StripeSimulator
) -> None:
    async def stripe_losing_the_expiry_answer(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/expire"):
            simulator.drop_next_answer()
        await simulator(scope, receive, send)

    settings = {"mode": "checkout", "success_url": "https://shop.test/paid"}
    async with flow_with(simulator=stripe_losing_the_expiry_answer, **settings) as flow:
        checkout = await flow.create_payment(amount=EUR, provider=CODE, order_id="R-2")
        with contextlib.suppress(ProviderOutcomeUnknown):  # the flow keeps the call as unknown
            await flow.cancel(checkout.payment.id, idempotency_key="cancel-1")
        after = await flow.get_payment(checkout.payment.id)
        assert after.status is PaymentStatus.PROCESSING
        assert after.pending_call is not None
        assert after.pending_call.unknown
        polled = await flow.refresh(checkout.payment.id)  # settled by asking, never by expiring again
    assert polled.status in (PaymentStatus.CANCELED, PaymentStatus.EXPIRED)
    assert polled.pending_call is None
    assert simulator.sessions[checkout.payment.external_id or ""]["status"] == "expired"
    assert len(_expire_posts(simulator)) == 1
