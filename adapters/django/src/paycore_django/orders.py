"""The shop's own orders, seen by paycore: what an order costs and what was paid for it.

paycore never owns an order. A payment names its order by ``order_id`` (a
string), and the shop tells paycore what an order costs through the
``ORDER_RESOLVER`` setting (``PAYCORE_DJANGO = {"ORDER_RESOLVER": "shop.payments.resolve_order"}``,
read by :func:`paycore_django.conf.django_options`),
a callable ``(request, order_id) -> (amount, description)`` that returns
``None`` (or raises :class:`django.http.Http404`) for an order the request
may not pay. ``amount`` is the order's total; the payment views charge what
:func:`balance_due` says is still to pay of it, never an amount from the browser.

:class:`PaycoreOrderMixin` adds ``payments()``, ``paid_amount()`` and
``refunded_amount()`` to the shop's Order model (no swappable model):

.. code-block:: python

    class Order(PaycoreOrderMixin, models.Model):
        total = models.BigIntegerField()          # minor units
        table = models.CharField(max_length=20)

        def paycore_total(self) -> Money:
            return Money.minor(self.total, "XOF")

and :func:`model_order_resolver` turns such a model into an ``ORDER_RESOLVER``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

from attrs import frozen
from django.http import Http404, HttpRequest

from paycore.errors import ConfigurationError, CurrencyMismatch
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore_django.conf import django_options

__all__ = [
    "OrderCurrencyMismatch",
    "OrderSummary",
    "PaycoreOrderMixin",
    "balance_due",
    "captured_amount",
    "model_order_resolver",
    "refunded_amount",
    "resolve_order",
]

OrderResolver = Callable[[HttpRequest, str], "tuple[Money, str] | None"]

_PAID = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


@frozen
class OrderSummary:
    """What paycore needs to know of an order to take a payment for it."""

    order_id: str
    amount: Money
    description: str = ""


class OrderCurrencyMismatch(CurrencyMismatch):
    """An order has payments that moved money in another currency than its total: what is due cannot be told.

    ``currency`` is the total's, ``payment_currencies`` the others, ``payment_ids``
    the payments in them.
    """

    def __init__(self, order_id: str, currency: str, others: Sequence[Payment]) -> None:
        self.order_id = order_id
        self.currency = currency
        self.payment_currencies = tuple(sorted({payment.currency for payment in others}))
        self.payment_ids = tuple(payment.id for payment in others)
        super().__init__(
            f"order {order_id!r} costs {currency} but has payments in {', '.join(self.payment_currencies)} "
            f"({', '.join(self.payment_ids)}): what it paid and what is due cannot be added up in one currency; "
            "refund those payments, or give the order's total in their currency"
        )


def _moved_money(payment: Payment) -> bool:
    """True when ``payment`` counts towards what its order paid: money was captured, or refunded."""
    captured = payment.status in _PAID and payment.captured_amount is not None
    return captured or not payment.refunded_amount.is_zero()


def _holds_money(payment: Payment) -> bool:
    """True when ``payment`` keeps money for its order: it captured more than was refunded of it."""
    captured = payment.captured_amount if payment.status in _PAID else None
    return captured is not None and (captured - payment.refunded_amount).is_positive()


def _counted(payments: Iterable[Payment], currency: str) -> list[Payment]:
    """The payments of ``payments`` in ``currency`` that moved money; :class:`OrderCurrencyMismatch` if one in
    another currency keeps money for the order.

    A payment that moved nothing (failed, expired, canceled, still under way), or
    one in another currency refunded in full, is left out.
    """
    counted = [payment for payment in payments if _moved_money(payment)]
    others = [payment for payment in counted if payment.currency != currency and _holds_money(payment)]
    if others:
        raise OrderCurrencyMismatch(others[0].order_id, currency, others)
    return [payment for payment in counted if payment.currency == currency]


def captured_amount(payments: Iterable[Payment], currency: str) -> Money:
    """What ``payments`` captured, refunds not deducted: the payments that succeeded, refunded or not.

    Raises :class:`OrderCurrencyMismatch` when one that moved money is in another currency.
    """
    captured = [payment.captured_amount for payment in _counted(payments, currency) if payment.status in _PAID]
    return Money.sum((amount for amount in captured if amount is not None), currency)


def refunded_amount(payments: Iterable[Payment], currency: str) -> Money:
    """What was refunded of ``payments`` (succeeded refunds only).

    Raises :class:`OrderCurrencyMismatch` when one that moved money is in another currency.
    """
    return Money.sum((p.refunded_amount for p in _counted(payments, currency)), currency)


def balance_due(total: Money, payments: Iterable[Payment]) -> Money:
    """What is still to pay of an order costing ``total`` with ``payments``: the total minus what was
    captured plus what was refunded. Zero or less when nothing is; payments under way do not count.

    Raises :class:`OrderCurrencyMismatch` when a payment that moved money is in
    another currency than ``total``.
    """
    settled = list(payments)
    return total - captured_amount(settled, total.currency) + refunded_amount(settled, total.currency)


def resolve_order(request: HttpRequest, order_id: str) -> OrderSummary:
    """The order ``order_id`` as ``ORDER_RESOLVER`` describes it; :class:`Http404` if it has none.

    Raises :class:`~paycore.errors.ConfigurationError` when ``ORDER_RESOLVER``
    is not set or answers something other than ``(Money, str)``.
    """
    resolver = django_options().order_resolver
    if resolver is None:
        raise ConfigurationError(
            "PAYCORE_DJANGO['ORDER_RESOLVER'] is not set: name a callable (request, order_id) -> (Money, description)"
        )
    answer = resolver(request, order_id)
    if answer is None:
        raise Http404(f"no order {order_id!r} to pay")
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], Money)):
        raise ConfigurationError(
            f"ORDER_RESOLVER must return (Money, description) or None for order {order_id!r}, not {answer!r}"
        )
    amount, description = answer
    return OrderSummary(order_id=order_id, amount=amount, description=str(description))


class PaycoreOrderMixin:
    """Mix into the shop's Order model: its payments and the amounts paid and refunded.

    Override :meth:`paycore_total` (what the order costs); optionally
    :meth:`paycore_order_id` (default: the primary key as a string),
    :meth:`paycore_description` and :meth:`paycore_tenant` (default: the
    attribute named by :attr:`paycore_tenant_field`, else ``None``).
    The amounts raise :class:`OrderCurrencyMismatch` when a payment that moved
    money is in another currency than :meth:`paycore_total`.
    The sync methods go through ``paycore_django.blocking_flow()``; call the
    ``a``-prefixed twins from async code.
    """

    paycore_tenant_field: ClassVar[str | None] = None
    """The name of the model field holding the order's tenant, if orders have one."""

    pk: Any

    def paycore_order_id(self) -> str:
        """The ``order_id`` this order's payments carry."""
        return str(self.pk)

    def paycore_tenant(self) -> str | None:
        """The tenant this order's payments belong to: the :attr:`paycore_tenant_field`'s value; ``None`` without one,
        and for a blank one (``""``, what Django keeps in a blank text field): payments without a tenant."""
        if self.paycore_tenant_field is None:
            return None
        value = getattr(self, self.paycore_tenant_field)
        return None if value is None or value == "" else str(value)

    def paycore_total(self) -> Money:
        """What the order costs; override it."""
        raise NotImplementedError(f"{type(self).__name__} must define paycore_total() -> Money")

    def paycore_description(self) -> str:
        """The description its payments carry (shown by gateways)."""
        return f"Order {self.paycore_order_id()}"

    def payments(self) -> list[Payment]:
        """Every payment made for this order, oldest first.

        Only the payments of the order's tenant: for an order without one
        (:meth:`paycore_tenant` is ``None``), the payments without a tenant,
        never another tenant's payments that carry the same order id.
        """
        from paycore_django import blocking_flow

        tenant = self.paycore_tenant()
        found = blocking_flow().list_payments(order_id=self.paycore_order_id(), tenant=tenant)
        return [payment for payment in found if payment.tenant == tenant]

    async def apayments(self) -> list[Payment]:
        """Every payment made for this order, oldest first (async); the same payments as :meth:`payments`."""
        from paycore_django import flow

        tenant = self.paycore_tenant()
        found = await flow().list_payments(order_id=self.paycore_order_id(), tenant=tenant)
        return [payment for payment in found if payment.tenant == tenant]

    def paid_amount(self) -> Money:
        """What was captured for this order, refunds not deducted."""
        return captured_amount(self.payments(), self.paycore_total().currency)

    def refunded_amount(self) -> Money:
        """What was refunded of this order's payments (succeeded refunds only)."""
        return refunded_amount(self.payments(), self.paycore_total().currency)

    def balance_due(self) -> Money:
        """What is still to pay: the total minus what was captured plus what was refunded (:func:`balance_due`)."""
        return balance_due(self.paycore_total(), self.payments())

    async def apaid_amount(self) -> Money:
        """:meth:`paid_amount`, async."""
        return captured_amount(await self.apayments(), self.paycore_total().currency)

    async def arefunded_amount(self) -> Money:
        """:meth:`refunded_amount`, async."""
        return refunded_amount(await self.apayments(), self.paycore_total().currency)


def model_order_resolver(model: type[Any] | str) -> OrderResolver:
    """An ``ORDER_RESOLVER`` reading orders of ``model`` (a :class:`PaycoreOrderMixin` model, or its
    ``"app_label.Model"`` name) by primary key. Orders of another tenant than the request's are not found."""

    def resolve(request: HttpRequest, order_id: str) -> tuple[Money, str] | None:
        from django.apps import apps
        from django.core.exceptions import ValidationError as DjangoValidationError

        from paycore_django.views import tenant_of

        if "\x00" in order_id:
            return None  # no order id holds a NUL, and PostgreSQL refuses one in a query
        order_model = apps.get_model(model) if isinstance(model, str) else model
        try:
            order = order_model._default_manager.filter(pk=order_id).first()
        except (ValueError, TypeError, DjangoValidationError):
            return None
        if order is None or order.paycore_tenant() != tenant_of(request):
            return None
        return order.paycore_total(), order.paycore_description()

    return resolve
