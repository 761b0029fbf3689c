"""``BlockingPaymentFlow``: the same :class:`~paycore.flow.PaymentFlow`, called from sync code.

Django views, Flask handlers and scripts call it like any blocking library. It
starts an event loop in a background thread (an anyio blocking portal) and runs
each call of the one async flow there, so sync and async callers share one
implementation that cannot drift. It is thread-safe: any number of threads may
call it at once.

.. code-block:: python

    # paycore.toml: [providers.wave] type = "wave" ... (see the configuration page)
    with BlockingPaymentFlow.from_config("paycore.toml") as flow:
        checkout = flow.create_payment(amount=Money.of("5000", "XOF"), provider="wave", order_id="T4-17")
        print(checkout.payment.status, checkout.action)
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from paycore.clock import utcnow
from paycore.config import PaycoreConfig
from paycore.errors import ConfigurationError, FlowClosed, PaycoreError
from paycore.flow import PaymentFlow
from paycore.listing import PaymentPage
from paycore.money import Money
from paycore.providers import Provider
from paycore.records import Checkout, Customer, LineItem, Payment, PaymentEvent, Refund
from paycore.secrets import shown_setting
from paycore.status import FraudStatus, PaymentStatus, RefundStatus

__all__ = ["BlockingPaymentFlow"]

T = TypeVar("T")


def _checked_backend(backend: str) -> str:
    if backend not in ("asyncio", "trio"):
        raise ConfigurationError(f"backend must be 'asyncio' or 'trio', not {shown_setting(backend)}")
    return backend


class BlockingPaymentFlow:
    """A blocking facade over a :class:`PaymentFlow`, with the same method names and arguments (its properties
    that hold the flow's parts, such as ``idempotency_store`` and ``in_flight``, are on :attr:`flow`).

    Use it as a context manager, or call :meth:`open` at start-up and
    :meth:`close` at shutdown. ``backend`` is the event loop the portal runs
    (``"asyncio"`` or ``"trio"``).
    """

    def __init__(self, flow: PaymentFlow, *, backend: str = "asyncio") -> None:
        self.flow = flow
        self.backend = _checked_backend(backend)
        self._lock = threading.Lock()
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._opened_in = 0
        """The process that opened it: its event loop's thread is in no other (``os.fork``)."""
        self._loop_thread = 0
        """The thread its event loop runs in: a call from there (an observer, a hook) would wait on itself."""

    @classmethod
    def from_config(
        cls,
        config: PaycoreConfig | Mapping[str, Any] | str | None = None,
        *,
        plugins: Iterable[object] = (),
        entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        backend: str = "asyncio",
    ) -> BlockingPaymentFlow:
        """Build the flow as :meth:`PaymentFlow.from_config` does, wrapped for sync callers."""
        _checked_backend(backend)  # before the flow is built: a refused backend leaves no flow open
        flow = PaymentFlow.from_config(config, plugins=plugins, entry_points=entry_points, environ=environ, clock=clock)
        return cls(flow, backend=backend)

    def __repr__(self) -> str:
        state = "open" if self._portal is not None else "closed"
        return f"<BlockingPaymentFlow {state} backend={self.backend!r} flow={self.flow!r}>"

    def open(self) -> BlockingPaymentFlow:
        """Start the background event loop and open the flow (idempotent)."""
        with self._lock:
            if self._portal is None:
                manager = start_blocking_portal(self.backend)
                portal = manager.__enter__()
                try:
                    portal.call(self.flow.__aenter__)
                except BaseException:
                    manager.__exit__(None, None, None)
                    raise
                self._portal_cm, self._portal, self._opened_in = manager, portal, os.getpid()
                self._loop_thread = portal.call(threading.get_ident)
                _close_before_exit(self)
        return self

    def close(self) -> None:
        """Close the flow and stop the background event loop (in the process that opened it: a forked copy
        leaves them to it, and keeps them, since letting go of its loop waits for a thread it does not have)."""
        if self._portal is not None and self._opened_in != os.getpid():
            return
        with self._lock:
            portal, manager = self._portal, self._portal_cm
            self._portal = self._portal_cm = None
        if portal is not None and manager is not None:
            try:
                portal.call(self.flow.aclose)
            finally:
                manager.__exit__(None, None, None)

    def __enter__(self) -> BlockingPaymentFlow:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def around_call(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """What runs on the event loop for a call of ``method`` (a flow's method), decided on the calling thread
        before the call is handed over: ``method`` itself. A subclass may wrap it to carry something of the
        calling thread into the call (the Django adapter: the caller's database transactions)."""
        return method

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        portal = self._portal
        if portal is None:
            raise PaycoreError("BlockingPaymentFlow is not open: use it in a with block or call open() first")
        if self._opened_in != os.getpid():  # its event loop's thread was not copied by fork: a call would hang
            raise PaycoreError(
                f"this BlockingPaymentFlow was opened in process {self._opened_in}: build and open one in each "
                "process after a fork (a flow's connections and its event loop belong to the process that opened it)"
            )
        if threading.get_ident() == self._loop_thread:
            raise PaycoreError(
                "a BlockingPaymentFlow cannot be called from its own event loop (an observer, a hook, a function "
                f"given to run()): await its flow's {getattr(method, '__name__', 'method')}() there instead"
            )
        try:
            return portal.call(functools.partial(self.around_call(method), *args, **kwargs))
        except RuntimeError:
            if self._portal is not portal:  # closed by another thread as the call started: nothing was sent
                raise FlowClosed("this BlockingPaymentFlow was closed: it sends and stores nothing more") from None
            raise

    def create_payment(
        self,
        *,
        amount: Money,
        provider: str,
        order_id: str,
        tenant: str | None = None,
        description: str = "",
        customer: Customer | None = None,
        items: Sequence[LineItem] = (),
        metadata: Mapping[str, Any] | None = None,
        capture: bool = True,
        return_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Checkout:
        """See :meth:`PaymentFlow.create_payment`."""
        result: Checkout = self._call(
            self.flow.create_payment,
            amount=amount,
            provider=provider,
            order_id=order_id,
            tenant=tenant,
            description=description,
            customer=customer,
            items=items,
            metadata=metadata,
            capture=capture,
            return_url=return_url,
            idempotency_key=idempotency_key,
        )
        return result

    def provider(self, code: str, *, tenant: str | None = None) -> Provider:
        """See :meth:`PaymentFlow.provider` (no event loop needed: the providers are built)."""
        return self.flow.provider(code, tenant=tenant)

    def providers(self, *, tenant: str | None = None) -> dict[str, Provider]:
        """See :meth:`PaymentFlow.providers`."""
        return self.flow.providers(tenant=tenant)

    def now(self) -> datetime:
        """See :meth:`PaymentFlow.now`."""
        return self.flow.now()

    def get_payment(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """See :meth:`PaymentFlow.get_payment`."""
        result: Payment = self._call(self.flow.get_payment, payment_id, tenant=tenant)
        return result

    def list_payments(
        self,
        *,
        order_id: str | None = None,
        tenant: str | None = None,
        status: PaymentStatus | str | None = None,
        limit: int | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        after: str | None = None,
    ) -> list[Payment]:
        """See :meth:`PaymentFlow.list_payments`."""
        result: list[Payment] = self._call(
            self.flow.list_payments,
            order_id=order_id,
            tenant=tenant,
            status=status,
            limit=limit,
            created_from=created_from,
            created_before=created_before,
            newest_first=newest_first,
            after=after,
        )
        return result

    def page_payments(
        self,
        *,
        order_id: str | None = None,
        tenant: str | None = None,
        status: PaymentStatus | str | None = None,
        limit: int = 50,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        after: str | None = None,
    ) -> PaymentPage:
        """See :meth:`PaymentFlow.page_payments`."""
        result: PaymentPage = self._call(
            self.flow.page_payments,
            order_id=order_id,
            tenant=tenant,
            status=status,
            limit=limit,
            created_from=created_from,
            created_before=created_before,
            newest_first=newest_first,
            after=after,
        )
        return result

    def list_events(self, payment_id: str, *, tenant: str | None = None) -> list[PaymentEvent]:
        """See :meth:`PaymentFlow.list_events`."""
        result: list[PaymentEvent] = self._call(self.flow.list_events, payment_id, tenant=tenant)
        return result

    def handle_webhook(
        self, provider: str, body: bytes, headers: Mapping[str, str], *, tenant: str | None = None
    ) -> list[Payment]:
        """See :meth:`PaymentFlow.handle_webhook`."""
        result: list[Payment] = self._call(self.flow.handle_webhook, provider, body, headers, tenant=tenant)
        return result

    def refresh(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """See :meth:`PaymentFlow.refresh`."""
        result: Payment = self._call(self.flow.refresh, payment_id, tenant=tenant)
        return result

    def capture(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        idempotency_key: str | None = None,
        tenant: str | None = None,
    ) -> Payment:
        """See :meth:`PaymentFlow.capture`."""
        result: Payment = self._call(
            self.flow.capture, payment_id, amount=amount, idempotency_key=idempotency_key, tenant=tenant
        )
        return result

    def cancel(self, payment_id: str, *, idempotency_key: str | None = None, tenant: str | None = None) -> Payment:
        """See :meth:`PaymentFlow.cancel`."""
        result: Payment = self._call(self.flow.cancel, payment_id, idempotency_key=idempotency_key, tenant=tenant)
        return result

    def refund(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
        tenant: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Refund:
        """See :meth:`PaymentFlow.refund`."""
        result: Refund = self._call(
            self.flow.refund,
            payment_id,
            amount=amount,
            reason=reason,
            idempotency_key=idempotency_key,
            tenant=tenant,
            metadata=metadata,
        )
        return result

    def expire_stale(self, older_than: timedelta | float | None = None, *, limit: int = 100) -> list[Payment]:
        """See :meth:`PaymentFlow.expire_stale`."""
        result: list[Payment] = self._call(self.flow.expire_stale, older_than, limit=limit)
        return result

    def set_fraud_status(
        self, payment_id: str, status: FraudStatus | str, *, message: str = "", tenant: str | None = None
    ) -> Payment:
        """See :meth:`PaymentFlow.set_fraud_status`."""
        result: Payment = self._call(self.flow.set_fraud_status, payment_id, status, message=message, tenant=tenant)
        return result

    def resolve_refund(
        self, payment_id: str, refund_id: str, *, outcome: RefundStatus | str, note: str, tenant: str | None = None
    ) -> Payment:
        """See :meth:`PaymentFlow.resolve_refund`."""
        result: Payment = self._call(
            self.flow.resolve_refund, payment_id, refund_id, outcome=outcome, note=note, tenant=tenant
        )
        return result

    def resolve_payment(
        self,
        payment_id: str,
        *,
        outcome: PaymentStatus | str,
        note: str,
        amount: Money | None = None,
        tenant: str | None = None,
    ) -> Payment:
        """See :meth:`PaymentFlow.resolve_payment`."""
        result: Payment = self._call(
            self.flow.resolve_payment, payment_id, outcome=outcome, note=note, amount=amount, tenant=tenant
        )
        return result

    def resolve_review(self, payment_id: str, *, note: str, tenant: str | None = None) -> Payment:
        """See :meth:`PaymentFlow.resolve_review`."""
        result: Payment = self._call(self.flow.resolve_review, payment_id, note=note, tenant=tenant)
        return result

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run any coroutine function on the flow's event loop (for plugin services)."""
        return self._call(function, *args)


def _close_before_exit(blocking: BlockingPaymentFlow) -> None:
    """Close ``blocking`` when the interpreter exits, if its owner never did.

    The portal's event loop runs in a worker thread, which the interpreter joins
    at exit *before* ``atexit`` handlers run: a facade left open would hang the
    exit. ``threading._register_atexit`` (what :mod:`concurrent.futures` uses) runs
    before that join. Only a weak reference is kept, so the facade can be collected.
    """
    reference = weakref.ref(blocking)
    pid = os.getpid()

    def close() -> None:
        alive = reference()
        if alive is not None and os.getpid() == pid:
            alive.close()

    register = getattr(threading, "_register_atexit", None)
    if register is None:  # pragma: no cover - every supported Python has it
        atexit.register(close)
    else:
        try:
            register(close)
        except RuntimeError:  # the interpreter is already shutting down
            pass
