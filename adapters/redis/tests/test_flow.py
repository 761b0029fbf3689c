"""A payment flow with Redis in front of its durable idempotency store, while Redis fails."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

import paycore.testing.fake
import paycore_memory.plugin
import paycore_redis.plugin
from paycore import Money, PaymentFlow
from paycore.testing.redis import RedisServer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
async def flow(own_redis_server: RedisServer, prefix: str) -> AsyncIterator[PaymentFlow]:
    """A flow on memory storage with Redis in front of the memory idempotency store."""
    config = {
        "idempotency": ["redis", "memory"],
        "idempotency_settings": {"redis": {"url": own_redis_server.url, "prefix": prefix, "socket_timeout": 0.5}},
        "providers": {"fake": {"type": "fake", "webhook_secret": "whsec_test"}},
    }
    plugins = [paycore_memory.plugin, paycore_redis.plugin, paycore.testing.fake]
    async with PaymentFlow.from_config(config, plugins=plugins, entry_points=False, environ={}) as flow:
        yield flow


async def _pay(flow: PaymentFlow, key: str) -> str:
    checkout = await flow.create_payment(
        amount=Money.of("5000", "XOF"), provider="fake", order_id="T12-0042", idempotency_key=key
    )
    return checkout.payment.id


def _initiated(flow: PaymentFlow) -> int:
    provider = flow.provider("fake")
    assert isinstance(provider, paycore.testing.fake.FakeProvider)
    return sum(1 for operation, _ in provider.calls if operation == "initiate")


async def test_a_retry_after_redis_restarted_empty_replays_the_same_payment(
    flow: PaymentFlow, own_redis_server: RedisServer
) -> None:
    first = await _pay(flow, "k1")
    own_redis_server.restart()
    again = await _pay(flow, "k1")
    assert again == first
    assert _initiated(flow) == 1


async def test_payments_carry_on_while_redis_is_down_and_say_so_once(
    flow: PaymentFlow, own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    paid = await _pay(flow, "before")
    own_redis_server.kill()
    with caplog.at_level(logging.WARNING, logger="paycore.tiered"):
        retried = await _pay(flow, "before")
        new = [await _pay(flow, f"during-{number}") for number in range(3)]
    assert retried == paid
    assert len(set(new)) == 3
    assert _initiated(flow) == 4
    assert len([record for record in caplog.records if record.name == "paycore.tiered"]) == 1
