"""``Disposable``: a part that gives back what it holds at once, when the flow it was built for is never built.

:meth:`~paycore.flow.PaymentFlow.from_config` builds the repository, then the
idempotency stores, then the providers. When one of them is refused (a
provider's misspelt setting, a store's bad option), the parts already built
will never be used by a flow, nor closed by its ``aclose()``: :func:`dispose`
calls each one's ``dispose()``, which gives back at once what it holds (a
share of a shared database engine, a connection pool), so the refused
configuration leaves nothing open behind it. The build is synchronous and may
run inside an event loop or outside any, so ``dispose()`` is synchronous too.
A part without ``dispose()`` holds nothing that outlives it, or leaves it to
the garbage collector.
"""

from __future__ import annotations

import inspect
from typing import Protocol, runtime_checkable

from paycore.logs import guarded_logger

__all__ = ["Disposable", "dispose"]

log = guarded_logger("paycore.flow")


@runtime_checkable
class Disposable(Protocol):
    """A repository, idempotency store or provider that can give back what it holds without an event loop."""

    def dispose(self) -> None:
        """Give back what this part holds, at once: it was built for a flow whose build then failed, so nothing
        used it and nothing will call its ``aclose()``. Synchronous (no event loop may be running, or one may be
        that must not be blocked on I/O), idempotent, and it should raise nothing."""


def dispose(*parts: object) -> None:
    """Call ``dispose()`` on each of ``parts`` that has one, in the order given.

    It runs while the build's own error is being raised, which is what the caller must see: a part whose
    ``dispose()`` fails is logged (its class and the error's, never the error's text, which may quote a URL
    with its password) and the others are still disposed of.
    """
    for part in parts:
        method = getattr(part, "dispose", None)
        if not callable(method):
            continue
        try:
            result = method()
        except Exception as error:
            log.warning("%s could not be disposed of: %s", type(part).__name__, type(error).__name__)
            continue
        if inspect.iscoroutine(result):  # an async dispose(): it cannot be awaited here
            result.close()
            log.warning("%s.dispose() is a coroutine function; it must be synchronous", type(part).__name__)
