"""``RedisClients``: redis-py clients for a store, and how a script call reaches them.

redis-py's asyncio client runs only under asyncio. So a call made under
asyncio goes through an asyncio client (one per event loop: a client belongs to
the loop that opened its connections); a call made under trio goes through
redis-py's blocking client and its connection pool, one script per worker-thread
call (``anyio.to_thread.run_sync``); setting ``transport = "threads"`` sends
asyncio's calls that way too. ``benchmarks/redis_idempotency.py`` measures both
paths.

Every call is shielded from cancellation: it is bounded by the socket timeouts,
and a claim or a completion that was sent must not be abandoned half-way (the
caller would not learn that it holds a key, or that its result was stored).
Connection failures and timeouts become :class:`~paycore.errors.StorageUnavailable`;
any other failure, redis-py's or not, a :class:`~paycore.errors.StorageError`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.cluster
import redis.exceptions
import redis.retry
import redis.sentinel
import sniffio
from redis.backoff import NoBackoff

from paycore.awaiting import WorkCancelled, run_to_end
from paycore.errors import StorageError, StorageUnavailable
from paycore_redis.settings import RedisStoreSettings, redact_url

__all__ = ["RedisClients"]

_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.RedisClusterException,
    OSError,
)
"""Errors that mean "Redis cannot be reached or cannot write right now"."""


def _retry(asyncio_client: bool) -> redis.retry.Retry | redis.asyncio.retry.Retry:
    # One immediate retry on a broken connection: a pooled connection broken by
    # a Redis restart is replaced at once, while a Redis that is down fails
    # fast. The scripts are safe to run twice. Never on a timeout: a Redis that
    # is slow would hold the caller a second socket_timeout.
    broken = (redis.exceptions.ConnectionError,)
    if asyncio_client:
        return redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=broken)
    return redis.retry.Retry(NoBackoff(), 1, supported_errors=broken)


class _Bound:
    """One client and its registered scripts."""

    __slots__ = ("client", "scripts")

    def __init__(self, client: Any, scripts: Mapping[str, str]) -> None:
        self.client = client
        self.scripts = {name: client.register_script(source) for name, source in scripts.items()}


class RedisClients:
    """Opens redis-py clients lazily from ``settings`` and runs registered scripts on them."""

    def __init__(self, settings: RedisStoreSettings, scripts: Mapping[str, str]) -> None:
        self._settings = settings
        self._scripts = dict(scripts)
        self._lock = threading.Lock()
        self._blocking: _Bound | None = None
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bound] = weakref.WeakKeyDictionary()
        self._closed = False
        self._native = settings.transport == "auto"

    def __repr__(self) -> str:
        return f"<RedisClients {redact_url(self._settings.url)}>"

    @property
    def where(self) -> str:
        """The server's URL with any password hidden, for messages."""
        return redact_url(self._settings.url)

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run script ``name`` and return its reply; raise ``StorageUnavailable`` if Redis is out of reach,
        ``StorageError`` if the call failed otherwise."""
        if self._closed:
            raise StorageError(f"the Redis idempotency store at {self.where} is closed")
        try:
            # To its end, even under asyncio's own Task.cancel(), which goes through anyio's shields: a script
            # sent is never abandoned half-way, its reply unread or its worker thread still running.
            return await run_to_end(partial(self._run, name, list(keys), list(args)))
        except _UNAVAILABLE as error:
            raise StorageUnavailable(
                f"Redis at {self.where} is unavailable ({type(error).__name__}: {error})"
            ) from error
        except redis.exceptions.RedisError as error:
            raise StorageError(f"Redis at {self.where} failed: {type(error).__name__}: {error}") from error
        except WorkCancelled as error:  # the client cancelled the reply's wait itself (its connection closing)
            raise StorageUnavailable(f"Redis at {self.where}: the reply to script {name!r} was cut off") from error
        except Exception as error:  # not redis-py's own: a client or connection it could not make from the settings
            # (a TypeError for an option its connection does not take): never raw to the caller, and a tiered store
            # carries on with the store behind.
            raise StorageError(f"Redis at {self.where} failed: {type(error).__name__}: {error}") from error

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        if self._native and sniffio.current_async_library() == "asyncio":
            return await self._asyncio_bound().scripts[name](keys=keys, args=args)
        return await anyio.to_thread.run_sync(partial(self._run_blocking, name, keys, args))

    def _run_blocking(self, name: str, keys: list[str], args: list[Any]) -> Any:
        # In the worker thread: opening a cluster client connects at once.
        return self._blocking_bound().scripts[name](keys=keys, args=args)

    def _options(self, *, asyncio_client: bool) -> dict[str, Any]:
        settings = self._settings
        options: dict[str, Any] = {
            "socket_timeout": settings.socket_timeout,
            "socket_connect_timeout": settings.connect_timeout,
            "decode_responses": True,
        }
        if settings.password is not None:
            options["password"] = settings.password.reveal()
        if not settings.cluster:
            options["retry"] = _retry(asyncio_client)
            options["retry_on_error"] = [redis.exceptions.ConnectionError]
        return options

    def _blocking_bound(self) -> _Bound:
        bound = self._blocking
        if bound is None:
            with self._lock:
                if self._blocking is None:
                    self._blocking = _Bound(self._open_blocking(), self._scripts)
                bound = self._blocking
        return bound

    def _asyncio_bound(self) -> _Bound:
        loop = asyncio.get_running_loop()
        bound = self._per_loop.get(loop)
        if bound is None:
            # A client's connections refer to their loop, so a closed loop's entry never leaves the weak mapping
            # on its own: dropped here, its connections are closed when they are collected.
            for ended in [other for other in self._per_loop if other.is_closed()]:
                del self._per_loop[ended]
            bound = self._per_loop[loop] = _Bound(self._open_asyncio(), self._scripts)
        return bound

    def _open_blocking(self) -> Any:
        settings, options = self._settings, self._options(asyncio_client=False)
        target = settings.sentinel
        if target is not None:
            sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
                list(target.sentinels),
                sentinel_kwargs={
                    "socket_timeout": settings.socket_timeout,
                    "socket_connect_timeout": settings.connect_timeout,
                },
            )
            return sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]
                target.service, db=target.db, **_sentinel_auth(target, options)
            )
        if settings.cluster:
            return redis.cluster.RedisCluster.from_url(settings.url, **options)
        pool = redis.BlockingConnectionPool.from_url(settings.url, **_waiting_pool(settings), **options)
        return redis.Redis.from_pool(pool)  # closed with the client

    def _open_asyncio(self) -> Any:
        settings, options = self._settings, self._options(asyncio_client=True)
        target = settings.sentinel
        if target is not None:
            sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call,unused-ignore]
                list(target.sentinels),
                sentinel_kwargs={
                    "socket_timeout": settings.socket_timeout,
                    "socket_connect_timeout": settings.connect_timeout,
                },
            )
            return sentinel.master_for(target.service, db=target.db, **_sentinel_auth(target, options))
        if settings.cluster:
            return redis.asyncio.cluster.RedisCluster.from_url(settings.url, **options)
        pool = redis.asyncio.BlockingConnectionPool.from_url(settings.url, **_waiting_pool(settings), **options)
        return redis.asyncio.Redis.from_pool(pool)  # closed with the client

    async def aclose(self) -> None:
        """Close the clients; connections of other event loops are dropped with their loop."""
        self._closed = True
        blocking, self._blocking = self._blocking, None
        current = None
        if sniffio.current_async_library() == "asyncio":
            current = self._per_loop.pop(asyncio.get_running_loop(), None)
        self._per_loop.clear()
        with anyio.CancelScope(shield=True):
            if current is not None:
                await current.client.aclose()
            if blocking is not None:
                await anyio.to_thread.run_sync(blocking.client.close)


MAX_CONNECTIONS = 100
"""The most connections a client keeps open to a Redis server (redis-py's own default)."""


def _waiting_pool(settings: RedisStoreSettings) -> dict[str, Any]:
    """A pool whose callers wait for a free connection (up to ``socket_timeout``) once :data:`MAX_CONNECTIONS` are
    busy: redis-py's default pool refuses the call at once, which a store would take for Redis being down (a
    hundred and one requests at once switched the tiered store's Redis off)."""
    return {"max_connections": MAX_CONNECTIONS, "timeout": settings.socket_timeout}


def _sentinel_auth(target: Any, options: dict[str, Any]) -> dict[str, Any]:
    merged = dict(options)
    if target.password is not None and "password" not in merged:
        merged["password"] = target.password.reveal()
    if target.username is not None:
        merged["username"] = target.username
    return merged
