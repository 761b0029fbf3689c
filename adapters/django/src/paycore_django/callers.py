"""paycore called inside a transaction of the caller's, and the ``payment_event`` receivers that call waits for.

paycore sends :data:`~paycore_django.signals.payment_event` on a worker
thread, which uses database connections of its own, and the operation that
made the events waits for its receivers. A caller inside a transaction of its
own (``transaction.atomic()``, ``ATOMIC_REQUESTS``, a ``TestCase``) holds that
transaction all the while, so:

* a receiver does not see what the transaction wrote and has not committed (an
  order created in the same request: its ``update()`` matches no row, silently);
* a receiver that writes a row the transaction wrote or locked waits for the
  caller's commit, while the caller waits for the receiver: unchecked, both
  would wait forever.

:class:`~paycore_django.conf.DjangoBlockingPaymentFlow` (what
:func:`paycore_django.blocking_flow` gives) asks :func:`caller_transaction`
before every call. When the calling thread is inside a transaction on any
database and ``payment_event`` has receivers, a warning is logged (once per
process) and the call runs as a :class:`HeldTransaction`: the plugin sends the
signal of each of its events on a thread of its own and waits for the receivers
:data:`RECEIVER_WAIT` seconds at most. Receivers still running then are logged
and left to finish, which they do once the caller's transaction has ended (its
locks go with it); the caller's events after them are sent behind them, in
order, and not waited for (so are those of its later calls, in a transaction
or not, until they have ended). Nothing here imports Django until a call asks.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from attrs import frozen

from paycore.logs import guarded_logger

__all__ = [
    "RECEIVER_WAIT",
    "Backlog",
    "HeldTransaction",
    "caller_transaction",
    "held_by_caller",
    "transactions_held",
]

log = guarded_logger("paycore_django")  # a handler that raises never changes what this module answers

RECEIVER_WAIT: float = 5.0
"""How many seconds a call made inside the caller's transaction waits for ``payment_event`` receivers."""

_held: ContextVar[HeldTransaction | None] = ContextVar("paycore_django_held_transaction", default=None)
"""The caller's transaction, in the event loop task running a call of the blocking flow made inside one."""

_backlogs = threading.local()
"""Each caller thread's :class:`Backlog` (attribute ``backlog``)."""

_warned = threading.Event()
"""Set once the warning of :func:`caller_transaction` was logged (once per process)."""
_warning = threading.Lock()
"""Held while deciding whether to log that warning, so two threads never both log it."""


class Backlog:
    """The ``payment_event`` sends of one caller thread made inside its transactions, each run on a thread of its
    own after the one before it has ended: in order, even when one is left running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: threading.Event | None = None

    def stuck(self) -> bool:
        """Whether a send started earlier is still running (its receivers wait, maybe for the caller)."""
        with self._lock:
            return self._last is not None and not self._last.is_set()

    def start(self, send: Callable[[], None], name: str) -> threading.Event:
        """Run ``send()`` on a new thread called ``name`` once the sends started before it have ended; the
        event returned is set when it has ended too. The thread is not a daemon: the interpreter lets it end."""
        done = threading.Event()
        with self._lock:
            before, self._last = self._last, done

        def run() -> None:
            try:
                if before is not None:
                    before.wait()
                send()
            finally:
                done.set()

        threading.Thread(target=run, name=name).start()
        return done


@frozen
class HeldTransaction:
    """A call of paycore made by thread ``thread`` inside its transactions on databases ``aliases``, while
    ``payment_event`` has receivers; ``backlog`` holds that thread's sends."""

    aliases: tuple[str, ...]
    thread: str
    backlog: Backlog

    def around(self, method: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """``method`` (a flow's method), made to run as this call: the plugin then finds it with
        :func:`held_by_caller` while the events it makes are sent."""

        @functools.wraps(method)
        async def call(*args: Any, **kwargs: Any) -> Any:
            token = _held.set(self)
            try:
                result = method(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result
            finally:
                _held.reset(token)

        return call

    def send(self, send: Callable[[], None], kind: str, payment_id: str) -> Awaitable[None] | None:
        """Start ``send()`` (the signal of event ``kind`` of payment ``payment_id``) behind this thread's earlier
        sends; what to await for it: its end, :data:`RECEIVER_WAIT` seconds at most. ``None`` (nothing to await)
        when an earlier send is still running: waiting would only wait for that one again."""
        behind = self.backlog.stuck()
        done = self.backlog.start(send, f"paycore payment_event for {self.thread}")
        if behind:
            log.info(
                "payment_event for event %s of payment %s is sent once the receivers of an earlier event, still "
                "running, have ended",
                kind,
                payment_id,
            )
            return None
        return self._ended(done, kind, payment_id)

    async def _ended(self, done: threading.Event, kind: str, payment_id: str) -> None:
        """Wait for ``done`` :data:`RECEIVER_WAIT` seconds at most (as long as it takes outside any transaction:
        a call queued behind receivers that have ended since); log the receivers still running then."""
        import anyio.to_thread

        limit = RECEIVER_WAIT if self.aliases else None
        if await anyio.to_thread.run_sync(done.wait, limit):
            return
        log.warning(
            "payment_event receivers of event %s of payment %s still run after %s s, while the caller (thread %s) "
            "holds a transaction on %s: paycore stops waiting for them and the call goes on (a receiver that "
            "waits for a row that transaction holds would otherwise wait for it forever). They finish once it "
            "has ended, and this thread's later events are sent behind them, in order. See docs/django.md, "
            "'Receivers and your transactions'.",
            kind,
            payment_id,
            limit,
            self.thread,
            ", ".join(repr(alias) for alias in self.aliases),
        )


def transactions_held() -> tuple[str, ...]:
    """The database aliases on which the calling thread is inside a transaction (``atomic()``), in
    ``DATABASES`` order (only those it has opened a connection to)."""
    from django.db import connections

    return tuple(
        connection.alias for connection in connections.all(initialized_only=True) if connection.in_atomic_block
    )


def _backlog() -> Backlog:
    """The calling thread's :class:`Backlog`."""
    found: Backlog | None = getattr(_backlogs, "backlog", None)
    if found is None:
        found = _backlogs.backlog = Backlog()
    return found


def caller_transaction() -> HeldTransaction | None:
    """The calling thread's transactions as a :class:`HeldTransaction`, when it is inside one on any database
    and ``payment_event`` has receivers; ``None`` otherwise. The first time, a warning says what it risks.

    Also one (maybe of no alias) while receivers of an earlier such call of this thread still run: the events of
    this call are then sent behind them, in order.
    """
    aliases = transactions_held()
    earlier: Backlog | None = getattr(_backlogs, "backlog", None)
    if not aliases:
        return None if earlier is None or not earlier.stuck() else HeldTransaction((), _thread(), earlier)
    from paycore_django.models import Payment
    from paycore_django.signals import payment_event

    if not payment_event.has_listeners(Payment):
        return None
    _warn_once(aliases)
    return HeldTransaction(aliases, _thread(), _backlog())


def _thread() -> str:
    """The calling thread's name."""
    return threading.current_thread().name


def _warn_once(aliases: tuple[str, ...]) -> None:
    """Say, once per process, what calling paycore inside a transaction on ``aliases`` risks."""
    with _warning:
        if _warned.is_set():
            return
        _warned.set()
        log.warning(
            "paycore is called inside a transaction on database(s) %s (transaction.atomic() or ATOMIC_REQUESTS) "
            "while payment_event has receivers: they run on another thread, on connections of their own, so they "
            "do not see what that transaction wrote and has not committed, and one that writes a row it wrote or "
            "locked waits for its commit. paycore waits for them %s s at most, then lets the call go on. Call "
            "paycore once your transaction has committed; see docs/django.md, 'Receivers and your "
            "transactions'. (Logged once per process.)",
            ", ".join(repr(alias) for alias in aliases),
            RECEIVER_WAIT,
        )


def held_by_caller() -> HeldTransaction | None:
    """The caller's transaction when the running call was made inside one (with receivers to tell); else ``None``."""
    return _held.get()
