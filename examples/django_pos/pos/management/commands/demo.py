"""``manage.py demo``: migrate, create ``admin``/``admin``, a few orders and an open cash drawer, then serve the POS."""

from __future__ import annotations

import argparse
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from paycore.money import Money
from paycore_cash.blocking import BlockingCashDrawers
from pos.models import CURRENCY, Order
from pos.views import RESTAURANT, TILL

SAMPLE = [("T1", "Thieboudienne x2", 7000), ("T3", "Yassa poulet x2, bissap", 12500), ("T4", "Mafé", 3500)]
OPENING_FLOAT = Money.of("20000", CURRENCY)
"""The change the till's drawer opens with."""


class Command(BaseCommand):
    """Prepare the example's database and run it on 127.0.0.1:POS_PORT (default 8000)."""

    help = "Set up and serve the restaurant POS example."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--no-serve``: prepare only."""
        parser.add_argument("--no-serve", action="store_true", help="set up the database and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        """Migrate, seed, serve."""
        call_command("migrate", verbosity=0)
        users = get_user_model()
        if not users.objects.filter(username="admin").exists():
            users.objects.create_superuser("admin", "admin@example.com", "admin")
        if not Order.objects.exists():
            for table, dishes, total in SAMPLE:
                Order.objects.create(table=table, dishes=dishes, total=total)
        open_drawer()
        self.stdout.write(f"POS on {settings.SITE}/  (admin: {settings.SITE}/admin/, user admin, password admin)")
        if options["no_serve"]:
            return
        import uvicorn

        uvicorn.run("pos.asgi:application", host="127.0.0.1", port=settings.PORT, lifespan="on", log_level="warning")


def open_drawer() -> None:
    """Open the till's cash drawer, unless it is open already (the cash plugin keeps it in this database)."""
    import paycore_django

    drawers = BlockingCashDrawers(paycore_django.blocking_flow(), tenant=RESTAURANT)
    if drawers.current(TILL) is None:
        drawers.open(till=TILL, opening_float=OPENING_FLOAT, opened_by="admin")
