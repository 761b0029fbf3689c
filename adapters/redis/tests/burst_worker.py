"""One process of the multi-process idempotency test (run by ``test_faults.py``, not by pytest).

It builds a ``PaymentFlow`` on the shared SQLite file with Redis in front of
it, waits for the common start time, fires ``requests`` identical
``create_payment(..., idempotency_key="same")`` calls at once, and prints one
JSON line: the payment id each call got, or ``"in_progress"`` for a refusal.
The provider counts every call it really receives in Redis (``INCR``), the one
fact all processes share.

Usage: ``python burst_worker.py CONFIG_JSON``, with keys ``redis_url``,
``database_url``, ``prefix``, ``counter`` (the Redis key counting provider
calls), ``ready`` (a Redis key every process increments when it is ready),
``processes`` (how many to wait for), ``requests`` and ``backend``
(``asyncio`` or ``trio``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import anyio.to_thread
import redis

import paycore_memory.plugin
import paycore_redis.plugin
import paycore_sqlalchemy.plugin
from paycore import Money, PaymentFlow, hookimpl
from paycore.errors import IdempotencyInProgress
from paycore.hookspecs import ProviderRegistrar
from paycore.records import Payment, ProviderUpdate
from paycore.testing.fake import FakeProvider


class CountingProvider(FakeProvider):
    """The fake provider, counting each payment it receives in Redis and answering slowly."""

    name = "counting"
    settings_names = frozenset({"webhook_secret", "counter_url", "counter_key"})

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Count the call where every process sees it, take a while, then approve."""
        counter = redis.Redis.from_url(self.settings["counter_url"])
        try:
            await anyio.to_thread.run_sync(counter.incr, self.settings["counter_key"])
        finally:
            counter.close()
        await anyio.sleep(0.3)
        return await super().initiate(payment)


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register provider type ``counting``."""
    register(CountingProvider)


async def _all_ready(options: dict[str, Any]) -> None:
    client = redis.Redis.from_url(options["redis_url"])
    try:
        await anyio.to_thread.run_sync(client.incr, options["ready"])
        # The other processes are waited for through Redis: no in-process event can tell.
        while int(await anyio.to_thread.run_sync(client.get, options["ready"]) or 0) < options["processes"]:  # noqa: ASYNC110
            await anyio.sleep(0.005)
    finally:
        client.close()


async def burst(options: dict[str, Any]) -> list[str]:
    """Fire the identical requests together; what each one got."""
    config = {
        "repository": options["database_url"],
        "idempotency": ["redis", "sqlalchemy"],
        "idempotency_settings": {"redis": {"url": options["redis_url"], "prefix": options["prefix"]}},
        "providers": {
            "counting": {
                "type": "counting",
                "counter_url": options["redis_url"],
                "counter_key": options["counter"],
            }
        },
    }
    plugins = [paycore_memory.plugin, paycore_sqlalchemy.plugin, paycore_redis.plugin, sys.modules[__name__]]
    flow = PaymentFlow.from_config(config, plugins=plugins, entry_points=False, environ={})
    outcomes: list[str] = []

    async def pay() -> None:
        try:
            checkout = await flow.create_payment(
                amount=Money.of("5000", "XOF"), provider="counting", order_id="T12-0042", idempotency_key="same"
            )
            outcomes.append(checkout.payment.id)
        except IdempotencyInProgress:
            outcomes.append("in_progress")

    async with flow:
        await _all_ready(options)
        async with anyio.create_task_group() as group:
            for _ in range(options["requests"]):
                group.start_soon(pay)
    return outcomes


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(json.dumps(anyio.run(burst, arguments, backend=arguments["backend"])))
