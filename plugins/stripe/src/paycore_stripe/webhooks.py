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

Endpoints on any API version are read; each event carries the ``api_version``
it is rendered for (:attr:`StripeEvent.api_version`). Before ``2025-03-31.basil``
Stripe records the uncaptured money an authorization releases as a Refund, sent
with ``charge.refunded`` (and ``refund.created`` from acacia on): a partial
capture's remainder and an authorization canceled by a request, with reason null
as a refund made in the Dashboard, and an expired authorization, with reason
``expired_uncaptured_charge``. The API, on the version the SDK pins, never lists
them. So an event rendered before basil is not trusted with a refund paycore did
not make (no ``paycore_refund_id`` in its metadata): :func:`unlisted_refunds`
names the PaymentIntent of such a ``charge.refunded`` (or of a partial capture's),
:func:`untrusted_refund` that of such a ``refund.*`` or ``charge.refund.updated``,
and the provider lists its refunds through the API for :func:`read_event` to
report. A refund event whose reason says it released an authorization reports
nothing, and a charge never captured (a canceled authorization) no refund. An
event naming no ``api_version`` is read as one of the current version, one naming a version paycore
cannot read (beta flags after a ``;`` aside) as one before basil.

In checkout mode a delayed payment method (a bank debit, a voucher) settles after
the session completed: ``checkout.session.async_payment_succeeded`` reports the
payment ``SUCCEEDED`` with the session's ``amount_total``, and
``checkout.session.async_payment_failed`` reports it ``FAILED``. A
``payment_intent.payment_failed`` alone stays ``PENDING``: its intent, back to
``requires_payment_method``, may still be paid with another method unless it
came from a completed Checkout Session, which the intent does not say.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import stripe
from attrs import evolve, frozen

from paycore.errors import InvalidSignature, MalformedWebhook, MoneyError, ValidationError
from paycore.records import ProviderUpdate
from paycore.wire import InvalidReport, load_json_object
from paycore_stripe.disputes import DISPUTE_EVENTS, read_dispute
from paycore_stripe.reports import (
    PAYMENT_ID_KEY,
    TENANT_KEY,
    lists_every_refund,
    made_by_paycore,
    read_charge,
    read_delayed_payment,
    read_intent,
    read_refund,
    read_refunds,
    read_session,
    releases_uncaptured,
)

__all__ = [
    "ANOTHER_SYSTEM",
    "ANOTHER_TENANT",
    "BASIL",
    "DEFAULT_TOLERANCE",
    "EVENT_TYPES",
    "SIGNATURE_HEADER",
    "StripeEvent",
    "before_basil",
    "elsewhere",
    "load_event",
    "of_paycore_and_tenant",
    "parse_event",
    "read_event",
    "unlisted_refunds",
    "unmarked_refund",
    "untrusted_refund",
    "verify",
]

SIGNATURE_HEADER: Final = "stripe-signature"
"""The header that carries ``t=<timestamp>,v1=<hex HMAC-SHA256>``."""
DEFAULT_TOLERANCE: Final = 300
"""Seconds a delivery's timestamp may be away from now (Stripe's default)."""
BASIL: Final = "2025-03-31"
"""From this API version on, Stripe records no Refund for uncaptured money an authorization releases."""
_API_VERSION: Final = re.compile(r"(\d{4}-\d{2}-\d{2})(\.[a-z]+)?")

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
    {*_INTENT_EVENTS, *_REFUND_EVENTS, *_SESSION_EVENTS, *_DELAYED_PAYMENT_EVENTS, *DISPUTE_EVENTS, "charge.refunded"}
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
    """A verified delivery's Stripe event: its ``id``, its ``type``, its ``data.object`` and its ``api_version``.

    ``api_version`` is the version the event is rendered for (the webhook
    endpoint's, as the event names it: see :func:`before_basil`), ``None`` when it names none.
    """

    id: str
    type: str
    object: Any
    api_version: str | None = None
    livemode: bool | None = None
    """Whether the event happened in live mode (``False``: test mode; ``None``: the event does not say)."""
    account: str | None = None
    """The connected account the event happened on (Connect: ``acct_...``); ``None``: the account of the endpoint."""


def load_event(body: bytes) -> StripeEvent:
    """The event of a verified body; :class:`~paycore.errors.MalformedWebhook` if it is not a Stripe event."""
    event = load_json_object(body, what="Stripe webhook body")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if event.get("object") == "v2.core.event":  # refused, never acknowledged unread: the payment would go untold
        raise MalformedWebhook(
            "a thin event (v2.core.event) tells no object's state: send this endpoint snapshot events"
        )
    if event.get("object") != "event" or not isinstance(event_type, str) or not isinstance(data, dict):
        raise MalformedWebhook("a Stripe webhook must be an event object with 'id', 'type' and 'data'")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedWebhook("a Stripe webhook event must carry its id")
    livemode, account = event.get("livemode"), event.get("account")
    if livemode is not None and type(livemode) is not bool:
        raise MalformedWebhook("a Stripe event's livemode must be true or false")
    if account is not None and (not isinstance(account, str) or not account):
        raise MalformedWebhook("a Stripe event's account must be a connected account's id")
    version = event.get("api_version")
    return StripeEvent(
        event_id,
        event_type,
        data.get("object"),
        None if version is None else str(version)[:100],
        livemode=livemode,
        account=account,
    )


ANOTHER_TENANT: Final = "an event about a payment of another tenant sharing the Stripe account"
"""What :func:`elsewhere` says of an event whose object names another tenant's payment."""
ANOTHER_SYSTEM: Final = "an event about an object another system made on the Stripe account"
"""What :func:`elsewhere` says of an intent's or a session's event that names no paycore payment."""
_OWN_OBJECT_EVENTS: Final = frozenset({*_INTENT_EVENTS, *_SESSION_EVENTS, *_DELAYED_PAYMENT_EVENTS})
"""The events whose object paycore creates itself, with its metadata: one without it is another system's."""


def elsewhere(event: StripeEvent, *, livemode: bool | None, account: str | None, tenant: str | None) -> str | None:
    """Why ``event``, verified at this endpoint, is not this provider's to read; ``None`` when it is.

    An event of the other mode than the API key's (a live Connect endpoint receives its connected accounts'
    test-mode events too), of another account than the one the provider acts on (``account``: its
    ``stripe_account``, ``None`` for the key's own), or whose object's metadata names a payment of another tenant
    sharing the Stripe account, or, for an intent or a Checkout Session (which paycore creates with its
    metadata), that names no paycore payment, or a charge or refund of no PaymentIntent (another system's on the
    same account: the legacy Charges API, a customer-balance refund), is acknowledged and changes
    nothing: answered 404, Stripe would retry it for days, and may disable an endpoint that keeps failing. Read
    anyway, a report about some other intent that carries a copy of a payment's metadata would pay that payment.
    ``livemode`` ``None`` (a key whose mode its prefix does not tell) leaves the mode unchecked.
    """
    if livemode is not None and event.livemode is not None and event.livemode != livemode:
        return f"a {_mode(event.livemode)} event, and the API key is a {_mode(livemode)} key"
    if event.account != account:
        of = f"connected account {event.account!r}" if event.account else "the platform's own account"
        acts_on = f"connected account {account!r}" if account else "the API key's own account"
        return f"an event of {of}, and the provider acts on {acts_on}"
    metadata = event.object.get("metadata") if isinstance(event.object, Mapping) else None
    if isinstance(metadata, Mapping) and TENANT_KEY in metadata and metadata[TENANT_KEY] != tenant:
        return ANOTHER_TENANT
    if event.type in _OWN_OBJECT_EVENTS and isinstance(metadata, Mapping) and not metadata.get(PAYMENT_ID_KEY):
        return ANOTHER_SYSTEM
    if event.type in _INTENTLESS_EVENTS and isinstance(event.object, Mapping) and _without_intent(event.object):
        return ANOTHER_SYSTEM  # a charge of the legacy Charges API, a customer-balance refund: paycore makes intents
    return None


_INTENTLESS_EVENTS: Final = frozenset({*_REFUND_EVENTS, "charge.refunded"})
"""Events whose object may belong to no PaymentIntent (Stripe's ``payment_intent`` is nullable on both)."""


def _without_intent(obj: Mapping[str, Any]) -> bool:
    """Whether a charge or refund says it belongs to no PaymentIntent (the field there, null)."""
    return "payment_intent" in obj and obj["payment_intent"] is None


def _mode(live: bool) -> str:
    return "live-mode" if live else "test-mode"


def before_basil(event: StripeEvent) -> bool:
    """Whether ``event`` is rendered for an API version before ``2025-03-31.basil``.

    There, uncaptured money an authorization releases is a Refund. The version is
    read before any ``;`` (an endpoint with beta flags is on
    ``2024-06-20; some_beta=v1``). An event naming no version is taken as one of the
    current version (``False``); one naming a version paycore cannot read, as one
    before basil (``True``): its refunds are then listed through the API, which
    costs a call, never money.
    """
    if event.api_version is None:
        return False
    version = _API_VERSION.fullmatch(event.api_version.split(";", 1)[0].strip())
    return version is None or version.group(1) < BASIL


def of_paycore_and_tenant(metadata: object, tenant: str | None) -> bool:
    """Whether ``metadata`` (a PaymentIntent's, or its Charge's copy) names a paycore payment of ``tenant``.

    A payment names its tenant when it has one (restaurants may share a Stripe
    account): one naming a tenant other than ``tenant`` is another's, as one
    without a paycore payment id is another system's.
    """
    if not isinstance(metadata, Mapping) or not metadata.get(PAYMENT_ID_KEY):
        return False
    return TENANT_KEY not in metadata or metadata[TENANT_KEY] == tenant


def read_event(event: StripeEvent, *, refunds: Iterable[Any] | None = None) -> list[ProviderUpdate]:
    """The reports of an event; :class:`~paycore.errors.MalformedWebhook` if its object is unreadable.

    An event type paycore does not read is reported as nothing (``[]``): the
    delivery is acknowledged and changes nothing. ``refunds``: every refund of
    the event's PaymentIntent, listed through the API (see :func:`unlisted_refunds`
    and :func:`untrusted_refund`), reported in place of those the event shows.
    """
    if event.type not in EVENT_TYPES:
        return []
    try:
        update = _read(event.type, event.object, refunds=refunds)
    except (InvalidReport, MoneyError, ValidationError) as error:
        raise MalformedWebhook(f"Stripe event {event.type} is unreadable: {error}") from None
    return [] if update is None else [evolve(update, provider_event_id=event.id)]


def unlisted_refunds(event: StripeEvent, *, tenant: str | None = None) -> str | None:
    """The PaymentIntent whose refunds a ``charge.refunded`` does not tell, to list through the API; else ``None``.

    Call it on an event :func:`read_event` read. From API version ``2022-11-15``
    on, a Charge lists no refunds (and an older one lists the first page only):
    a captured charge with money refunded that does not list every refund (see
    :func:`~paycore_stripe.reports.lists_every_refund`) names its PaymentIntent.
    So does, before ``2025-03-31.basil`` (:func:`before_basil`), a captured
    charge that lists a refund paycore did not make (it may release uncaptured
    money, with reason null) or that was captured in part (``amount_captured``
    below ``amount``: Stripe released the rest as a Refund). Only a charge of
    paycore's and of ``tenant`` does (:func:`of_paycore_and_tenant`: Stripe
    copies its PaymentIntent's metadata); another's asks Stripe nothing.
    """
    charge = event.object
    if event.type != "charge.refunded" or not isinstance(charge, Mapping):
        return None
    if lists_every_refund(charge) and not (before_basil(event) and _may_list_a_release(charge)):
        return None
    if not of_paycore_and_tenant(charge.get("metadata"), tenant):
        return None  # another system's or another tenant's payment: not found here, nothing to ask Stripe
    intent = charge.get("payment_intent")
    return intent if isinstance(intent, str) else None


def _may_list_a_release(charge: Mapping[str, Any]) -> bool:
    """Whether a captured charge (rendered before basil) may hold a Refund releasing uncaptured money."""
    if charge.get("captured") is not True:
        return False  # its refunds are not reported (read_charge): nothing to list
    amount, captured = charge.get("amount"), charge.get("amount_captured")
    if type(amount) is int and type(captured) is int and captured < amount:
        return True
    listed = charge.get("refunds")
    shown = listed.get("data") if isinstance(listed, Mapping) else None
    return isinstance(shown, list) and not all(made_by_paycore(refund) for refund in shown)


def untrusted_refund(event: StripeEvent, *, tenant: str | None = None) -> str | None:
    """The PaymentIntent of a refund event's refund the event alone is not trusted with; else ``None``.

    Call it on an event :func:`read_event` read. Before ``2025-03-31.basil``
    (:func:`before_basil`), a ``refund.*`` or ``charge.refund.updated`` event
    whose refund paycore did not make (:func:`~paycore_stripe.reports.made_by_paycore`)
    may tell uncaptured money released (a partial capture's remainder, a canceled
    authorization: reason null, as a Dashboard refund): it names its PaymentIntent,
    whose refunds the provider lists through the API once it knows the intent is
    paycore's and of ``tenant`` (:func:`of_paycore_and_tenant`). One whose reason
    says it released an authorization (reported as nothing), or whose metadata
    names a tenant other than ``tenant``, names none.
    """
    refund = event.object
    if event.type not in _REFUND_EVENTS or not before_basil(event) or not isinstance(refund, Mapping):
        return None
    if made_by_paycore(refund) or releases_uncaptured(refund):
        return None
    metadata = refund.get("metadata")
    if isinstance(metadata, Mapping) and TENANT_KEY in metadata and metadata[TENANT_KEY] != tenant:
        return None  # another tenant's payment: not found here, nothing to ask Stripe
    intent = refund.get("payment_intent")
    return intent if isinstance(intent, str) else None


def unmarked_refund(event: StripeEvent) -> str | None:
    """The PaymentIntent of a refund event whose refund names no tenant (made in the Dashboard, or by paycore,
    which writes its payment's id on a refund but not its tenant); ``None`` for any other event.

    At a tenant's endpoint such an event may be another tenant's, on a Stripe account they share: the intent's
    metadata tells (see :mod:`paycore_stripe.event_refunds`).
    """
    refund = event.object
    if event.type not in _REFUND_EVENTS or not isinstance(refund, Mapping):
        return None
    metadata = refund.get("metadata")
    if isinstance(metadata, Mapping) and TENANT_KEY in metadata:
        return None
    intent = refund.get("payment_intent")
    return intent if isinstance(intent, str) and intent else None


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
    if event_type in DISPUTE_EVENTS:
        return read_dispute(event_type, obj)
    return _read_refund_event(event_type, obj, refunds=refunds)


def _read_refund_event(event_type: str, obj: Any, *, refunds: Iterable[Any] | None) -> ProviderUpdate | None:
    """A ``refund.*`` or ``charge.refund.updated`` event's report: its refund, or ``refunds`` (listed) instead.

    ``None`` for a refund whose reason says it released uncaptured money (it paid nothing back).
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
    reported = (refund,) if refunds is None else read_refunds(refunds, what=f"{event_type} listed refund")
    return ProviderUpdate(external_id=intent, payment_id=payment_id, refunds=reported)
