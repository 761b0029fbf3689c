"""Fixtures of the Stripe provider's tests: a simulator and flows that reach it in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

import paycore_stripe.plugin
from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore_stripe import StripeSimulator

API_KEY = "sk_test_51paycoreSimulated"
WEBHOOK_SECRET = "whsec_paycoreSimulatedSigningSecret"
CODE = "card"


def build_flow(**settings: Any) -> PaymentFlow:
    """An in-memory flow with a ``stripe`` provider enabled as ``card``."""
    provider = {"type": "stripe", "api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "max_network_retries": 0}
    return PaymentFlow.from_config({"providers": {CODE: {**provider, **settings}}}, plugins=[paycore_stripe.plugin])


@pytest.fixture
def simulator() -> StripeSimulator:
    """A Stripe simulator that keeps its events (the test delivers them)."""
    return StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)


@pytest.fixture
def flow_with() -> Callable[..., PaymentFlow]:
    """``flow_with(**settings)``: a flow with the stripe provider as ``card``."""
    return build_flow


@pytest.fixture
async def flow(simulator: StripeSimulator) -> AsyncIterator[PaymentFlow]:
    """A flow whose provider reaches ``simulator`` in process, in payment_intent mode."""
    async with build_flow(simulator=simulator) as opened:
        yield opened


@asynccontextmanager
async def _connected(mode: str) -> AsyncIterator[tuple[PaymentFlow, StripeSimulator]]:
    simulator = StripeSimulator(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET)
    flow = build_flow(simulator=simulator, mode=mode, success_url="https://shop.test/paid")
    simulator.webhook_transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
    simulator.webhook_url = f"http://shop.test/{CODE}"
    async with flow:
        yield flow, simulator


@pytest.fixture
def connected() -> Callable[[str], Any]:
    """``async with connected(mode) as (flow, simulator)``: the simulator posts its webhooks to the flow's ASGI app."""
    return _connected
