"""The restaurant's orders: the shop's own model, paid through paycore."""

from __future__ import annotations

from django.db import models

from paycore.money import Money
from paycore_django.orders import PaycoreOrderMixin

CURRENCY = "XOF"


class Order(PaycoreOrderMixin, models.Model):
    """A table's bill."""

    restaurant = models.CharField(max_length=64, default="chez-awa")
    table = models.CharField(max_length=20)
    dishes = models.CharField(max_length=200)
    total = models.BigIntegerField(help_text="XOF (no minor unit)")
    paid = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    paycore_tenant_field = "restaurant"

    def __str__(self) -> str:
        return f"Order {self.pk} (table {self.table})"

    def paycore_total(self) -> Money:
        """What the bill comes to."""
        return Money.minor(self.total, CURRENCY)

    def paycore_description(self) -> str:
        """Shown on the gateway's page."""
        return f"Table {self.table}: {self.dishes}"
