"""``StripeSimulator``: the subset of Stripe's API the provider uses, as an in-process ASGI app.

It answers what Stripe's API reference shows for PaymentIntents (create,
retrieve, list, capture, cancel), Refunds (create, list) and Checkout Sessions
(create, retrieve, list, expire), keeps idempotency keys as Stripe does (the
same key and the same request replay the first answer; another request under
the key is refused), and signs the events it emits with the SDK's own
``Stripe-Signature`` helper. Reach it with ``httpx.ASGITransport(app=simulator)``
(the provider's ``simulator`` setting) or serve it on loopback (``api_base``).

What the customer or the merchant's Dashboard does is a method: :meth:`pay`
(``delayed=True``: with a payment method that settles later, such as a bank
debit), :meth:`settle` (that payment succeeds or fails), :meth:`decline` (of
an intent, or on a Checkout Session's hosted page), :meth:`capture_in_dashboard`,
:meth:`refund_in_dashboard`, :meth:`settle_refund` (a pending refund succeeds or
fails), :meth:`expire`, :meth:`expire_authorization`, :meth:`dispute` (the payer
disputes the charge with their bank) and :meth:`close_dispute`. Each event is
kept in :attr:`events` as a :class:`SignedEvent`, and posted to
``webhook_transport`` when one is given. Faults for tests: :meth:`refuse_next`
(the connection is refused: nothing reaches the simulator) and
:meth:`drop_next_answer` (the work is done, then the connection resets).

As Stripe does, it cancels a Checkout Session's PaymentIntent directly only
while it is ``requires_capture`` (otherwise the session must be expired, which
cancels its intent), and makes that intent only when the customer confirms (a
declined card leaves it ``requires_payment_method`` in a session still open).

``refund_status`` is the status a new refund starts in: ``succeeded`` (the
default), or ``pending`` or ``requires_action`` until :meth:`settle_refund`. As
at Stripe, a refund that failed or was canceled gives its money back to the
charge: it no longer counts in ``amount_refunded``, and may be refunded again.

``account`` makes it a connected account's Stripe (Connect): requests must name
it in ``Stripe-Account`` (the provider's ``stripe_account``) and its events
carry it, as a Connect endpoint receives them.

``api_version`` is the webhook endpoint's API version its events are shaped for
(:data:`API_VERSION` by default). Before ``2025-03-31.basil``, Stripe records
the uncaptured money an authorization releases as a Refund: the remainder of a
partial capture and the whole of an authorization canceled by a request (reason
null, as a refund made in the Dashboard: Stripe's ``Refund.reason`` enum has no
value of their own), or of one that expired on its own (reason
``expired_uncaptured_charge``), each with ``charge.refunded`` (and ``refund.created``
from acacia on). The API, on the version the SDK pins (after basil), never
shows them: the refund list leaves them out, whatever ``api_version``. Before
``2024-10-28.acacia``, a refund of a charge sends no ``refund.*`` event: only
``charge.refunded`` when it is made and ``charge.refund.updated`` when it
settles. Before ``2022-11-15`` a charge lists its refunds.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, Final

import httpx
import stripe
from attrs import frozen

from paycore_stripe.forms import decode_form

__all__ = ["SignedEvent", "StripeSimulator"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

API_VERSION: Final = "2025-03-31.basil"
"""The API version the simulator's events are shaped for, unless told another."""
BASIL: Final = "2025-03-31"
"""From this API version on, releasing uncaptured money creates no Refund (nor ``charge.refunded``)."""
ACACIA: Final = "2024-10-28"
"""From this API version on, ``refund.created``, ``refund.updated`` and ``refund.failed`` are sent for every refund;
before it, for none of a charge (``charge.refunded`` and ``charge.refund.updated`` only)."""
CHARGE_REFUNDS_LISTED_BEFORE: Final = "2022-11-15"
"""Before this API version, a charge lists its refunds (``charge.refunds``)."""
SESSION_CANCEL_REFUSED: Final = (
    "You can directly cancel the PaymentIntent for a Checkout Session only when the PaymentIntent has a status of "
    "requires_capture. Otherwise, you must expire the Checkout Session."
)
_RELEASE: Final = "_release"
"""The private mark of a Refund recording released uncaptured money (before basil), not money paid back."""
_REFUNDING: Final = frozenset({"pending", "requires_action", "succeeded"})
"""Statuses of the refunds that hold the charge's money; a failed or canceled refund gave it back."""
_SETTLED_REFUND: Final = frozenset({"succeeded", "failed", "canceled"})
"""What a pending refund may become."""
_OPEN_INTENT: Final = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


@frozen
class SignedEvent:
    """One event as Stripe delivers it: its id and type, the body, and its ``Stripe-Signature`` header."""

    id: str
    type: str
    body: bytes
    headers: Mapping[str, str]


class StripeApiError(Exception):
    """An error answer of the simulated API (status and Stripe's error object)."""

    def __init__(
        self, status: int, kind: str, code: str, message: str, *, payment_intent: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        error: dict[str, Any] = {"type": kind, "code": code, "message": message}
        if payment_intent is not None:  # as Stripe names the PaymentIntent a refused request was about
            error["payment_intent"] = dict(payment_intent)
        self.body = {"error": error}


def _missing(what: str, ident: str) -> StripeApiError:
    return StripeApiError(404, "invalid_request_error", "resource_missing", f"No such {what}: '{ident}'")


def _invalid(code: str, message: str, *, payment_intent: Mapping[str, Any] | None = None) -> StripeApiError:
    return StripeApiError(400, "invalid_request_error", code, message, payment_intent=payment_intent)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _integer(params: Mapping[str, Any], name: str, default: int | None = None) -> int:
    value = params.get(name)
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.isdigit():
        raise _invalid("parameter_invalid_integer", f"Invalid integer: {value!r}")
    return int(value)


class StripeSimulator:
    """An in-process Stripe: the API subset of paycore-stripe, with customers and a Dashboard as methods."""

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        webhook_url: str = "http://merchant.invalid/webhooks/stripe",
        checkout_base: str = "https://checkout.stripe.test/c/pay",
        api_version: str = API_VERSION,
        refund_status: str = "succeeded",
        account: str | None = None,
    ) -> None:
        if refund_status not in _REFUNDING:
            raise ValueError(f"refund_status must be one of {sorted(_REFUNDING)}, not {refund_status!r}")
        self.api_key = api_key
        self.account = account
        """The connected account (``acct_...``) the simulated objects live on, as Stripe Connect keeps them: each
        request must name it in its ``Stripe-Account`` header (one that names another, or none, is refused as
        Stripe refuses a key without access), and each event carries it as ``account``. ``None``: the key's own."""
        self.livemode = api_key.startswith(("sk_live_", "rk_live_"))
        """Whether the objects and events are live-mode ones, as the API key's own mode."""
        self.api_version = api_version
        self.refund_status = refund_status
        """The status a new refund starts in: ``succeeded``, or ``pending``/``requires_action`` until settled."""
        self.webhook_secret = webhook_secret
        self.webhook_transport = webhook_transport
        self.webhook_url = webhook_url
        self.checkout_base = checkout_base
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.events: list[SignedEvent] = []
        """Every event emitted, in order."""
        self.requests: list[tuple[str, str, str | None]] = []
        """Every API request received: method, path and idempotency key."""
        self._idempotent: dict[str, tuple[str, int, bytes]] = {}
        self._fault: str | None = None
        self._clock = 0

    def __repr__(self) -> str:
        return f"<StripeSimulator intents={len(self.intents)} sessions={len(self.sessions)} events={len(self.events)}>"

    # -- faults --------------------------------------------------------------------------------

    def refuse_next(self) -> None:
        """Refuse the next API request's connection: it never reaches the simulator."""
        self._fault = "refuse"

    def drop_next_answer(self) -> None:
        """Do the next API request's work, then reset the connection before the answer."""
        self._fault = "drop"

    # -- what customers and the Dashboard do ---------------------------------------------------

    async def pay(self, object_id: str, *, delayed: bool = False) -> list[SignedEvent]:
        """The customer pays a PaymentIntent (``pi_...``) or a Checkout Session (``cs_...``); the events sent.

        ``delayed``: with a payment method whose outcome comes later (a SEPA or
        ACH debit): the intent is ``processing`` (a session completes ``unpaid``)
        until :meth:`settle`.
        """
        already = len(self.events)
        confirm = self._process if delayed else self._authorize
        if object_id in self.sessions:
            session = self.sessions[object_id]
            if session["status"] != "open":
                raise ValueError(f"session {object_id} is {session['status']}, not open")
            intent = self._confirmed_session_intent(session)
            confirm(intent)
            session.update(
                status="complete",
                payment_intent=intent["id"],
                payment_status="paid" if intent["status"] == "succeeded" else "unpaid",
                url=None,
            )
            self._emit("checkout.session.completed", session)
        else:
            intent = self._intent(object_id)
            if intent["status"] not in _OPEN_INTENT:
                raise ValueError(f"intent {object_id} is {intent['status']}, it cannot be paid")
            confirm(intent)
        await self._post(self.events[already:])
        return self.events[already:]

    async def settle(self, object_id: str, *, paid: bool = True) -> list[SignedEvent]:
        """A delayed payment (:meth:`pay` with ``delayed=True``) of an intent or a session succeeds or fails.

        Failed, the intent is back to ``requires_payment_method`` (``payment_intent.payment_failed``) and a
        session's ``checkout.session.async_payment_failed`` follows; succeeded, ``payment_intent.succeeded``
        and ``checkout.session.async_payment_succeeded``.
        """
        already = len(self.events)
        session = self.sessions.get(object_id)
        intent = self._intent(session["payment_intent"] if session is not None else object_id)
        if intent["status"] != "processing":
            raise ValueError(f"intent {intent['id']} is {intent['status']}, not processing")
        if paid:
            self._authorize(intent)
        else:
            self._fail(intent, {"type": "invalid_request_error", "code": "payment_intent_payment_attempt_failed"})
        if session is not None:
            if intent["status"] == "succeeded":
                session["payment_status"] = "paid"
                self._emit("checkout.session.async_payment_succeeded", session)
            elif not paid:
                self._emit("checkout.session.async_payment_failed", session)
        await self._post(self.events[already:])
        return self.events[already:]

    async def decline(self, object_id: str) -> list[SignedEvent]:
        """The customer's card is declined: the intent (``pi_...``) asks for another payment method.

        On a Checkout Session (``cs_...``), still open: Stripe makes its PaymentIntent as the customer
        confirms, the decline leaves it ``requires_payment_method``, and the session stays open for
        another card, naming that intent.
        """
        already = len(self.events)
        if object_id in self.sessions:
            session = self.sessions[object_id]
            if session["status"] != "open":
                raise ValueError(f"session {object_id} is {session['status']}, not open")
            intent = self._confirmed_session_intent(session)
        else:
            intent = self._intent(object_id)
        self._fail(intent, {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline"})
        await self._post(self.events[already:])
        return self.events[already:]

    async def capture_in_dashboard(self, intent_id: str, amount: int | None = None) -> list[SignedEvent]:
        """The merchant captures an authorized intent from the Dashboard: ``amount`` (Stripe's units), in full by
        default."""
        already = len(self.events)
        intent = self._intent(intent_id)
        self._capture(intent, intent["amount_capturable"] if amount is None else amount)
        await self._post(self.events[already:])
        return self.events[already:]

    async def refund_in_dashboard(self, intent_id: str, amount: int | None = None) -> list[SignedEvent]:
        """The merchant refunds ``amount`` (Stripe's units; all that is left by default) from the Dashboard."""
        already = len(self.events)
        self._refund(self._intent(intent_id), amount, metadata={})
        await self._post(self.events[already:])
        return self.events[already:]

    async def settle_refund(self, refund_id: str, status: str = "succeeded") -> list[SignedEvent]:
        """A pending (or ``requires_action``) refund ends ``succeeded``, ``failed`` or ``canceled``; the events sent.

        A failed or canceled refund gives its money back to the charge. From
        ``2024-10-28.acacia`` on, ``refund.updated`` (``refund.failed`` for a
        refund that failed or was canceled) is sent; before it,
        ``charge.refund.updated``.
        """
        if status not in _SETTLED_REFUND:
            raise ValueError(f"a refund settles {sorted(_SETTLED_REFUND)}, not {status!r}")
        if refund_id not in self.refunds:
            raise _missing("refund", refund_id)
        refund = self.refunds[refund_id]
        if refund["status"] not in ("pending", "requires_action"):
            raise ValueError(f"refund {refund_id} is {refund['status']}, not pending")
        already = len(self.events)
        refund.update(status=status, failure_reason="expired_or_canceled_card" if status == "failed" else None)
        if not self.sends_refund_events_for_charges:
            self._emit("charge.refund.updated", refund)
        else:
            self._emit("refund.updated" if status == "succeeded" else "refund.failed", refund)
        await self._post(self.events[already:])
        return self.events[already:]

    async def expire(self, session_id: str) -> list[SignedEvent]:
        """An open Checkout Session expires (the customer never paid); Stripe cancels its PaymentIntent, if any."""
        already = len(self.events)
        self._expire(self._session(session_id))
        await self._post(self.events[already:])
        return self.events[already:]

    async def expire_authorization(self, intent_id: str) -> list[SignedEvent]:
        """An authorization nobody captured expires (after seven days for cards): Stripe cancels the intent."""
        already = len(self.events)
        intent = self._intent(intent_id)
        if intent["status"] != "requires_capture":
            raise ValueError(f"intent {intent_id} is {intent['status']}, not requires_capture")
        self._void(intent, cancellation_reason="automatic", refund_reason="expired_uncaptured_charge")
        await self._post(self.events[already:])
        return self.events[already:]

    async def dispute(self, intent_id: str, *, reason: str = "fraudulent") -> list[SignedEvent]:
        """The payer disputes a paid intent's charge with their bank: Stripe opens a Dispute of the amount received
        (``charge.dispute.created``) and withdraws it from the balance (``charge.dispute.funds_withdrawn``)."""
        intent = self._intent(intent_id)
        if intent["status"] != "succeeded":
            raise ValueError(f"intent {intent_id} is {intent['status']}, not succeeded: nothing to dispute")
        already = len(self.events)
        dispute = {
            "id": _new_id("dp"),
            "object": "dispute",
            "amount": intent["amount_received"],
            "currency": intent["currency"],
            "charge": intent["latest_charge"],
            "payment_intent": intent["id"],
            "reason": reason,
            "status": "needs_response",
            "livemode": self.livemode,
            "metadata": {},
        }
        self.disputes[dispute["id"]] = dispute
        self._emit("charge.dispute.created", dispute)
        self._emit("charge.dispute.funds_withdrawn", dispute)
        await self._post(self.events[already:])
        return self.events[already:]

    async def close_dispute(self, dispute_id: str, *, won: bool) -> list[SignedEvent]:
        """The bank decides a dispute (``charge.dispute.closed``); a dispute won has its funds reinstated."""
        dispute = self.disputes[dispute_id]
        already = len(self.events)
        dispute["status"] = "won" if won else "lost"
        self._emit("charge.dispute.closed", dispute)
        if won:
            self._emit("charge.dispute.funds_reinstated", dispute)
        await self._post(self.events[already:])
        return self.events[already:]

    def events_about(self, object_id: str) -> list[SignedEvent]:
        """The events whose object is ``object_id`` or names it (a refund's intent, a session's intent)."""
        found = []
        for event in self.events:
            obj = json.loads(event.body)["data"]["object"]
            if object_id in (obj.get("id"), obj.get("payment_intent")):
                found.append(event)
        return found

    # -- the state machine of Stripe objects ---------------------------------------------------

    def _now(self) -> int:
        self._clock += 1
        return int(time.time())

    def _create_intent(
        self, *, amount: int, currency: str, capture_method: str, metadata: Mapping[str, Any], description: str | None
    ) -> dict[str, Any]:
        ident = _new_id("pi")
        intent = {
            "id": ident,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "capture_method": capture_method,
            "client_secret": f"{ident}_secret_{secrets.token_hex(8)}",
            "created": self._now(),
            "currency": currency,
            "description": description,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": self.livemode,
            "metadata": dict(metadata),
            "status": "requires_payment_method",
        }
        self.intents[ident] = intent
        return intent

    def _confirmed_session_intent(self, session: dict[str, Any]) -> dict[str, Any]:
        """The PaymentIntent of a session the customer confirms: the one an earlier attempt made, or a new one."""
        if session.get("payment_intent"):
            return self._intent(session["payment_intent"])
        data = session.pop("_intent_data")
        intent = self._create_intent(
            amount=session["amount_total"],
            currency=session["currency"],
            capture_method=data.get("capture_method", "automatic"),
            metadata=data.get("metadata", {}),
            description=None,
        )
        session["payment_intent"] = intent["id"]
        return intent

    @property
    def records_released_money_as_refunds(self) -> bool:
        """Whether the events are shaped for an API version before ``2025-03-31.basil``.

        There, the uncaptured money an authorization releases (a partial capture's
        remainder, a canceled authorization) is a Refund with ``charge.refunded``.
        """
        return self.api_version < BASIL

    @property
    def sends_refund_events_for_charges(self) -> bool:
        """Whether ``refund.*`` events are sent for a refund of a charge (from ``2024-10-28.acacia`` on)."""
        return self.api_version >= ACACIA

    def _authorize(self, intent: dict[str, Any]) -> None:
        intent["last_payment_error"] = None
        intent["latest_charge"] = _new_id("ch")
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self._emit("payment_intent.amount_capturable_updated", intent)
        else:
            intent.update(status="succeeded", amount_received=intent["amount"])
            self._emit("payment_intent.succeeded", intent)

    def _process(self, intent: dict[str, Any]) -> None:
        intent.update(status="processing", last_payment_error=None, latest_charge=_new_id("ch"))
        self._emit("payment_intent.processing", intent)

    def _fail(self, intent: dict[str, Any], error: dict[str, Any]) -> None:
        intent.update(status="requires_payment_method", last_payment_error=error, amount_capturable=0)
        self._emit("payment_intent.payment_failed", intent)

    def _capture(self, intent: dict[str, Any], amount: int) -> None:
        if intent["status"] != "requires_capture":
            raise _invalid(
                "payment_intent_unexpected_state",
                f"This PaymentIntent could not be captured because it has a status of {intent['status']}.",
                payment_intent=intent,
            )
        if not 0 < amount <= intent["amount_capturable"]:
            raise _invalid("amount_too_large", "The amount to capture is greater than the amount capturable.")
        released = intent["amount_capturable"] - amount
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self._emit("payment_intent.succeeded", intent)
        if released and self.records_released_money_as_refunds:
            self._record_release(intent, released, reason=None)

    def _cancel(self, intent: dict[str, Any]) -> None:
        """The merchant's cancel: refused for a Checkout Session's intent unless it is ``requires_capture``."""
        if intent["status"] in ("succeeded", "canceled"):
            raise _invalid(
                "payment_intent_unexpected_state",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
            )
        in_session = any(s.get("payment_intent") == intent["id"] for s in self.sessions.values())
        if in_session and intent["status"] != "requires_capture":
            raise _invalid("payment_intent_unexpected_state", SESSION_CANCEL_REFUSED)
        self._void(intent, cancellation_reason="requested_by_customer", refund_reason=None)

    def _void(self, intent: dict[str, Any], *, cancellation_reason: str, refund_reason: str | None) -> None:
        """Cancel the intent; before basil, the authorization it releases is recorded as a Refund."""
        released = intent["amount_capturable"] if intent["status"] == "requires_capture" else 0
        intent.update(status="canceled", amount_capturable=0, cancellation_reason=cancellation_reason)
        self._emit("payment_intent.canceled", intent)
        if released and self.records_released_money_as_refunds:
            self._record_release(intent, released, reason=refund_reason)

    def _expire(self, session: dict[str, Any]) -> None:
        """Expire an open session; Stripe then cancels the PaymentIntent a failed attempt left in it."""
        if session["status"] != "open":
            raise _invalid("checkout_session_unexpected_state", f"This Checkout Session is {session['status']}.")
        session.update(status="expired", url=None)
        self._emit("checkout.session.expired", session)
        intent = self.intents.get(session.get("payment_intent") or "")
        if intent is not None and intent["status"] not in ("succeeded", "canceled"):
            self._void(intent, cancellation_reason="abandoned", refund_reason=None)

    def _record_release(self, intent: dict[str, Any], amount: int, *, reason: str | None) -> None:
        """Before basil: uncaptured money released as a Refund (no paycore id), with its events.

        Marked as a release: the API's refund list (on the version the SDK pins) never shows it.
        """
        refund = self._new_refund(intent, amount, metadata={}, reason=reason, status="succeeded")
        refund[_RELEASE] = True
        self._announce(intent, refund)

    def _announce(self, intent: dict[str, Any], refund: dict[str, Any]) -> None:
        """The events of a refund just made: ``refund.created`` (from acacia on), then ``charge.refunded``."""
        if self.sends_refund_events_for_charges:
            self._emit("refund.created", refund)
        self._emit("charge.refunded", self._charge(intent))

    def _new_refund(
        self, intent: dict[str, Any], amount: int, *, metadata: Mapping[str, Any], reason: str | None, status: str
    ) -> dict[str, Any]:
        refund = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "charge": intent["latest_charge"],
            "created": self._now(),
            "currency": intent["currency"],
            "metadata": dict(metadata),
            "payment_intent": intent["id"],
            "reason": reason,
            "status": status,
        }
        self.refunds[refund["id"]] = refund
        return refund

    def _refunds_of(self, intent: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in self.refunds.values() if r["payment_intent"] == intent["id"]]

    def _charge(self, intent: dict[str, Any]) -> dict[str, Any]:
        """The intent's charge as ``charge.refunded`` carries it, in the shape of :attr:`api_version`."""
        refunds = self._refunds_of(intent)
        returned = sum(r["amount"] for r in refunds if r["status"] in _REFUNDING)
        captured = intent["amount_received"]
        charge = {
            "id": intent["latest_charge"],
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": captured,
            "amount_refunded": returned,
            "captured": captured > 0,
            "currency": intent["currency"],
            "metadata": dict(intent["metadata"]),
            "payment_intent": intent["id"],
            "refunded": returned == (intent["amount"] if self.records_released_money_as_refunds else captured),
            "status": "succeeded",
        }
        if self.api_version < CHARGE_REFUNDS_LISTED_BEFORE:
            listed = [self._public(r) for r in refunds]
            charge["refunds"] = {"object": "list", "data": listed, "has_more": False, "total_count": len(refunds)}
        return charge

    def _refund(self, intent: dict[str, Any], amount: int | None, metadata: Mapping[str, Any]) -> dict[str, Any]:
        if intent["status"] != "succeeded":
            raise _invalid("charge_not_captured", "This PaymentIntent has no captured charge to refund.")
        refunded = sum(
            r["amount"] for r in self._refunds_of(intent) if r["status"] in _REFUNDING and not r.get(_RELEASE)
        )
        remaining = intent["amount_received"] - refunded
        amount = remaining if amount is None else amount
        if remaining <= 0:
            raise _invalid("charge_already_refunded", "This charge has already been refunded.")
        if not 0 < amount <= remaining:
            raise _invalid("amount_too_large", f"Refund amount ({amount}) is greater than unrefunded amount.")
        refund = self._new_refund(intent, amount, metadata=metadata, reason=None, status=self.refund_status)
        self._announce(intent, refund)
        return refund

    def _emit(self, event_type: str, obj: Mapping[str, Any]) -> None:
        event_id = _new_id("evt")
        public = {key: value for key, value in obj.items() if not key.startswith("_")}
        event = {
            "id": event_id,
            "object": "event",
            "api_version": self.api_version,
            "created": self._now(),
            "data": {"object": json.loads(json.dumps(public))},
            "livemode": self.livemode,
            **({"account": self.account} if self.account is not None else {}),
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        payload = json.dumps(event, separators=(",", ":"))
        header = stripe.WebhookSignature.generate_signature_header(payload, self.webhook_secret)
        self.events.append(
            SignedEvent(
                event_id,
                event_type,
                payload.encode(),
                {"stripe-signature": header, "content-type": "application/json; charset=utf-8"},
            )
        )

    async def _post(self, events: list[SignedEvent]) -> None:
        if self.webhook_transport is None:
            return
        async with httpx.AsyncClient(transport=self.webhook_transport) as client:
            for event in events:
                await client.post(self.webhook_url, content=event.body, headers=dict(event.headers))

    def _intent(self, ident: str) -> dict[str, Any]:
        if ident not in self.intents:
            raise _missing("payment_intent", ident)
        return self.intents[ident]

    def _session(self, ident: str) -> dict[str, Any]:
        if ident not in self.sessions:
            raise _missing("checkout.session", ident)
        return self.sessions[ident]

    # -- the HTTP API ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] != "http":
            return
        fault, self._fault = self._fault, None
        if fault == "refuse":
            raise httpx.ConnectError("connection refused")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        status, answer = self._answer(
            scope["method"], scope["path"], scope.get("query_string", b"").decode(), body, headers
        )
        if fault == "drop":
            raise httpx.ReadError("connection reset by peer")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"request-id", _new_id("req").encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    def _answer(self, method: str, path: str, query: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        key = headers.get("idempotency-key")
        self.requests.append((method, path, key))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            error = StripeApiError(401, "invalid_request_error", "api_key_invalid", "Invalid API Key provided.")
            return error.status, json.dumps(error.body).encode()
        if headers.get("stripe-account") != self.account:
            named = headers.get("stripe-account") or "the key's own account"
            error = StripeApiError(
                403, "invalid_request_error", "account_invalid", f"The provided key does not have access to {named}."
            )
            return error.status, json.dumps(error.body).encode()
        params = decode_form(body.decode() if method == "POST" else query)
        fingerprint = f"{method} {path} {json.dumps(params, sort_keys=True)}"
        if method == "POST" and key is not None and key in self._idempotent:
            earlier, status, answer = self._idempotent[key]
            if earlier != fingerprint:
                error = StripeApiError(
                    400,
                    "idempotency_error",
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                )
                return error.status, json.dumps(error.body).encode()
            return status, answer
        try:
            status, result = 200, self._route(method, path, params)
        except StripeApiError as error:
            status, result = error.status, error.body
        answer = json.dumps(result).encode()
        if method == "POST" and key is not None and status < 500:
            self._idempotent[key] = (fingerprint, status, answer)
        return status, answer

    def _route(self, method: str, path: str, params: Mapping[str, Any]) -> Any:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["v1", "payment_intents"]:
                return self._create_intent(
                    amount=_integer(params, "amount"),
                    currency=str(params.get("currency", "")),
                    capture_method=str(params.get("capture_method", "automatic")),
                    metadata=params.get("metadata", {}),
                    description=params.get("description"),
                )
            case "GET", ["v1", "payment_intents"]:
                return self._list(self.intents, params, "/v1/payment_intents")
            case "GET", ["v1", "payment_intents", ident]:
                return self._intent(ident)
            case "POST", ["v1", "payment_intents", ident, "capture"]:
                intent = self._intent(ident)
                self._capture(intent, _integer(params, "amount_to_capture", intent["amount_capturable"]))
                return intent
            case "POST", ["v1", "payment_intents", ident, "cancel"]:
                intent = self._intent(ident)
                self._cancel(intent)
                return intent
            case "POST", ["v1", "refunds"]:
                intent = self._intent(str(params.get("payment_intent", "")))
                amount = _integer(params, "amount") if "amount" in params else None
                return self._refund(intent, amount, params.get("metadata", {}))
            case "GET", ["v1", "refunds"]:
                return self._list(self._listed_refunds(params.get("payment_intent")), params, "/v1/refunds")
            case "POST", ["v1", "checkout", "sessions"]:
                return self._create_session(params)
            case "GET", ["v1", "checkout", "sessions"]:
                return self._list(self.sessions, params, "/v1/checkout/sessions")
            case "GET", ["v1", "checkout", "sessions", ident]:
                return self._expanded(self._public(self._session(ident)), params)
            case "POST", ["v1", "checkout", "sessions", ident, "expire"]:
                session = self._session(ident)
                self._expire(session)
                return self._public(session)
        raise StripeApiError(
            404, "invalid_request_error", "url_invalid", f"Unrecognized request URL ({method}: {path})."
        )

    def _listed_refunds(self, intent_id: object) -> dict[str, dict[str, Any]]:
        """The refunds the API lists (of ``intent_id``, if given): never one releasing an authorization.

        The SDK pins an API version after ``2025-03-31.basil``, where no Refund
        records released uncaptured money: Stripe lists none of those made before.
        """
        return {
            key: refund
            for key, refund in self.refunds.items()
            if intent_id in (None, refund["payment_intent"]) and not refund.get(_RELEASE)
        }

    @staticmethod
    def _public(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in obj.items() if not key.startswith("_")}

    def _expanded(self, session: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        """The session with its PaymentIntent object in place of its id when ``expand[]=payment_intent`` asks."""
        expand = params.get("expand")
        wanted = expand if isinstance(expand, list) else [expand]
        if "payment_intent" in wanted and session.get("payment_intent") in self.intents:
            session["payment_intent"] = dict(self.intents[session["payment_intent"]])
        return session

    def _list(self, objects: Mapping[str, dict[str, Any]], params: Mapping[str, Any], url: str) -> dict[str, Any]:
        """A Stripe list: newest first, ``limit`` per page, ``starting_after``, ``created[gte]``, ``created[lte]``."""
        limit = _integer(params, "limit", 10)
        created = params.get("created")
        bounds = created if isinstance(created, dict) else {}
        since = _integer(bounds, "gte") if "gte" in bounds else 0
        until = _integer(bounds, "lte") if "lte" in bounds else None
        items = sorted(
            (o for o in objects.values() if o["created"] >= since and (until is None or o["created"] <= until)),
            key=lambda o: o["created"],
            reverse=True,
        )
        after = params.get("starting_after")
        if after is not None:
            ids = [o["id"] for o in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return {
            "object": "list",
            "data": [self._public(o) for o in items[:limit]],
            "has_more": len(items) > limit,
            "url": url,
        }

    def _create_session(self, params: Mapping[str, Any]) -> dict[str, Any]:
        items = params.get("line_items")
        if params.get("mode") != "payment" or not isinstance(items, list) or not items:
            raise _invalid("parameter_missing", "Checkout in payment mode needs line_items.")
        total, currency = 0, None
        for item in items:
            price = item.get("price_data", {}) if isinstance(item, dict) else {}
            currency = price.get("currency")
            total += _integer(price, "unit_amount") * _integer(item, "quantity", 1)
        if not params.get("success_url"):
            raise _invalid("parameter_missing", "Missing required param: success_url.")
        ident = f"cs_test_{secrets.token_hex(16)}"
        session = {
            "id": ident,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": self._now(),
            "currency": currency,
            "customer_email": params.get("customer_email"),
            "livemode": self.livemode,
            "metadata": dict(params.get("metadata", {})),
            "mode": "payment",
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"{self.checkout_base}/{ident}",
            "_intent_data": dict(params.get("payment_intent_data", {})),
        }
        self.sessions[ident] = session
        return self._public(session)
