"""``SqlIdempotencyStore``: idempotency keys in a SQL table, using the database's own atomicity.

``claim`` is ``INSERT ... ON CONFLICT DO NOTHING``: of many concurrent callers
(threads, processes, hosts) exactly one inserts the row and holds the key. The
others read the row and either replay its result, refuse, or take over an
expired lease with a conditional ``UPDATE ... WHERE token = :old AND expires_at
<= :now`` that again only one of them can win. ``complete`` and ``release``
name the holder's token in their ``WHERE`` clause, so a holder whose lease was
taken over changes nothing.

Lease and retention deadlines are Unix seconds from a wall clock (``time.time``
by default, injectable): processes sharing the database must have synchronised
clocks, which leases of tens of seconds tolerate easily.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from paycore.errors import IdempotencyInProgress, IdempotencyLeaseLost
from paycore.key_rows import ClaimMove, KeyRow, claim_move, lease_terms
from paycore.storage import IdempotencyClaim, KeyClaim, KeyCompletion
from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.prepared import Prepared
from paycore_sqlalchemy.schema import idempotency_keys as keys
from paycore_sqlalchemy.straight import collect

__all__ = ["SentClaim", "SqlIdempotencyStore"]

_ATTEMPTS: Final = 5
"""Rounds of insert-or-inspect before giving up (a row can vanish between them by ``release``)."""

_ROW = sa.select(keys.c.fingerprint, keys.c.token, keys.c.result, keys.c.expires_at).where(
    keys.c.scope == sa.bindparam("scope"), keys.c.key == sa.bindparam("key")
)
_TAKE_OVER = (
    sa.update(keys)
    .where(
        keys.c.scope == sa.bindparam("b_scope"),
        keys.c.key == sa.bindparam("b_key"),
        keys.c.token == sa.bindparam("b_token"),
        keys.c.expires_at <= sa.bindparam("b_now"),
    )
    .values(token=sa.bindparam("token"), expires_at=sa.bindparam("expires_at"))
)
_REPLACE_EXPIRED_RESULT = (
    sa.update(keys)
    .where(
        keys.c.scope == sa.bindparam("b_scope"),
        keys.c.key == sa.bindparam("b_key"),
        keys.c.token.is_(None),
        keys.c.expires_at <= sa.bindparam("b_now"),
    )
    .values(
        fingerprint=sa.bindparam("fingerprint"),
        token=sa.bindparam("token"),
        result=sa.null(),
        expires_at=sa.bindparam("expires_at"),
    )
)
_COMPLETE = Prepared(  # every keyed request ends with it: compiled once (paycore_sqlalchemy.prepared)
    sa.update(keys)
    .where(
        keys.c.scope == sa.bindparam("b_scope"),
        keys.c.key == sa.bindparam("b_key"),
        keys.c.token == sa.bindparam("b_token"),
    )
    .values(token=sa.null(), result=sa.bindparam("result"), expires_at=sa.bindparam("expires_at"))
)
_RELEASE = sa.delete(keys).where(
    keys.c.scope == sa.bindparam("scope"),
    keys.c.key == sa.bindparam("key"),
    keys.c.token == sa.bindparam("token"),
)
_PURGE = sa.delete(keys).where(keys.c.token.is_(None), keys.c.expires_at <= sa.bindparam("now"))


def _insert_if_absent(dialect: str) -> sa.Executable:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(keys).on_conflict_do_nothing(index_elements=[keys.c.scope, keys.c.key])
    return statement.execution_options(preserve_rowcount=True)


class SentClaim:
    """A claim whose first statement was sent (:meth:`SqlIdempotencyStore.send_claim`)."""

    def __init__(
        self, store: SqlIdempotencyStore, connection: sa.Connection, parameters: dict[str, Any], now: float
    ) -> None:
        self._store = store
        self._connection = connection
        self._parameters = parameters
        self._now = now
        self.counts: list[int] = []
        """The rows the first statement inserted, once its answer came."""

    @property
    def answered(self) -> bool:
        """Whether the first statement's answer came already (it was not sent without waiting)."""
        return bool(self.counts)

    def result(self) -> tuple[IdempotencyClaim, bool]:
        """The claim, and whether the first statement took the key (it was free) rather than the ones
        after it (a replay, a takeover). Asked before the answer came, it waits for it."""
        if not self.counts:
            collect(self._connection)
        if self.counts == [1]:
            return IdempotencyClaim(token=self._parameters["token"]), True
        return self._store._settle(self._connection, self._parameters, self._now), False


class SqlIdempotencyStore:
    """An :class:`~paycore.storage.IdempotencyStore` in the ``paycore_idempotency_keys`` table.

    ``clock`` returns Unix seconds; inject one to test lease expiry without sleeping.
    """

    def __init__(
        self,
        database: Database | str,
        *,
        clock: Callable[[], float] = time.time,
        auto_upgrade: bool | None = None,
        owns_database: bool | None = None,
    ) -> None:
        self._owns_database = not isinstance(database, Database) if owns_database is None else owns_database
        self.database = Database(database, auto_upgrade=auto_upgrade) if isinstance(database, str) else database
        if self.database.dialect not in ("sqlite", "postgresql"):
            from paycore.errors import ConfigurationError

            raise ConfigurationError(
                f"sqlalchemy idempotency store: {self.database.dialect!r} has no insert-if-absent "
                "here; use SQLite or PostgreSQL"
            )
        self._insert = Prepared(_insert_if_absent(self.database.dialect))
        self._clock = clock

    def __repr__(self) -> str:
        return f"<SqlIdempotencyStore {self.database.url}>"

    async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> IdempotencyClaim:
        """Take the key, replay its result, or refuse (see :class:`~paycore.storage.IdempotencyStore`)."""

        def work(connection: sa.Connection) -> IdempotencyClaim:
            return self.claim_in(connection, KeyClaim(scope, key, fingerprint, lease_seconds))

        return await self.database.run(work, write=True, compare_and_set=True)

    def claim_in(self, connection: sa.Connection, claim: KeyClaim) -> IdempotencyClaim:
        """:meth:`claim` on ``connection``, inside a unit of work already running (each statement is atomic).

        The SQL repository claims a key this way in the unit that also stores the
        request's new payment (:class:`~paycore.storage.ClaimingRepository`).
        """
        return self.send_claim(connection, claim).result()[0]

    def send_claim(self, connection: sa.Connection, claim: KeyClaim) -> SentClaim:
        """:meth:`claim_in`, its first statement sent without waiting for its answer (:meth:`Prepared.send`).

        Where statements wait for no answer (psycopg, in a transaction), the answer
        comes with the unit's next statement that waits for one: the SQL repository
        sends the claim, reads the request's payment, and then asks
        :meth:`SentClaim.result`, one round trip for both.
        """
        token, now, expires_at = lease_terms(self._clock, claim.lease_seconds)
        parameters = {
            "scope": claim.scope,
            "key": claim.key,
            "fingerprint": claim.fingerprint,
            "token": token,
            "result": None,
            "expires_at": expires_at,
        }
        sent = SentClaim(self, connection, parameters, now)
        self._insert.send(connection, parameters, sent.counts.append)
        return sent

    def _settle(self, connection: sa.Connection, parameters: dict[str, Any], now: float) -> IdempotencyClaim:
        """The claim after its first insert took nothing: replay, take over, or insert again."""
        scope, key, fingerprint = parameters["scope"], parameters["key"], parameters["fingerprint"]
        token, expires_at = parameters["token"], parameters["expires_at"]
        for attempt in range(_ATTEMPTS):
            if attempt and self._insert.execute(connection, parameters) == 1:
                return IdempotencyClaim(token=token)
            row = connection.execute(_ROW, {"scope": scope, "key": key}).first()
            if row is None:
                continue  # released between our insert and our read: insert again
            taken = self._decide(connection, tuple(row), scope, key, fingerprint, token, now, expires_at)
            if taken is not None:
                return taken
        raise IdempotencyInProgress(f"idempotency key {key!r}: too much contention; retry")

    @staticmethod
    def _decide(
        connection: sa.Connection,
        row: tuple[Any, ...],
        scope: str,
        key: str,
        fingerprint: str,
        token: str,
        now: float,
        expires_at: float,
    ) -> IdempotencyClaim | None:
        stored = KeyRow(fingerprint=row[0], token=row[1], result=row[2], expires_at=row[3])
        move = claim_move(stored, key=key, fingerprint=fingerprint, now=now)
        if move is ClaimMove.REPLAY:
            return IdempotencyClaim(result=stored.result, expires_in=stored.expires_at - now)
        where = {"b_scope": scope, "b_key": key, "b_now": now}
        if move is ClaimMove.REPLACE_EXPIRED_RESULT:
            replaced = connection.execute(
                _REPLACE_EXPIRED_RESULT,
                {**where, "fingerprint": fingerprint, "token": token, "expires_at": expires_at},
            )
            return IdempotencyClaim(token=token) if replaced.rowcount == 1 else None
        taken = connection.execute(
            _TAKE_OVER, {**where, "b_token": stored.token, "token": token, "expires_at": expires_at}
        )
        return IdempotencyClaim(token=token, taken_over=True) if taken.rowcount == 1 else None

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        """Store ``result`` for ``ttl_seconds`` if ``token`` still holds the key; else :class:`IdempotencyLeaseLost`."""
        completion = KeyCompletion(self, scope, key, token, result, ttl_seconds)
        if not await self.database.run(lambda c: self.complete_in(c, completion), write=True, compare_and_set=True):
            raise IdempotencyLeaseLost(
                f"idempotency key {key!r}: this request's lease expired and another request took it over"
            )

    def complete_in(self, connection: sa.Connection, completion: KeyCompletion) -> bool:
        """:meth:`complete` on ``connection``, inside a unit of work already running: True if the token held the key."""
        return _COMPLETE.execute(connection, self._completing(completion)) == 1

    def send_completion(self, connection: sa.Connection, completion: KeyCompletion) -> None:
        """:meth:`complete_in`, sent with the unit's other writes (:meth:`Prepared.send`): ``completion.completed``
        is set when its answer comes (which may be with the unit's ``COMMIT``).

        The SQL repository completes a key this way in the transaction of the
        operation's last write (:class:`~paycore.storage.CompletingRepository`).
        """

        def completed(count: int) -> None:
            completion.completed = count == 1

        _COMPLETE.send(connection, self._completing(completion), completed, observes=True)

    def _completing(self, completion: KeyCompletion) -> dict[str, Any]:
        """The parameters of the ``UPDATE`` that completes ``completion``'s key."""
        return {
            "b_scope": completion.scope,
            "b_key": completion.key,
            "b_token": completion.token,
            "result": dict(completion.result),
            "expires_at": self._clock() + completion.ttl_seconds,
        }

    async def release(self, *, scope: str, key: str, token: str) -> None:
        """Forget the key if ``token`` holds it (nothing ran); otherwise do nothing."""
        parameters = {"scope": scope, "key": key, "token": token}
        await self.database.run(lambda c: c.execute(_RELEASE, parameters), write=True, compare_and_set=True)

    async def purge_expired(self) -> int:
        """Delete completed results past their retention; return how many were deleted."""
        now = self._clock()
        return await self.database.run(lambda c: c.execute(_PURGE, {"now": now}).rowcount, write=True)

    async def aclose(self) -> None:
        """Give back the database connection pool share."""
        self.dispose()

    def dispose(self) -> None:
        """Give back the database connection pool share at once (:class:`paycore.disposal.Disposable`): the flow
        built on it was refused. Idempotent: a later :meth:`aclose` does no harm."""
        if self._owns_database:
            self.database.close()
