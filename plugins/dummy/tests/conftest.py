"""Fixtures of the dummy gateway's tests: gateways, flows, real servers on loopback."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import sniffio

import paycore_dummy.plugin
from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore_dummy import DummyGateway, RetryPolicy, generate_secret, register_gateway, unregister_gateway

API_KEY = "sk_test_dummy_0123456789"
FAST_RETRY = RetryPolicy(attempts=4, backoff=0.02, max_backoff=0.1, timeout=5.0)


@pytest.fixture
def secret() -> str:
    """The webhook secret gateway and provider share."""
    return generate_secret()


def build_gateway(secret: str | list[str], **options: Any) -> DummyGateway:
    """A gateway with short delays, for tests."""
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("timeout_delay", 2.0)
    options.setdefault("scenario_delay", 0.05)
    options.setdefault("customer_delay", 0.01)
    options.setdefault("drain_timeout", 1.0)
    return DummyGateway(api_key=API_KEY, webhook_secrets=secret, **options)


def build_flow(*, clock: Callable[[], datetime] | None = None, **provider_settings: Any) -> PaymentFlow:
    """An in-memory flow with a ``wave`` dummy provider for tenant ``chez-awa`` (on ``clock``, if given)."""
    settings = {"type": "dummy", "api_key": API_KEY, "timeout": 1.0, **provider_settings}
    config = {"tenants": {"chez-awa": {"providers": {"wave": settings}}}}
    if clock is None:
        return PaymentFlow.from_config(config, plugins=[paycore_dummy.plugin])
    return PaymentFlow.from_config(config, plugins=[paycore_dummy.plugin], clock=clock)


@pytest.fixture
def make_gateway(secret: str) -> Callable[..., DummyGateway]:
    """Build a gateway signing with ``secret`` (options as :class:`DummyGateway` takes them)."""
    return partial(build_gateway, secret)


@asynccontextmanager
async def _in_process(
    secret: str, clock: Callable[[], datetime] | None
) -> AsyncIterator[tuple[PaymentFlow, DummyGateway]]:
    name = f"test-{uuid.uuid4().hex}"
    flow = build_flow(clock=clock, gateway=name, webhook_secret=secret, webhook_url="http://merchant/{tenant}/{code}")
    gateway = build_gateway(secret, webhook_transport=httpx.ASGITransport(app=create_app(flow, manage_flow=False)))
    register_gateway(name, gateway)
    try:
        async with flow, gateway:
            yield flow, gateway
    finally:
        unregister_gateway(name)


@pytest.fixture
async def in_process(secret: str) -> AsyncIterator[tuple[PaymentFlow, DummyGateway]]:
    """A flow and a gateway talking in the same process: API over ASGITransport, webhooks back the same way."""
    async with _in_process(secret, None) as setup:
        yield setup


class MovedClock:
    """A clock that reads the time now plus what a test moved it by (:meth:`advance`)."""

    def __init__(self) -> None:
        self.moved = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.moved

    def advance(self, **delta: float) -> None:
        """Move the clock forward by ``timedelta(**delta)``."""
        self.moved += timedelta(**delta)


@pytest.fixture
def moved_clock() -> MovedClock:
    """The flow's clock in :func:`in_process_on_clock`."""
    return MovedClock()


@pytest.fixture
async def in_process_on_clock(secret: str, moved_clock: MovedClock) -> AsyncIterator[tuple[PaymentFlow, DummyGateway]]:
    """:func:`in_process` with the flow on :func:`moved_clock`, which a test moves forward (the reaper's deadlines)."""
    async with _in_process(secret, moved_clock) as setup:
        yield setup


async def wait_for_status(
    flow: PaymentFlow, payment_id: str, *statuses: PaymentStatus, timeout: float = 5.0
) -> Payment:
    """The payment once its status is one of ``statuses`` (webhooks land in the background)."""
    with anyio.fail_after(timeout):
        while True:
            payment = await flow.get_payment(payment_id)
            if payment.status in statuses:
                return payment
            await anyio.sleep(0.01)


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Return once ``check()`` is true; fail after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while True:
            if check():
                return
            await anyio.sleep(0.01)


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Any]:
    """``await eventually(lambda: condition)``: wait (at most 5 s) until the condition holds."""
    return eventually


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on loopback: uvicorn under asyncio, hypercorn under trio. Yields its base URL."""
    port = port or free_port()
    async with anyio.create_task_group() as task_group:
        if sniffio.current_async_library() == "trio":
            from hypercorn.config import Config
            from hypercorn.trio import serve as hypercorn_serve

            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.loglevel = "WARNING"
            config.graceful_timeout = 1.0
            stop = anyio.Event()
            await task_group.start(partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait))
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                stop.set()
        else:
            import uvicorn

            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
            )
            task_group.start_soon(server.serve)
            await eventually(lambda: server.started, timeout=10)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True


@pytest.fixture
def api_key() -> str:
    """The API key of gateways built by :func:`build_gateway`."""
    return API_KEY


@pytest.fixture
def server() -> Callable[[Any], Any]:
    """``async with server(app) as base_url``: ``app`` served on loopback by a real ASGI server."""
    return serve


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``await wait_for(flow, payment_id, *statuses)``: the payment once it reached one of them."""
    return wait_for_status


@pytest.fixture
def flow_factory() -> Callable[..., PaymentFlow]:
    """Build a flow with a ``wave`` dummy provider for tenant ``chez-awa`` (settings as keywords)."""
    return build_flow


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def live(
    server: Callable[..., Any],
    make_gateway: Callable[..., DummyGateway],
    flow_factory: Callable[..., PaymentFlow],
    secret: str,
    unused_port: int,
) -> Callable[..., Any]:
    """``async with live(**gateway_options) as (flow, gateway, merchant_url)``: both sides served."""

    @asynccontextmanager
    async def start(**options: Any) -> AsyncIterator[tuple[PaymentFlow, DummyGateway, str]]:
        gateway = make_gateway(**options)
        async with server(gateway) as gateway_url:
            merchant_url = f"http://127.0.0.1:{unused_port}"
            flow = flow_factory(
                base_url=gateway_url,
                webhook_secret=secret,
                webhook_url=merchant_url + "/hooks/{tenant}/{code}",
                timeout=0.5,
            )
            # The merchant's server opens and closes the flow (ASGI lifespan).
            async with server(create_app(flow, prefix="/hooks"), port=unused_port):
                yield flow, gateway, merchant_url

    return start
