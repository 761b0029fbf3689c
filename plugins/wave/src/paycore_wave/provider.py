"""``WaveProvider``: Wave's Checkout API as a paycore provider.

A payment is a checkout session: paycore creates it with the payment's amount
(a string of whole francs), ``client_reference`` = the payment's id, and sends
the customer to its ``wave_launch_url``. Wave confirms by a signed webhook
(``checkout.session.completed`` / ``checkout.session.payment_failed``); paycore
may also retrieve the session. A session still open can be expired (paycore's
cancel); a paid one is refunded in full (Wave refunds whole sessions only).

Settings (``[providers.wave]``, ``type = "wave"``):

``api_key``
    The API key from the Wave Business Portal (``wave_sn_prod_...``), a secret.
``webhook_secret``
    The webhook's signing secret (a secret); during a rotation, the old and the
    new one separated by a space.
``success_url``, ``error_url``
    Where Wave sends the customer after paying or failing (HTTPS). A payment's
    ``return_url`` is used for both when given.
``aggregated_merchant_id``
    For aggregators: the sub-merchant the sessions are for (optional).
``restrict_payer``
    ``true``: only the Wave account of the customer's phone
    (``Customer.phone``, E.164) may pay (``restrict_payer_mobile``); a payment
    without such a phone is refused before anything is stored.
``base_url``
    Wave's API (default ``https://api.wave.com``); ``transport``: an
    ``httpx.AsyncBaseTransport`` instead of the network (the simulator's, in tests).
``timeout``
    Seconds to wait for Wave (default 15); ``webhook_tolerance``: seconds of
    clock skew a webhook may have (default 300).

Each setting is checked when the flow is built: a URL that is not an absolute http(s) URL,
an id with control characters, or any value of the wrong type is a
:class:`~paycore.errors.ConfigurationError` naming the setting (never showing a secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import httpx
from attrs import evolve

from paycore.errors import (
    ConfigurationError,
    InvalidSignature,
    MalformedWebhook,
    ValidationError,
)
from paycore.keys import is_record_id
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.secrets import Secret, shown_setting
from paycore.status import Outcome, RefundStatus
from paycore.wire import InvalidReport, check_id, load_json_object
from paycore_wave.client import DEFAULT_BASE_URL, WaveClient, WaveRefused
from paycore_wave.sessions import WaveSession, format_amount, session_update
from paycore_wave.signing import DEFAULT_TOLERANCE, parse_secrets, verify

__all__ = ["EVENT_TYPES", "IGNORED_EVENT_TYPES", "MissingRedirectUrl", "WaveProvider"]

EVENT_TYPES: Final = {
    "checkout.session.completed": Outcome.SUCCEEDED,
    "checkout.session.payment_failed": Outcome.FAILED,
}
"""The checkout events and the outcome each stands for: the type decides, and a session
in the body that says otherwise makes the delivery malformed. A failed attempt on a session
still ``open`` is reported PENDING instead: the customer may still pay that session."""
IGNORED_EVENT_TYPES: Final = frozenset(
    {"b2b.payment_received", "b2b.payment_failed", "merchant.payment_received", "test.test_event"}
)
"""Wave events about no checkout session (payments to the merchant's QR code, B2B, the
portal's test button): verified, then acknowledged without touching any payment, as is
every other type paycore does not read."""
_CONFLICT: Final = 409
_NOT_FOUND: Final = 404
_NO_SUCH_SESSION: Final = "checkout-session-not-found"
"""Wave's error code for a session it does not hold; any other 404 says nothing about the session."""
_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")


class MissingRedirectUrl(ValidationError):
    """A Wave checkout needs a success and an error URL, and neither the payment nor the settings give one."""


class WaveProvider(Provider):
    """Wave Checkout: hosted mobile-money payment in XOF, signed webhooks, polling, expiry, full refunds."""

    name: ClassVar[str] = "wave"
    currencies: frozenset[str] | None = frozenset({"XOF"})
    capabilities: ClassVar[Capabilities] = Capabilities(
        cancel=True,
        refund=True,
        partial_refund=False,
        webhooks=True,
        polling=True,
        one_id_per_payment=True,  # one checkout session per payment: a report of another session is not its
    )
    secret_settings: ClassVar[frozenset[str]] = frozenset({"api_key", "webhook_secret"})
    settings_names: ClassVar[frozenset[str] | None] = frozenset(
        {
            "aggregated_merchant_id",
            "api_key",
            "base_url",
            "error_url",
            "restrict_payer",
            "success_url",
            "timeout",
            "transport",
            "webhook_secret",
            "webhook_tolerance",
        }
    )
    state_type: ClassVar[type[Any] | None] = WaveSession

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        settings = context.settings
        where = f"provider {context.code!r} (wave)"
        webhook_secret = settings.secret("webhook_secret")
        try:
            # Kept as Secret: shown as '***' by anything that prints the provider's attributes (vars(), a debugger).
            self._secrets = tuple(Secret(secret) for secret in parse_secrets(webhook_secret))
        except ConfigurationError as error:  # name the provider: a project may have several Wave accounts
            raise ConfigurationError(f"{where}: {error}") from None
        self.success_url: str | None = settings.url("success_url")
        self.error_url: str | None = settings.url("error_url")
        self.aggregated_merchant_id: str | None = _optional_id(
            settings.get("aggregated_merchant_id"), f"{where}: aggregated_merchant_id"
        )
        self.restrict_payer = _flag(settings.get("restrict_payer", False), f"{where}: restrict_payer")
        self.webhook_tolerance = settings.seconds("webhook_tolerance", DEFAULT_TOLERANCE)
        self.client = WaveClient(
            Secret(settings.credential("api_key")),
            base_url=settings.url("base_url") or DEFAULT_BASE_URL,
            timeout=settings.seconds("timeout", 15.0),
            transport=_transport(settings.get("transport"), f"{where}: transport"),
            hidden=self._secrets,
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    # -- before anything is stored -----------------------------------------------------------

    def _redirects(self, payment: Payment) -> tuple[str, str]:
        success = payment.return_url or self.success_url
        error = payment.return_url or self.error_url or success
        if success is None or error is None:
            raise MissingRedirectUrl(
                f"provider {self.code!r} (wave) needs a return_url on the payment or the success_url and "
                "error_url settings: Wave sends the customer back there"
            )
        return success, error

    def _restricted_payer(self, payment: Payment) -> str | None:
        """The phone only whose Wave account may pay (``restrict_payer``); ``None`` when anyone may."""
        if not self.restrict_payer:
            return None
        phone = payment.customer.phone if payment.customer is not None else None
        if phone is None:
            raise ValidationError(
                f"provider {self.code!r} (wave) has restrict_payer on: the payment needs the customer's phone "
                "(Customer.phone, E.164 such as '+221761234567'), or any Wave account could pay it"
            )
        if not isinstance(phone, str) or not _E164.fullmatch(phone):
            raise ValidationError(
                f"provider {self.code!r} (wave) has restrict_payer on: Customer.phone is not E.164; it must be "
                "'+' then 7 to 15 digits, the first not 0, with no space or other character (such as '+221761234567')"
            )
        return phone

    async def check_payment(self, payment: Payment) -> None:
        """Refuse, before anything is stored, a payment Wave could not take.

        No URL to send the customer back to, or, with ``restrict_payer`` on, no
        customer phone in E.164 (Wave would refuse it, or let anyone pay).
        """
        self._redirects(payment)
        self._restricted_payer(payment)

    # -- operations --------------------------------------------------------------------------

    def _session_id(self, payment: Payment) -> str | None:
        state = self.state(payment)
        if isinstance(state, WaveSession):
            return state.session_id
        return payment.external_id

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Create the checkout session; the customer's next action is its ``wave_launch_url``."""
        success_url, error_url = self._redirects(payment)
        body: dict[str, Any] = {
            "amount": format_amount(payment.amount),
            "currency": payment.currency,
            "client_reference": payment.id,
            "success_url": success_url,
            "error_url": error_url,
        }
        if self.aggregated_merchant_id:
            body["aggregated_merchant_id"] = self.aggregated_merchant_id
        payer = self._restricted_payer(payment)
        if payer is not None:
            body["restrict_payer_mobile"] = payer
        data = await self.client.request("POST", "/v1/checkout/sessions", body=body, personal=_phone(payment))
        return session_update(data, with_launch_url=True)

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        """Expire the open checkout session; one that is no longer open is reported as Wave holds it."""
        session_id = self._session_id(payment)
        if session_id is None:
            return await self.check_status(payment)
        try:
            await self.client.request("POST", f"/v1/checkout/sessions/{session_id}/expire", personal=_phone(payment))
        except WaveRefused as refused:
            if refused.status != _CONFLICT:
                raise
            return await self.check_status(payment)  # paid, failed or expired meanwhile: say which
        return ProviderUpdate(outcome=Outcome.CANCELED, external_id=session_id, message="checkout session expired")

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Refund the whole session (Wave refunds sessions in full, and a second call refunds nothing more)."""
        session_id = self._session_id(payment)
        if session_id is None:
            raise InvalidReport(f"payment {payment.id} holds no Wave checkout session id to refund")
        try:
            await self.client.request("POST", f"/v1/checkout/sessions/{session_id}/refund", personal=_phone(payment))
        except WaveRefused as refused:
            if refused.code == "checkout-refund-failed":
                return RefundUpdate(RefundStatus.FAILED, refund_id=refund.id)
            raise
        return RefundUpdate(RefundStatus.SUCCEEDED, refund_id=refund.id, amount=refund.amount)

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """Retrieve the session; without its id (a create whose answer was lost), search by ``client_reference``.

        A session still open carries the customer's next action, its ``wave_launch_url``, as a create's
        answer does: a customer whose create answer was lost can still be sent to pay.
        """
        session_id = self._session_id(payment)
        if session_id is not None:
            try:
                data = await self.client.request("GET", f"/v1/checkout/sessions/{session_id}", personal=_phone(payment))
            except WaveRefused as refused:
                if refused.status == _NOT_FOUND and refused.code == _NO_SUCH_SESSION:
                    return ProviderUpdate(
                        outcome=Outcome.NOT_FOUND, message=f"Wave has no checkout session {session_id}"
                    )
                raise
            return _polled(data)
        return await self._search(payment)

    async def _search(self, payment: Payment) -> ProviderUpdate:
        found = await self.client.request(
            "GET", "/v1/checkout/sessions/search", params={"client_reference": payment.id}, personal=_phone(payment)
        )
        sessions = found.get("result") if isinstance(found, dict) else None
        if not isinstance(sessions, list):
            raise InvalidReport("Wave's answer to a checkout session search holds no 'result' list")
        if not sessions:
            return ProviderUpdate(outcome=Outcome.NOT_FOUND, message=f"Wave has no checkout session for {payment.id}")
        paid = [s for s in sessions if isinstance(s, dict) and s.get("payment_status") == "succeeded"]
        return _polled(paid[0] if paid else sessions[-1])

    # -- webhooks ----------------------------------------------------------------------------

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Refuse a delivery whose ``Wave-Signature`` is missing, stale or matches no configured secret."""
        if not isinstance(body, bytes | bytearray | memoryview):
            raise InvalidSignature(f"webhook refused: the body must be bytes, not {type(body).__name__}")
        secrets = tuple(secret.reveal() for secret in self._secrets)
        verify(bytes(body), headers, secrets=secrets, tolerance=self.webhook_tolerance)

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """The checkout session an event describes, with the event's id for dedupe.

        The event ``type`` decides the outcome (:data:`EVENT_TYPES`); a session
        whose statuses say otherwise, a type that is not a string, or any value
        paycore cannot accept is :class:`~paycore.errors.MalformedWebhook`. A
        type paycore does not read (:data:`IGNORED_EVENT_TYPES`, or one Wave
        adds later) reports nothing: the delivery is acknowledged and changes
        nothing, so Wave does not retry it. So does a checkout event of a session
        another system made on the account: its ``client_reference`` is not of
        the shape of the ids paycore makes (:func:`paycore.keys.is_record_id`).
        """
        event = load_json_object(body, what="Wave webhook body")
        event_type, data = event.get("type"), event.get("data")
        if not isinstance(event_type, str):  # a list or an object is unhashable
            raise MalformedWebhook(f"Wave webhook type {event_type!r:.60} is not a string")
        expected = EVENT_TYPES.get(event_type)
        if expected is None:
            return []
        if isinstance(data, dict) and not is_record_id("pay", str(data.get("client_reference"))):
            return []  # a session another system made on the account: acknowledged (a 404 Wave would send again)
        try:
            event_id = check_id(event.get("id"), what="a Wave event's 'id'")
            update = session_update(data, provider_event_id=event_id)
        except InvalidReport as error:
            raise MalformedWebhook(f"Wave webhook {event_type!r} is not a report paycore takes: {error}") from None
        if (update.outcome is Outcome.SUCCEEDED) is not (expected is Outcome.SUCCEEDED):
            shown = update.outcome.value if update.outcome is not None else "unknown"
            raise MalformedWebhook(f"Wave webhook {event_type!r} describes a session that is {shown}")
        if expected is Outcome.FAILED:
            still_open = isinstance(data, dict) and data.get("checkout_status") == "open"
            update = _as_failed(update, session_open=still_open)
        return [update]


def _phone(payment: Payment) -> tuple[str, ...]:
    """The phone of the customer ``payment`` is for: Wave's error text about it may echo it, and none quotes it."""
    phone = payment.customer.phone if payment.customer is not None else None
    return (phone,) if isinstance(phone, str) and phone else ()


def _polled(data: object) -> ProviderUpdate:
    """A session a poll found, as a report: while it awaits the customer, with its launch URL as the next action.

    A session Wave shows without a ``wave_launch_url`` is still reported, with no next action.
    """
    offers_launch_url = isinstance(data, dict) and data.get("wave_launch_url") is not None
    return session_update(data, with_launch_url=offers_launch_url)


def _as_failed(update: ProviderUpdate, *, session_open: bool) -> ProviderUpdate:
    """``update`` as the failed attempt its event type says.

    While the session is open the customer may still pay it (Wave keeps it open
    after, say, insufficient funds): the payment stays PENDING. A session no
    longer open (complete, or expired after its failed attempt) fails it. The
    attempt's ``last_payment_error`` is the message either way.
    """
    state = dict(update.provider_state) if update.provider_state is not None else None
    message = update.message or "the customer's Wave payment failed"
    outcome = Outcome.PENDING if session_open else Outcome.FAILED
    return evolve(update, outcome=outcome, message=message, provider_state=state)


def _flag(value: object, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(f"{what} must be true or false, not {shown_setting(value)}")


def _optional_id(value: object, what: str) -> str | None:
    """``value`` if it is a non-empty id without control characters; ``None`` when unset."""
    if value is None:
        return None
    try:
        return check_id(value, what=what)
    except InvalidReport as error:
        raise ConfigurationError(str(error)) from None


def _transport(value: object, what: str) -> httpx.AsyncBaseTransport | None:
    """``value`` if it is an httpx async transport (the simulator's, in tests); ``None`` when unset."""
    if value is None or isinstance(value, httpx.AsyncBaseTransport):
        return value
    raise ConfigurationError(
        f"{what} must be an httpx.AsyncBaseTransport such as httpx.ASGITransport(app=WaveSimulator(...)), "
        f"not a value of type {type(value).__name__}"
    )
