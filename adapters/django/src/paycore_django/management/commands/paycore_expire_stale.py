"""``manage.py paycore_expire_stale``: the reaper of abandoned payments, for cron.

Payments left ``pending`` or ``processing`` longer than ``--older-than``
seconds (default: the ``payment_ttl`` of ``PAYCORE``) are expired when the
provider says they were not paid, or flagged for review when it cannot say;
time alone never fails a payment. Run it every few minutes::

    */5 * * * *  cd /srv/shop && python manage.py paycore_expire_stale
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

import paycore_django
from paycore.errors import PaycoreError

__all__ = ["Command"]


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--older-than takes seconds, e.g. 3600, not {raw!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--older-than must be a positive number of seconds, not {raw!r}")
    return value


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--limit must be a positive whole number, not {raw!r}")
    return value


class Command(BaseCommand):
    """Expire (or flag for review) payments abandoned for too long."""

    help = "Expire payments left pending or processing past their deadline (asks pollable providers first)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--older-than SECONDS`` and ``--limit N``."""
        parser.add_argument(
            "--older-than", type=_seconds, default=None, help="seconds (default: PAYCORE's payment_ttl)"
        )
        parser.add_argument(
            "--limit",
            type=_count,
            default=100,
            help="at most this many payments in each of the run's passes (default 100)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the reaper once and say what changed."""
        try:
            changed = paycore_django.blocking_flow().expire_stale(options["older_than"], limit=options["limit"])
        except PaycoreError as error:
            raise CommandError(str(error)) from error
        for payment in changed:
            reason = f" (review: {payment.review_message})" if payment.needs_review else ""
            self.stdout.write(f"{payment.id} {payment.status}{reason}")
        self.stdout.write(f"{len(changed)} payment(s) changed")
