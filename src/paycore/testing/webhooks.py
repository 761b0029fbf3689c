"""Webhook deliveries in provider tests: the record, Standard Webhooks signing, an inbox.

* :class:`Delivery`: one delivery as a receiver gets it (body bytes and headers),
  with the small edits a test makes to forge one (a flipped byte, a header less).
* :func:`sign_standard_webhook`: the three Standard Webhooks headers
  (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) of a body,
  signed with a ``whsec_`` secret; :func:`standard_webhook_delivery` builds the
  whole delivery and :func:`generate_standard_webhook_secret` a fresh secret.
* :class:`DeliveryInbox`: an ASGI application that records what a gateway
  posts to it instead of handing it to a flow, so a test delivers (or forges,
  repeats, reorders) those deliveries itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from types import MappingProxyType
from typing import Any, Final

import anyio
from attrs import evolve, field, frozen

from paycore.errors import ConfigurationError

__all__ = [
    "STANDARD_ID_HEADER",
    "STANDARD_SIGNATURE_HEADER",
    "STANDARD_TIMESTAMP_HEADER",
    "Delivery",
    "DeliveryInbox",
    "generate_standard_webhook_secret",
    "sign_standard_webhook",
    "standard_webhook_delivery",
]

STANDARD_ID_HEADER: Final = "webhook-id"
"""The Standard Webhooks header that carries the event's id (the same on every retry)."""
STANDARD_TIMESTAMP_HEADER: Final = "webhook-timestamp"
"""The Standard Webhooks header that carries when a delivery was signed (Unix seconds)."""
STANDARD_SIGNATURE_HEADER: Final = "webhook-signature"
"""The Standard Webhooks header that carries the ``v1,<base64>`` signature(s)."""
_SECRET_PREFIX: Final = "whsec_"

_DIGITS: Final = frozenset(b"0123456789")


def _lowered(headers: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({str(name).lower(): str(value) for name, value in headers.items()})


@frozen
class Delivery:
    """One webhook delivery: the raw body and the headers (names lower-cased), as a receiver gets them."""

    body: bytes
    headers: Mapping[str, str] = field(factory=dict, converter=_lowered, hash=False)

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (any case), or ``None``."""
        return self.headers.get(name.lower())

    def with_body(self, body: bytes) -> Delivery:
        """The same headers (and so the same signature) over another body."""
        return evolve(self, body=body)

    def with_headers(self, headers: Mapping[str, str]) -> Delivery:
        """This delivery with ``headers`` added or replaced."""
        return evolve(self, headers={**self.headers, **headers})

    def without_headers(self, *names: str) -> Delivery:
        """This delivery without the headers ``names`` (any case)."""
        dropped = {name.lower() for name in names}
        return evolve(self, headers={k: v for k, v in self.headers.items() if k not in dropped})

    def with_flipped_byte(self) -> Delivery:
        """The same headers over a body with one bit changed.

        The changed byte is the body's last ASCII digit (``5000`` becomes
        ``5001``), so a JSON body still parses and only a signature check can
        tell; a body without digits gets its last byte changed.
        """
        if not self.body:
            raise ValueError("an empty body has no byte to flip")
        positions = [i for i, byte in enumerate(self.body) if byte in _DIGITS]
        index = positions[-1] if positions else len(self.body) - 1
        changed = bytearray(self.body)
        changed[index] ^= 0x01
        return self.with_body(bytes(changed))


def _secret_key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith(_SECRET_PREFIX):
        raise ConfigurationError("a Standard Webhooks secret must be 'whsec_' followed by a base64 key")
    encoded = secret[len(_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "a Standard Webhooks secret must be 'whsec_' followed by base64; its key part is not base64"
        ) from None
    if not key:
        raise ConfigurationError("a Standard Webhooks secret must be 'whsec_' followed by a non-empty base64 key")
    return key


def generate_standard_webhook_secret() -> str:
    """A fresh random ``whsec_`` secret (32 random bytes in base64)."""
    return _SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign_standard_webhook(secret: str, body: bytes, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of ``body``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

    ``secret`` is a ``whsec_<base64 key>`` secret; ``timestamp`` whole Unix
    seconds (default: now). The signature is ``v1,`` and the base64
    HMAC-SHA256, under the decoded key, of ``f"{msg_id}.{timestamp}.{body}"``.
    """
    if not msg_id:
        raise ValueError("a Standard Webhooks delivery needs a non-empty message id")
    when = int(time.time()) if timestamp is None else int(timestamp)
    content = f"{msg_id}.{when}.".encode() + body
    digest = hmac.new(_secret_key(secret), content, hashlib.sha256).digest()
    return {
        STANDARD_ID_HEADER: msg_id,
        STANDARD_TIMESTAMP_HEADER: str(when),
        STANDARD_SIGNATURE_HEADER: "v1," + base64.b64encode(digest).decode("ascii"),
    }


def standard_webhook_delivery(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Delivery:
    """A :class:`Delivery` of ``body`` signed the Standard Webhooks way (a fresh ``msg_...`` id by default).

    ``headers`` are sent too (``content-type`` defaults to JSON).
    """
    signed = sign_standard_webhook(secret, body, msg_id or f"msg_{secrets.token_hex(12)}", timestamp)
    return Delivery(body, {"content-type": "application/json", **(headers or {}), **signed})


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class DeliveryInbox:
    """An ASGI application that keeps every request posted to it as a :class:`Delivery`.

    Point a gateway's webhook deliveries at it
    (``httpx.ASGITransport(app=inbox)``) and it answers ``status_code``
    (200) to each without handing anything to a flow: the test then delivers
    :attr:`deliveries` itself, as they are, forged, twice, or out of order.
    With ``max_body_bytes``, a delivery whose body is longer is answered
    ``413``, as paycore's endpoint answers it (``webhook_max_bytes``).
    """

    def __init__(self, status_code: int = 200, *, max_body_bytes: int | None = None) -> None:
        self.status_code = status_code
        """What the inbox answers to every delivery (but one too large)."""
        self.max_body_bytes = max_body_bytes
        """The longest body answered ``status_code`` (``None``: any); a longer one is answered ``413``."""
        self.deliveries: list[Delivery] = []
        """Every delivery received, in order."""
        self.answers: list[int] = []
        """The status each delivery was answered, in order."""
        self._arrived: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"<DeliveryInbox deliveries={len(self.deliveries)}>"

    def with_header(self, name: str, value: str) -> list[Delivery]:
        """The deliveries whose header ``name`` is ``value`` (``webhook-id`` and an event's id...)."""
        return [d for d in self.deliveries if d.header(name) == value]

    async def wait(self, condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
        """Return once ``condition()`` holds, checking after each delivery; ``TimeoutError`` after ``timeout`` s."""
        with anyio.fail_after(timeout):
            while not condition():
                self._arrived = anyio.Event()
                await self._arrived.wait()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record an HTTP request and answer it; accept the lifespan protocol."""
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", ())}
        body = b"".join(chunks)
        too_large = self.max_body_bytes is not None and len(body) > self.max_body_bytes
        status = 413 if too_large else self.status_code
        self.deliveries.append(Delivery(body, headers))
        self.answers.append(status)
        if self._arrived is not None:
            self._arrived.set()
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
