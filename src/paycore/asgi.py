"""paycore's webhook endpoint for any ASGI framework, with no framework of its own.

:func:`create_app` returns an ASGI application that Starlette, FastAPI or
Litestar mount as is (``app.mount("/webhooks", create_app(flow))``), or that a
server such as uvicorn or hypercorn runs alone. It routes

* ``POST {prefix}/{provider}`` to ``flow.handle_webhook(provider, body, headers)``;
* ``POST {prefix}/{tenant}/{provider}`` to the same, scoped to ``tenant``,

and answers:

* ``200`` only once the event is committed (a repeated delivery is a no-op, also 200);
* ``401`` for a missing, stale or wrong signature; ``400`` for a body, headers
  or a report it cannot accept (malformed JSON, a negative amount, an id of the
  wrong type...); ``404`` for an unknown provider or payment; ``405``,
  ``413`` for the wrong method or a body above the flow's ``webhook_max_bytes``;
* ``503`` when storage is unavailable or the payment is busy, so the sender
  retries later; ``500`` only for a failure on this side (a bug, a crashed
  plugin), without details. Nothing a delivery sends ends in a 500.

Error bodies are short JSON objects: ``{"error": "invalid_signature", "detail": "..."}``.
A ``404`` says ``not found`` and the provider code, nothing more: an unknown
payment and another tenant's payment get the same answer.
With ``manage_flow=True`` (the default) the app's lifespan opens and closes the
flow (``async with flow``), for servers that send lifespan events; a close that
fails is answered ``lifespan.shutdown.failed``. A WebSocket upgrade is refused
(closed before it is accepted: the server answers 403).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

from paycore.config import DEFAULT_WEBHOOK_MAX_BYTES
from paycore.errors import (
    ConcurrentUpdate,
    FlowClosed,
    IdempotencyInProgress,
    InvalidSignature,
    MoneyError,
    NotFound,
    PaymentBusy,
    ProviderNotEnabled,
    StorageError,
    UnsupportedOperation,
    ValidationError,
    WebhookError,
    WebhookTooLarge,
)
from paycore.logs import guarded_logger
from paycore.wire import InvalidReport, quoted

if TYPE_CHECKING:
    from paycore.flow import PaymentFlow

__all__ = ["MAX_BODY_BYTES", "WebhookApp", "classify_webhook_error", "create_app", "declared_body_size"]

log = guarded_logger("paycore.asgi")

MAX_BODY_BYTES: Final = DEFAULT_WEBHOOK_MAX_BYTES
"""The default largest webhook body (1 MiB); the flow's ``webhook_max_bytes`` sets it, larger ones get 413."""
MAX_DETAIL_CHARS: Final = 300
"""Error details are cut to this many characters."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _Refusal(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


class _Disconnected(Exception):
    """The sender went away before its body was complete: there is no one to answer."""


class WebhookApp:
    """The ASGI webhook endpoint of one :class:`~paycore.flow.PaymentFlow` (see :func:`create_app`)."""

    def __init__(
        self,
        flow: PaymentFlow,
        *,
        prefix: str = "",
        manage_flow: bool = True,
        max_body_bytes: int | None = None,
    ) -> None:
        self.flow = flow
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.manage_flow = manage_flow
        self._max_body_bytes = max_body_bytes

    @property
    def max_body_bytes(self) -> int:
        """The largest body read: the flow's ``webhook_max_bytes`` unless the app was given its own."""
        if self._max_body_bytes is not None:
            return self._max_body_bytes
        return self.flow.config.webhook_max_bytes

    def __repr__(self) -> str:
        return f"<WebhookApp prefix={self.prefix!r} flow={self.flow!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection: ``http`` requests and ``lifespan`` events; a WebSocket is refused."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await _refuse_websocket(scope, receive, send)
        # Other connection types are not served: returning ends them.

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        if not self.manage_flow:
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        try:
            await self.flow.__aenter__()
        except Exception as error:
            log.exception("could not open the payment flow")
            await send({"type": "lifespan.startup.failed", "message": f"{type(error).__name__}: {error}"})
            return
        try:
            await send({"type": "lifespan.startup.complete"})
            await receive()
        except BaseException:
            await self._close_flow()  # the server gave up on the lifespan: the flow is closed all the same
            raise
        failure = await self._close_flow()
        if failure is None:
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await send({"type": "lifespan.shutdown.failed", "message": f"{type(failure).__name__}: {failure}"})

    async def _close_flow(self) -> Exception | None:
        """Close the flow; what its close raised, logged, or None."""
        try:
            await self.flow.__aexit__(None, None, None)
        except Exception as error:
            log.exception("could not close the payment flow")
            return error
        return None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = ""
        try:
            tenant, provider = self._route(scope)
            headers = _headers(scope)
            body = await self._body(receive, headers.get("content-length"))
            payments = await self.flow.handle_webhook(provider, body, headers, tenant=tenant)
        except _Disconnected:
            return
        except _Refusal as refusal:  # the door's own refusal, before the flow saw the delivery
            log.info("webhook %s refused: %s %s", quoted(scope.get("path", "")), refusal.status, refusal.error)
            await _respond(
                send,
                refusal.status,
                {"error": refusal.error, "detail": refusal.detail},
                allow=refusal.status == 405,
                head=scope.get("method") == "HEAD",
            )
            return
        except Exception as error:
            status, name, detail = classify_webhook_error(error, provider)
            if status == 500:
                log.exception("webhook %s failed", quoted(scope.get("path", "")))
            elif status == 503:
                log.warning("webhook %s answered 503: %s", quoted(scope.get("path", "")), type(error).__name__)
            await _respond(send, status, {"error": name, "detail": detail}, retry_after=status == 503)
            return
        await _respond(send, 200, {"received": True, "payments": [p.id for p in payments]})

    def _route(self, scope: Scope) -> tuple[str | None, str]:
        path: str = scope.get("path", "")
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if self.prefix:
            if path != self.prefix and not path.startswith(self.prefix + "/"):
                raise _Refusal(404, "not_found", "no webhook endpoint at this path")
            path = path[len(self.prefix) :]
        parts = [part for part in path.split("/") if part]
        if len(parts) not in (1, 2):
            raise _Refusal(404, "not_found", "webhook paths are /{provider} or /{tenant}/{provider}")
        if scope.get("method") != "POST":
            raise _Refusal(405, "method_not_allowed", "webhooks are delivered with POST")
        if len(parts) == 1:
            return None, parts[0]
        return parts[0], parts[1]

    async def _body(self, receive: Receive, declared_length: str | None) -> bytes:
        limit = self.max_body_bytes
        too_large = _Refusal(413, "body_too_large", f"webhook bodies are limited to {limit} bytes")
        declared = declared_body_size(declared_length)
        if declared is not None and declared > limit:
            raise too_large  # refused unread
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def create_app(
    flow: PaymentFlow, *, prefix: str = "", manage_flow: bool = True, max_body_bytes: int | None = None
) -> WebhookApp:
    """An ASGI app receiving webhooks for ``flow`` under ``prefix``.

    ``manage_flow``: open and close the flow in the ASGI lifespan (set it to
    ``False`` when the flow is opened elsewhere, or mounted under a framework
    that does not forward lifespan events to mounted apps). ``max_body_bytes``:
    a limit of the app's own, instead of the flow's ``webhook_max_bytes``
    (the flow refuses bodies above its own limit whatever the app reads).
    """
    return WebhookApp(flow, prefix=prefix, manage_flow=manage_flow, max_body_bytes=max_body_bytes)


async def _refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """Refuse a WebSocket upgrade: closed before it is accepted, the server answers it 403 (and logs no error,
    as it does for an app that returns without a word)."""
    if (await receive())["type"] != "websocket.connect":
        return  # the client went away first
    log.info("websocket %s refused: webhooks are delivered with POST", quoted(scope.get("path", "")))
    await send({"type": "websocket.close"})


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def classify_webhook_error(error: Exception, provider: str) -> tuple[int, str, str]:
    """The status, error name and safe detail for an exception raised while handling a webhook.

    Whatever a delivery holds ends in a 4xx: a refused signature, report or
    amount is the sender's to fix. A 404 names the provider code only, so it
    never tells whether a payment exists for another tenant.
    """
    if isinstance(error, InvalidSignature):
        return 401, "invalid_signature", _short(str(error))
    if isinstance(error, WebhookTooLarge):
        return 413, "body_too_large", _short(str(error))
    if isinstance(error, WebhookError | InvalidReport | MoneyError):
        return 400, "malformed_webhook", _short(str(error))
    if isinstance(error, ProviderNotEnabled | NotFound):
        return 404, "not_found", _short(f"not found (provider {provider!r})")
    if isinstance(error, UnsupportedOperation):
        return 400, "unsupported", _short(str(error))
    if isinstance(error, ValidationError):
        return 400, "refused", _short(str(error))
    if isinstance(error, StorageError):
        return 503, "storage_unavailable", "storage is unavailable; retry later"
    if isinstance(error, FlowClosed):
        return 503, "closed", "the service is shutting down; retry later"
    if isinstance(error, PaymentBusy | ConcurrentUpdate | IdempotencyInProgress):
        return 503, "busy", "the payment is busy; retry later"
    return 500, "internal_error", "the webhook could not be processed; retry later"


def declared_body_size(content_length: str | None) -> int | None:
    """The body size a ``content-length`` header declares, or None when it declares none that is readable
    (absent, or not a number of bytes); a size past any limit reads as ``10**20``."""
    value = (content_length or "").strip()
    if not value.isascii() or not value.isdigit():
        return None
    return int(value) if len(value) <= 20 else 10**20


def _short(detail: str) -> str:
    return detail if len(detail) <= MAX_DETAIL_CHARS else detail[: MAX_DETAIL_CHARS - 3] + "..."


async def _respond(
    send: Send,
    status: int,
    body: dict[str, Any],
    *,
    retry_after: bool = False,
    allow: bool = False,
    head: bool = False,
) -> None:
    """Send ``body`` as JSON with ``status``; ``allow``: name POST, the one method (a 405 must);
    ``head``: the headers alone, as a HEAD request is answered."""
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else payload})
