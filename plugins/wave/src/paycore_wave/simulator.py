"""``WaveSimulator``: the part of Wave's Checkout API paycore uses, in process, for tests and demos.

An ASGI app (serve it with ``httpx.ASGITransport`` or any ASGI server) with::

    POST /v1/checkout/sessions                      create a session (amount as a string)
    GET  /v1/checkout/sessions/{id}                 retrieve it
    GET  /v1/checkout/sessions?transaction_id=...   find it by its transaction
    GET  /v1/checkout/sessions/search?client_reference=...   {"result": [...]}
    POST /v1/checkout/sessions/{id}/expire          200, empty; 409 unless open
    POST /v1/checkout/sessions/{id}/refund          200, empty (full, idempotent); 400 unless paid
    GET  /c/{id}                                    the launch page: pay or fail, as the customer
    POST /c/{id}                                    form ``action=pay|fail``; 303 to success_url/error_url

Errors are ``{"code": ..., "message": ...}`` with Wave's codes. When the customer
pays or fails, the simulator signs a ``checkout.session.completed`` or
``checkout.session.payment_failed`` event with every secret it holds (one
``v1`` each, as during a rotation), keeps it in :attr:`WaveSimulator.sent`
and posts it to ``webhook_url`` through ``webhook_transport`` if one is set.
:meth:`WaveSimulator.refuse_next_request` and :meth:`WaveSimulator.drop_next_answer`
make the next API call fail before it arrives, or lose its answer after the work.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qs

import httpx
from attrs import frozen

from paycore.testing.webhooks import Delivery
from paycore_wave.signing import signature_header

__all__ = ["SimulatorError", "WaveSimulator"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_WHOLE_FRANCS: Final = re.compile(r"[1-9][0-9]{0,14}")
_SESSION_PATH: Final = re.compile(r"/v1/checkout/sessions/(?P<id>cos-[a-z0-9]+)(?:/(?P<action>expire|refund))?")
_PAGE_PATH: Final = re.compile(r"/c/(?P<id>cos-[a-z0-9]+)")
_SESSION_LIFETIME: Final = timedelta(minutes=30)


class SimulatorError(Exception):
    """An error answer of the simulated API: HTTP ``status`` and Wave's error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token(length: int) -> str:
    return "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length))


class WaveSimulator:
    """Wave's Checkout API, simulated: sessions in memory, a launch page, signed webhooks.

    ``api_key`` is the key requests must carry; ``webhook_secrets`` sign the
    webhooks; ``base_url`` is where the launch pages are said to live.
    """

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secrets: str | Sequence[str],
        base_url: str = "https://pay.wave.test",
        business_name: str = "Chez Awa",
        webhook_url: str | None = None,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._api_key = api_key
        self._secrets = (webhook_secrets,) if isinstance(webhook_secrets, str) else tuple(webhook_secrets)
        self.base_url = base_url.rstrip("/")
        self.business_name = business_name
        self.webhook_url = webhook_url
        self.webhook_transport = webhook_transport
        self.sessions: dict[str, dict[str, Any]] = {}
        """Every session as the API shows it, by id."""
        self.refunded: set[str] = set()
        """The ids of the sessions refunded."""
        self.sent: list[Delivery] = []
        """Every signed webhook delivery, in order."""
        self.requests: list[str] = []
        """``"METHOD path"`` of every API request that reached the simulator."""
        self._fault: str | None = None

    def __repr__(self) -> str:
        return f"<WaveSimulator sessions={len(self.sessions)} sent={len(self.sent)}>"

    # -- faults ------------------------------------------------------------------------------

    def refuse_next_request(self) -> None:
        """The next API request's connection is refused: it never arrives (``httpx.ConnectError``)."""
        self._fault = "refuse"

    def drop_next_answer(self) -> None:
        """The next API request does its work, then the connection resets before the answer."""
        self._fault = "drop"

    # -- the customer and the clock ----------------------------------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        """The session ``session_id``; ``404 checkout-session-not-found`` if there is none."""
        try:
            return self.sessions[session_id]
        except KeyError:
            raise SimulatorError(404, "checkout-session-not-found", f"no checkout session {session_id}") from None

    def pay(self, session_id: str) -> Delivery:
        """The customer pays in the Wave app: the session completes; returns the signed webhook."""
        session = self._open(session_id)
        session.update(
            checkout_status="complete",
            payment_status="succeeded",
            transaction_id=f"T_{_token(12).upper()}",
            when_completed=_now(),
            last_payment_error=None,
        )
        return self._event("checkout.session.completed", session)

    def fail(
        self,
        session_id: str,
        code: str = "insufficient-funds",
        message: str = "Insufficient funds",
        *,
        keep_open: bool = False,
    ) -> Delivery:
        """The customer's payment fails (``code`` is one of Wave's payment error codes); returns the webhook.

        The session completes as ``cancelled``; with ``keep_open`` it stays ``open`` instead, as Wave
        leaves it after an attempt the customer may retry (insufficient funds, say): it can still be
        paid, failed again or expired.
        """
        session = self._open(session_id)
        session.update(payment_status="cancelled", last_payment_error={"code": code, "message": message})
        if not keep_open:
            session.update(checkout_status="complete", when_completed=_now())
        return self._event("checkout.session.payment_failed", session)

    def time_out(self, session_id: str) -> None:
        """The session's lifetime runs out unpaid (Wave sends no webhook for it)."""
        self._open(session_id).update(checkout_status="expired", when_completed=_now())

    def _open(self, session_id: str) -> dict[str, Any]:
        session = self.session(session_id)
        if session["checkout_status"] != "open":
            raise SimulatorError(
                409, "checkout-session-not-open", f"session {session_id} is {session['checkout_status']}"
            )
        return session

    def _event(self, event_type: str, session: dict[str, Any]) -> Delivery:
        body = json.dumps({"id": f"AE_{_token(14)}", "type": event_type, "data": session}).encode()
        delivery = Delivery(body, {"content-type": "application/json", **self.sign(body)})
        self.sent.append(delivery)
        return delivery

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The ``Wave-Signature`` header of ``body`` (now, or at ``timestamp``), one ``v1`` per secret."""
        stamp = int(time.time()) if timestamp is None else timestamp
        return {"wave-signature": signature_header(self._secrets, stamp, body)}

    async def deliver(self, delivery: Delivery) -> int:
        """Post ``delivery`` to ``webhook_url``; the receiver's status code (0 when there is nowhere to post)."""
        if self.webhook_url is None:
            return 0
        async with httpx.AsyncClient(transport=self.webhook_transport, timeout=10.0) as client:
            response = await client.post(self.webhook_url, content=delivery.body, headers=dict(delivery.headers))
        return response.status_code

    # -- the API -----------------------------------------------------------------------------

    def create(self, body: Any) -> dict[str, Any]:
        """Create a checkout session as ``POST /v1/checkout/sessions`` does."""
        if not isinstance(body, dict):
            raise SimulatorError(400, "request-validation-error", "the body must be a JSON object")
        amount, currency = body.get("amount"), body.get("currency")
        if currency != "XOF":
            raise SimulatorError(400, "request-validation-error", f"currency {currency!r} is not supported")
        if not isinstance(amount, str) or not _WHOLE_FRANCS.fullmatch(amount):
            raise SimulatorError(400, "request-validation-error", f"amount {amount!r} must be a string of whole francs")
        for key in ("success_url", "error_url"):
            if not isinstance(body.get(key), str) or not str(body[key]).startswith(("https://", "http://")):
                raise SimulatorError(400, "request-validation-error", f"{key} must be a URL")
        reference = body.get("client_reference")
        if reference is not None and (not isinstance(reference, str) or len(reference) > 255):
            raise SimulatorError(400, "request-validation-error", "client_reference must be a string of 255 at most")
        session_id = f"cos-{_token(13)}"
        created = datetime.now(UTC)
        session: dict[str, Any] = {
            "id": session_id,
            "amount": amount,
            "checkout_status": "open",
            "client_reference": reference,
            "currency": currency,
            "error_url": body["error_url"],
            "last_payment_error": None,
            "business_name": self.business_name,
            "payment_status": "processing",
            "success_url": body["success_url"],
            "wave_launch_url": f"{self.base_url}/c/{session_id}",
            "when_completed": None,
            "when_created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "when_expires": (created + _SESSION_LIFETIME).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for key in ("aggregated_merchant_id", "restrict_payer_mobile"):
            if body.get(key) is not None:
                session[key] = body[key]
        self.sessions[session_id] = session
        return session

    def expire(self, session_id: str) -> None:
        """Expire an open session as ``POST .../expire`` does (409 unless it is open)."""
        self._open(session_id).update(checkout_status="expired", when_completed=_now())

    def refund(self, session_id: str) -> None:
        """Refund a paid session in full as ``POST .../refund`` does; a second refund changes nothing."""
        if self.session(session_id)["payment_status"] != "succeeded":
            raise SimulatorError(400, "checkout-refund-failed", "only a succeeded payment can be refunded")
        self.refunded.add(session_id)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI request; the lifespan protocol is accepted (there is nothing to start)."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = await _body(receive)
        path, method = scope["path"], scope["method"]
        fault = None
        if path.startswith("/v1/"):
            fault, self._fault = self._fault, None
            if fault == "refuse":
                raise httpx.ConnectError("connection refused (simulated)")
            self.requests.append(f"{method} {path}")
        try:
            answer = self._route(scope, method, path, body)
        except SimulatorError as error:
            answer = _Answer(error.status, json.dumps({"code": error.code, "message": error.message}).encode())
        if fault == "drop":
            raise httpx.ReadError("connection reset by peer (simulated)")
        if answer.delivery is not None:
            await self.deliver(answer.delivery)
        headers = [(b"content-type", answer.content_type.encode()), (b"content-length", str(len(answer.body)).encode())]
        if answer.location is not None:
            headers.append((b"location", answer.location.encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})

    def _route(self, scope: Scope, method: str, path: str, body: bytes) -> _Answer:
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        page = _PAGE_PATH.fullmatch(path)
        if page is not None:
            return self._page(method, page["id"], body)
        self._authenticate(scope)
        match = _SESSION_PATH.fullmatch(path)
        if path == "/v1/checkout/sessions" and method == "POST":
            try:
                data = json.loads(body or b"null")
            except ValueError:
                raise SimulatorError(400, "request-validation-error", "the body is not JSON") from None
            return _json(self.create(data))
        if path == "/v1/checkout/sessions" and method == "GET":
            wanted = query.get("transaction_id")
            found = [s for s in self.sessions.values() if wanted and s.get("transaction_id") == wanted]
            if not found:
                raise SimulatorError(404, "checkout-session-not-found", f"no session with transaction {wanted!r}")
            return _json(found[0])
        if path == "/v1/checkout/sessions/search" and method == "GET":
            reference = query.get("client_reference")
            return _json({"result": [s for s in self.sessions.values() if s["client_reference"] == reference]})
        if match is not None and method == "GET" and match["action"] is None:
            return _json(self.session(match["id"]))
        if match is not None and method == "POST" and match["action"] == "expire":
            self.expire(match["id"])
            return _Answer(200)
        if match is not None and method == "POST" and match["action"] == "refund":
            self.refund(match["id"])
            return _Answer(200)
        raise SimulatorError(404, "not-found", f"no route {method} {path}")

    def _authenticate(self, scope: Scope) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        authorization = headers.get("authorization")
        if authorization is None:
            raise SimulatorError(401, "missing-auth-header", "the request has no Authorization header")
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise SimulatorError(401, "invalid-auth", "the Authorization header must be 'Bearer <api key>'")
        if not secrets.compare_digest(key.encode(), self._api_key.encode()):
            raise SimulatorError(401, "no-matching-api-key", "no API key matches")

    def _page(self, method: str, session_id: str, body: bytes) -> _Answer:
        session = self.session(session_id)
        if method == "POST":
            action = parse_qs(body.decode("utf-8", "replace")).get("action", [""])[-1]
            if action not in ("pay", "fail"):
                raise SimulatorError(400, "request-validation-error", "action must be 'pay' or 'fail'")
            delivery = self.pay(session_id) if action == "pay" else self.fail(session_id)
            target = session["success_url"] if action == "pay" else session["error_url"]
            return _Answer(303, content_type="text/plain", location=str(target), delivery=delivery)
        amount, name = html.escape(session["amount"]), html.escape(self.business_name)
        page = (
            f"<!doctype html><title>Wave</title><h1>Pay {amount} F CFA to {name}</h1>"
            f"<p>Session {html.escape(session_id)}: {html.escape(session['checkout_status'])}</p>"
            '<form method="post"><button name="action" value="pay">Pay</button>'
            '<button name="action" value="fail">Fail</button></form>'
        )
        return _Answer(200, page.encode(), content_type="text/html; charset=utf-8")


@frozen
class _Answer:
    """What the simulator answers one request, and the webhook it posts first, if any."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    location: str | None = None
    delivery: Delivery | None = None


def _json(data: Any) -> _Answer:
    return _Answer(200, json.dumps(data).encode())


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
