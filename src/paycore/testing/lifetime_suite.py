"""``KeyLifetimeConformance``: an idempotency key is bound for ``idempotency_ttl``, then free again.

Within its lifetime a key replays its request and refuses any other one; after
it, as at Stripe, the key is free and names a new payment or refund (a point of
sale whose order numbers restart each day reuses them the next day). It runs
through a flow on real time with a short ``idempotency_ttl``, on the storage
under test. Subclass it with the same two fixtures as
:class:`~paycore.testing.boundary_suite.ProviderBoundaryConformance`:
``storage_config`` and ``storage_plugins``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import pytest

from paycore.errors import IdempotencyKeyReused
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.testing import ledger as ledger_plugin
from paycore.testing.storage_under_test import StorageUnderTest

__all__ = ["TTL", "KeyLifetimeConformance"]

TTL = 2.0
"""The suite's ``idempotency_ttl`` in seconds: short, so the suite can outlive it, and long enough that a busy
machine (a slow disk's sync, another process on the cores) neither outlives it between a request and its
replay nor holds a call past its lease between writing it down and sending it."""


class KeyLifetimeConformance(StorageUnderTest):
    """How long a key binds its result, proven on a storage backend."""

    @pytest.fixture
    async def short_lived_flow(
        self, storage_config: Mapping[str, Any], storage_plugins: Sequence[object]
    ) -> AsyncIterator[PaymentFlow]:
        """A flow whose keys live :data:`TTL` seconds, with the ledger provider as ``"ledger"``."""
        config = {
            **storage_config,
            "providers": {"ledger": {"type": "ledger"}},
            "provider_timeout": 0.1,  # a call is sent at once, well within its lease
            "idempotency_lease": TTL - 0.1,  # 1.8 s to write the call down and send it on a busy database
            "idempotency_ttl": TTL,
        }
        plugins = [ledger_plugin, *storage_plugins]  # none given: entry points find them
        flow = PaymentFlow.from_config(config, plugins=plugins, entry_points=not storage_plugins, environ={})
        async with flow:
            yield flow

    async def _pay(self, flow: PaymentFlow, amount: str, key: str) -> str:
        checkout = await flow.create_payment(
            amount=Money.of(amount, "XOF"), provider="ledger", order_id="T1-0017", idempotency_key=key
        )
        return checkout.payment.id

    async def test_within_its_lifetime_a_key_replays_and_refuses_another_request(
        self, short_lived_flow: PaymentFlow
    ) -> None:
        first = await self._pay(short_lived_flow, "7500", "T1-0017-pay-1")
        assert await self._pay(short_lived_flow, "7500", "T1-0017-pay-1") == first
        with pytest.raises(IdempotencyKeyReused):
            await self._pay(short_lived_flow, "9000", "T1-0017-pay-1")

    async def test_after_its_lifetime_a_key_names_a_new_payment(self, short_lived_flow: PaymentFlow) -> None:
        first = await self._pay(short_lived_flow, "7500", "T1-0017-pay-1")
        await anyio.sleep(TTL + 0.2)
        second = await self._pay(short_lived_flow, "9000", "T1-0017-pay-1")
        assert second != first
        assert (await short_lived_flow.get_payment(second)).amount == Money.of("9000", "XOF")
        assert (await short_lived_flow.get_payment(first)).amount == Money.of("7500", "XOF")

    async def test_after_its_lifetime_the_same_request_is_a_new_payment_too(
        self, short_lived_flow: PaymentFlow
    ) -> None:
        first = await self._pay(short_lived_flow, "7500", "T1-0017-pay-1")
        await anyio.sleep(TTL + 0.2)
        assert await self._pay(short_lived_flow, "7500", "T1-0017-pay-1") != first

    async def test_after_its_lifetime_a_refund_key_names_a_new_refund(self, short_lived_flow: PaymentFlow) -> None:
        payment_id = await self._pay(short_lived_flow, "7500", "T1-0017-pay-1")
        first = await short_lived_flow.refund(payment_id, amount=Money.of("1000", "XOF"), idempotency_key="goodwill")
        await anyio.sleep(TTL + 0.2)
        second = await short_lived_flow.refund(payment_id, amount=Money.of("500", "XOF"), idempotency_key="goodwill")
        assert second.id != first.id
        assert (await short_lived_flow.get_payment(payment_id)).refunded_amount == Money.of("1500", "XOF")
