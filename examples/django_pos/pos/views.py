"""The till's pages: the orders, a new order, one order with its payment buttons."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from paycore.providers import Provider
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


IN_PERSON: Final = frozenset({"cash"})
"""Provider types taken in person at the till: a cashier records them, never a customer's browser."""


def is_staff(request: HttpRequest) -> bool:
    """Whether ``request`` comes from a logged-in member of staff (a cashier)."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def provider_filter(request: HttpRequest, providers: Mapping[str, Provider]) -> dict[str, Provider]:
    """PROVIDER_FILTER: cash only for staff; customers pay by card or mobile money.

    Whoever records a cash payment says the money is in the drawer, and the
    order is marked paid: a customer's browser must not be able to say so.
    """
    if is_staff(request):
        return dict(providers)
    return {code: provider for code, provider in providers.items() if provider.name not in IN_PERSON}


def payment_metadata(request: HttpRequest, order_id: str, provider_code: str) -> dict[str, str]:
    """PAYMENT_METADATA: a cash payment names the till it is taken at, and the cashier who took it.

    Only staff are offered cash (:func:`provider_filter`), so the cashier is a logged-in user.
    """
    if provider_code != "cash":
        return {}
    return {"till": TILL, "cashier": request.user.get_username()}


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
