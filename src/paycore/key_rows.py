"""An idempotency key's row in a relational store, and what a claim does on meeting one.

Stores that insert a key's row if it is absent and otherwise inspect the row
found (the SQL and Django idempotency stores) make the same decision
(:func:`claim_move`) and differ only in how they run the conditional ``UPDATE``
it names. Nothing here touches a database.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused

__all__ = ["ClaimMove", "KeyRow", "claim_move", "lease_terms"]


@attrs.frozen
class KeyRow:
    """A stored idempotency key: held (``token`` set; ``expires_at`` ends the lease) or completed
    (``token`` ``None``, ``result`` set; ``expires_at`` ends its retention). Times are Unix seconds."""

    fingerprint: str
    """The canonical hash of the request that took the key."""
    token: str | None
    """The holder's token while the request runs."""
    result: Mapping[str, Any] | None
    """The completed request's result, replayed to a repeat."""
    expires_at: float
    """When the lease or the retention ends."""


def lease_terms(clock: Callable[[], float], lease_seconds: float) -> tuple[str, float, float]:
    """A new claim's token, the time it is made at and the end of its lease (Unix seconds from ``clock``)."""
    now = clock()
    return secrets.token_hex(16), now, now + lease_seconds


class ClaimMove(enum.Enum):
    """What a claim that met a stored key does next (:func:`claim_move`)."""

    REPLACE_EXPIRED_RESULT = "replace_expired_result"
    """The completed result is past its retention: take the key with a conditional ``UPDATE``
    (``WHERE token IS NULL AND expires_at <= now``); no row matched means it changed: try again."""
    REPLAY = "replay"
    """The same request completed: return its stored result."""
    TAKE_OVER = "take_over"
    """The holder's lease expired: take the key with a conditional ``UPDATE``
    (``WHERE token = <the holder's> AND expires_at <= now``); no row matched: try again."""


def claim_move(row: KeyRow, *, key: str, fingerprint: str, now: float) -> ClaimMove:
    """What a claim of ``key`` for the request ``fingerprint`` does on meeting ``row`` at ``now``.

    Raises :class:`IdempotencyKeyReused` when the key ran another request, and
    :class:`IdempotencyInProgress` while its first request still holds it.
    """
    if row.token is None and row.expires_at <= now:
        return ClaimMove.REPLACE_EXPIRED_RESULT
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(f"idempotency key {key!r} was already used for a different request")
    if row.token is None:
        return ClaimMove.REPLAY
    if row.expires_at > now:
        raise IdempotencyInProgress(f"idempotency key {key!r}: the first request with it is still running")
    return ClaimMove.TAKE_OVER
