"""Units of work: one sync function, one ``transaction.atomic``, one worker thread.

Django's async ORM cannot run transactions, so every repository or store method
builds a plain function and hands it to :func:`run_unit`, which calls it on a
worker thread (``anyio.to_thread.run_sync``, so asyncio and trio alike) inside
``transaction.atomic(using=alias)``. The function returns (and the transaction
commits) or raises (and it rolls back): a method is all or nothing. A cancelled
caller waits for its unit to finish, so a transaction is never left half-way,
and no transaction is ever open while the flow talks to a provider.

Worker threads are not request threads: each unit starts and ends with
``close_old_connections()``, as Django's request cycle does, so ``CONN_MAX_AGE``
and ``CONN_HEALTH_CHECKS`` govern their connections as they govern a view's
(``CONN_MAX_AGE = 0``: a connection per unit; more: reused by the thread while
it lives). anyio's worker threads end after some idle seconds (and with their
event loop): a connection kept by one that ended is never reused, and is closed
only when it is garbage-collected; docs/django.md, "Database connections".

A database paycore's tables are missing from (never migrated, or a router that
kept paycore's migrations off it) or that refuses them to its user is a
:class:`StorageUnavailable` naming the alias and saying to run ``migrate``, on
SQLite and PostgreSQL alike; any other ``ProgrammingError`` propagates as it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from django.db import (
    DatabaseError,
    InterfaceError,
    InternalError,
    OperationalError,
    ProgrammingError,
    close_old_connections,
    transaction,
)

from paycore.errors import ConcurrentUpdate, StorageUnavailable, first_line
from paycore.sqlstates import LOST_RACE, READ_ONLY

__all__ = ["run_unit", "run_unit_sync", "unavailable"]

T = TypeVar("T")

_NOT_MIGRATED: Final = frozenset({"42P01", "42703"})
"""PostgreSQL SQLSTATEs of an undefined table and an undefined column: paycore's migrations are not applied there."""
_NOT_GRANTED: Final = "42501"
"""PostgreSQL's SQLSTATE of an insufficient privilege: the database user may not use paycore's tables."""
_SQLITE_NOT_MIGRATED: Final = ("no such table", "no such column", "has no column named")
"""How SQLite says a table or column of paycore's is missing (it gives no SQLSTATE)."""


def unavailable(error: DatabaseError, using: str) -> StorageUnavailable:
    """A :class:`StorageUnavailable` naming the database alias and the driver's first line."""
    return StorageUnavailable(f"Django database {using!r} failed: {first_line(error)}")


def _sqlstate(error: DatabaseError) -> str | None:
    """The SQLSTATE of the driver's error behind ``error`` (psycopg 3's ``sqlstate``, psycopg2's ``pgcode``)."""
    cause = error.__cause__
    code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    return str(code) if code else None


def _schema_refusal(error: DatabaseError, using: str) -> StorageUnavailable | None:
    """A :class:`StorageUnavailable` when ``error`` says paycore's tables are missing on ``using`` (or refused to
    its user); ``None`` for any other error."""
    state = _sqlstate(error)
    detail = first_line(error)
    text = detail.lower()
    migrate = f"python manage.py migrate --database {using}"
    if state in _NOT_MIGRATED or (state is None and any(words in text for words in _SQLITE_NOT_MIGRATED)):
        return StorageUnavailable(
            f"Django database {using!r} lacks paycore's tables ({detail}): run `{migrate}`, and let "
            f"DATABASE_ROUTERS migrate paycore's apps on {using!r} (manage.py check: paycore_django.W004)"
        )
    if state == _NOT_GRANTED:
        return StorageUnavailable(
            f"Django database {using!r} refuses paycore's tables to its user ({detail}): grant that user "
            f"access to them, or run `{migrate}` as it"
        )
    return None


def run_unit_sync(using: str, work: Callable[[], T], *, atomic: bool = True) -> T:
    """Run ``work()`` on the calling thread, in ``transaction.atomic(using=using)`` unless ``atomic=False``.

    ``atomic=False`` is for a read of one statement, atomic by itself (no
    ``BEGIN``/``COMMIT`` round trips). A lost connection is a :class:`StorageUnavailable`, as are paycore's
    tables missing from the database (or refused to its user); a lost race is a :class:`ConcurrentUpdate`.
    """
    close_old_connections()
    try:
        if not atomic:
            return work()
        with transaction.atomic(using=using):
            return work()
    except InternalError as error:
        if _sqlstate(error) != READ_ONLY:
            raise
        raise StorageUnavailable(
            f"Django database {using!r} is read-only (a standby after a failover, or default_transaction_read_only): "
            "nothing was written; point it at the primary"
        ) from error
    except (OperationalError, InterfaceError, ProgrammingError) as error:
        refusal = _schema_refusal(error, using)
        if refusal is not None:
            raise refusal from error
        if isinstance(error, ProgrammingError):
            raise  # a programming error, not the database's state: shown as it is
        if _sqlstate(error) in LOST_RACE:
            raise ConcurrentUpdate(
                f"Django database {using!r}: the transaction lost a race; nothing changed"
            ) from error
        raise unavailable(error, using) from error
    finally:
        close_old_connections()


async def run_unit(using: str, work: Callable[[], T], *, atomic: bool = True) -> T:
    """Run ``work()`` as one unit of work on a worker thread; return its result (see :func:`run_unit_sync`).

    Units count against a limit of their own (:data:`UNIT_THREADS` at once, per event loop), not anyio's default
    one, which ``payment_event`` receivers share: receivers waiting for a row a caller's transaction holds could
    otherwise take every thread, and that caller's next call, waiting for one, would never end."""
    unit = functools.partial(run_unit_sync, using, work, atomic=atomic)
    return await anyio.to_thread.run_sync(unit, limiter=_units_limiter())


UNIT_THREADS: Final = 40
"""How many units of work may run on worker threads at once, per event loop (anyio's default limit's size)."""

_units_limiters: RunVar[anyio.CapacityLimiter] = RunVar("paycore_django_units")


def _units_limiter() -> anyio.CapacityLimiter:
    """The running event loop's limit of units of work at once."""
    try:
        return _units_limiters.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(UNIT_THREADS)
        _units_limiters.set(limiter)
        return limiter
