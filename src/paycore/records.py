"""The records paycore stores and returns: frozen attrs classes, changed with ``evolve``.

A :class:`Payment` is the aggregate: it holds its refunds, so one write with one
version check covers a payment and every refund of it. :class:`PaymentEvent`
rows are the append-only history of every change.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from attrs import evolve, field, frozen

from paycore.money import Money
from paycore.status import FraudStatus, Outcome, PaymentStatus, RefundStatus, ReviewReason

__all__ = [
    "Checkout",
    "Customer",
    "LineItem",
    "NextAction",
    "Payment",
    "PaymentEvent",
    "ProviderCall",
    "ProviderUpdate",
    "Refund",
    "RefundUpdate",
    "WebhookReceipt",
    "evolve",
    "new_id",
    "utcnow",
]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe, sortable-enough identifier: ``pay_3kT9...``."""
    return f"{prefix}_{secrets.token_urlsafe(15)}"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@frozen
class Customer:
    """Who pays: what gateways that send receipts or prefill forms need."""

    email: str | None = None
    name: str | None = None
    phone: str | None = None


@frozen
class LineItem:
    """One line of the basket shown by gateways that display it."""

    name: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        """``unit_price * quantity``."""
        return self.unit_price * self.quantity


@frozen
class NextAction:
    """What the customer must do next to complete the payment, if anything.

    ``kind`` is one of ``redirect`` (send the browser to ``url``), ``form_post``
    (post ``fields`` to ``url``), ``qr`` (show ``data`` as a QR code), ``ussd``
    (ask the customer to dial ``data`` or approve on their phone), ``display``
    (show ``message``).
    """

    kind: str
    url: str | None = None
    method: str = "GET"
    fields: Mapping[str, str] = field(factory=dict, converter=_frozen_mapping)
    data: str | None = None
    message: str | None = None


@frozen
class ProviderCall:
    """A provider call written down before it is sent (the write-ahead record).

    While a payment carries one, an operation is talking to the provider. If the
    process dies, or the answer is lost, it stays with ``unknown=True`` and the
    next operation asks the provider (``check_status``) before doing anything else.
    """

    operation: str
    """``initiate``, ``capture``, ``cancel`` or ``refund``."""
    started_at: datetime
    amount: Money | None = None
    refund_id: str | None = None
    unknown: bool = False
    """True once the call was sent and no usable answer came back."""


@frozen
class Refund:
    """A refund of (part of) a payment's captured amount."""

    id: str
    payment_id: str
    amount: Money
    status: RefundStatus = RefundStatus.PENDING
    reason: str = ""
    external_id: str | None = None
    created_at: datetime = field(factory=utcnow)
    updated_at: datetime = field(factory=utcnow)


@frozen
class Payment:
    """A payment and its refunds, as stored. Never change ``status`` by hand:
    the flow moves it through :mod:`paycore.fsm`."""

    id: str
    provider: str
    """The provider code the payment was made with (``"cash"``, ``"wave"``...)."""
    order_id: str
    amount: Money
    tenant: str | None = None
    status: PaymentStatus = PaymentStatus.PENDING
    authorized_amount: Money | None = None
    captured_amount: Money | None = None
    refunds: tuple[Refund, ...] = ()
    external_id: str | None = None
    capture: bool = True
    """Capture at once (``True``) or authorize first and capture later."""
    description: str = ""
    customer: Customer | None = None
    items: tuple[LineItem, ...] = ()
    metadata: Mapping[str, Any] = field(factory=dict, converter=_frozen_mapping)
    return_url: str | None = None
    next_action: NextAction | None = None
    fraud_status: FraudStatus = FraudStatus.UNKNOWN
    fraud_message: str = ""
    needs_review: bool = False
    review_reason: ReviewReason | None = None
    review_message: str = ""
    pending_call: ProviderCall | None = None
    version: int = 0
    """Bumped by every stored change; a write based on an older version is refused."""
    event_count: int = 0
    """How many events the payment has: the next event's sequence is one more."""
    created_at: datetime = field(factory=utcnow)
    updated_at: datetime = field(factory=utcnow)

    @property
    def currency(self) -> str:
        """The payment's currency code."""
        return self.amount.currency

    @property
    def refunded_amount(self) -> Money:
        """The sum of succeeded refunds."""
        return Money.sum((r.amount for r in self.refunds if r.status is RefundStatus.SUCCEEDED), self.currency)

    @property
    def pending_refund_amount(self) -> Money:
        """The sum of refunds still pending at the provider."""
        return Money.sum((r.amount for r in self.refunds if r.status is RefundStatus.PENDING), self.currency)

    @property
    def refundable_amount(self) -> Money:
        """What may still be refunded: captured minus succeeded and pending refunds."""
        captured = self.captured_amount or Money.zero(self.currency)
        return captured - self.refunded_amount - self.pending_refund_amount

    def refund(self, refund_id: str) -> Refund:
        """The refund with ``refund_id``; :class:`~paycore.errors.RefundNotFound` if none."""
        from paycore.errors import RefundNotFound

        for refund in self.refunds:
            if refund.id == refund_id:
                return refund
        raise RefundNotFound(f"payment {self.id} has no refund {refund_id!r}")


@frozen
class PaymentEvent:
    """One change to a payment, appended to its history when the change commits."""

    id: str
    payment_id: str
    sequence: int
    """1, 2, 3... per payment: the order changes happened in."""
    kind: str
    """``created``, ``status_changed``, ``refund_created``, ``refund_status_changed``,
    ``flagged_for_review``, ``fraud_status_changed``, ``provider_call_unknown``..."""
    cause: str
    """What caused it: ``api``, ``webhook``, ``poll``, ``reaper``, ``operator``."""
    tenant: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    amount: Money | None = None
    refund_id: str | None = None
    provider_event_id: str | None = None
    message: str = ""
    at: datetime = field(factory=utcnow)


@frozen
class WebhookReceipt:
    """A provider event id seen once; a second delivery of it is a no-op."""

    provider: str
    event_id: str
    payment_id: str
    tenant: str | None = None
    received_at: datetime = field(factory=utcnow)


@frozen
class RefundUpdate:
    """What a provider reports about one refund."""

    status: RefundStatus
    refund_id: str | None = None
    external_id: str | None = None
    amount: Money | None = None


@frozen
class ProviderUpdate:
    """What a provider said about a payment: facts only; the flow decides what follows.

    Every field is optional: a provider reports what it knows. ``outcome`` is
    the payment's state at the provider; ``authorized``/``captured`` are the
    amounts it reports (checked against the payment's own amount).
    """

    outcome: Outcome | None = None
    external_id: str | None = None
    payment_id: str | None = None
    """paycore's payment id when the provider echoes it back (webhooks)."""
    authorized: Money | None = None
    captured: Money | None = None
    next_action: NextAction | None = None
    provider_event_id: str | None = None
    refunds: tuple[RefundUpdate, ...] = ()
    fraud_status: FraudStatus | None = None
    fraud_message: str = ""
    message: str = ""


@frozen
class Checkout:
    """What ``create_payment`` returns: the payment and what the customer must do next."""

    payment: Payment
    action: NextAction | None = None
