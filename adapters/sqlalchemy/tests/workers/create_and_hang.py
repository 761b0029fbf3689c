"""Take an idempotency key for a payment, then hang before finishing (to be killed).

    python create_and_hang.py URL KEY ORDER_ID

A ``paycore_payment_event`` observer that never returns stops the request after
the key is taken and the payment stored (in one transaction), before its
provider call is sent: the moment a crash leaves a key held by a process that
is gone.
"""

from __future__ import annotations

import sys

import anyio

import paycore.testing.fake
from paycore import PaymentFlow, hookimpl
from paycore.money import Money
from paycore.records import Payment, PaymentEvent

SECRET = "whsec_kill"


def flow_config(url: str) -> dict[str, object]:
    """Short leases so a test can wait one out: the key is free 3 s after its holder died."""
    return {
        "repository": url,
        "idempotency": "sqlalchemy",
        "idempotency_lease": 3,
        "provider_timeout": 1,
        "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
    }


class HangOnCreated:
    """An observer that never answers."""

    @hookimpl
    async def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        """Wait forever."""
        await anyio.sleep_forever()


async def create(url: str, key: str, order_id: str) -> None:
    """Start the payment; never finishes."""
    plugins = [paycore.testing.fake, HangOnCreated()]
    async with PaymentFlow.from_config(flow_config(url), plugins=plugins) as flow:
        await flow.create_payment(
            amount=Money.of("7500", "XOF"), provider="fake", order_id=order_id, idempotency_key=key
        )


if __name__ == "__main__":
    anyio.run(create, *sys.argv[1:4])
