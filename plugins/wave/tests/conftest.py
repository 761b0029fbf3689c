"""Fixtures of paycore-wave's tests: a Wave simulator in process, flows that talk to it, Wave's signature."""

from __future__ import annotations

import hashlib
import hmac
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
import sniffio

import paycore_wave.plugin
from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore_wave import WaveSimulator

API_KEY = "wave_sn_prod_YhUNb9dTestKeyForTheSimulator0123456789"
WEBHOOK_SECRET = "wave_sn_WHS_xz4m6g8rjs9bshxy05xj4khcvjv7j3hcp4fbpvv6met0zdrjvezg"
SUCCESS_URL = "https://chez-awa.example/paid"
ERROR_URL = "https://chez-awa.example/not-paid"


def wave_signature(secret: str, timestamp: int, body: bytes) -> str:
    """A ``Wave-Signature`` value computed here from Wave's documentation, not by the plugin's code:
    hex HMAC-SHA256 with the secret as key, over the timestamp's digits followed directly by the raw body."""
    digest = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def provider_settings(simulator: WaveSimulator, **overrides: Any) -> dict[str, Any]:
    """The settings of a ``wave`` provider talking to ``simulator`` in process."""
    return {
        "type": "wave",
        "api_key": API_KEY,
        "webhook_secret": WEBHOOK_SECRET,
        "success_url": SUCCESS_URL,
        "error_url": ERROR_URL,
        "transport": httpx.ASGITransport(app=simulator),
        "timeout": 2.0,
        **overrides,
    }


def build_flow(simulator: WaveSimulator, code: str = "wave", **overrides: Any) -> PaymentFlow:
    """An in-memory flow with provider ``code`` of type ``wave``, talking to ``simulator``."""
    return PaymentFlow.from_config(
        {"providers": {code: provider_settings(simulator, **overrides)}}, plugins=[paycore_wave.plugin]
    )


@pytest.fixture
def simulator() -> WaveSimulator:
    """A Wave simulator knowing the tests' API key and webhook secret."""
    return WaveSimulator(api_key=API_KEY, webhook_secrets=WEBHOOK_SECRET)


@pytest.fixture
async def flow(simulator: WaveSimulator) -> AsyncIterator[PaymentFlow]:
    """A flow whose ``wave`` provider talks to ``simulator``, which posts its webhooks to the flow's ASGI app."""
    flow = build_flow(simulator)
    simulator.webhook_url = "http://merchant.test/wave"
    simulator.webhook_transport = httpx.ASGITransport(app=create_app(flow, manage_flow=False))
    async with flow:
        yield flow


@pytest.fixture(name="wave_signature")
def wave_signature_fixture() -> Callable[[str, int, bytes], str]:
    """``wave_signature(secret, timestamp, body)``: the ``Wave-Signature`` computed independently of the plugin."""
    return wave_signature


@pytest.fixture
def flow_factory() -> Callable[..., PaymentFlow]:
    """``flow_factory(simulator, **settings)``: a flow with a ``wave`` provider (not opened)."""
    return build_flow


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` on loopback (uvicorn under asyncio, hypercorn under trio); yield its base URL."""
    port = free_port()
    async with anyio.create_task_group() as tasks:
        if sniffio.current_async_library() == "trio":
            from hypercorn.config import Config
            from hypercorn.trio import serve as hypercorn_serve

            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.loglevel = "WARNING"
            config.graceful_timeout = 1.0
            stop = anyio.Event()
            await tasks.start(partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait))
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                stop.set()
        else:
            import uvicorn

            server = uvicorn.Server(
                uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
            )
            tasks.start_soon(server.serve)
            with anyio.fail_after(10):
                while True:
                    if server.started:
                        break
                    await anyio.sleep(0.01)
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.should_exit = True


@pytest.fixture(name="serve")
def serve_fixture() -> Callable[[Any], AbstractAsyncContextManager[str]]:
    """``async with serve(app) as base_url``: ``app`` served on loopback by a real ASGI server."""
    return serve
