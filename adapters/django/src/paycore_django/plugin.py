"""The ``django`` plugin: repository and idempotency store type ``django``, and the ``payment_event`` signal.

Configuration: ``repository = "django"`` (the ``default`` database) or a table
``{type = "django", using = "payments"}`` naming another alias of
``settings.DATABASES``; the idempotency store ``django`` takes the same
``using`` (by default the repository's). In a Django project ``"django"`` is
the default repository (:mod:`paycore_django.conf`).

This module is loaded through the ``paycore`` entry point by every flow of an
environment where paycore-django is installed, Django project or not: it
imports nothing of Django until a ``django`` adapter is built or a payment
event has a receiver.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

from paycore import hookimpl
from paycore.errors import ConfigurationError
from paycore.hookspecs import AdapterContext, IdempotencyStoreRegistrar, RepositoryRegistrar
from paycore.logs import guarded_logger
from paycore.records import Payment, PaymentEvent
from paycore_django.callers import held_by_caller, send_in_order
from paycore_django.databases import check_database

if TYPE_CHECKING:
    from paycore_django.storage import DjangoIdempotencyStore, DjangoPaymentRepository

__all__ = [
    "SETTINGS",
    "paycore_payment_event",
    "paycore_register_idempotency_stores",
    "paycore_register_repositories",
]

log = guarded_logger("paycore_django")  # a handler that raises never changes what this module answers

SETTINGS: Final = frozenset({"using"})
"""The settings a ``django`` repository or idempotency store takes."""


def _using(context: AdapterContext, owner: str) -> str:
    unknown = set(context.settings) - SETTINGS
    if unknown:
        raise ConfigurationError(f"{owner}: unknown setting(s) {sorted(unknown)}; known: {sorted(SETTINGS)}")
    return check_database(context.settings.get("using", "default"), owner)


def _repository(context: AdapterContext) -> DjangoPaymentRepository:
    using = _using(context, "repository 'django'")
    from paycore_django.storage import DjangoPaymentRepository

    return DjangoPaymentRepository(using)


def _idempotency_store(context: AdapterContext) -> DjangoIdempotencyStore:
    using = _using(context, "idempotency store 'django'")
    from paycore_django.storage import DjangoIdempotencyStore

    return DjangoIdempotencyStore(using)


@hookimpl
def paycore_register_repositories(register: RepositoryRegistrar) -> None:
    """Register repository type ``django``."""
    register("django", _repository)


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``django``."""
    register("django", _idempotency_store)


def _listened_signal() -> tuple[Any, type[Any]] | None:
    """The ``payment_event`` signal and its sender when Django is set up and someone listens; else ``None``."""
    if "django.apps" not in sys.modules:
        return None
    from django.apps import apps

    if not apps.ready or not apps.is_installed("paycore_django"):
        return None
    from paycore_django.models import Payment as PaymentModel
    from paycore_django.signals import payment_event

    if not payment_event.has_listeners(PaymentModel):
        return None
    return payment_event, PaymentModel


def _send(signal: Any, sender: type[Any], event: PaymentEvent, payment: Payment, *, last: bool = False) -> None:
    """Send ``signal`` on this (worker) thread; log each receiver that fails, close old connections (``last``:
    the thread ends after it, so close all of its connections, which no one would reuse)."""
    from django.db import close_old_connections, connections

    try:
        for receiver, outcome in signal.send_robust(sender=sender, event=event, payment=payment):
            if isinstance(outcome, Exception):
                log.error(
                    "payment_event receiver %r failed on event %s of payment %s",
                    receiver,
                    event.kind,
                    event.payment_id,
                    exc_info=outcome,
                )
    finally:
        if last:
            connections.close_all()
        else:
            close_old_connections()


@hookimpl
def paycore_payment_event(event: PaymentEvent, payment: Payment) -> Awaitable[None] | None:
    """Send :data:`paycore_django.signals.payment_event` for a committed event, on a worker thread.

    Receivers are ordinary sync (or async) Django signal receivers and may use
    the ORM; each one that raises is logged and the others still run. The
    operation waits for them, except in a call made inside a transaction of the
    caller's (:mod:`paycore_django.callers`): there, for some seconds at most.
    """
    found = _listened_signal()
    if found is None:
        return None
    send = functools.partial(_send, *found, event, payment)
    held = held_by_caller()
    on_its_own = functools.partial(send, last=True)  # on a thread of its own, which ends after it
    if held is not None:
        return held.send(on_its_own, event.kind, payment.id)
    behind = send_in_order(on_its_own, payment.id)  # the payment's earlier events are still being told
    if behind is not None:
        return behind
    import anyio.to_thread

    return anyio.to_thread.run_sync(send)
