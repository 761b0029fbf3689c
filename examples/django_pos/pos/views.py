"""The till's pages: the orders, a new order, one order with its payment buttons."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from paycore_django.orders import model_order_resolver
from pos.models import Order

resolve_order = model_order_resolver("pos.Order")
"""ORDER_RESOLVER: the amount always comes from the order row."""


RESTAURANT = "chez-awa"
"""The tenant this POS serves."""

TILL = "counter"
"""The restaurant's till: where cash is taken, into its drawer."""


def tenant_of(request: HttpRequest) -> str:
    """TENANT_RESOLVER: this till belongs to one restaurant."""
    return RESTAURANT


def payment_metadata(request: HttpRequest, order_id: str, provider_code: str) -> dict[str, str]:
    """PAYMENT_METADATA: a cash payment names the till it is taken at, and who took it."""
    if provider_code != "cash":
        return {}
    return {"till": TILL, "cashier": request.user.get_username() or "counter staff"}


class OrderForm(forms.ModelForm):  # type: ignore[type-arg]
    """A new bill."""

    class Meta:
        model = Order
        fields = ("table", "dishes", "total")


def orders(request: HttpRequest) -> HttpResponse:
    """Every order, newest first, and a form for a new one."""
    form = OrderForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        order = form.save()
        return redirect("order", pk=order.pk)
    return render(request, "pos/orders.html", {"orders": Order.objects.order_by("-pk"), "form": form})


def order(request: HttpRequest, pk: int) -> HttpResponse:
    """One order: its payments and how to pay it."""
    found = get_object_or_404(Order, pk=pk)
    return render(request, "pos/order.html", {"order": found, "payments": found.payments()})
