"""Standard Webhooks signatures: sign a delivery, verify one.

The scheme (https://www.standardwebhooks.com): a delivery carries three headers,

* ``webhook-id``: the event's id, the same on every retry of it;
* ``webhook-timestamp``: when this attempt was signed, in whole Unix seconds;
* ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` of
  ``f"{id}.{timestamp}.{body}"``, one per secret while a secret is rotated.

A secret is written ``whsec_<base64 key>``; the HMAC key is the decoded part.
A receiver refuses a delivery whose timestamp is outside its tolerance (five
minutes by default), so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
import secrets as _secrets
import time
from collections.abc import Iterable, Mapping
from typing import Final

from paycore.errors import ConfigurationError, InvalidSignature

__all__ = [
    "DEFAULT_TOLERANCE",
    "SECRET_PREFIX",
    "WebhookSecret",
    "generate_secret",
    "header_text",
    "secret_texts",
    "sign",
    "signature_headers",
    "verify",
]

SECRET_PREFIX: Final = "whsec_"
DEFAULT_TOLERANCE: Final = 300.0
"""Seconds a delivery's timestamp may differ from the receiver's clock."""
_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
"""Whole Unix seconds as ASCII digits: no sign, no fraction, no exponent, at most 12 digits."""

_SIGNATURE_ENTRIES: Final = re.compile(r",?\s+|,(?=v[0-9]+[a-z]*,)")
"""What separates the entries of ``webhook-signature``: spaces (the scheme's), or the comma with which a server
joined two headers of it (``, `` or ``,``) before the next ``v<n>,`` or ``v<n><letters>,`` (``v1a,``)."""


def secret_texts(values: str | Iterable[str]) -> list[str]:
    """The secrets ``values`` names, as written: one string (several separated by spaces or commas) or a list."""
    return values.replace(",", " ").split() if isinstance(values, str) else list(values)


class WebhookSecret:
    """A ``whsec_`` secret, decoded once; its repr never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.startswith(SECRET_PREFIX):
            raise ConfigurationError("a webhook secret must be a string starting with 'whsec_'")
        encoded = value[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                "a webhook secret must be 'whsec_' followed by base64 (the key is not valid base64)"
            ) from None
        if len(key) < 16:
            raise ConfigurationError(f"a webhook secret's key must be at least 16 bytes, this one has {len(key)}")
        self._key = key

    @classmethod
    def parse_many(cls, values: str | Iterable[str]) -> tuple[WebhookSecret, ...]:
        """Secrets from one string (several separated by spaces or commas) or a list of strings."""
        parsed = tuple(cls(value) for value in secret_texts(values))
        if not parsed:
            raise ConfigurationError("at least one webhook secret ('whsec_...') is required")
        return parsed

    def digest(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under this secret."""
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "WebhookSecret('whsec_***')"


def generate_secret() -> str:
    """A fresh random secret, ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode("ascii")


def _signed_content(msg_id: bytes, timestamp: int, body: bytes) -> bytes:
    return msg_id + f".{timestamp}.".encode() + body


def header_text(value: str) -> str:
    """A header's value as the text its sender wrote.

    ASGI servers and Django decode header bytes as latin-1, so a UTF-8 value
    (``msg_é``) reaches the application as ``msg_Ã©``: its latin-1 bytes are
    read again as UTF-8. A value that is not such a decoding (ASCII, real
    Unicode such as ``msg_€``, bytes that are not UTF-8) is returned as it is.
    """
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _signed_ids(msg_id: str) -> list[bytes]:
    """The bytes a sender may have signed for a ``webhook-id`` header read as ``msg_id``.

    Signers sign the id's UTF-8 (the Standard Webhooks libraries) or the
    header's bytes as sent; a server that decoded the header as latin-1 gives
    those bytes back with ``.encode("latin-1")``. Both are tried. Raises
    :class:`~paycore.errors.InvalidSignature` when ``msg_id`` is neither.
    """
    candidates: list[bytes] = []
    for encoding in ("utf-8", "latin-1"):
        try:
            encoded = msg_id.encode(encoding)
        except UnicodeEncodeError:
            continue
        if encoded not in candidates:
            candidates.append(encoded)
    if not candidates:
        raise InvalidSignature("webhook refused: the 'webhook-id' header is not text")
    return candidates


def sign(body: bytes, *, msg_id: str, timestamp: int, secrets: Iterable[WebhookSecret]) -> str:
    """The ``webhook-signature`` value: one ``v1,...`` signature per secret (the id signed as UTF-8)."""
    content = _signed_content(msg_id.encode(), timestamp, body)
    return " ".join("v1," + base64.b64encode(secret.digest(content)).decode("ascii") for secret in secrets)


def signature_headers(
    body: bytes, *, msg_id: str, secrets: Iterable[WebhookSecret], timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, signed now (or at ``timestamp``)."""
    when = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(when),
        "webhook-signature": sign(body, msg_id=msg_id, timestamp=when, secrets=secrets),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise InvalidSignature(f"webhook refused: the {name!r} header is missing")


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Iterable[WebhookSecret],
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a delivery's signature; return its ``webhook-id`` (as :func:`header_text` reads it).

    A ``webhook-id`` decoded as latin-1 (as ASGI servers and Django decode
    headers) verifies as well as one given as the text it was signed as.
    Raises :class:`~paycore.errors.InvalidSignature` naming what is wrong: a
    missing header, a timestamp outside ``tolerance`` seconds, or no signature
    that matches any of ``secrets``. Nothing of the body is parsed.
    """
    msg_id = _header(headers, "webhook-id")
    raw_timestamp = _header(headers, "webhook-timestamp")
    raw_signatures = _header(headers, "webhook-signature")
    if not msg_id:
        raise InvalidSignature("webhook refused: the 'webhook-id' header is empty")
    stripped = raw_timestamp.strip(" \t")  # the whitespace HTTP allows around a value; int() parses what was checked
    if not _TIMESTAMP.fullmatch(stripped):
        raise InvalidSignature(
            f"webhook refused: 'webhook-timestamp' must be whole Unix seconds, not {raw_timestamp[:40]!r}"
        )
    timestamp = int(stripped)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        off = (
            f"{math.ceil(timestamp - current)}s ahead"
            if timestamp > current
            else f"{math.ceil(current - timestamp)}s old"
        )
        raise InvalidSignature(f"webhook refused: its timestamp is {off}, outside the tolerance of {tolerance:g}s")
    candidates: list[bytes] = []
    for item in _SIGNATURE_ENTRIES.split(raw_signatures.strip()):  # "v1,a v1,b"; two headers joined: "v1,a, v1,b"
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue
        try:
            candidates.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not candidates:
        raise InvalidSignature("webhook refused: 'webhook-signature' holds no 'v1,<base64>' signature")
    contents = [_signed_content(signed_id, timestamp, body) for signed_id in _signed_ids(msg_id)]
    for secret in secrets:
        for content in contents:
            expected = secret.digest(content)
            if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
                return header_text(msg_id)
    raise InvalidSignature("webhook refused: no signature matches the configured webhook secret(s)")
