"""Stripe webhooks: the ``Stripe-Signature`` check (the SDK's own) and the events paycore reads.

:func:`verify` runs before anything is parsed. It fails closed: a missing or
malformed header, a body that is not UTF-8, a signature made with another
secret, or a timestamp further than the tolerance from now (in the past, as
the SDK checks, or in the future) is :class:`~paycore.errors.InvalidSignature`.
During a secret rotation, several ``whsec_`` secrets may be configured; a
delivery verifying with any of them is accepted.

:func:`load_event` reads the verified body with :func:`paycore.wire.load_json_object`
and :func:`read_event` maps :data:`EVENT_TYPES` to reports, with the event's ``id``
as the report's ``provider_event_id`` (a repeated delivery is a no-op). The event's
type decides what the object must be: a ``payment_intent.succeeded`` whose intent
is not ``succeeded`` is malformed.

Before ``2024-10-28.acacia``, Stripe sends ``refund.created``, ``refund.updated`` and
``refund.failed`` only for refunds without a charge: a refund of a payment (made by
paycore or in the Dashboard) comes with ``charge.refunded`` when it is made and
``charge.refund.updated`` when it changes (a pending refund succeeds or fails).
``charge.refund.updated`` carries the Refund and is read as ``refund.updated`` is.
From ``2022-11-15`` on, the Charge of ``charge.refunded`` lists no refunds:
:func:`unlisted_refunds` names the PaymentIntent whose refunds the provider then
lists through the API, and :func:`read_event` reports those instead.

Endpoints on any API version are read. Before ``2025-03-31.basil`` Stripe records
the uncaptured money an authorization releases as a Refund (a partial capture's
remainder, reason ``partial_capture``; an expired authorization,
``expired_uncaptured_charge``) and sends ``charge.refunded`` for it: a ``refund.*``
event for such a refund reports nothing, and a ``charge.refunded`` lists no
refund of them, nor any of a charge never captured (a canceled authorization).

In checkout mode a delayed payment method (a bank debit, a voucher) settles after
the session completed: ``checkout.session.async_payment_succeeded`` reports the
payment ``SUCCEEDED`` with the session's ``amount_total``, and
``checkout.session.async_payment_failed`` reports it ``FAILED``. A
``payment_intent.payment_failed`` alone stays ``PENDING``: its intent, back to
``requires_payment_method``, may still be paid with another method unless it
came from a completed Checkout Session, which the intent does not say.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import stripe
from attrs import evolve, frozen

from paycore.errors import InvalidSignature, MalformedWebhook, MoneyError, ValidationError
from paycore.records import ProviderUpdate
from paycore.wire import InvalidReport, load_json_object
from paycore_stripe.reports import (
    PAYMENT_ID_KEY,
    TENANT_KEY,
    lists_every_refund,
    read_charge,
    read_delayed_payment,
    read_intent,
    read_refund,
    read_session,
    releases_uncaptured,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "StripeEvent",
    "load_event",
    "parse_event",
    "read_event",
    "unlisted_refunds",
    "verify",
]

SIGNATURE_HEADER: Final = "stripe-signature"
"""The header that carries ``t=<timestamp>,v1=<hex HMAC-SHA256>``."""
DEFAULT_TOLERANCE: Final = 300
"""Seconds a delivery's timestamp may be away from now (Stripe's default)."""

_INTENT_EVENTS: Final = {
    "payment_intent.created": None,
    "payment_intent.processing": frozenset({"processing"}),
    "payment_intent.requires_action": frozenset({"requires_action"}),
    "payment_intent.amount_capturable_updated": frozenset({"requires_capture"}),
    "payment_intent.succeeded": frozenset({"succeeded"}),
    "payment_intent.canceled": frozenset({"canceled"}),
    "payment_intent.payment_failed": frozenset({"requires_payment_method"}),
    "payment_intent.partially_funded": None,
}
"""PaymentIntent events and the intent statuses each may carry (``None``: any)."""
_REFUND_EVENTS: Final = {
    "refund.created": None,
    "refund.updated": None,
    "refund.failed": frozenset({"failed", "canceled"}),
    "charge.refund.updated": None,
}
"""Refund events and the refund statuses each may carry (``None``: any). Before ``2024-10-28.acacia``
only ``charge.refund.updated`` tells of a change to a refund of a charge."""
_SESSION_EVENTS: Final = {
    "checkout.session.completed": "complete",
    "checkout.session.expired": "expired",
}
"""Checkout Session events and the session status each carries."""
_DELAYED_PAYMENT_EVENTS: Final = {
    "checkout.session.async_payment_succeeded": True,
    "checkout.session.async_payment_failed": False,
}
"""A complete session's delayed payment method settled: whether it succeeded."""
EVENT_TYPES: Final = frozenset(
    {*_INTENT_EVENTS, *_REFUND_EVENTS, *_SESSION_EVENTS, *_DELAYED_PAYMENT_EVENTS, "charge.refunded"}
)
"""The event types paycore reads; subscribe the webhook endpoint to these."""


def verify(body: bytes, headers: Mapping[str, str], *, secrets: Sequence[str], tolerance: float) -> None:
    """Raise :class:`~paycore.errors.InvalidSignature` unless ``body`` was signed by Stripe with one of ``secrets``."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise InvalidSignature(f"Stripe webhook refused: the body must be bytes, not {type(body).__name__}")
    header = next((value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER), None)
    if not header:
        raise InvalidSignature("Stripe webhook refused: no Stripe-Signature header")
    if tolerance <= 0:
        raise InvalidSignature("Stripe webhook refused: the provider's webhook_tolerance must be positive")
    try:
        payload = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSignature("Stripe webhook refused: the body is not UTF-8, so Stripe did not sign it") from None
    if not _stamped_recently(header, tolerance):
        raise InvalidSignature(
            f"Stripe webhook refused: its timestamp is missing, malformed or more than {tolerance:g}s from now"
        )
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance)
        except stripe.SignatureVerificationError:
            continue
        except (ValueError, TypeError, OverflowError):
            break
        return
    raise InvalidSignature("Stripe webhook refused: no v1 signature matches the webhook secret")


def _stamped_recently(header: str, tolerance: float) -> bool:
    """Whether the header's ``t=`` is a Unix time within ``tolerance`` seconds of now (past or future)."""
    stamps = [part[2:] for part in header.split(",") if part.startswith("t=")]
    if len(stamps) != 1 or not stamps[0].isascii() or not stamps[0].isdigit() or len(stamps[0]) > 12:
        return False
    return abs(time.time() - int(stamps[0])) <= tolerance


@frozen
class StripeEvent:
    """A verified delivery's Stripe event: its ``id``, its ``type`` and its ``data.object``."""

    id: str
    type: str
    object: Any


def load_event(body: bytes) -> StripeEvent:
    """The event of a verified body; :class:`~paycore.errors.MalformedWebhook` if it is not a Stripe event."""
    event = load_json_object(body, what="Stripe webhook body")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if event.get("object") != "event" or not isinstance(event_type, str) or not isinstance(data, dict):
        raise MalformedWebhook("a Stripe webhook must be an event object with 'id', 'type' and 'data'")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedWebhook("a Stripe webhook event must carry its id")
    return StripeEvent(event_id, event_type, data.get("object"))


def read_event(event: StripeEvent, *, refunds: Iterable[Any] | None = None) -> list[ProviderUpdate]:
    """The reports of an event; :class:`~paycore.errors.MalformedWebhook` if its object is unreadable.

    An event type paycore does not read is reported as nothing (``[]``): the
    delivery is acknowledged and changes nothing. ``refunds``: every refund of a
    ``charge.refunded``'s PaymentIntent, listed through the API (see
    :func:`unlisted_refunds`), reported in place of those its charge lists.
    """
    if event.type not in EVENT_TYPES:
        return []
    try:
        update = _read(event.type, event.object, refunds=refunds)
    except (InvalidReport, MoneyError, ValidationError) as error:
        raise MalformedWebhook(f"Stripe event {event.type} is unreadable: {error}") from None
    return [] if update is None else [evolve(update, provider_event_id=event.id)]


def unlisted_refunds(event: StripeEvent, *, tenant: str | None = None) -> str | None:
    """The PaymentIntent whose refunds a ``charge.refunded`` does not list, to list through the API; else ``None``.

    Call it on an event :func:`read_event` read. From API version ``2022-11-15``
    on, a Charge lists no refunds (and an older one lists the first page only):
    a captured charge with money refunded that does not list every refund (see
    :func:`~paycore_stripe.reports.lists_every_refund`) names its PaymentIntent,
    when it is a charge of paycore's (its metadata names a paycore payment) and not of a tenant other than
    ``tenant`` (the tenant the metadata names, when it names one: restaurants may share a Stripe account).
    """
    charge = event.object
    if event.type != "charge.refunded" or not isinstance(charge, Mapping) or lists_every_refund(charge):
        return None
    metadata = charge.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get(PAYMENT_ID_KEY):
        return None  # not a charge of paycore's (Stripe copies its PaymentIntent's metadata): nothing to ask Stripe
    if TENANT_KEY in metadata and metadata[TENANT_KEY] != tenant:
        return None  # another tenant's payment: not found here, nothing to ask Stripe
    intent = charge.get("payment_intent")
    return intent if isinstance(intent, str) else None


def parse_event(body: bytes) -> list[ProviderUpdate]:
    """The reports of a verified body as the event alone tells them (:func:`load_event`, :func:`read_event`).

    A ``charge.refunded`` reports the refunds its charge lists: the provider
    lists the others through the API (:func:`unlisted_refunds`).
    """
    return read_event(load_event(body))


def _read(event_type: str, obj: Any, *, refunds: Iterable[Any] | None) -> ProviderUpdate | None:
    """The report of one event's object; ``None`` when it says nothing about the payment's money."""
    if event_type in _INTENT_EVENTS:
        allowed = _INTENT_EVENTS[event_type]
        status = obj.get("status") if isinstance(obj, dict) else None
        if allowed is not None and (not isinstance(status, str) or status not in allowed):  # a list is unhashable
            raise InvalidReport(f"a {event_type} event's intent must be {sorted(allowed)}, not {status!r:.40}")
        return read_intent(obj, what=event_type)
    if event_type in _SESSION_EVENTS:
        status = obj.get("status") if isinstance(obj, dict) else None
        if status != _SESSION_EVENTS[event_type]:
            raise InvalidReport(f"a {event_type} event's session must be {_SESSION_EVENTS[event_type]!r}")
        return read_session(obj, what=event_type)
    if event_type in _DELAYED_PAYMENT_EVENTS:
        return read_delayed_payment(obj, succeeded=_DELAYED_PAYMENT_EVENTS[event_type], what=event_type)
    if event_type == "charge.refunded":
        return read_charge(obj, refunds=refunds, what=event_type)
    return _read_refund_event(event_type, obj)


def _read_refund_event(event_type: str, obj: Any) -> ProviderUpdate | None:
    """A ``refund.*`` or ``charge.refund.updated`` event's report.

    ``None`` for a refund releasing uncaptured money (it paid nothing back).
    """
    allowed = _REFUND_EVENTS[event_type]
    status = obj.get("status") if isinstance(obj, dict) else None
    if allowed is not None and (not isinstance(status, str) or status not in allowed):
        raise InvalidReport(f"a {event_type} event's refund must be {sorted(allowed)}, not {status!r:.40}")
    refund = read_refund(obj, what=event_type)
    intent = obj.get("payment_intent")
    if not isinstance(intent, str):
        raise InvalidReport(f"a {event_type} event's refund must name its payment_intent, not {intent!r:.40}")
    if releases_uncaptured(obj):
        return None
    payment_id = obj.get("metadata", {}).get("paycore_payment_id") if isinstance(obj.get("metadata"), dict) else None
    return ProviderUpdate(external_id=intent, payment_id=payment_id, refunds=(refund,))
