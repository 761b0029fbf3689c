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
and ``CONN_HEALTH_CHECKS`` govern their connections exactly as they govern a
view's (``CONN_MAX_AGE = 0``: a connection per unit; more: reused by the thread).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Final, TypeVar

import anyio.to_thread
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, transaction

from paycore.errors import ConcurrentUpdate, StorageUnavailable

__all__ = ["run_unit", "run_unit_sync", "unavailable"]

T = TypeVar("T")

_LOST_RACE: Final = frozenset({"40001", "40P01"})
"""SQLSTATEs of a serialization failure and a deadlock: the transaction lost a race; nothing changed."""


def unavailable(error: DatabaseError, using: str) -> StorageUnavailable:
    """A :class:`StorageUnavailable` naming the database alias and the driver's first line."""
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return StorageUnavailable(f"Django database {using!r} failed: {detail}")


def run_unit_sync(using: str, work: Callable[[], T], *, atomic: bool = True) -> T:
    """Run ``work()`` on the calling thread, in ``transaction.atomic(using=using)`` unless ``atomic=False``.

    ``atomic=False`` is for a read of one statement, atomic by itself (no
    ``BEGIN``/``COMMIT`` round trips).
    """
    close_old_connections()
    try:
        if not atomic:
            return work()
        with transaction.atomic(using=using):
            return work()
    except (OperationalError, InterfaceError) as error:
        if getattr(error.__cause__, "sqlstate", None) in _LOST_RACE:
            raise ConcurrentUpdate(
                f"Django database {using!r}: the transaction lost a race; nothing changed"
            ) from error
        raise unavailable(error, using) from error
    finally:
        close_old_connections()


async def run_unit(using: str, work: Callable[[], T], *, atomic: bool = True) -> T:
    """Run ``work()`` as one unit of work on a worker thread; return its result (see :func:`run_unit_sync`)."""
    return await anyio.to_thread.run_sync(functools.partial(run_unit_sync, using, work, atomic=atomic))
