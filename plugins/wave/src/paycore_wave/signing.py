"""Wave's webhook signatures: the ``Wave-Signature`` header, checked before anything is parsed.

Wave signs each delivery with the webhook secret of the endpoint (HMAC-SHA256,
hex digest) over the Unix timestamp followed directly by the raw body, and sends::

    Wave-Signature: t=1639081943,v1=942e1a2b...,v1=5a09be3c...

There is one ``v1`` per secret in force: during a rotation the old and the new
secret both sign, and a delivery is authentic when any ``v1`` matches any
secret this side holds. A timestamp more than the tolerance away from now
(five minutes by default) is refused, so a captured delivery cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from paycore.errors import ConfigurationError, InvalidSignature

__all__ = [
    "DEFAULT_TOLERANCE",
    "SIGNATURE_HEADER",
    "parse_secrets",
    "sign",
    "signature_header",
    "verify",
]

SIGNATURE_HEADER: Final = "wave-signature"
"""The header that carries a delivery's timestamp and signatures (names are compared lower-cased)."""
DEFAULT_TOLERANCE: Final = 300.0
"""Seconds a delivery's timestamp may be away from this side's clock."""
_MAX_HEADER: Final = 4096
_MAX_SIGNATURES: Final = 8
_NOT_IN_SECRETS: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters, and lone surrogates (which UTF-8 cannot encode)."""


def parse_secrets(value: str) -> tuple[str, ...]:
    """The webhook secrets of a setting: one secret, or several separated by whitespace (a rotation).

    A secret holding a control character, or a character UTF-8 cannot encode (a byte of a ``PAYCORE_*``
    environment variable that is not UTF-8 reaches Python as a lone surrogate), is refused: it could never
    verify a delivery, and every webhook would be answered 401. The message never shows the secret.
    """
    found = tuple(value.split())
    if not found:
        raise ConfigurationError(
            "the Wave webhook_secret setting is empty: set the secret the Wave Business Portal shows for the webhook"
        )
    for secret in found:
        if _NOT_IN_SECRETS.search(secret) is not None:
            raise ConfigurationError(
                "the Wave webhook_secret setting holds a control character or a character that is not text "
                "(a byte that is not UTF-8, from an environment variable?): set the secret the Wave Business "
                "Portal shows for the webhook"
            )
    return found


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` value Wave sends for ``body`` at ``timestamp`` with ``secret`` (hex HMAC-SHA256)."""
    return hmac.new(secret.encode(), str(timestamp).encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """The whole ``Wave-Signature`` value: ``t=<timestamp>`` then one ``v1`` per secret."""
    return ",".join([f"t={timestamp}", *(f"v1={sign(secret, timestamp, body)}" for secret in secrets)])


def _header(headers: Mapping[str, str]) -> str:
    values = [str(value) for name, value in headers.items() if str(name).lower() == SIGNATURE_HEADER]
    if not values:
        raise InvalidSignature("webhook refused: no Wave-Signature header")
    if len(values) > 1:
        raise InvalidSignature("webhook refused: more than one Wave-Signature header")
    if len(values[0]) > _MAX_HEADER:
        raise InvalidSignature(f"webhook refused: the Wave-Signature header is longer than {_MAX_HEADER} characters")
    return values[0]


def _parts(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        key, equals, value = part.strip().partition("=")
        if not equals:
            raise InvalidSignature("webhook refused: the Wave-Signature header must read 't=<seconds>,v1=<hex>'")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isascii() or not timestamps[0].isdigit():
        raise InvalidSignature("webhook refused: the Wave-Signature header needs exactly one 't=<Unix seconds>'")
    if not signatures:
        raise InvalidSignature("webhook refused: the Wave-Signature header holds no 'v1=' signature")
    if len(signatures) > _MAX_SIGNATURES:
        raise InvalidSignature(f"webhook refused: more than {_MAX_SIGNATURES} 'v1=' signatures")
    return int(timestamps[0]), signatures


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: Sequence[str],
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise :class:`~paycore.errors.InvalidSignature` unless ``body`` was signed by Wave with one of ``secrets``.

    Checks, in order: one ``Wave-Signature`` header, its form, the timestamp
    within ``tolerance`` seconds of ``now``, then the signatures (compared in
    constant time). The messages never quote a secret or a signature.
    """
    if not secrets:
        raise InvalidSignature("webhook refused: no Wave webhook secret is configured")
    timestamp, signatures = _parts(_header(headers))
    try:
        skew = abs((time.time() if now is None else now) - timestamp)
    except OverflowError:  # more digits than a float holds: no Unix time anywhere near now
        raise InvalidSignature(
            f"webhook refused: its timestamp is further from this clock than {tolerance:g}s"
        ) from None
    if skew > tolerance:
        raise InvalidSignature(
            f"webhook refused: its timestamp is {skew:.0f}s away from this clock (at most {tolerance:g}s)"
        )
    for secret in secrets:
        expected = sign(secret, timestamp, bytes(body))
        if any(hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")) for given in signatures):
            return
    raise InvalidSignature("webhook refused: no Wave-Signature v1 matches the configured webhook secret")
