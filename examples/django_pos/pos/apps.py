"""The POS app: marks an order paid when paycore says its payment succeeded."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig


class PosConfig(AppConfig):
    """The restaurant's app."""

    name = "pos"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Listen to paycore's events."""
        from paycore_django.models import Payment
        from paycore_django.signals import payment_event

        payment_event.connect(order_follows_payment, sender=Payment, dispatch_uid="pos.order_follows_payment")


def order_follows_payment(sender: type[Any], event: Any, payment: Any, **kwargs: Any) -> None:
    """Keep ``Order.paid`` in step with its payments (paid while something captured is not all refunded)."""
    from pos.models import Order

    order = Order.objects.filter(pk=payment.order_id).first()
    if order is not None:
        paid = order.paid_amount() - order.refunded_amount()
        Order.objects.filter(pk=order.pk).update(paid=paid >= order.paycore_total())
