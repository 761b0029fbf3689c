"""Idempotency keys: request fingerprints, key checks, and ids derived from keys.

A request is identified by a fingerprint: the SHA-256 of its operation and
canonical arguments. The same key with the same fingerprint replays; with
another fingerprint it is refused. A payment or refund created under a key
gets an id derived from the key, so a request resumed after a crash (or retried
after "not sent") finds the record its first attempt wrote instead of making a
second one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from paycore.errors import ValidationError

__all__ = ["MAX_KEY_LENGTH", "check_key", "derived_id", "fingerprint", "scope_of"]

MAX_KEY_LENGTH: Final = 255


def check_key(key: object) -> str:
    """Return ``key`` if it is a usable idempotency key; refuse it otherwise."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            f"idempotency_key must be a printable string of 1 to {MAX_KEY_LENGTH} characters, not {key!r}"
        )
    return key


def scope_of(tenant: str | None) -> str:
    """The key space of a tenant: keys of two tenants never collide."""
    return "" if tenant is None else f"t:{tenant}"


def fingerprint(operation: str, arguments: Mapping[str, Any]) -> str:
    """The SHA-256 hex digest of ``operation`` and its canonical JSON ``arguments``."""
    canonical = json.dumps(
        {"operation": operation, "arguments": arguments}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def derived_id(prefix: str, scope: str, key: str) -> str:
    """A record id determined by ``(scope, key)``: the same key always names the same record."""
    digest = hashlib.sha256(f"{prefix}\x00{scope}\x00{key}".encode()).digest()
    return f"{prefix}_" + base64.b32encode(digest[:15]).decode().lower()
