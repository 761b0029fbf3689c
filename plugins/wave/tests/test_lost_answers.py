"""A create whose answer is lost: Wave made the checkout session, paycore never heard back.

The payment has no next action then; the poll that finds the session still open gives the customer's
launch URL back, as the create's answer would have, and a session the customer is done with gives none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, MutableMapping
from typing import Any

import anyio
import httpx
import pytest

from paycore.errors import ProviderOutcomeUnknown
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import NextAction, Payment
from paycore.status import PaymentStatus
from paycore_wave import WaveSimulator

pytestmark = pytest.mark.anyio

XOF = Money.of("5000", "XOF")


async def _lost_create(flow: PaymentFlow, simulator: WaveSimulator, order_id: str) -> Payment:
    """A payment whose session Wave made but whose create answer never came back: it has no next action."""
    simulator.drop_next_answer()
    with contextlib.suppress(ProviderOutcomeUnknown):  # the flow keeps the call as unknown
        await flow.create_payment(amount=XOF, provider="wave", order_id=order_id)
    (payment,) = await flow.list_payments(order_id=order_id)
    assert (payment.external_id, payment.next_action) == (None, None)
    return payment


async def test_a_poll_gives_the_launch_url_of_a_session_whose_create_answer_was_lost(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    lost = await _lost_create(flow, simulator, "L31")
    polled = await flow.refresh(lost.id)
    (session,) = simulator.sessions.values()
    assert (polled.status, polled.external_id) == (PaymentStatus.PROCESSING, session["id"])
    assert polled.next_action == NextAction(kind="redirect", url=session["wave_launch_url"])
    assert (await flow.get_payment(lost.id)).next_action == polled.next_action


async def test_a_poll_gives_the_launch_url_of_a_session_still_open_after_a_failed_attempt(
    flow: PaymentFlow, simulator: WaveSimulator
) -> None:
    lost = await _lost_create(flow, simulator, "L32")
    (session,) = simulator.sessions.values()
    simulator.fail(session["id"], keep_open=True)  # the customer may top up and pay the same session
    polled = await flow.refresh(lost.id)
    assert polled.status is PaymentStatus.PROCESSING
    assert polled.next_action == NextAction(kind="redirect", url=session["wave_launch_url"])


@pytest.mark.parametrize(
    ("settle", "status"),
    [
        pytest.param(lambda s, ident: s.pay(ident), PaymentStatus.SUCCEEDED, id="paid"),
        pytest.param(lambda s, ident: s.fail(ident), PaymentStatus.FAILED, id="failed"),
        pytest.param(lambda s, ident: s.time_out(ident), PaymentStatus.EXPIRED, id="expired"),
    ],
)
async def test_a_poll_of_a_session_no_longer_open_gives_no_next_action(
    flow: PaymentFlow, simulator: WaveSimulator, settle: Callable[[WaveSimulator, str], Any], status: PaymentStatus
) -> None:
    lost = await _lost_create(flow, simulator, "L33")
    (session_id,) = simulator.sessions
    settle(simulator, session_id)  # its webhook is never delivered
    polled = await flow.refresh(lost.id)
    assert (polled.status, polled.next_action) == (status, None)


async def test_a_keyed_retry_of_a_create_its_caller_gave_up_on_sends_the_customer_to_the_session(
    simulator: WaveSimulator, flow_factory: Callable[..., PaymentFlow]
) -> None:
    """Wave makes the session, the caller stops waiting before its answer; the retry finds it by asking."""
    gave_up = anyio.CancelScope()

    async def wave_answering_the_first_create_too_late(
        scope: MutableMapping[str, Any], receive: Any, send: Any
    ) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not simulator.sessions:

            async def unheard(message: MutableMapping[str, Any]) -> None:
                pass

            await simulator(scope, receive, unheard)
            gave_up.cancel()
            await anyio.sleep_forever()
        await simulator(scope, receive, send)

    transport = httpx.ASGITransport(app=wave_answering_the_first_create_too_late)
    async with flow_factory(simulator, transport=transport) as flow:
        with gave_up:
            await flow.create_payment(amount=XOF, provider="wave", order_id="L34", idempotency_key="order-L34")
        retried = await flow.create_payment(amount=XOF, provider="wave", order_id="L34", idempotency_key="order-L34")
    (session,) = simulator.sessions.values()
    assert (retried.payment.status, retried.payment.external_id) == (PaymentStatus.PROCESSING, session["id"])
    assert retried.action == NextAction(kind="redirect", url=session["wave_launch_url"])
