"""Closing the flow of an event loop when its runner winds the loop down.

:func:`paycore_django.flow` builds a flow for each event loop that asks: one per
request under WSGI, where Django runs each async view on a loop of its own. Such
a flow holds connections of that loop (an idempotency store's Redis client, a
provider's ``httpx.AsyncClient``), which only that loop can close. So the flow is
closed on its loop as the loop ends: a task that waits for as long as the loop
runs closes it when the loop's runner cancels what is left (``asyncio.run``,
asgiref's ``async_to_sync``, an ASGI server stopping), or a trio system task when
the run's main task returns. A loop ended some other way leaves its flow to the
garbage collector, as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import anyio

from paycore.flow import PaymentFlow

__all__ = ["close_at_loop_end"]

log = logging.getLogger("paycore_django")

_waiting: set[Any] = set()
"""The closing tasks that still wait (asyncio keeps only weak references to tasks: one not kept here could be
collected before its loop ends, and its flow never closed)."""


def close_at_loop_end(loop: object, flow: PaymentFlow, forget: Callable[[], None]) -> None:
    """Have ``flow`` closed, then ``forget()`` called, when ``loop`` (the loop running now: an asyncio loop, or a
    trio run's token) is wound down by its runner."""
    if isinstance(loop, asyncio.AbstractEventLoop):
        task = loop.create_task(_close_at_end(flow, forget), name="paycore_django: close this loop's flow at its end")
        _waiting.add(task)
        task.add_done_callback(_waiting.discard)
    elif loop is not None:
        import trio

        trio.lowlevel.spawn_system_task(_close_at_end, flow, forget, name="paycore_django: close this run's flow")


async def _close_at_end(flow: PaymentFlow, forget: Callable[[], None]) -> None:
    try:
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await flow.aclose()
            except Exception:  # the loop ends all the same; what could not close goes to the garbage collector
                log.warning("the flow of an ending event loop could not be closed", exc_info=True)
        forget()
