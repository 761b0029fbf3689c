"""Template tags of paycore: ``{% load paycore %}``.

``{% paycore_providers order %}`` renders one button per provider the
request's tenant enabled for the order's currency (and ``PROVIDER_FILTER``
lets the request use); each posts to the ``pay``
view, which takes the amount from ``ORDER_RESOLVER``. ``order`` is a
:class:`~paycore_django.orders.PaycoreOrderMixin` instance or an order id.
"""

from __future__ import annotations

from typing import Any

from django import template

import paycore_django
from paycore_django.forms import PaymentMethodForm, offered_providers
from paycore_django.orders import OrderSummary, PaycoreOrderMixin, resolve_order
from paycore_django.views import tenant_of

__all__ = ["paycore_providers"]

register = template.Library()


@register.inclusion_tag("paycore_django/providers.html", takes_context=True)
def paycore_providers(context: template.Context, order: Any) -> dict[str, Any]:
    """The payment buttons of ``order`` for the current request's tenant."""
    request = context["request"]
    if isinstance(order, PaycoreOrderMixin):
        summary = OrderSummary(order.paycore_order_id(), order.paycore_total(), order.paycore_description())
    else:
        summary = resolve_order(request, str(order))
    providers = offered_providers(request, paycore_django.blocking_flow().flow.providers(tenant=tenant_of(request)))
    form = PaymentMethodForm(providers=providers, currency=summary.amount.currency)
    return {"form": form, "order": summary, "request": request, "csrf_token": context.get("csrf_token")}
