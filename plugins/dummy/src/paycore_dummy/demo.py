"""The online part of ``paycore demo``: orders paid through the dummy gateway, in process.

Customers pay by mobile money (approving on their phone) or on the hosted
card page; every confirmation reaches paycore as a signed webhook through
``paycore.asgi``, exactly as it would over HTTP. One card is declined, one
order is partly refunded.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

import anyio
import httpx

from paycore.hookspecs import DemoStepRegistrar
from paycore.money import Money
from paycore.status import PaymentStatus
from paycore_dummy.delivery import RetryPolicy
from paycore_dummy.gateway import DummyGateway
from paycore_dummy.inprocess import register_gateway, unregister_gateway
from paycore_dummy.signing import generate_secret

__all__ = ["register_steps"]

GATEWAY_NAME: Final = "paycore-demo"
# Test credentials made up for this process: the demo's gateway and provider share them.
_API_KEY: Final = "sk_test_" + secrets.token_hex(12)
_WEBHOOK_SECRET: Final = generate_secret()


def register_steps(register: DemoStepRegistrar) -> None:
    """Register the online orders step (after the till's cash step)."""
    register(
        "online orders through the dummy gateway",
        order=30,
        run=run_online_orders,
        providers={
            "wave": {
                "type": "dummy",
                "gateway": GATEWAY_NAME,
                "api_key": _API_KEY,
                "webhook_secret": _WEBHOOK_SECRET,
                "webhook_url": "http://restaurant.invalid/webhooks/{tenant}/{code}",
                "method": "mobile_money",
            }
        },
    )


async def _settled(flow: Any, payment_id: str, tenant: str) -> Any:
    with anyio.fail_after(10):
        while True:
            payment = await flow.get_payment(payment_id, tenant=tenant)
            if payment.status is not PaymentStatus.PROCESSING:
                return payment
            await anyio.sleep(0.01)


async def run_online_orders(context: Any) -> None:
    """Three online orders: mobile money approved, a card approved then partly refunded, a card declined."""
    from paycore.asgi import create_app

    flow, tenant, echo = context.flow, context.tenant, context.echo
    gateway = DummyGateway(
        api_key=_API_KEY,
        webhook_secrets=_WEBHOOK_SECRET,
        webhook_transport=httpx.ASGITransport(app=create_app(flow, prefix="/webhooks", manage_flow=False)),
        retry=RetryPolicy(attempts=5, backoff=0.05),
    )
    register_gateway(GATEWAY_NAME, gateway)

    def xof(amount: str) -> Money:
        return Money.of(amount, "XOF")

    # The gateway lives in this process only, so each run's keys are its own: a rerun on kept
    # storage must not replay the payments of a gateway that is gone.
    run = secrets.token_hex(4)
    try:
        async with gateway:
            orders = [
                ("W-0001", "7500", "mobile_money", "Fatou approves on her phone"),
                ("W-0002", "12000", "card", "Moussa pays on the checkout page"),
                ("W-0003", "4001", "card", "a card the issuer declines (amount ending in 01)"),
            ]
            done = {}
            for order_id, amount, method, story in orders:
                checkout = await flow.create_payment(
                    amount=xof(amount),
                    provider="wave",
                    order_id=order_id,
                    tenant=tenant,
                    metadata={"dummy_method": method},
                    idempotency_key=f"demo-{run}-{order_id}",
                )
                action = checkout.action
                shown = action.message if action and action.message else f"redirect to {action.url if action else '?'}"
                echo(f"  order {order_id}: {xof(amount).display()}, {method}: {shown}")
                echo(f"    {story}")
                gateway.customer_action(checkout.payment.external_id, "approve")
                payment = await _settled(flow, checkout.payment.id, tenant)
                events = await flow.list_events(payment.id, tenant=tenant)
                by_webhook = [e for e in events if e.cause == "webhook"]
                via = f" by signed webhook {by_webhook[-1].provider_event_id}" if by_webhook else ""
                echo(f"    -> {payment.status.value}{via}")
                done[order_id] = payment
            refund = await flow.refund(
                done["W-0002"].id,
                amount=xof("2500"),
                reason="a side dish was missing",
                idempotency_key=f"demo-{run}-r1",
            )
            echo(f"  refund of {refund.amount.display()} on order W-0002 through the gateway: {refund.status.value}")
            with anyio.fail_after(10):
                while True:
                    delivered_ids = {a.event_id for a in gateway.deliveries if a.delivered}
                    if all(e.id in delivered_ids for e in gateway.events):
                        break
                    await anyio.sleep(0.01)
            delivered = sum(1 for a in gateway.deliveries if a.delivered)
            echo(f"  the gateway delivered {delivered} signed webhooks, all verified and committed")
    finally:
        unregister_gateway(GATEWAY_NAME)
