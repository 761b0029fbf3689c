"""``DjangoIdempotencyStore``: idempotency keys in the Django ORM, using the database's own atomicity.

``claim`` is ``INSERT ... ON CONFLICT (scope, key) DO NOTHING``: of many
concurrent callers (threads, processes, hosts) exactly one inserts the row and
holds the key. The others read the row and either replay its result, refuse,
or take over an expired lease with a conditional ``UPDATE ... WHERE token =
%s AND expires_at <= %s`` that again only one of them can win. ``complete``
and ``release`` name the holder's token in their ``WHERE`` clause, so a holder
whose lease was taken over changes nothing.

Deadlines are Unix seconds from a wall clock (``time.time`` by default,
injectable): processes sharing the database need synchronised clocks, which
leases of tens of seconds tolerate easily. SQLite (3.24 or newer) and
PostgreSQL are supported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any, ClassVar, Final

from django.db import connections

from paycore.errors import ConfigurationError, IdempotencyInProgress, IdempotencyLeaseLost
from paycore.key_rows import ClaimMove, KeyRow, claim_move, lease_terms
from paycore.storage import IdempotencyClaim, KeyClaim, KeyCompletion
from paycore_django.databases import check_database
from paycore_django.models import IdempotencyRecord
from paycore_django.units import run_unit

__all__ = ["DjangoIdempotencyStore"]

_ATTEMPTS: Final = 5
"""Rounds of insert-or-inspect before giving up (a row can vanish between them by ``release``)."""

_VENDORS: Final = ("sqlite", "postgresql")
"""Databases with ``INSERT ... ON CONFLICT DO NOTHING``."""


def _vendor_of(alias: str) -> str:
    """The vendor of database ``alias``, read off its backend's class. Not ``connections[alias].vendor``: the
    connection it makes in the calling thread, an event loop's (a store is built with its loop's flow), is kept
    by asgiref for good after that loop ends, one per request of an async view under WSGI."""
    engine = connections.settings[alias]["ENGINE"]
    return str(import_module(f"{engine}.base").DatabaseWrapper.vendor)


def _double_quoted(name: str) -> str:
    """``name`` quoted as SQLite's and PostgreSQL's backends quote it (``ops.quote_name``)."""
    return name if name.startswith('"') and name.endswith('"') else f'"{name}"'


def _insert_if_absent() -> str:
    """The ``INSERT ... ON CONFLICT DO NOTHING`` statement of a key (both supported databases spell it alike)."""
    columns = ("scope", "key", "fingerprint", "token", "result", "expires_at")
    table = _double_quoted(IdempotencyRecord._meta.db_table)
    names = ", ".join(_double_quoted(column) for column in columns)
    places = ", ".join(["%s"] * len(columns))
    conflict = f"{_double_quoted('scope')}, {_double_quoted('key')}"
    return f"INSERT INTO {table} ({names}) VALUES ({places}) ON CONFLICT ({conflict}) DO NOTHING"


class DjangoIdempotencyStore:
    """An :class:`~paycore.storage.IdempotencyStore` in ``paycore_django.models.IdempotencyRecord``.

    ``clock`` returns Unix seconds; inject one to test lease expiry without sleeping.
    """

    storage_backend: ClassVar[str] = "django"
    """Which storage this is."""

    def __init__(self, using: str = "default", *, clock: Callable[[], float] = time.time) -> None:
        self.using = check_database(using, "DjangoIdempotencyStore")
        """The Django database alias every unit of work runs on."""
        vendor = _vendor_of(self.using)
        if vendor not in _VENDORS:
            raise ConfigurationError(
                f"DjangoIdempotencyStore: database {self.using!r} is {vendor}, which has no insert-if-absent "
                "here; use SQLite or PostgreSQL"
            )
        self._insert = _insert_if_absent()
        self._clock = clock

    def __repr__(self) -> str:
        return f"<DjangoIdempotencyStore using={self.using!r}>"

    def _records(self) -> Any:
        return IdempotencyRecord.objects.using(self.using)

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        """Take the key, replay its result, or refuse (see :class:`~paycore.storage.IdempotencyStore`)."""

        def work() -> IdempotencyClaim:
            return self.claim_in_unit(KeyClaim(scope, key, fingerprint, lease_seconds))

        # Every statement is atomic and safe alone (insert-if-absent, updates conditioned on the row):
        # no transaction around them, so a server spends no BEGIN/COMMIT round trips.
        return await run_unit(self.using, work, atomic=False)

    def claim_in_unit(self, claim: KeyClaim) -> IdempotencyClaim:
        """:meth:`claim` inside a running unit of work (``run_unit``); each of its statements is atomic.

        The Django repository claims a key this way in the unit that also reads
        the request's payment (:class:`~paycore.storage.ClaimingRepository`).
        """
        scope, key, fingerprint = claim.scope, claim.key, claim.fingerprint
        token, now, expires_at = lease_terms(self._clock, claim.lease_seconds)
        for _ in range(_ATTEMPTS):
            with connections[self.using].cursor() as cursor:
                cursor.execute(self._insert, [scope, key, fingerprint, token, None, expires_at])
                inserted = cursor.rowcount
            if inserted == 1:
                return IdempotencyClaim(token=token)
            row = (
                self._records()
                .filter(scope=scope, key=key)
                .values_list("fingerprint", "token", "result", "expires_at")
                .first()
            )
            if row is None:
                continue  # released between our insert and our read: insert again
            taken = self._decide(KeyRow(*row), scope, key, fingerprint, token, now, expires_at)
            if taken is not None:
                return taken
        raise IdempotencyInProgress(f"idempotency key {key!r}: too much contention; retry")

    def _decide(
        self,
        row: KeyRow,
        scope: str,
        key: str,
        fingerprint: str,
        token: str,
        now: float,
        expires_at: float,
    ) -> IdempotencyClaim | None:
        """What a claim meeting an existing row gets (:func:`paycore.rows.claim_move`); ``None``: the row
        changed meanwhile, try again."""
        move = claim_move(row, key=key, fingerprint=fingerprint, now=now)
        if move is ClaimMove.REPLAY:
            return IdempotencyClaim(result=row.result, expires_in=row.expires_at - now)
        lapsed = self._records().filter(scope=scope, key=key, expires_at__lte=now)
        if move is ClaimMove.REPLACE_EXPIRED_RESULT:
            replaced = lapsed.filter(token__isnull=True).update(
                fingerprint=fingerprint, token=token, result=None, expires_at=expires_at
            )
            return IdempotencyClaim(token=token) if replaced == 1 else None
        taken = lapsed.filter(token=row.token).update(token=token, expires_at=expires_at)
        return IdempotencyClaim(token=token, taken_over=True) if taken == 1 else None

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        """Store ``result`` for ``ttl_seconds`` if ``token`` still holds the key; else :class:`IdempotencyLeaseLost`."""
        completion = KeyCompletion(self, scope, key, token, result, ttl_seconds)
        if not await run_unit(self.using, lambda: self.complete_in_unit(completion), atomic=False):
            raise IdempotencyLeaseLost(
                f"idempotency key {key!r}: this request's lease expired and another request took it over"
            )

    def complete_in_unit(self, completion: KeyCompletion) -> bool:
        """:meth:`complete` inside a unit of work already running: True if the completion's token held the key.

        The Django repository completes a key this way in the transaction of the
        operation's last write (:class:`~paycore.storage.CompletingRepository`).
        """
        query = self._records().filter(scope=completion.scope, key=completion.key, token=completion.token)
        expires_at = self._clock() + completion.ttl_seconds
        return bool(query.update(token=None, result=dict(completion.result), expires_at=expires_at) == 1)

    async def release(self, *, scope: str, key: str, token: str) -> None:
        """Forget the key if ``token`` holds it (nothing ran); otherwise do nothing."""
        query = self._records().filter(scope=scope, key=key, token=token)
        await run_unit(self.using, lambda: query.delete(), atomic=False)

    async def purge_expired(self) -> int:
        """Delete completed results past their retention; return how many were deleted."""
        query = self._records().filter(token__isnull=True, expires_at__lte=self._clock())
        deleted, _ = await run_unit(self.using, lambda: query.delete(), atomic=False)
        return int(deleted)

    async def aclose(self) -> None:
        """Nothing to release: Django owns the connections (closed per ``CONN_MAX_AGE``)."""
