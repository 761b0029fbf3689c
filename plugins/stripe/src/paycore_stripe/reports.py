"""Stripe objects (PaymentIntent, Refund, Checkout Session, Charge) as paycore reports.

Each reader takes the object as plain JSON data (a webhook's ``data.object``,
or an API answer turned into a ``dict``) and reports only what it says. A value
paycore cannot accept raises :class:`~paycore.wire.InvalidReport` (or a
:class:`~paycore.errors.MoneyError` for a currency or amount Stripe cannot
have sent); the provider turns that into ``MalformedWebhook`` for a delivery and
into an unknown outcome for an API answer.

| Stripe | paycore |
|---|---|
| PaymentIntent ``requires_payment_method``, ``requires_confirmation``, ``requires_action`` | ``PENDING`` |
| PaymentIntent ``processing`` | ``PENDING`` |
| PaymentIntent ``requires_capture`` | ``AUTHORIZED``, ``authorized`` = ``amount_capturable`` |
| PaymentIntent ``succeeded`` | ``SUCCEEDED``, ``captured`` = ``amount_received`` |
| PaymentIntent ``canceled`` | ``CANCELED`` |
| Checkout Session ``open`` / ``complete`` | ``PENDING`` (its PaymentIntent carries the money) |
| Checkout Session ``expired`` | ``EXPIRED`` |
| Checkout Session ``complete`` whose PaymentIntent is back to ``requires_payment_method`` | ``FAILED`` |
| ``checkout.session.async_payment_succeeded`` (session ``paid``) | ``SUCCEEDED``, with ``amount_total`` |
| ``checkout.session.async_payment_failed`` (session ``unpaid``) | ``FAILED`` |
| Refund ``pending``, ``requires_action`` | refund ``PENDING`` |
| Refund ``succeeded`` | refund ``SUCCEEDED`` with its ``amount`` |
| Refund ``failed``, ``canceled`` | refund ``FAILED`` |
| Refund with reason ``expired_uncaptured_charge`` | nothing: uncaptured money released |
| Charge not ``captured`` (``charge.refunded`` of a canceled authorization) | no refunds |
| Charge ``captured`` with ``amount_refunded``, its ``refunds`` missing or cut | those the API lists (``refunds``) |

Before API version ``2025-03-31.basil``, Stripe records the uncaptured money an
authorization releases as a Refund: the remainder of a partial capture, an
authorization canceled by a request (both with reason null, as a refund made in
the Dashboard) or one that expired (reason ``expired_uncaptured_charge``). No
money the customer paid goes back, so such a refund is no refund of the
payment. Only the expiry's reason tells one apart (:func:`releases_uncaptured`);
the others are told by where they are not: the API, on the version the SDK pins
(after basil), never lists them. So a webhook event rendered for an older
version is not trusted with a refund paycore did not make (:func:`made_by_paycore`):
the provider lists the PaymentIntent's refunds through the API and reports those
(see :mod:`paycore_stripe.webhooks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from attrs import evolve

from paycore.money import Money
from paycore.records import NextAction, ProviderUpdate, RefundUpdate
from paycore.status import Outcome, RefundStatus
from paycore.wire import InvalidReport
from paycore_stripe.state import StripeState
from paycore_stripe.units import from_stripe

__all__ = [
    "INTENT_OUTCOMES",
    "PAYMENT_ID_KEY",
    "REFUND_ID_KEY",
    "REFUND_STATUSES",
    "RELEASE_REASONS",
    "TENANT_KEY",
    "client_secret_action",
    "lists_every_refund",
    "made_by_paycore",
    "read_charge",
    "read_checkout",
    "read_delayed_payment",
    "read_intent",
    "read_refund",
    "read_refunds",
    "read_session",
    "releases_uncaptured",
]

PAYMENT_ID_KEY: Final = "paycore_payment_id"
"""The metadata key under which paycore's payment id travels on Stripe objects."""
REFUND_ID_KEY: Final = "paycore_refund_id"
"""The metadata key under which paycore's refund id travels on a Stripe refund."""
TENANT_KEY: Final = "paycore_tenant"
"""The metadata key under which a payment's tenant travels on its PaymentIntent (none for a payment without one)."""

INTENT_OUTCOMES: Final = {
    "requires_payment_method": Outcome.PENDING,
    "requires_confirmation": Outcome.PENDING,
    "requires_action": Outcome.PENDING,
    "processing": Outcome.PENDING,
    "requires_capture": Outcome.AUTHORIZED,
    "succeeded": Outcome.SUCCEEDED,
    "canceled": Outcome.CANCELED,
}
"""A PaymentIntent's ``status`` as a paycore outcome."""
REFUND_STATUSES: Final = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}
"""A Refund's ``status`` as a paycore refund status."""
RELEASE_REASONS: Final = frozenset({"expired_uncaptured_charge"})
"""Refund reasons (of Stripe's published ``Refund.reason`` enum) that tell uncaptured money an authorization
released (a Refund before ``2025-03-31.basil``): an authorization that expired uncaptured. A partial capture's
remainder and a canceled authorization have no reason of their own (null, as a Dashboard refund)."""
_SESSION_OUTCOMES: Final = {"open": Outcome.PENDING, "complete": Outcome.PENDING, "expired": Outcome.EXPIRED}
_DELAYED_FAILURE: Final = "the payment method failed after the customer completed Stripe Checkout"


def _field(data: Mapping[str, Any], name: str, kind: type, *, what: str, optional: bool = False) -> Any:
    value = data.get(name)
    if value is None and optional:
        return None
    if type(value) is not kind:
        raise InvalidReport(f"{what}.{name} must be a {kind.__name__}, not {value!r:.60}")
    return value


def _object(data: Any, expected: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or data.get("object") != expected:
        found = data.get("object") if isinstance(data, Mapping) else type(data).__name__
        raise InvalidReport(f"expected a Stripe {expected} object, not {found!r:.60}")
    return data


def _amount(data: Mapping[str, Any], name: str, currency: str, *, what: str) -> Money | None:
    """An amount field as Money; ``None`` when Stripe says nothing or ``0`` (nothing moved yet)."""
    value = _field(data, name, int, what=what, optional=True)
    if value is None or value == 0:
        return None
    if value < 0:
        raise InvalidReport(f"{what}.{name} must not be negative: {value}")
    return from_stripe(value, currency)


def _metadata_id(data: Mapping[str, Any], key: str, *, what: str) -> str | None:
    metadata = data.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise InvalidReport(f"{what}.metadata must be an object, not {type(metadata).__name__}")
    value = metadata.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidReport(f"{what}.metadata.{key} must be a string, not {value!r:.60}")
    return value


def _failure_message(data: Mapping[str, Any]) -> str:
    error = data.get("last_payment_error")
    if not isinstance(error, Mapping):
        return ""
    parts = [str(error.get(key)) for key in ("code", "decline_code", "message") if isinstance(error.get(key), str)]
    return ": ".join(parts)[:500]


def releases_uncaptured(data: Any) -> bool:
    """Whether the Refund ``data`` says it records uncaptured money an authorization released (its reason).

    Such a Refund (an API version before ``2025-03-31.basil`` has them) paid
    nothing back: the money was never captured. Only an expired authorization's
    says so (``expired_uncaptured_charge``); a partial capture's remainder and a
    canceled authorization have reason null, as a refund made in the Dashboard.
    """
    reason = data.get("reason") if isinstance(data, Mapping) else None
    return isinstance(reason, str) and reason in RELEASE_REASONS


def made_by_paycore(data: Any) -> bool:
    """Whether the Refund ``data`` is one paycore made: its metadata carries paycore's refund id.

    Stripe never releases an authorization under paycore's id, so such a refund
    paid captured money back, whatever the API version of the event showing it.
    """
    metadata = data.get("metadata") if isinstance(data, Mapping) else None
    value = metadata.get(REFUND_ID_KEY) if isinstance(metadata, Mapping) else None
    return isinstance(value, str) and bool(value)


def read_refunds(refunds: Iterable[Any], *, what: str = "refund") -> tuple[RefundUpdate, ...]:
    """The refunds (as listed) that pay captured money back, read: those releasing an authorization left out."""
    return tuple(read_refund(refund, what=what) for refund in refunds if not releases_uncaptured(refund))


def read_refund(data: Any, *, what: str = "refund") -> RefundUpdate:
    """A Stripe Refund object as a :class:`~paycore.records.RefundUpdate` (paycore's id from its metadata)."""
    refund = _object(data, "refund")
    status = _field(refund, "status", str, what=what)
    if status not in REFUND_STATUSES:
        raise InvalidReport(f"{what}.status {status!r:.40} is not one of {sorted(REFUND_STATUSES)}")
    currency = _field(refund, "currency", str, what=what)
    amount = _amount(refund, "amount", currency, what=what)
    return RefundUpdate(
        REFUND_STATUSES[status],
        refund_id=_metadata_id(refund, REFUND_ID_KEY, what=what),
        external_id=refund.get("id"),
        amount=amount,
    )


def read_intent(
    data: Any, *, refunds: Iterable[Any] = (), state: StripeState | None = None, what: str = "payment_intent"
) -> ProviderUpdate:
    """A PaymentIntent (with the refunds listed for it) as a :class:`~paycore.records.ProviderUpdate`.

    A ``requires_capture`` intent reports ``amount_capturable`` as authorized; a
    ``succeeded`` one ``amount_received`` as captured, and, captured by hand
    (``capture_method`` ``manual``), ``amount`` as authorized: the hold it was
    captured from, whole or in part, even when its own report came late.
    """
    intent = _object(data, "payment_intent")
    status = _field(intent, "status", str, what=what)
    if status not in INTENT_OUTCOMES:
        raise InvalidReport(f"{what}.status {status!r:.40} is not one of {sorted(INTENT_OUTCOMES)}")
    currency = _field(intent, "currency", str, what=what)
    asked = _amount(intent, "amount", currency, what=what)
    outcome = INTENT_OUTCOMES[status]
    authorized = _amount(intent, "amount_capturable", currency, what=what)
    received = _amount(intent, "amount_received", currency, what=what)
    if outcome is Outcome.SUCCEEDED:
        authorized = asked if intent.get("capture_method") == "manual" else None
    elif outcome is not Outcome.AUTHORIZED:
        authorized = None
    return ProviderUpdate(
        outcome=outcome,
        external_id=intent.get("id"),
        payment_id=_metadata_id(intent, PAYMENT_ID_KEY, what=what),
        provider_state=state,
        authorized=authorized,
        captured=received if outcome is Outcome.SUCCEEDED else None,
        refunds=read_refunds(refunds, what=f"{what} refund"),
        message=_failure_message(intent),
    )


def read_session(data: Any, *, what: str = "checkout.session") -> ProviderUpdate:
    """A Checkout Session as a :class:`~paycore.records.ProviderUpdate`: its outcome, references and state.

    The session is the payment's first reference and its PaymentIntent (once the
    customer paid) the second. Its amounts are checked but not reported: the
    PaymentIntent's own report carries the money. A complete session names what
    it collected: one without a positive ``amount_total`` is refused.
    """
    session = _object(data, "checkout.session")
    status = _field(session, "status", str, what=what)
    if status not in _SESSION_OUTCOMES:
        raise InvalidReport(f"{what}.status {status!r:.40} is not one of {sorted(_SESSION_OUTCOMES)}")
    currency = _field(session, "currency", str, what=what)
    total = _amount(session, "amount_total", currency, what=what)
    _amount(session, "amount_subtotal", currency, what=what)
    if status == "complete" and total is None:
        raise InvalidReport(f"{what} is complete without its amount_total")
    intent = session.get("payment_intent")
    intent_id = intent.get("id") if isinstance(intent, Mapping) else intent
    if intent_id is not None and not isinstance(intent_id, str):
        raise InvalidReport(f"{what}.payment_intent must be an id, not {intent_id!r:.60}")
    payment_id = session.get("client_reference_id") or _metadata_id(session, PAYMENT_ID_KEY, what=what)
    return ProviderUpdate(
        outcome=_SESSION_OUTCOMES[status],
        external_id=session.get("id"),
        references=(intent_id,) if intent_id else (),
        payment_id=payment_id,
        provider_state=StripeState(mode="checkout", session_id=session.get("id"), payment_intent_id=intent_id),
    )


def read_delayed_payment(data: Any, *, succeeded: bool, what: str = "checkout.session") -> ProviderUpdate:
    """A complete Checkout Session whose delayed payment method finally succeeded or failed.

    What ``checkout.session.async_payment_succeeded`` and ``..._failed`` carry:
    ``SUCCEEDED`` with the session's ``amount_total`` as captured (its
    ``payment_status`` must be ``paid``), or ``FAILED`` (``unpaid``). Refunds
    and other amounts come with the PaymentIntent's own events.
    """
    update = read_session(data, what=what)
    session: Mapping[str, Any] = data
    expected = "paid" if succeeded else "unpaid"
    if session.get("status") != "complete" or session.get("payment_status") != expected:
        shown = session.get("payment_status")
        raise InvalidReport(f"{what} must be complete and {expected}, not {shown!r:.40}")
    if not succeeded:
        return evolve(update, outcome=Outcome.FAILED, message=_DELAYED_FAILURE)
    currency = _field(session, "currency", str, what=what)
    return evolve(update, outcome=Outcome.SUCCEEDED, captured=_amount(session, "amount_total", currency, what=what))


def read_checkout(
    session_data: Any, intent_data: Any, *, refunds: Iterable[Any] = (), what: str = "checkout.session"
) -> ProviderUpdate:
    """A Checkout Session and its PaymentIntent, retrieved together (a poll), as one report about the payment.

    The intent reports the outcome, the money and the refunds; the session is
    the payment's first reference and its state, the intent the second. A
    complete session whose intent is back to ``requires_payment_method`` is
    ``FAILED``: its delayed payment method failed, and a completed session
    takes no other payment method (in ``payment_intent`` mode that status lets
    the customer try another card, and stays ``PENDING``).
    """
    session = read_session(session_data, what=what)
    intent = read_intent(intent_data, refunds=refunds, what=f"{what}.payment_intent")
    outcome, message = intent.outcome, intent.message
    # Stripe's PaymentIntent lifecycle: a failed attempt returns the intent to requires_payment_method "so that
    # the payment can be retried", which only a session still open offers. Once it is complete, this state is
    # what checkout.session.async_payment_failed announces (a delayed payment method failed), and Stripe's
    # fulfillment guide has the merchant ask the customer to retry their order: with a new session.
    if session_data.get("status") == "complete" and intent_data.get("status") == "requires_payment_method":
        outcome, message = Outcome.FAILED, message or _DELAYED_FAILURE
    return ProviderUpdate(
        outcome=outcome,
        external_id=session.external_id,
        references=(intent.external_id,) if intent.external_id else session.references,
        payment_id=intent.payment_id,
        provider_state=session.provider_state,
        authorized=intent.authorized,
        captured=intent.captured,
        refunds=intent.refunds,
        message=message,
    )


def read_charge(data: Any, *, refunds: Iterable[Any] | None = None, what: str = "charge") -> ProviderUpdate:
    """A Charge (``charge.refunded``) as a report about its PaymentIntent: what it captured, its refunds.

    Its refunds are those it lists, or ``refunds`` when given: every refund of
    its PaymentIntent, listed through the API because the charge does not list
    them all (:func:`lists_every_refund`) or, on an API version before basil,
    may list a release of uncaptured money (see
    :func:`~paycore_stripe.webhooks.unlisted_refunds`). A charge not ``captured``
    reports no refund: what an older API version lists for it (a canceled
    authorization) released money never captured. Refunds whose reason says they
    release an authorization are left out (:func:`releases_uncaptured`). A charge
    captured in part names its hold (``authorized``: the charge's ``amount``), so
    the capture is taken as the hold's in part whichever of their events comes first.
    """
    charge = _object(data, "charge")
    currency = _field(charge, "currency", str, what=what)
    amount = _amount(charge, "amount", currency, what=what)
    _amount(charge, "amount_refunded", currency, what=what)
    amount_captured = _amount(charge, "amount_captured", currency, what=what)
    intent = _field(charge, "payment_intent", str, what=what)
    listed = charge.get("refunds")
    own = listed.get("data", []) if isinstance(listed, Mapping) else []
    if not isinstance(own, list):
        raise InvalidReport(f"{what}.refunds.data must be a list, not {type(own).__name__}")
    captured = charge.get("captured") is True
    in_part = captured and amount is not None and amount_captured is not None and amount_captured < amount
    return ProviderUpdate(
        outcome=Outcome.SUCCEEDED if captured else None,
        external_id=intent,
        payment_id=_metadata_id(charge, PAYMENT_ID_KEY, what=what),
        authorized=amount if in_part else None,  # captured in part: the charge's amount is the hold it was taken from
        captured=amount_captured if captured else None,
        refunds=read_refunds(own if refunds is None else refunds, what=f"{what} refund") if captured else (),
    )


def lists_every_refund(data: Mapping[str, Any]) -> bool:
    """Whether a Charge read by :func:`read_charge` reports every refund of it without the API's help.

    False for a captured charge with money refunded (``amount_refunded``) whose
    ``refunds`` list is missing (API versions from ``2022-11-15`` leave it out)
    or has more pages (``has_more``): its refunds must be listed through the API.
    """
    listed = data.get("refunds")
    if data.get("captured") is not True or not data.get("amount_refunded"):
        return True
    return isinstance(listed, Mapping) and listed.get("has_more") is not True


def client_secret_action(intent: Mapping[str, Any]) -> NextAction:
    """The customer's next step in ``payment_intent`` mode: confirm the intent with Stripe.js.

    A ``display`` action whose ``data`` is the PaymentIntent's client secret
    (what ``stripe.confirmPayment`` takes in the browser) and whose ``fields``
    name the intent.
    """
    secret = _field(intent, "client_secret", str, what="payment_intent")
    return NextAction(
        kind="display",
        data=secret,
        fields={"payment_intent": intent.get("id", ""), "client_secret": secret},
        message="Confirm the payment in the browser with Stripe.js, using the PaymentIntent's client secret.",
    )
