"""The gateway's ASGI app: a small router over :class:`~paycore_dummy.gateway.DummyGateway`.

REST API (JSON, ``Authorization: Bearer <api_key>``, optional ``Idempotency-Key``)::

    POST /v1/payments                    create (201)
    GET  /v1/payments?reference=...     find by the merchant's reference
    GET  /v1/payments/{id}               status
    POST /v1/payments/{id}/capture       {"amount": optional}
    POST /v1/payments/{id}/cancel
    POST /v1/payments/{id}/refunds       {"amount": optional, "reference": ..., "reason": ...}

Pages for the customer: ``GET/POST /checkout/{id}`` and ``GET/POST /phone/{id}``. A browser (asking for
``text/html``) refused on them gets a page saying why, with the same status; API clients get JSON. Every
``GET`` route answers ``HEAD`` too. Pages may not be framed by another site (``frame-ancestors 'none'``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import anyio
from attrs import frozen

from paycore.errors import MalformedWebhook
from paycore.wire import load_json_object
from paycore_dummy import pages
from paycore_dummy.errors import GatewayApiError, GatewayNotRunning
from paycore_dummy.gateway import optional_text
from paycore_dummy.scenarios import Scenario

if TYPE_CHECKING:
    from paycore_dummy.gateway import DummyGateway

__all__ = ["GatewayApp", "Request", "Response"]

MAX_BODY: Final = 1 << 20

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@frozen
class Request:
    """An HTTP request, read whole."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    base_url: str
    """Scheme, host and mount point: what the gateway's own URLs start with."""
    root_path: str = ""

    def json(self) -> dict[str, Any]:
        """The body as a JSON object; 400 ``invalid_json`` otherwise.

        The body is read as strictly as paycore reads a gateway's answers
        (:func:`paycore.wire.load_json_object`): invalid UTF-8, deep nesting,
        duplicate keys, ``NaN`` and lone surrogates are refused too.
        """
        if not self.body:
            return {}
        try:
            return load_json_object(self.body, what="the body")
        except MalformedWebhook as exc:
            raise GatewayApiError(400, "invalid_json", str(exc)) from None

    def form(self) -> dict[str, str]:
        """The body as an HTML form."""
        return {key: values[-1] for key, values in parse_qs(self.body.decode("utf-8", "replace")).items()}


@frozen
class Response:
    """An HTTP response."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    location: str | None = None

    @classmethod
    def json(cls, status: int, data: Any) -> Response:
        """A JSON response."""
        return cls(status, json.dumps(data).encode())

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        """An HTML page."""
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def redirect(cls, url: str) -> Response:
        """A 303 See Other (after a form post)."""
        return cls(303, b"", "text/plain", location=url)


Handler = Callable[[Request, "re.Match[str]"], Awaitable[Response]]


class _Disconnected(Exception):
    """The client went away before its body was complete: the request is neither dispatched nor answered."""


class GatewayApp:
    """ASGI app serving a :class:`DummyGateway` (with lifespan: starts and stops the gateway)."""

    def __init__(self, gateway: DummyGateway) -> None:
        self.gateway = gateway
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/"), self._index),
            ("GET", re.compile(r"/health"), self._health),
            ("POST", re.compile(r"/v1/payments"), self._create),
            ("GET", re.compile(r"/v1/payments"), self._find),
            ("GET", re.compile(r"/v1/payments/(?P<id>[\w-]+)"), self._get),
            ("POST", re.compile(r"/v1/payments/(?P<id>[\w-]+)/capture"), self._capture),
            ("POST", re.compile(r"/v1/payments/(?P<id>[\w-]+)/cancel"), self._cancel),
            ("POST", re.compile(r"/v1/payments/(?P<id>[\w-]+)/refunds"), self._refund),
            ("GET", re.compile(r"/(?P<page>checkout|phone)/(?P<id>[\w-]+)"), self._page),
            ("POST", re.compile(r"/(?P<page>checkout|phone)/(?P<id>[\w-]+)"), self._act),
        ]

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request: Request | None = None
        try:
            request = await _read_request(scope, receive)
            response = await self._dispatch(request)
        except _Disconnected:
            return
        except GatewayApiError as exc:
            response = _refusal(request, exc)
        except GatewayNotRunning as exc:
            response = _refusal(request, GatewayApiError(503, "not_running", str(exc)))
        await _send_response(send, response, head=scope.get("method") == "HEAD")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":
            return
        if self.gateway.running:  # started by its owner already: nothing to do
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        async with self.gateway:
            await send({"type": "lifespan.startup.complete"})
            await receive()
        await send({"type": "lifespan.shutdown.complete"})

    async def _dispatch(self, request: Request) -> Response:
        allowed = False
        wanted = "GET" if request.method == "HEAD" else request.method  # HEAD: a GET's answer without its body
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method == wanted:
                return await handler(request, match)
            allowed = True
        if allowed:
            raise GatewayApiError(405, "method_not_allowed", f"{request.method} is not allowed on {request.path}")
        raise GatewayApiError(404, "no_route", f"no route {request.path}")  # not_found: no such payment

    def _authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        self.gateway.check_api_key(token if scheme.lower() == "bearer" else None)

    async def _idempotent(
        self, request: Request, scope: str, operation: Callable[[], tuple[int, dict[str, Any]]]
    ) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return Response.json(*operation())
        fingerprint = hashlib.sha256(request.body).hexdigest()
        stored = self.gateway.remember(scope, key, fingerprint)
        if stored is not None:
            return Response.json(*stored)
        status, body = operation()
        self.gateway.store_answer(scope, key, fingerprint, status, body)
        return Response.json(status, body)

    # -- handlers --------------------------------------------------------------------------

    async def _index(self, request: Request, match: re.Match[str]) -> Response:
        return Response.html(pages.index_page(list(self.gateway.payments.values()), request.root_path))

    async def _health(self, request: Request, match: re.Match[str]) -> Response:
        return Response.json(200, {"ok": True, "running": self.gateway.running})

    async def _create(self, request: Request, match: re.Match[str]) -> Response:
        self._authenticate(request)
        body = request.json()
        created: list[Any] = []

        def create() -> tuple[int, dict[str, Any]]:
            payment = self.gateway.create_payment(body)
            created.append(payment)
            return 201, payment.to_json(request.base_url)

        response = await self._idempotent(request, "create", create)
        if created and created[0].scenario is Scenario.TIMEOUT:
            await anyio.sleep(self.gateway.timeout_delay)
        return response

    async def _find(self, request: Request, match: re.Match[str]) -> Response:
        self._authenticate(request)
        reference = request.query.get("reference", [""])[-1]
        if not reference:
            raise GatewayApiError(400, "invalid_request", "'reference' query parameter is required")
        found = [p.to_json(request.base_url) for p in self.gateway.find(reference)]
        return Response.json(200, {"data": found})

    async def _get(self, request: Request, match: re.Match[str]) -> Response:
        self._authenticate(request)
        return Response.json(200, self.gateway.payment(match["id"]).to_json(request.base_url))

    async def _capture(self, request: Request, match: re.Match[str]) -> Response:
        self._authenticate(request)
        body = request.json()
        amount = body.get("amount")
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            raise GatewayApiError(400, "invalid_request", f"'amount' must be an integer, not {amount!r}")

        def capture() -> tuple[int, dict[str, Any]]:
            return 200, self.gateway.capture(match["id"], amount).to_json(request.base_url)

        return await self._idempotent(request, f"capture:{match['id']}", capture)

    async def _cancel(self, request: Request, match: re.Match[str]) -> Response:
        self._authenticate(request)

        def cancel() -> tuple[int, dict[str, Any]]:
            return 200, self.gateway.cancel(match["id"]).to_json(request.base_url)

        return await self._idempotent(request, f"cancel:{match['id']}", cancel)

    async def _refund(self, request: Request, match: re.Match[str]) -> Response:
        self._authenticate(request)
        body = request.json()
        amount = body.get("amount")
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            raise GatewayApiError(400, "invalid_request", f"'amount' must be an integer, not {amount!r}")
        reference = body.get("reference")
        reason = optional_text(body, "reason") or ""

        def refund() -> tuple[int, dict[str, Any]]:
            made = self.gateway.refund(match["id"], amount, reference, reason)
            return 201, made.to_json()

        return await self._idempotent(request, f"refund:{match['id']}", refund)

    async def _page(self, request: Request, match: re.Match[str]) -> Response:
        payment = self.gateway.payment(match["id"])
        render = pages.phone_page if match["page"] == "phone" else pages.checkout_page
        return Response.html(render(payment))

    async def _act(self, request: Request, match: re.Match[str]) -> Response:
        action = request.form().get("action", "")
        payment = self.gateway.customer_action(match["id"], action)
        if payment.return_url and match["page"] == "checkout":
            return Response.redirect(_with_query(payment.return_url, payment=payment.reference, status=payment.status))
        return Response.redirect(f"{request.root_path}/{match['page']}/{payment.id}")


_CUSTOMER_PAGE: Final = re.compile(r"/(?:checkout|phone)/[\w-]+")


def _refusal(request: Request | None, refused: GatewayApiError) -> Response:
    """The answer to a refused request: a page saying why to a browser on a customer's page, else JSON."""
    if (
        request is not None
        and _CUSTOMER_PAGE.fullmatch(request.path)
        and "text/html" in request.headers.get("accept", "")
    ):
        again = f"{request.root_path}{request.path}" if refused.status == 409 else None  # a stale tab: show it as it is
        return Response.html(pages.refusal_page(refused.message, again=again), refused.status)
    return Response.json(refused.status, {"error": {"code": refused.code, "message": refused.message}})


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))


async def _read_request(scope: MutableMapping[str, Any], receive: Receive) -> Request:
    """The request, its body read whole; :class:`_Disconnected` if the client left before the body's end."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise GatewayApiError(413, "too_large", f"the body exceeds {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    host = headers.get("host") or "{}:{}".format(*(scope.get("server") or ("localhost", 80)))
    root_path = scope.get("root_path", "")
    path = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :] or "/"
    return Request(
        method=scope["method"],
        path=path,
        query=parse_qs(scope.get("query_string", b"").decode("latin-1")),
        headers=headers,
        body=b"".join(chunks),
        base_url=f"{scope.get('scheme', 'http')}://{host}{root_path}",
        root_path=root_path,
    )


_PAGE_HEADERS: Final = [
    (b"x-frame-options", b"DENY"),  # no other site frames the customer's buttons (clickjacking)
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"same-origin"),  # the page's address is not sent to the merchant's return URL
]


async def _send_response(send: Send, response: Response, *, head: bool = False) -> None:
    """Send ``response``; ``head``: its headers alone (the length its body would have)."""
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    if response.content_type.startswith("text/html"):
        headers += _PAGE_HEADERS
    if response.location is not None:
        headers.append((b"location", response.location.encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})
