"""``DummyProvider``: paycore's side of the dummy gateway.

It calls the gateway's REST API with :mod:`httpx` (which works under asyncio
and trio), verifies each webhook's Standard Webhooks signature before parsing
it, and reports what the gateway said as :class:`~paycore.records.ProviderUpdate`.

Settings (``[providers.wave]`` with ``type = "dummy"``):

``base_url``
    The gateway's address, an absolute http(s) URL (``http://127.0.0.1:8765``); or, instead,
``gateway``
    a :class:`~paycore_dummy.gateway.DummyGateway` object, or the name under
    which one was registered with :func:`~paycore_dummy.inprocess.register_gateway`:
    the in-process mode, same code, no port.
``api_key``
    The gateway's API key (a secret).
``webhook_secret``
    The ``whsec_`` secret webhooks are signed with; during a rotation, the old
    and the new one separated by a space (a delivery verifying with either is
    accepted).
``webhook_url``
    Where the gateway should send this provider's webhooks; ``{tenant}`` and
    ``{code}`` are filled in (``https://shop.example/webhooks/{tenant}/{code}``).
    Defaults to the configuration's top-level ``webhook_url``.
``method``
    ``card`` (hosted checkout page, the default) or ``mobile_money`` (approve
    on the phone); the payment's metadata ``dummy_method`` overrides it.
``timeout``
    Seconds to wait for the gateway (default 10); ``webhook_tolerance``
    seconds of clock skew a webhook may have (default 300).

How a call ends: a 2xx answer is definitive; a 4xx is
:class:`~paycore_dummy.errors.GatewayRefused` (a
:class:`~paycore.errors.ProviderNotSent`: the gateway did nothing), but for a
status poll of the payment by its gateway id answered ``404 not_found``: the
gateway holds no such payment (purged, or an in-memory gateway restarted), a
fact about the payment reported as :attr:`~paycore.status.Outcome.NOT_FOUND`
(paycore flags a payment the gateway had named for an operator). A capture,
cancel or refund of a payment the gateway does not hold stays
``GatewayRefused``: nothing happened, and only a poll reports the payment
lost. A 5xx, a timeout after sending or an unreadable answer is
:class:`~paycore.errors.ProviderOutcomeUnknown`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import anyio
import httpx
from attrs import evolve

from paycore.config import webhook_url_for
from paycore.config_sources import read_webhook_url
from paycore.errors import (
    ConfigurationError,
    InvalidSignature,
    MalformedWebhook,
    MoneyError,
    ProviderNotSent,
    ProviderOutcomeUnknown,
)
from paycore.money import Money, currency_exponent
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import NextAction, Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.secrets import Secret, hide_phones, hide_secrets, redact_url, shown_setting
from paycore.status import Outcome, RefundStatus
from paycore.wire import InvalidReport, error_code, load_json_object, shown
from paycore_dummy.errors import GatewayRefused
from paycore_dummy.signing import DEFAULT_TOLERANCE, WebhookSecret, header_text, secret_texts, verify

__all__ = ["DummyProvider"]

IN_PROCESS_BASE_URL = "http://dummy-gateway.invalid"

_OUTCOMES = {
    "requires_action": Outcome.PENDING,
    "authorized": Outcome.AUTHORIZED,
    "succeeded": Outcome.SUCCEEDED,
    "failed": Outcome.FAILED,
    "canceled": Outcome.CANCELED,
    "expired": Outcome.EXPIRED,
}
_NOT_FOUND: Final = 404
_NO_SUCH_PAYMENT: Final = "not_found"
"""The gateway's status and code for a payment it does not hold."""
_REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
}
EVENT_STATUSES: Final = {
    "payment.pending": "requires_action",
    "payment.authorized": "authorized",
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "payment.canceled": "canceled",
    "payment.expired": "expired",
    "refund.succeeded": "succeeded",
}
"""The payment status each webhook type stands for: the type decides, and a body
whose ``data.status`` says otherwise is malformed."""


class DummyProvider(Provider):
    """The dummy gateway as a paycore provider: authorize/capture, cancel, refunds, webhooks, polling."""

    name: ClassVar[str] = "dummy"
    settings_names: ClassVar[frozenset[str] | None] = frozenset(
        {"api_key", "base_url", "gateway", "method", "timeout", "webhook_secret", "webhook_tolerance", "webhook_url"}
    )
    capabilities: ClassVar[Capabilities] = Capabilities(
        authorize_capture=True,
        partial_capture=True,
        cancel=True,
        refund=True,
        partial_refund=True,
        webhooks=True,
        polling=True,
        polls_report_refunds=True,  # the gateway's payment object lists every refund it holds, by paycore's id
        one_id_per_payment=True,  # one gateway payment (gpay_...) all its life: another is a second one, paid twice
    )

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        settings = context.settings
        self._api_key = Secret(settings.credential("api_key"))  # required: a clear error now, not at the first call
        raw_secrets = settings.secret("webhook_secret")
        try:
            self._secrets = WebhookSecret.parse_many(raw_secrets)
        except ConfigurationError as error:
            raise ConfigurationError(f"provider {context.code!r} (dummy): 'webhook_secret': {error}") from None
        self._hidden = (self._api_key, *map(Secret, secret_texts(raw_secrets)))  # never quoted from the gateway
        self._gateway_setting: Any = _gateway_setting(settings.get("gateway"), context.code)
        base_url = settings.url("base_url")
        # A Secret: its query may carry a token, never shown by what prints the provider's attributes.
        self._base_url: Secret | None = None if base_url is None else Secret(base_url)
        if (self._gateway_setting is None) == (self._base_url is None):
            raise ConfigurationError(
                f"provider {context.code!r} (dummy): set exactly one of 'base_url' (HTTP) or 'gateway' (in-process)"
            )
        self.webhook_url: str | None = (
            webhook_url_for(_webhook_url(settings.get("webhook_url"), context.code), context.tenant, context.code)
            or context.webhook_url
        )
        self.method: str = settings.get("method", "card")
        if self.method not in ("card", "mobile_money"):
            raise ConfigurationError(
                f"provider {context.code!r}: method must be 'card' or 'mobile_money', not {shown_setting(self.method)}"
            )
        self.timeout = settings.seconds("timeout", 10.0)
        self.webhook_tolerance = settings.seconds("webhook_tolerance", DEFAULT_TOLERANCE)
        self._client: httpx.AsyncClient | None = None

    # -- HTTP -------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"authorization": f"Bearer {self._api_key.reveal()}", "user-agent": "paycore-dummy"}
            if self._base_url is not None:
                self._client = httpx.AsyncClient(
                    base_url=self._base_url.reveal(), headers=headers, timeout=self.timeout
                )
            else:
                from paycore_dummy.inprocess import resolve_gateway

                gateway = resolve_gateway(self._gateway_setting)
                self._client = httpx.AsyncClient(
                    base_url=IN_PROCESS_BASE_URL,
                    headers=headers,
                    transport=httpx.ASGITransport(app=gateway),
                    timeout=self.timeout,
                )
        return self._client

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        params: Mapping[str, str] | None = None,
        about: Payment,
    ) -> Any:
        """One API call about the payment ``about``; the answer's JSON, or the error that says whether it was sent
        (the gateway's error text quoted without the secrets, nor the phone of the customer ``about`` is for)."""
        headers = {"idempotency-key": idempotency_key} if idempotency_key else {}
        try:
            client = self._http()
            request = client.build_request(method, path, json=body, headers=headers, params=params)
        except ConfigurationError as exc:
            raise ProviderNotSent(str(exc)) from None
        except Exception as exc:
            # Raised while the request was built, before anything was sent (a header value httpx cannot
            # encode, a body it cannot write): nothing happened at the gateway. The error's name only: its
            # text, and the error itself, may hold a header (the API key).
            raise ProviderNotSent(
                f"the request {method} {path} to the dummy gateway could not be built: {type(exc).__name__}"
            ) from None
        try:
            # Over HTTP, httpx's timeouts tell a connect timeout (not sent) from a read timeout
            # (unknown); the in-process transport ignores them, so the call is bounded here.
            with anyio.fail_after(self.timeout if self._base_url is None else None):
                response = await client.send(request)
        except (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.PoolTimeout,
            httpx.UnsupportedProtocol,
            httpx.InvalidURL,
            httpx.LocalProtocolError,
        ) as exc:
            # The request never left this process (or left it unfinished, so the gateway could not
            # act on it: a header httpx refuses to send): nothing happened at the gateway.
            where = redact_url(str(client.base_url))  # a token in its query is not quoted
            raise ProviderNotSent(f"dummy gateway at {where} not reached: {type(exc).__name__}") from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise ProviderOutcomeUnknown(
                f"dummy gateway did not answer {method} {path} within {self.timeout:g}s"
            ) from exc
        except httpx.TransportError as exc:
            # The error's name only: its text may quote a header, and so the API key.
            reason = f"dummy gateway connection failed during {method} {path}: {type(exc).__name__}"
            raise ProviderOutcomeUnknown(reason) from exc
        except httpx.RequestError as exc:
            # Sent, and its answer could not be read (a body its Content-Encoding does not decode): unknown.
            reason = f"the dummy gateway's answer to {method} {path} could not be read: {type(exc).__name__}"
            raise ProviderOutcomeUnknown(reason) from exc
        if not (200 <= response.status_code < 300 or 400 <= response.status_code < 500):
            # A server error, or a redirect (httpx follows none) or another answer that is not the gateway's
            # own: whether the call went on to act is not known. Never read as success.
            raise ProviderOutcomeUnknown(f"dummy gateway answered {response.status_code} to {method} {path}")
        try:
            data = load_json_object(response.content, what=f"the answer to {method} {path}")
        except MalformedWebhook as exc:
            raise ProviderOutcomeUnknown(f"dummy gateway answered {response.status_code}, unreadable: {exc}") from None
        if response.status_code >= 400:
            error = data.get("error")
            error = error if isinstance(error, dict) else {}
            phones = (about.customer.phone,) if about.customer is not None else ()
            shown_code, message = self._quoted(error, "code", 100, phones), self._quoted(error, "message", 500, phones)
            code = error_code(error.get("code"), shown_code)  # compared as the gateway wrote it, shown hidden
            raise GatewayRefused(response.status_code, code, message, shown_code=shown_code)
        return data

    def _quoted(self, error: Mapping[str, Any], field: str, limit: int, phones: tuple[str | None, ...]) -> str:
        """A ``field`` of the gateway's error, at most ``limit`` characters, with every secret and each of
        ``phones`` shown as ``***``."""
        return hide_phones(hide_secrets(str(error.get(field, "")), self._hidden), phones)[:limit]

    async def aclose(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- operations -------------------------------------------------------------------------

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Create the payment at the gateway; the customer's next action is its checkout or phone page."""
        metadata = {str(k): v for k, v in payment.metadata.items()}
        method = str(metadata.get("dummy_method", self.method))
        body: dict[str, Any] = {
            "amount": payment.amount.minor_units,
            "currency": payment.currency,
            "reference": payment.id,
            "capture": payment.capture,
            "method": method,
            "description": payment.description,
            "return_url": payment.return_url,
            "webhook_url": self.webhook_url,
            "metadata": metadata,
        }
        if payment.items:
            body["items"] = [
                {"name": item.name, "quantity": item.quantity, "unit_price": item.unit_price.minor_units}
                for item in payment.items
            ]
        if payment.customer is not None and payment.customer.phone:
            body["phone"] = payment.customer.phone
        data = await self._call(
            "POST", "/v1/payments", body=body, idempotency_key=f"{payment.id}:initiate", about=payment
        )
        return self._update(data, payment)

    async def capture(self, payment: Payment, amount: Money) -> ProviderUpdate:
        """Capture ``amount`` of an authorized payment (partial captures release the rest)."""
        data = await self._call(
            "POST",
            f"/v1/payments/{self._external_id(payment)}/capture",
            body={"amount": amount.minor_units},
            idempotency_key=f"{payment.id}:capture:{amount.minor_units}",
            about=payment,
        )
        return self._update(data, payment)

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        """Cancel a payment not yet captured."""
        data = await self._call(
            "POST",
            f"/v1/payments/{self._external_id(payment)}/cancel",
            idempotency_key=f"{payment.id}:cancel",
            about=payment,
        )
        return self._update(data, payment)

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Refund ``refund.amount``; the gateway keeps one refund per paycore refund id."""
        data = await self._call(
            "POST",
            f"/v1/payments/{self._external_id(payment)}/refunds",
            body={"amount": refund.amount.minor_units, "reference": refund.id, "reason": refund.reason},
            idempotency_key=f"{payment.id}:refund:{refund.id}",
            about=payment,
        )
        return self._refund_update(data, payment.currency)

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """Ask the gateway: by its id when known, else by paycore's payment id (a lost create, or one still on its
        way). :attr:`~paycore.status.Outcome.NOT_FOUND` when the gateway has none: its search finds nothing, or it
        answers ``404 not_found`` for its own id (it lost the payment: the core flags it, never reads it as a poll
        that could not be sent, which would count toward taking the gateway for down)."""
        if payment.external_id:
            try:
                data = await self._call("GET", f"/v1/payments/{payment.external_id}", about=payment)
            except GatewayRefused as refused:
                if refused.status == _NOT_FOUND and refused.code == _NO_SUCH_PAYMENT:
                    return ProviderUpdate(
                        outcome=Outcome.NOT_FOUND, message=f"the gateway has no payment {payment.external_id}"
                    )
                raise
            return self._update(data, payment)
        found = await self._call("GET", "/v1/payments", params={"reference": payment.id}, about=payment)
        matches = found.get("data") if isinstance(found, dict) else None
        if not isinstance(matches, list):
            raise ProviderOutcomeUnknown("dummy gateway answered a search without a 'data' list")
        if not matches:  # not yet, or never: the core concludes "never" only once no create can still arrive
            return ProviderUpdate(outcome=Outcome.NOT_FOUND, message="the gateway has no payment with this reference")
        return self._update(matches[-1], payment)

    # -- webhooks ---------------------------------------------------------------------------

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Refuse a delivery whose Standard Webhooks signature is missing, stale or wrong."""
        if not isinstance(body, bytes | bytearray | memoryview):
            raise InvalidSignature(f"webhook refused: the body must be bytes, not {type(body).__name__}")
        verify(bytes(body), headers, secrets=self._secrets, tolerance=self.webhook_tolerance)

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """The payment the event describes, as the gateway saw it when the event happened.

        The event's ``type`` decides the outcome (:data:`EVENT_STATUSES`); a body
        whose ``data.status`` contradicts it, or any value paycore cannot accept,
        is :class:`~paycore.errors.MalformedWebhook`. The customer's next action
        is never taken from a webhook (the gateway sends it only in its answer
        to the create).
        """
        event = load_json_object(body, what="dummy webhook body")
        event_type, data = event.get("type"), event.get("data")
        if not isinstance(event_type, str) or not event_type or not isinstance(data, dict):
            raise MalformedWebhook("dummy webhook must be an object with 'type' and 'data'")
        status = EVENT_STATUSES.get(event_type)
        if status is None:
            raise MalformedWebhook(f"dummy webhook type {event_type!r:.60} is not one of {sorted(EVENT_STATUSES)}")
        if data.get("status") != status:
            raise MalformedWebhook(
                f"dummy webhook {event_type!r} says the payment is {data.get('status')!r:.40}; it must say {status!r}"
            )
        if event_type.startswith("refund.") and not _is_succeeded_refund(data.get("refund")):
            raise MalformedWebhook(f"dummy webhook {event_type!r} must carry data.refund with status 'succeeded'")
        currency, reference = data.get("currency"), data.get("reference")
        if not isinstance(currency, str) or not isinstance(reference, str):
            raise MalformedWebhook("dummy webhook data names no payment reference or currency")
        raw_event_id = headers.get("webhook-id")
        event_id = header_text(raw_event_id) if isinstance(raw_event_id, str) and raw_event_id else event.get("id")
        try:
            update = _read_payment(data, currency, with_next_action=False)
            return [evolve(update, payment_id=reference, provider_event_id=event_id)]
        except (InvalidReport, MoneyError) as exc:
            raise MalformedWebhook(f"dummy webhook data is unreadable: {exc}") from None

    # -- mapping ----------------------------------------------------------------------------

    def _external_id(self, payment: Payment) -> str:
        if not payment.external_id:
            raise GatewayRefused(404, "not_found", f"payment {payment.id} has no gateway id yet")
        return payment.external_id

    def _update(self, data: Any, payment: Payment) -> ProviderUpdate:
        """An API answer as an update; an answer paycore cannot accept leaves the outcome unknown."""
        try:
            return _read_payment(data, payment.currency, with_next_action=True)
        except (InvalidReport, MoneyError) as exc:
            raise ProviderOutcomeUnknown(f"dummy gateway answered something unreadable: {exc}") from None

    def _refund_update(self, data: Any, currency: str) -> RefundUpdate:
        try:
            return _read_refund(data, currency)
        except (InvalidReport, MoneyError) as exc:
            raise ProviderOutcomeUnknown(f"dummy gateway answered something unreadable: {exc}") from None


def _webhook_url(value: Any, code: str) -> str | None:
    """The ``webhook_url`` setting, checked as the configuration's own ``webhook_url`` is."""
    try:
        return read_webhook_url(value)
    except ConfigurationError as error:
        raise ConfigurationError(f"provider {code!r} (dummy): {error}") from None


def _gateway_setting(value: Any, code: str) -> Any:
    """The ``gateway`` setting: unset, a registered name or a gateway object (resolved at the first call)."""
    if value is None or (isinstance(value, str) and value):
        return value
    from paycore_dummy.gateway import DummyGateway

    if isinstance(value, DummyGateway):
        return value
    raise ConfigurationError(
        f"provider {code!r} (dummy): 'gateway' must be a DummyGateway or the non-empty name it was "
        f"registered under, not {shown(value) if isinstance(value, str) else type(value).__name__}"
    )


def _read_payment(data: Any, fallback_currency: str, *, with_next_action: bool) -> ProviderUpdate:
    """A gateway payment object as a :class:`ProviderUpdate`: only what it says, checked as it is built.

    Raises :class:`~paycore.wire.InvalidReport` (or a ``MoneyError`` for an
    unknown currency or an amount beyond any store) for a value paycore cannot accept.
    """
    if not isinstance(data, dict) or _status_of(data) not in _OUTCOMES:
        raise InvalidReport(f"dummy gateway payment has an unknown status {_raw_status(data)!r:.40}")
    currency = data.get("currency", fallback_currency)
    currency_exponent(currency)  # UnknownCurrency names what is wrong
    refunds = data.get("refunds", [])
    if not isinstance(refunds, list):
        raise InvalidReport(f"dummy gateway payment 'refunds' must be a list, not {type(refunds).__name__}")
    message = data.get("failure_message")
    outcome = _OUTCOMES[data["status"]]
    return ProviderUpdate(
        outcome=outcome,
        external_id=data.get("id"),
        authorized=_money(data.get("authorized_amount"), currency),
        captured=_money(data.get("captured_amount"), currency),
        next_action=_next_action(data.get("next_action")) if with_next_action else None,
        refunds=tuple(_read_refund(r, currency) for r in refunds),
        message="" if message is None else message,
    )


def _read_refund(data: Any, currency: str) -> RefundUpdate:
    """A gateway refund object as a :class:`RefundUpdate`.

    A refund naming neither its gateway ``id`` nor paycore's ``reference`` is
    refused: it could not be told from another refund of the same amount, so
    each delivery of it would count as a new one.
    """
    if not isinstance(data, dict) or _status_of(data) not in _REFUND_STATUSES:
        raise InvalidReport(f"dummy gateway refund has an unknown status {_raw_status(data)!r:.40}")
    if data.get("id") is None and data.get("reference") is None:
        raise InvalidReport("dummy gateway refund names neither its 'id' nor its 'reference'")
    return RefundUpdate(
        status=_REFUND_STATUSES[data["status"]],
        refund_id=data.get("reference"),
        external_id=data.get("id"),
        amount=_money(data.get("amount"), currency),
    )


def _is_succeeded_refund(data: Any) -> bool:
    return isinstance(data, dict) and data.get("status") == "succeeded"


def _raw_status(data: Any) -> Any:
    return data.get("status") if isinstance(data, dict) else data


def _status_of(data: Any) -> str | None:
    """The ``status`` string of a gateway object; None when it has none (or one of another type)."""
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else None


def _money(value: Any, currency: str) -> Money | None:
    """An amount in minor units as ``Money``; ``None`` when the gateway reports none.

    The gateway writes ``0`` for an amount that has not moved (nothing captured
    yet), so ``0`` and a missing amount both mean "not reported": never "all of it".
    """
    if value is None or (type(value) is int and value == 0):
        return None
    if type(value) is not int:
        raise InvalidReport(f"an amount in minor units must be an integer, not {value!r:.40}")
    return Money.minor(value, currency)


def _next_action(data: Any) -> NextAction | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidReport(f"dummy gateway 'next_action' must be an object or null, not {type(data).__name__}")
    kind = data.get("type")
    if kind == "approve_on_phone":
        return NextAction(kind="ussd", url=data.get("url"), data=data.get("ussd_code"), message=data.get("message"))
    if kind == "redirect":
        return NextAction(kind="redirect", url=data.get("url"))
    raise InvalidReport(f"dummy gateway 'next_action' type must be 'redirect' or 'approve_on_phone', not {kind!r:.40}")
