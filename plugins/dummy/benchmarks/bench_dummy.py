"""How fast the dummy gateway's paths are, against baselines measured in the same run.

* webhook verification: ``paycore_dummy.signing.verify`` against the reference
  ``standardwebhooks`` package (baseline);
* a payment's round trip (create, the customer approves, the signed webhook is
  committed) through the gateway in process and over loopback HTTP (uvicorn),
  against the same flow paying with paycore's in-process ``FakeProvider``
  (baseline: no HTTP, no webhook).

Run ``python plugins/dummy/benchmarks/bench_dummy.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx

import paycore.testing.fake
import paycore_dummy.plugin
from paycore.asgi import create_app
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_dummy import DummyGateway, WebhookSecret, generate_secret, register_gateway, unregister_gateway
from paycore_dummy.signing import signature_headers, verify

BODY = b'{"id":"evt_1","type":"payment.succeeded","data":{"id":"gpay_1","amount":5000,"currency":"XOF"}}'


def bench_verify(rounds: int) -> tuple[float, float]:
    """Seconds per verification: ours, and the reference library's."""
    from standardwebhooks.webhooks import Webhook

    raw = generate_secret()
    secret = WebhookSecret(raw)
    headers = signature_headers(BODY, msg_id="evt_1", secrets=[secret])
    reference = Webhook(raw)
    start = time.perf_counter()
    for _ in range(rounds):
        verify(BODY, headers, secrets=[secret])
    ours = (time.perf_counter() - start) / rounds
    start = time.perf_counter()
    for _ in range(rounds):
        reference.verify(BODY, headers, json_parse=False)
    return ours, (time.perf_counter() - start) / rounds


async def _settled(flow: PaymentFlow, payment_id: str) -> None:
    while True:
        if (await flow.get_payment(payment_id)).status is PaymentStatus.SUCCEEDED:
            return
        await anyio.lowlevel.checkpoint()


async def _time(rounds: int, one: Callable[[int], Awaitable[None]]) -> float:
    await one(-1)  # warm up
    start = time.perf_counter()
    for number in range(rounds):
        await one(number)
    return (time.perf_counter() - start) / rounds


async def bench_fake(rounds: int) -> float:
    """Seconds per payment with the in-process fake provider (baseline)."""
    flow = PaymentFlow.from_config(
        {"providers": {"fake": {"type": "fake", "webhook_secret": "s"}}}, plugins=[paycore.testing.fake]
    )
    async with flow:

        async def one(number: int) -> None:
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id=f"o{number}")

        return await _time(rounds, one)


def _dummy_flow(secret: str, **settings: Any) -> PaymentFlow:
    table = {"type": "dummy", "api_key": "sk_test_bench", "webhook_secret": secret, **settings}
    return PaymentFlow.from_config({"providers": {"wave": table}}, plugins=[paycore_dummy.plugin])


async def _round_trips(flow: PaymentFlow, gateway: DummyGateway, rounds: int) -> float:
    async def one(number: int) -> None:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave", order_id=f"o{number}")
        gateway.customer_action(checkout.payment.external_id, "approve")
        await _settled(flow, checkout.payment.id)

    return await _time(rounds, one)


async def bench_in_process(rounds: int) -> float:
    """Seconds per payment through the gateway in the same process."""
    secret, name = generate_secret(), f"bench-{uuid.uuid4().hex}"
    flow = _dummy_flow(secret, gateway=name, webhook_url="http://shop.invalid/{code}")
    gateway = DummyGateway(
        api_key="sk_test_bench",
        webhook_secrets=secret,
        webhook_transport=httpx.ASGITransport(app=create_app(flow, manage_flow=False)),
    )
    register_gateway(name, gateway)
    try:
        async with flow, gateway:
            return await _round_trips(flow, gateway, rounds)
    finally:
        unregister_gateway(name)


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def bench_http(rounds: int) -> float:
    """Seconds per payment over loopback HTTP, both sides served by uvicorn."""
    import uvicorn

    secret = generate_secret()
    gateway_port, shop_port = _port(), _port()
    gateway = DummyGateway(api_key="sk_test_bench", webhook_secrets=secret)
    flow = _dummy_flow(
        secret, base_url=f"http://127.0.0.1:{gateway_port}", webhook_url=f"http://127.0.0.1:{shop_port}/{{code}}"
    )
    servers = [
        uvicorn.Server(uvicorn.Config(gateway, host="127.0.0.1", port=gateway_port, log_level="warning")),
        uvicorn.Server(uvicorn.Config(create_app(flow), host="127.0.0.1", port=shop_port, log_level="warning")),
    ]
    async with anyio.create_task_group() as task_group:
        for server in servers:
            task_group.start_soon(server.serve)
        while not all(server.started for server in servers):  # noqa: ASYNC110 - uvicorn has no event
            await anyio.sleep(0.01)
        try:
            return await _round_trips(flow, gateway, rounds)
        finally:
            for server in servers:
                server.should_exit = True


def main() -> None:
    """Measure, then print a table of figures and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (smoke run)")
    args = parser.parse_args()
    verify_rounds, payment_rounds = (200, 5) if args.quick else (20000, 200)

    ours, reference = bench_verify(verify_rounds)
    fake = anyio.run(bench_fake, payment_rounds)
    in_process = anyio.run(bench_in_process, payment_rounds)
    over_http = anyio.run(bench_http, payment_rounds)

    rows = [
        ("verify a webhook: standardwebhooks (baseline)", reference, reference),
        ("verify a webhook: paycore_dummy.signing", ours, reference),
        ("payment with FakeProvider (baseline)", fake, fake),
        ("payment round trip, gateway in process", in_process, fake),
        ("payment round trip, loopback HTTP (uvicorn)", over_http, fake),
    ]
    print(f"{'what':<48} {'per op':>12} {'ops/s':>10} {'x baseline':>11}")
    for what, seconds, baseline in rows:
        print(f"{what:<48} {seconds * 1e6:>10.1f}us {1 / seconds:>10.0f} {seconds / baseline:>10.2f}x")


if __name__ == "__main__":
    main()
