"""Deliver a list of signed webhooks to a flow on a SQL database, as one process of many.

    python deliver_webhooks.py URL DELIVERIES.json --seed N --start-at UNIX_TIME

Deliveries are shuffled with ``--seed`` (``--seed -1`` keeps their order). A
delivery refused with ``ConcurrentUpdate`` (it kept losing races) is delivered
again, as a provider redelivers a webhook that got an error. Prints a JSON
summary: how many were delivered and how many were redelivered.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import anyio

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.errors import ConcurrentUpdate

SECRET = "whsec_multiprocess"


def flow_config(url: str) -> dict[str, object]:
    """The configuration every process (and the test itself) uses."""
    return {
        "repository": url,
        "idempotency": "sqlalchemy",
        "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
    }


async def deliver(url: str, deliveries: list[dict[str, object]]) -> dict[str, int]:
    """Deliver every webhook; return counts."""
    redelivered = 0
    async with PaymentFlow.from_config(flow_config(url), plugins=[paycore.testing.fake]) as flow:
        for delivery in deliveries:
            body = str(delivery["body"]).encode()
            headers = dict(delivery["headers"])  # type: ignore[call-overload]
            for _ in range(50):
                try:
                    await flow.handle_webhook("fake", body, headers)
                    break
                except ConcurrentUpdate:
                    redelivered += 1
            else:
                raise SystemExit(f"webhook {body[:60]!r} kept failing")
    return {"delivered": len(deliveries), "redelivered": redelivered}


def main() -> None:
    """Parse arguments, wait for the common start time, deliver, print the summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("deliveries")
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    with open(args.deliveries) as file:
        deliveries = json.load(file)
    if args.seed >= 0:
        random.Random(args.seed).shuffle(deliveries)
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    print(json.dumps(anyio.run(deliver, args.url, deliveries)))


if __name__ == "__main__":
    main()
