"""What a drawer's idempotency key named under the release of November 2026, for a retry made after an upgrade.

That release kept a drawer's keys in the key space ``<tenant's>|cash-drawer`` and
derived its records' ids from the key alone: a keyed open's session was
``derived_id("drw", scope, key)``, a keyed pay-in's or pay-out's movement
``derived_id("mov", scope, "movement:" + key)``, and a keyed close kept
``{"session_id": ...}`` as its key's result in the idempotency store. Since then
a drawer's keys live in ``<tenant's>|cash-drawers``, ids name the window of the
key's ttl, and a close is found by the ``close_id`` its session keeps. A retry of
a request the earlier release began must still find what that first attempt did,
or it would record the movement again in the next shift's drawer, or close it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from paycore.awaiting import run_shielded
from paycore.keys import derived_id, fingerprint, scope_of

if TYPE_CHECKING:
    from paycore.money import Money
    from paycore.storage import IdempotencyStore

__all__ = ["earlier_close", "earlier_movement_id", "earlier_session_id"]


def _scope(tenant: str | None) -> str:
    return f"{scope_of(tenant)}|cash-drawer"


def earlier_session_id(tenant: str | None, key: str) -> str:
    """The id the earlier release gave the session a keyed open made."""
    return derived_id("drw", _scope(tenant), key)


def earlier_movement_id(tenant: str | None, key: str) -> str:
    """The id the earlier release gave the movement a keyed pay-in or pay-out made."""
    return derived_id("mov", _scope(tenant), f"movement:{key}")


async def earlier_close(
    store: IdempotencyStore,
    tenant: str | None,
    key: str,
    *,
    till: str | None,
    session_id: str | None,
    counted: Money,
    closed_by: str,
    lease_seconds: float,
) -> str | None:
    """The id of the session a close of the earlier release under ``key`` closed, if its key still keeps it.

    Asked of the store as that release asked it: the same request finds its result; another request under the
    key is :class:`~paycore.errors.IdempotencyKeyReused`, one still under way
    :class:`~paycore.errors.IdempotencyInProgress`. When the key keeps nothing there, the claim this takes
    is let go at once and ``None`` returned.
    """
    scope = _scope(tenant)
    request = {"till": till, "session_id": session_id, "counted": str(counted), "closed_by": closed_by}
    claim = await store.claim(
        scope=scope, key=key, fingerprint=fingerprint("cash.close", request), lease_seconds=lease_seconds
    )
    if claim.token is not None:  # let go even if the caller is cancelled meanwhile: its retry goes on at once
        await run_shielded(partial(store.release, scope=scope, key=key, token=claim.token))
        return None
    result = claim.result
    found = result.get("session_id") if isinstance(result, Mapping) else None
    return found if isinstance(found, str) else None
