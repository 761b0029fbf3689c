"""The records paycore stores and returns: frozen attrs classes, changed with ``evolve``.

A :class:`Payment` is the aggregate: it holds its refunds, so one write with one
version check covers a payment and every refund of it. :class:`PaymentEvent`
rows are the append-only history of every change.

Records are immutable all the way down, so they may be shared (the memory stores
keep and return them as they are): the JSON documents they keep (metadata,
provider state, a next action's fields) are frozen by :mod:`paycore.frozen`, and
every record pickles, deep-copies and hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final

from attrs import field, frozen

from paycore.calls import ProviderCall, random_token
from paycore.clock import utcnow
from paycore.disputes import DisputeUpdate
from paycore.frozen import EMPTY, freeze_object
from paycore.money import Money
from paycore.status import FraudStatus, Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.wire import (
    MAX_PROVIDER_STATE_BYTES,
    MAX_REFERENCES,
    InvalidReport,
    check_amount,
    check_id,
    check_provider_state,
    check_references,
    check_text,
    check_url,
    is_amount,
    is_id,
    is_text,
    partly_hidden,
)

__all__ = [
    "MAX_PROVIDER_STATE_BYTES",
    "MAX_REFERENCES",
    "NEXT_ACTION_KINDS",
    "Checkout",
    "Customer",
    "LineItem",
    "NextAction",
    "Payment",
    "PaymentEvent",
    "ProviderUpdate",
    "Refund",
    "RefundUpdate",
    "WebhookReceipt",
    "event_id",
    "new_id",
    "utcnow",
]


def new_id(prefix: str) -> str:
    """A random, URL-safe, sortable-enough identifier: ``pay_3kT9...``."""
    return f"{prefix}_{random_token(15)}"


def event_id(payment_id: str, sequence: int) -> str:
    """The id of event ``sequence`` of payment ``payment_id``: ``evt_<payment id>_<sequence>``.

    An event is named by what makes it unique (its payment and its place in the
    history), so a retried write names its events as the first try did, and a
    store may keep the id implicit.
    """
    return f"evt_{payment_id.removeprefix('pay_')}_{sequence}"


# -- what a provider reports is checked where it is built (see paycore.wire) -------------------


def _not_member(what: str, enum: type[Enum], value: object) -> InvalidReport:
    allowed = ", ".join(repr(member.value) for member in enum)
    return InvalidReport(f"{what} must be a {enum.__name__} ({allowed}), not {value!r:.60}")


def _action_fields(value: Mapping[str, str] | None) -> Mapping[str, str]:
    if value is None or value is EMPTY or (type(value) is dict and not value):
        return EMPTY
    if not isinstance(value, Mapping):
        raise InvalidReport(f"NextAction.fields must be a mapping of strings, not {type(value).__name__}")
    for name, text in value.items():
        check_id(name, what="NextAction.fields name")
        check_text(text, what=f"NextAction.fields[{name!r}]")
    return freeze_object(value)


def _refund_updates(value: Iterable[RefundUpdate]) -> tuple[RefundUpdate, ...]:
    if type(value) is tuple:
        refunds: tuple[RefundUpdate, ...] = value
    elif isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidReport(f"ProviderUpdate.refunds must be a sequence of RefundUpdate, not {type(value).__name__}")
    else:
        refunds = tuple(value)
    for refund in refunds:
        if not isinstance(refund, RefundUpdate):
            raise InvalidReport(f"ProviderUpdate.refunds holds a {type(refund).__name__}, not a RefundUpdate")
    return refunds


NEXT_ACTION_KINDS: Final = frozenset({"redirect", "form_post", "qr", "ussd", "display"})
"""The kinds of :class:`NextAction`."""
_ACTION_NEEDS: Final = {"redirect": "url", "form_post": "url", "qr": "data", "display": "message"}


@frozen
class Customer:
    """Who pays, for gateways' receipts and forms; its repr shows each detail in part (``email='aw***sn'``)."""

    email: str | None = field(default=None, repr=partly_hidden)
    name: str | None = field(default=None, repr=partly_hidden)
    phone: str | None = field(default=None, repr=partly_hidden)


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
    """An absolute ``http``/``https`` URL; required by ``redirect`` and ``form_post``."""
    method: str = "GET"
    fields: Mapping[str, str] = field(default=EMPTY, converter=_action_fields)
    data: str | None = None
    """What a ``qr`` code shows or a ``ussd`` code to dial; required by ``qr``."""
    message: str | None = None
    """What to show the customer; required by ``display``."""

    def __attrs_post_init__(self) -> None:
        kind = self.kind
        if kind not in NEXT_ACTION_KINDS:
            raise InvalidReport(f"NextAction.kind must be one of {sorted(NEXT_ACTION_KINDS)}, not {kind!r:.60}")
        if self.url is not None:
            check_url(self.url, what="NextAction.url")
        if self.method != "GET" and self.method != "POST":
            raise InvalidReport(f"NextAction.method must be 'GET' or 'POST', not {self.method!r:.60}")
        if self.data is not None and not is_text(self.data):
            check_text(self.data, what="NextAction.data")
        if self.message is not None and not is_text(self.message):
            check_text(self.message, what="NextAction.message")
        needs = _ACTION_NEEDS.get(kind)
        if needs is not None and getattr(self, needs) is None:
            raise InvalidReport(f"a {kind!r} NextAction needs a {needs}")
        if kind == "ussd" and self.data is None and self.message is None:
            raise InvalidReport("a 'ussd' NextAction needs the code to dial (data) or a message")


@frozen(kw_only=True)
class Refund:
    """A refund of (part of) a payment's captured amount."""

    id: str
    payment_id: str
    amount: Money
    status: RefundStatus = RefundStatus.PENDING
    reason: str = ""
    external_id: str | None = None
    metadata: Mapping[str, Any] = field(default=EMPTY, converter=freeze_object)
    """What the caller said about the refund for its provider: who pays it out, from which
    till (``{"till": "T2", "cashier": "Awa"}`` for cash), an operator's ticket..."""
    created_at: datetime = field(factory=utcnow)
    updated_at: datetime = field(factory=utcnow)


@frozen(kw_only=True)
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
    """The provider's first reference for the payment."""
    references: tuple[str, ...] = ()
    """Every reference the provider reported for the payment (``external_id`` first); a webhook
    finds the payment by any of them (a checkout session's id, then its payment intent's)."""
    provider_state: Mapping[str, Any] = field(default=EMPTY, converter=freeze_object)
    """The provider's own data for later calls (a session id, a token), as it reported it: see
    :meth:`paycore.providers.Provider.state`. Never shown to the customer."""
    capture: bool = True
    """Capture at once (``True``) or authorize first and capture later."""
    description: str = ""
    customer: Customer | None = None
    items: tuple[LineItem, ...] = ()
    metadata: Mapping[str, Any] = field(default=EMPTY, converter=freeze_object)
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
        """What may still be refunded: captured minus succeeded and pending refunds (all but the failed)."""
        currency = self.amount.currency
        held = Money.sum((r.amount for r in self.refunds if r.status is not RefundStatus.FAILED), currency)
        return (self.captured_amount or Money.zero(currency)) - held

    def refund(self, refund_id: str) -> Refund:
        """The refund with ``refund_id``; :class:`~paycore.errors.RefundNotFound` if none."""
        from paycore.errors import RefundNotFound

        for refund in self.refunds:
            if refund.id == refund_id:
                return refund
        raise RefundNotFound(f"payment {self.id} has no refund {refund_id!r}")


@frozen(kw_only=True)
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


@frozen(kw_only=True)
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
    """paycore's refund id, when the provider echoes it back."""
    external_id: str | None = None
    amount: Money | None = None
    """What was refunded: never negative, at most :data:`~paycore.money.MAX_MINOR_UNITS`."""
    never_arrived: bool = False
    """With ``FAILED``: the provider has no record of the refund; it never reached it, so nothing moved, and a
    retry under the refund's idempotency key sends it again (a refund the provider declined is never resent)."""

    def __attrs_post_init__(self) -> None:
        if type(self.status) is not RefundStatus:
            raise _not_member("RefundUpdate.status", RefundStatus, self.status)
        if self.never_arrived is not False and (
            self.never_arrived is not True or self.status is not RefundStatus.FAILED
        ):
            raise InvalidReport(
                f"RefundUpdate.never_arrived is True (only with FAILED) or False, not {self.never_arrived!r:.60}"
            )
        if self.refund_id is not None and not is_id(self.refund_id):
            check_id(self.refund_id, what="RefundUpdate.refund_id")
        if self.external_id is not None and not is_id(self.external_id):
            check_id(self.external_id, what="RefundUpdate.external_id")
        if self.amount is not None and not is_amount(self.amount):
            check_amount(self.amount, what="RefundUpdate.amount")


@frozen(kw_only=True)
class ProviderUpdate:
    """What a provider said about a payment: facts only; the flow decides what follows.

    Every field is optional: a provider reports what it knows. ``outcome`` is
    the payment's state at the provider; ``authorized``/``captured`` are the
    amounts it reports (checked against the payment's own amount).

    Every field is checked as the update is built (ids, amounts, text, the next
    action's URL: see :mod:`paycore.wire`), in one pass where a field left at its
    default costs one comparison; a value paycore could not store raises
    :class:`~paycore.wire.InvalidReport`, so an invalid report never exists.
    """

    outcome: Outcome | None = None
    external_id: str | None = None
    references: tuple[str, ...] = field(default=(), converter=check_references)
    """Further references of the payment at the provider (kept beside ``external_id``)."""
    provider_state: Mapping[str, Any] | None = field(default=None, converter=check_provider_state)
    """The provider's own data for later calls, replacing what the payment kept (``None``: unchanged)."""
    payment_id: str | None = None
    """paycore's payment id when the provider echoes it back (webhooks)."""
    authorized: Money | None = None
    captured: Money | None = None
    next_action: NextAction | None = None
    provider_event_id: str | None = None
    refunds: tuple[RefundUpdate, ...] = field(default=(), converter=_refund_updates)
    fraud_status: FraudStatus | None = None
    fraud_message: str = ""
    message: str = ""
    dispute: DisputeUpdate | None = None
    """The payer disputed the payment with their bank (a chargeback), or how that dispute stands now."""

    def __attrs_post_init__(self) -> None:
        if self.outcome is not None and type(self.outcome) is not Outcome:
            raise _not_member("ProviderUpdate.outcome", Outcome, self.outcome)
        if self.external_id is not None and not is_id(self.external_id):
            check_id(self.external_id, what="ProviderUpdate.external_id")
        if self.payment_id is not None and not is_id(self.payment_id):
            check_id(self.payment_id, what="ProviderUpdate.payment_id")
        if self.authorized is not None and not is_amount(self.authorized):
            check_amount(self.authorized, what="ProviderUpdate.authorized")
        if self.captured is not None and not is_amount(self.captured):
            check_amount(self.captured, what="ProviderUpdate.captured")
        if self.next_action is not None and not isinstance(self.next_action, NextAction):
            kind = type(self.next_action).__name__
            raise InvalidReport(f"ProviderUpdate.next_action must be a NextAction, not {kind}")
        if self.provider_event_id is not None and not is_id(self.provider_event_id):
            check_id(self.provider_event_id, what="ProviderUpdate.provider_event_id")
        if self.fraud_status is not None and type(self.fraud_status) is not FraudStatus:
            raise _not_member("ProviderUpdate.fraud_status", FraudStatus, self.fraud_status)
        if (self.fraud_message and not is_text(self.fraud_message)) or type(self.fraud_message) is not str:
            check_text(self.fraud_message, what="ProviderUpdate.fraud_message")
        if (self.message and not is_text(self.message)) or type(self.message) is not str:
            check_text(self.message, what="ProviderUpdate.message")
        if self.dispute is not None and type(self.dispute) is not DisputeUpdate:
            raise InvalidReport(f"ProviderUpdate.dispute must be a DisputeUpdate, not {type(self.dispute).__name__}")


@frozen
class Checkout:
    """What ``create_payment`` returns: the payment and what the customer must do next."""

    payment: Payment
    action: NextAction | None = None
