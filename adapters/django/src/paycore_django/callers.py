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
locks go with it). A payment's events are told in order whatever thread makes
them: while one is still being told, its later ones (of this call, or of any
later call from any thread) are sent behind it (:func:`send_in_order`). The
threads that tell them are not daemons, so the interpreter lets them end before
it exits. Nothing here imports Django until a call asks.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Final

from attrs import frozen

from paycore.logs import guarded_logger

__all__ = [
    "RECEIVER_WAIT",
    "Backlog",
    "HeldTransaction",
    "caller_transaction",
    "held_by_caller",
    "send_in_order",
    "transactions_held",
]

log = guarded_logger("paycore_django")  # a handler that raises never changes what this module answers

RECEIVER_WAIT: float = 5.0
"""How many seconds a call made inside the caller's transaction waits for ``payment_event`` receivers."""

_held: ContextVar[HeldTransaction | None] = ContextVar("paycore_django_held_transaction", default=None)
"""The caller's transaction, in the event loop task running a call of the blocking flow made inside one."""

_chains: dict[str, Backlog] = {}
"""Each payment whose events are still being told on threads of their own, and its :class:`Backlog`."""
_chains_lock = threading.Lock()
"""Held while :data:`_chains` is read or changed."""

_warned = threading.Event()
"""Set once the warning of :func:`caller_transaction` was logged (once per process)."""
_warning = threading.Lock()
"""Held while deciding whether to log that warning, so two threads never both log it."""


class Backlog:
    """The ``payment_event`` sends of one payment's events told on threads of their own, each run after the one
    before it has ended: in order, even when one is left running."""

    def __init__(self, payment_id: str) -> None:
        self._lock = threading.Lock()
        self._last: threading.Event | None = None
        self.payment_id = payment_id

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
                with _chains_lock, self._lock:  # the payment's last send has ended: nothing to order behind
                    if self._last is done and _chains.get(self.payment_id) is self:
                        del _chains[self.payment_id]

        # Not a daemon (a thread started by a daemon, the flow's event loop thread, would be one by default).
        threading.Thread(target=run, name=name, daemon=False).start()
        return done


def _enqueue(payment_id: str, send: Callable[[], None], *, only_behind: bool) -> tuple[threading.Event, bool] | None:
    """Start ``send()`` (an event of ``payment_id``) behind the payment's events still being told; its end, and
    whether one was. ``only_behind``: start it only if one is (``None`` otherwise). One critical section: a send
    ending meanwhile cannot drop the backlog this one joins."""
    name = f"paycore payment_event for {threading.current_thread().name}"
    with _chains_lock:
        found = _chains.get(payment_id)
        behind = found is not None and found.stuck()
        if only_behind and not behind:
            return None
        if found is None:
            found = _chains[payment_id] = Backlog(payment_id)
        return found.start(send, name), behind


def send_in_order(send: Callable[[], None], payment_id: str) -> Awaitable[None] | None:
    """Tell an event of ``payment_id`` made outside a caller's transaction (``send()``) behind its earlier events
    still being told on threads of their own, if any; what to await then (its end, however long: the caller
    holds nothing they could wait for). ``None``: none is, and the plugin tells it as usual."""
    started = _enqueue(payment_id, send, only_behind=True)
    return None if started is None else _set(started[0], None)


async def _set(done: threading.Event, limit: float | None) -> bool:
    """Whether ``done`` was set within ``limit`` seconds (``None``: however long it takes). Polled from the event
    loop: a worker thread waiting for it would take one of those every unit of work needs."""
    import anyio

    waited = 0.0
    while not done.is_set():
        if limit is not None and waited >= limit:
            return False
        await anyio.sleep(_POLL)
        waited += _POLL
    return True


_POLL: Final = 0.01
"""Seconds between two looks at whether a send told on a thread of its own has ended."""


@frozen
class HeldTransaction:
    """A call of paycore made by thread ``thread`` inside its transactions on databases ``aliases``, while
    ``payment_event`` has receivers."""

    aliases: tuple[str, ...]
    thread: str

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
        """Start ``send()`` (the signal of event ``kind`` of payment ``payment_id``) behind the payment's earlier
        events still being told; what to await for it: its end, :data:`RECEIVER_WAIT` seconds at most. ``None``
        (nothing to await) when an earlier one is still running: waiting would only wait for that one again."""
        started = _enqueue(payment_id, send, only_behind=False)
        assert started is not None
        done, behind = started
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
        """Wait for ``done`` :data:`RECEIVER_WAIT` seconds at most; log the receivers still running then."""
        if await _set(done, RECEIVER_WAIT):
            return
        log.warning(
            "payment_event receivers of event %s of payment %s still run after %s s, while the caller (thread %s) "
            "holds a transaction on %s: paycore stops waiting for them and the call goes on (a receiver that "
            "waits for a row that transaction holds would otherwise wait for it forever). They finish once it "
            "has ended, and the payment's later events are sent behind them, in order. See docs/django.md, "
            "'Receivers and your transactions'.",
            kind,
            payment_id,
            RECEIVER_WAIT,
            self.thread,
            ", ".join(repr(alias) for alias in self.aliases),
        )


def transactions_held() -> tuple[str, ...]:
    """The database aliases on which the calling thread is inside a transaction (``atomic()``, or autocommit
    turned off with ``transaction.set_autocommit(False)``), in ``DATABASES`` order (only those it has opened a
    connection to)."""
    from django.db import connections

    return tuple(
        connection.alias
        for connection in connections.all(initialized_only=True)
        if connection.in_atomic_block or (connection.connection is not None and not connection.get_autocommit())
    )


def caller_transaction() -> HeldTransaction | None:
    """The calling thread's transactions as a :class:`HeldTransaction`, when it is inside one on any database
    and ``payment_event`` has receivers; ``None`` otherwise. The first time, a warning says what it risks."""
    aliases = transactions_held()
    if not aliases:
        return None
    from paycore_django.models import Payment
    from paycore_django.signals import payment_event

    if not payment_event.has_listeners(Payment):
        return None
    _warn_once(aliases)
    return HeldTransaction(aliases, _thread())


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
