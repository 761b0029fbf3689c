"""One process of the multi-process webhook test, on a Django project of its own.

    python django_webhooks.py seed     DATABASE_JSON DELIVERIES.json
    python django_webhooks.py deliver  DATABASE_JSON DELIVERIES.json --seed N --start-at UNIX_TIME
    python django_webhooks.py outcome  DATABASE_JSON

``DATABASE_JSON`` is the ``default`` entry of ``settings.DATABASES``. ``seed``
migrates the database, creates 50 payments and writes the 200 signed webhooks
to deliver about them (duplicates and out-of-order deliveries included).
``deliver`` shuffles them with ``--seed`` (``-1`` keeps their order), waits for
the common start time and delivers each, again when it kept losing races
(``ConcurrentUpdate``), as a provider redelivers a webhook that got an error;
it prints how many were delivered and redelivered. ``outcome`` prints every
payment's final state, refunds and event kinds, and integrity counts, as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any

SECRET = "whsec_django_multiprocess"


def setup_django(database: dict[str, Any]) -> None:
    """Configure a minimal Django project on ``database``."""
    import django
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["paycore_django"],
        DATABASES={"default": database},
        USE_TZ=True,
        TIME_ZONE="UTC",
        PAYCORE={"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}},
        PAYCORE_DJANGO={"PLUGINS": ["paycore.testing.fake"]},
    )
    django.setup()


def _delivery(provider: Any, payment_id: str, **kwargs: Any) -> dict[str, Any]:
    body, headers = provider.webhook(payment_id, **kwargs)
    return {"body": body.decode(), "headers": headers}


async def seed() -> list[dict[str, Any]]:
    """Create 50 payments in three situations; return the 200 webhooks to deliver about them."""
    import paycore_django
    from paycore.money import Money
    from paycore.records import RefundUpdate
    from paycore.status import Outcome, PaymentStatus, RefundStatus

    flow = paycore_django.flow()
    provider: Any = flow.provider("fake")
    deliveries: list[dict[str, Any]] = []
    for index in range(50):
        amount = Money.of(str(5000 + index), "XOF")
        if index < 35:
            provider.script("initiate", "pending")
            checkout = await flow.create_payment(amount=amount, provider="fake", order_id=f"o{index}")
            payment_id = checkout.payment.id
            assert checkout.payment.status is PaymentStatus.PROCESSING
            final = Outcome.SUCCEEDED if index < 20 else Outcome.FAILED
            deliveries.append(_delivery(provider, payment_id, outcome=Outcome.PENDING, event_id=f"e{index}-1"))
            deliveries += [_delivery(provider, payment_id, outcome=final, event_id=f"e{index}-2")] * 2
            last_id = f"e{index}-3" if final is Outcome.SUCCEEDED else f"e{index}-2"
            deliveries.append(_delivery(provider, payment_id, outcome=final, event_id=last_id))
        else:
            checkout = await flow.create_payment(amount=amount, provider="fake", order_id=f"o{index}")
            payment_id = checkout.payment.id
            provider.script("refund", "pending")
            refund = await flow.refund(payment_id, amount=Money.of("1000", "XOF"))
            settled = RefundUpdate(RefundStatus.SUCCEEDED, refund_id=refund.id, amount=refund.amount)
            deliveries += [_delivery(provider, payment_id, refunds=[settled], event_id=f"e{index}-1")] * 3
            deliveries.append(_delivery(provider, payment_id, event_id=f"e{index}-2"))
    assert len(deliveries) == 200
    return deliveries


async def deliver(deliveries: list[dict[str, Any]]) -> dict[str, int]:
    """Deliver every webhook; return counts."""
    import paycore_django
    from paycore.errors import ConcurrentUpdate

    flow = paycore_django.flow()
    redelivered = 0
    for delivery in deliveries:
        body = str(delivery["body"]).encode()
        headers = dict(delivery["headers"])
        for _ in range(50):
            try:
                await flow.handle_webhook("fake", body, headers)
                break
            except ConcurrentUpdate:
                redelivered += 1
        else:
            raise SystemExit(f"webhook {body[:60]!r} kept failing")
    return {"delivered": len(deliveries), "redelivered": redelivered}


def outcome() -> dict[str, Any]:
    """Every payment's final state, refunds and event kinds; counts of sequence gaps and receipts."""
    from django.db.models import Count, Max

    from paycore_django import models

    payments = {
        row["id"]: [row["status"], row["captured"], row["needs_review"], row["event_count"]]
        for row in models.Payment.objects.values("id", "status", "captured", "needs_review", "event_count")
    }
    refunds = {
        f"{row['payment_id']}/{row['id']}": [row["status"], row["amount"]]
        for row in models.Refund.objects.values("payment_id", "id", "status", "amount")
    }
    kinds: dict[str, list[str]] = {}
    for payment_id, kind in models.PaymentEvent.objects.order_by("payment_id", "sequence").values_list(
        "payment_id", "kind"
    ):
        kinds.setdefault(payment_id, []).append(kind)
    per_payment = models.PaymentEvent.objects.values("payment_id").annotate(
        n=Count("id"), top=Max("sequence"), distinct_n=Count("sequence", distinct=True)
    )
    gaps = sum(1 for row in per_payment if not row["n"] == row["top"] == row["distinct_n"])
    receipts = models.WebhookReceipt.objects.count()
    return {"payments": payments, "refunds": refunds, "kinds": kinds, "gaps": gaps, "receipts": receipts}


def main() -> None:
    """Parse arguments and run the command."""
    import anyio

    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["seed", "deliver", "outcome"])
    parser.add_argument("database")
    parser.add_argument("deliveries", nargs="?")
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    setup_django(json.loads(args.database))
    if args.command == "outcome":
        print(json.dumps(outcome()))
        return
    if args.command == "seed":
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        with open(args.deliveries, "w") as file:
            json.dump(anyio.run(seed), file)
        return
    with open(args.deliveries) as file:
        deliveries = json.load(file)
    if args.seed >= 0:
        random.Random(args.seed).shuffle(deliveries)
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    print(json.dumps(anyio.run(deliver, deliveries)))


if __name__ == "__main__":
    main()
