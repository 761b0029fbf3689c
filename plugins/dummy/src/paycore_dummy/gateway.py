"""``DummyGateway``: the simulated gateway's state and rules, and the ASGI app that serves them.

Everything is held in memory. The gateway is an async context manager: inside
``async with gateway`` (or a server's lifespan) it owns a task group in which
webhooks are delivered, customers act after a delay and scenarios play out.
It is an ASGI application itself, so ``uvicorn`` serves it on a port and
``httpx.ASGITransport(app=gateway)`` reaches it in the same process.
"""

from __future__ import annotations

import secrets as _secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

import anyio
import httpx
from anyio.abc import TaskGroup

from paycore.errors import ConfigurationError, InvalidReport, ValidationError
from paycore.inputs import MAX_LINE_ITEMS, check_url
from paycore.secrets import Secret
from paycore.wire import check_id, shown
from paycore_dummy.delivery import DeliveryAttempt, GatewayEvent, RetryPolicy, WebhookSender
from paycore_dummy.errors import GatewayAlreadyRunning, GatewayApiError, GatewayNotRunning
from paycore_dummy.records import GatewayPayment, GatewayRefund
from paycore_dummy.scenarios import Scenario, scenario_for
from paycore_dummy.signing import WebhookSecret

__all__ = ["CUSTOMER_ACTIONS", "DummyGateway", "GatewayPayment", "GatewayRefund", "optional_text"]

CUSTOMER_ACTIONS: Final = ("approve", "decline", "abandon")
"""What a customer can do on the hosted checkout page or the phone page."""
CUSTOMER_METADATA_KEY: Final = "dummy_customer"
"""Metadata naming what a simulated customer does without a browser (``"approve"``)."""
METHODS: Final = ("card", "mobile_money")


def _now() -> datetime:
    return datetime.now(UTC)


def _gateway_id(prefix: str) -> str:
    return f"{prefix}_{_secrets.token_hex(10)}"


def _require_int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if not _whole(value, 1):
        raise GatewayApiError(
            400, "invalid_request", f"{key!r} must be a positive integer in minor units, not {value!r}"
        )
    return cast(int, value)  # _whole: an int


def optional_text(body: Mapping[str, Any], key: str) -> str | None:
    """A request body's ``key``: absent (``None``) or a string; 400 ``invalid_request`` otherwise."""
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise GatewayApiError(400, "invalid_request", f"{key!r} must be a string, not {shown(value)}")
    return value


def _reference(value: object) -> str:
    """A merchant's reference: an id paycore can read back (non-empty, no control characters); 400 otherwise."""
    try:
        return check_id(value, what="'reference'")
    except InvalidReport as exc:
        raise GatewayApiError(400, "invalid_request", str(exc)) from None


def _currency(body: Mapping[str, Any]) -> str:
    """The body's ``currency``: three ASCII letters, upper-cased (``"eur"`` is ``"EUR"``); 400 otherwise."""
    value = body.get("currency")
    if not isinstance(value, str) or len(value) != 3 or not (value.isascii() and value.isalpha()):
        raise GatewayApiError(
            400, "invalid_request", f"'currency' must be an ISO 4217 code of three letters A-Z, not {shown(value)}"
        )
    return value.upper()


def _http_url(body: Mapping[str, Any], key: str) -> str | None:
    """The body's ``key``: absent, or an absolute http(s) URL (the gateway sends someone to it); 400 otherwise."""
    value = body.get(key)
    if value is None:
        return None
    try:
        return check_url(value, what=repr(key))
    except ValidationError as exc:
        raise GatewayApiError(400, "invalid_request", str(exc)) from None


def _items(value: Any) -> list[dict[str, Any]]:
    """The basket a create carries: at most :data:`~paycore.inputs.MAX_LINE_ITEMS` lines, as paycore sends, each a
    name, a whole quantity from 1 and a whole unit price of zero or more in minor units (of any size: the pages show
    whatever a client sends)."""
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > MAX_LINE_ITEMS
        or not all(
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and _whole(item.get("quantity"), 1)
            and _whole(item.get("unit_price"), 0)
            for item in value
        )
    ):
        raise GatewayApiError(
            400,
            "invalid_request",
            f"'items' must be a list of at most {MAX_LINE_ITEMS} "
            "{name, quantity (a whole number from 1), unit_price (whole minor units from 0)}",
        )
    return [{"name": i["name"], "quantity": i["quantity"], "unit_price": i["unit_price"]} for i in value]


def _whole(value: object, least: int) -> bool:
    """Whether ``value`` is a whole number (not a boolean) of at least ``least``."""
    return type(value) is int and least <= value


class DummyGateway:
    """A simulated online payment gateway: REST API, hosted checkout page, signed webhooks.

    ``api_key`` is what merchants authenticate with (``Authorization: Bearer``);
    ``webhook_secrets`` the ``whsec_`` secrets webhooks are signed with (several
    while one is rotated: every delivery then carries one signature per
    secret). ``webhook_transport`` routes deliveries in the same process
    (``httpx.ASGITransport(app=paycore.asgi.create_app(flow))``); by default
    they go over real HTTP. ``timeout_delay`` is how long the gateway stalls in
    the ``timeout`` scenario; ``scenario_delay`` paces the ``late_success``
    and ``duplicate_webhooks`` scenarios; ``customer_delay`` is how long a
    simulated customer (metadata ``dummy_customer``) takes to act. Leaving
    ``async with gateway`` lets deliveries under way finish for up to
    ``drain_timeout`` seconds, then stops everything.
    """

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: str | Sequence[str],
        webhook_url: str | None = None,
        retry: RetryPolicy | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
        timeout_delay: float = 40.0,
        scenario_delay: float = 0.5,
        customer_delay: float = 0.1,
        drain_timeout: float = 5.0,
    ) -> None:
        if not api_key:
            raise ConfigurationError("the dummy gateway needs a non-empty api_key")
        self._api_key = Secret(api_key)
        self._secrets = WebhookSecret.parse_many(webhook_secrets)
        self.webhook_url = webhook_url
        """Where webhooks go when a payment names no ``webhook_url`` of its own."""
        self.retry = retry or RetryPolicy()
        self.timeout_delay = timeout_delay
        self.scenario_delay = scenario_delay
        self.customer_delay = customer_delay
        self.drain_timeout = drain_timeout
        self._in_flight = 0
        self.payments: dict[str, GatewayPayment] = {}
        self.events: list[GatewayEvent] = []
        """Every event the gateway emitted, in order (whether delivered or not)."""
        self._sender = WebhookSender(secrets=self._secrets, policy=self.retry, transport=webhook_transport)
        self._task_group: TaskGroup | None = None
        self._idempotency: dict[tuple[str, str], tuple[str, int, dict[str, Any]]] = {}
        from paycore_dummy.http import GatewayApp

        self._app = GatewayApp(self)

    def __repr__(self) -> str:
        return f"<DummyGateway payments={len(self.payments)} running={self.running}>"

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True inside ``async with gateway``."""
        return self._task_group is not None

    async def __aenter__(self) -> DummyGateway:
        if self._task_group is not None:
            raise GatewayAlreadyRunning("the dummy gateway is already running; enter 'async with gateway' once")
        await self._sender.__aenter__()
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        task_group = self._task_group
        if task_group is None:
            return
        try:
            if exc_type is None:
                with anyio.move_on_after(self.drain_timeout):
                    while self._in_flight:  # noqa: ASYNC110 - deliveries end on their own schedule
                        await anyio.sleep(0.01)
        finally:
            self._task_group = None
            task_group.cancel_scope.cancel()
            try:
                await task_group.__aexit__(None, None, None)
            finally:
                with anyio.CancelScope(shield=True):
                    await self._sender.__aexit__()

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        """The gateway as an ASGI application (HTTP and lifespan)."""
        await self._app(scope, receive, send)

    def _require_running(self) -> None:
        if self._task_group is None:
            raise GatewayNotRunning(
                "the dummy gateway is not running: use 'async with gateway' (or serve it with a lifespan)"
            )

    def _spawn(self, function: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        self._require_running()
        assert self._task_group is not None
        self._task_group.start_soon(function, *args)

    # -- what tests and tools look at -----------------------------------------------------

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every webhook delivery attempt so far."""
        return self._sender.attempts

    def check_api_key(self, presented: str | None) -> None:
        """Refuse (401) a request without the gateway's API key."""
        if presented is None or not _secrets.compare_digest(presented.encode(), self._api_key.reveal().encode()):
            raise GatewayApiError(401, "unauthorized", "missing or wrong API key")

    def payment(self, payment_id: str) -> GatewayPayment:
        """The payment with ``payment_id``; 404 if none."""
        try:
            return self.payments[payment_id]
        except KeyError:
            raise GatewayApiError(404, "not_found", f"no payment {payment_id!r}") from None

    def find(self, reference: str) -> list[GatewayPayment]:
        """Payments created with the merchant's ``reference``."""
        return [p for p in self.payments.values() if p.reference == reference]

    def remember(self, scope: str, key: str, fingerprint: str) -> tuple[int, dict[str, Any]] | None:
        """The stored answer for an idempotency key, or ``None``; 422 if it was used differently."""
        stored = self._idempotency.get((scope, key))
        if stored is None:
            return None
        if stored[0] != fingerprint:
            raise GatewayApiError(
                422, "idempotency_key_reused", f"Idempotency-Key {key!r} was used for another request"
            )
        return stored[1], stored[2]

    def store_answer(self, scope: str, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
        """Keep the answer given under an idempotency key, to replay it."""
        self._idempotency[(scope, key)] = (fingerprint, status, body)

    # -- the API's operations --------------------------------------------------------------

    def create_payment(self, body: Mapping[str, Any]) -> GatewayPayment:
        """Create a payment awaiting the customer; 400 on bad input, 503 in ``gateway_error``.

        A ``return_url`` (where the checkout page redirects the customer) and a
        ``webhook_url`` (where this payment's webhooks go) must be absolute http(s)
        URLs: ``javascript:``, ``data:``, scheme-relative and relative URLs are
        refused with 400, and nothing is recorded. So is a ``currency`` that is not
        three ASCII letters.
        """
        self._require_running()
        amount = _require_int(body, "amount")
        currency = _currency(body)
        if body.get("reference") is None:
            raise GatewayApiError(400, "invalid_request", "'reference' (the merchant's payment id) is required")
        reference = _reference(body["reference"])
        capture = body.get("capture", True)
        if not isinstance(capture, bool):
            raise GatewayApiError(400, "invalid_request", f"'capture' must be true or false, not {capture!r}")
        method = body.get("method", "card")
        if method not in METHODS:
            raise GatewayApiError(400, "invalid_request", f"'method' must be one of {METHODS}, not {method!r}")
        return_url = _http_url(body, "return_url")
        webhook_url = _http_url(body, "webhook_url")
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise GatewayApiError(400, "invalid_request", "'metadata' must be an object")
        customer_action = metadata.get(CUSTOMER_METADATA_KEY)
        if customer_action is not None and customer_action not in CUSTOMER_ACTIONS:
            raise GatewayApiError(
                400, "invalid_request", f"{CUSTOMER_METADATA_KEY!r} must be one of {CUSTOMER_ACTIONS}"
            )
        try:
            scenario = scenario_for(amount, metadata)
        except ValidationError as exc:
            raise GatewayApiError(400, "invalid_request", str(exc)) from None
        if scenario is Scenario.GATEWAY_ERROR:
            raise GatewayApiError(503, "gateway_error", "the gateway is having trouble; nothing was recorded")
        payment = GatewayPayment(
            id=_gateway_id("gpay"),
            reference=reference,
            amount=amount,
            currency=currency,
            capture=capture,
            method=method,
            scenario=scenario,
            description=optional_text(body, "description") or "",
            return_url=return_url,
            webhook_url=webhook_url or self.webhook_url,
            metadata=metadata,
            items=_items(body.get("items")),
            phone=optional_text(body, "phone"),
        )
        self.payments[payment.id] = payment
        if scenario is Scenario.TIMEOUT:
            # The gateway takes the money at once (a stored card) but will answer too late.
            self._settle(payment, approved=True)
        elif scenario is Scenario.LATE_SUCCESS:
            self._spawn(self._late_success, payment)
        elif customer_action is not None:
            self._spawn(self._simulated_customer, payment, customer_action)
        return payment

    def customer_action(self, payment_id: str, action: str) -> GatewayPayment:
        """What the customer did on the checkout or phone page: approve, decline, abandon."""
        self._require_running()
        payment = self.payment(payment_id)
        if action not in CUSTOMER_ACTIONS:
            raise GatewayApiError(400, "invalid_request", f"action must be one of {CUSTOMER_ACTIONS}, not {action!r}")
        if payment.status != "requires_action":
            raise GatewayApiError(
                409, "invalid_state", f"payment {payment.id} is {payment.status}; the customer cannot act on it"
            )
        if action == "approve":
            self._approve(payment)
        elif action == "decline":
            self._set(payment, "failed", failure_message="declined by the customer")
            self._emit(payment, "payment.failed")
        else:
            self._set(payment, "expired", failure_message="abandoned by the customer")
            self._emit(payment, "payment.expired")
        return payment

    def capture(self, payment_id: str, amount: int | None) -> GatewayPayment:
        """Capture ``amount`` (default: all) of an authorized payment; the rest is released."""
        self._require_running()
        payment = self.payment(payment_id)
        if payment.status != "authorized":
            raise GatewayApiError(409, "invalid_state", f"payment {payment.id} is {payment.status}, not authorized")
        amount = payment.authorized_amount if amount is None else amount
        if amount <= 0 or amount > payment.authorized_amount:
            raise GatewayApiError(
                400,
                "invalid_amount",
                f"capture amount {amount} must be between 1 and the authorized {payment.authorized_amount}",
            )
        payment.captured_amount = amount
        self._set(payment, "succeeded")
        self._emit(payment, "payment.succeeded")
        return payment

    def cancel(self, payment_id: str) -> GatewayPayment:
        """Cancel a payment not yet captured (the customer's page stops accepting)."""
        self._require_running()
        payment = self.payment(payment_id)
        if payment.status == "canceled":
            return payment
        if payment.status not in ("requires_action", "authorized"):
            raise GatewayApiError(
                409, "invalid_state", f"payment {payment.id} is {payment.status}; it cannot be canceled"
            )
        self._set(payment, "canceled")
        self._emit(payment, "payment.canceled")
        return payment

    def refund(self, payment_id: str, amount: int | None, reference: str | None, reason: str) -> GatewayRefund:
        """Refund ``amount`` (default: what is left) of a captured payment; one refund per ``reference``.

        A ``reference`` that is not an id (a list, an empty string, control
        characters) is refused with 400, and nothing is recorded.
        """
        self._require_running()
        payment = self.payment(payment_id)
        if reference is not None:
            reference = _reference(reference)
            for existing in payment.refunds:
                if existing.reference == reference:
                    return existing
        if payment.status != "succeeded":
            raise GatewayApiError(409, "invalid_state", f"payment {payment.id} is {payment.status}, not succeeded")
        left = payment.captured_amount - payment.refunded_amount
        amount = left if amount is None else amount
        if amount <= 0 or amount > left:
            raise GatewayApiError(
                400, "invalid_amount", f"refund amount {amount} must be between 1 and the refundable {left}"
            )
        refund = GatewayRefund(
            id=_gateway_id("gref"), reference=reference, amount=amount, status="succeeded", reason=reason
        )
        payment.refunds.append(refund)
        payment.updated_at = _now()
        self._emit(payment, "refund.succeeded", refund=refund)
        return refund

    # -- rules and scenarios ---------------------------------------------------------------

    def _set(self, payment: GatewayPayment, status: str, *, failure_message: str = "") -> None:
        payment.status = status
        payment.failure_message = failure_message
        payment.updated_at = _now()

    def _settle(self, payment: GatewayPayment, *, approved: bool) -> None:
        if not approved:
            self._set(payment, "failed", failure_message="insufficient funds")
            return
        payment.authorized_amount = payment.amount
        if payment.capture and payment.scenario is not Scenario.AUTHORIZE:
            payment.captured_amount = payment.amount
            self._set(payment, "succeeded")
        else:
            self._set(payment, "authorized")

    def _approve(self, payment: GatewayPayment) -> None:
        if payment.scenario is Scenario.DECLINE:
            self._settle(payment, approved=False)
            self._emit(payment, "payment.failed")
            return
        pending_data = payment.to_json(base_url="")
        self._settle(payment, approved=True)
        if payment.scenario is Scenario.DUPLICATE_WEBHOOKS:
            # The final event, then a stale one (what an earlier state looked like), then the final again.
            final = self._event(payment, f"payment.{payment.status}")
            if payment.status == "succeeded":
                stale_type, stale_data = (
                    "payment.authorized",
                    {**final.data, "status": "authorized", "captured_amount": 0},
                )
            else:
                stale_type, stale_data = "payment.pending", {**pending_data, "next_action": None}
            stale = GatewayEvent(id=_gateway_id("evt"), type=stale_type, data=stale_data, created_at=_now())
            self.events.extend((final, stale))
            if payment.sends_webhooks:
                assert payment.webhook_url is not None
                self._send(payment.webhook_url, (final, stale, final), self.scenario_delay)
            return
        self._emit(payment, f"payment.{payment.status}")

    def _send(self, url: str, events: Sequence[GatewayEvent], gap: float = 0.0) -> None:
        """Start delivering ``events`` in the background; counted as in flight from now."""
        self._require_running()
        self._in_flight += 1
        self._spawn(self._deliver, url, events, gap)

    async def _deliver(self, url: str, events: Sequence[GatewayEvent], gap: float) -> None:
        """Deliver ``events`` one after the other (``gap`` seconds apart), each until it lands."""
        try:
            for index, event in enumerate(events):
                if index and gap:
                    await anyio.sleep(gap)
                await self._sender.deliver(url, event)
        finally:
            self._in_flight -= 1

    async def _late_success(self, payment: GatewayPayment) -> None:
        await anyio.sleep(self.scenario_delay)
        if payment.status != "requires_action":
            return
        self._set(payment, "expired", failure_message="the customer did not approve in time")
        self._emit(payment, "payment.expired")
        await anyio.sleep(self.scenario_delay)
        if payment.status != "expired":
            return
        self._settle(payment, approved=True)
        payment.failure_message = ""
        self._emit(payment, f"payment.{payment.status}")

    async def _simulated_customer(self, payment: GatewayPayment, action: str) -> None:
        await anyio.sleep(self.customer_delay)
        if payment.status == "requires_action":
            self.customer_action(payment.id, action)

    def _event(self, payment: GatewayPayment, event_type: str, *, refund: GatewayRefund | None = None) -> GatewayEvent:
        data = payment.to_json(base_url="")
        data["next_action"] = None
        if refund is not None:
            data["refund"] = refund.to_json()
        return GatewayEvent(id=_gateway_id("evt"), type=event_type, data=data, created_at=_now())

    def _emit(self, payment: GatewayPayment, event_type: str, *, refund: GatewayRefund | None = None) -> None:
        event = self._event(payment, event_type, refund=refund)
        self.events.append(event)
        if payment.sends_webhooks:
            assert payment.webhook_url is not None
            self._send(payment.webhook_url, (event,))
