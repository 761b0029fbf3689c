"""Closing the flow of an event loop when its runner winds the loop down.

:func:`paycore_django.flow` builds a flow for each event loop that asks: one per
request under WSGI, where Django runs each async view on a loop of its own. Such
a flow holds connections of that loop (an idempotency store's Redis client, a
provider's ``httpx.AsyncClient``), which only that loop can close. So the flow is
closed on its loop as the loop ends: a task that waits for as long as the loop
runs closes it when the loop's runner cancels what is left (``asyncio.run``,
asgiref's ``async_to_sync``, an ASGI server stopping), or a trio system task when
the run's main task returns.

A runner may also close its loop as it stands, leaving the task pending
(``loop.run_until_complete()`` then ``loop.close()``). The task holds its flow only
weakly, and once :func:`let_go` is told the loop ended, nothing holds the task: the
flow and the task go to the garbage collector, as everything of that loop does.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

import anyio

from paycore.flow import PaymentFlow

__all__ = ["close_at_loop_end", "let_go"]

log = logging.getLogger("paycore_django")

_waiting: dict[object, asyncio.Task[None]] = {}
"""The closing task of each asyncio loop still running (asyncio keeps only weak references to tasks: one not
kept here could be collected before its loop ends, and its flow never closed)."""


def close_at_loop_end(loop: object, flow: PaymentFlow) -> None:
    """Have ``flow`` closed when ``loop`` (the loop running now: an asyncio loop, or a trio run's token) is wound
    down by its runner. The flow stays its loop's until the loop has ended (a task that asks for it as the loop
    winds down gets it, closing or closed, and is refused there, rather than a new flow no one would close)."""
    if isinstance(loop, asyncio.AbstractEventLoop):
        name = "paycore_django: close this loop's flow at its end"
        task = _waiting[loop] = loop.create_task(_close_at_end(weakref.ref(flow)), name=name)
        task.add_done_callback(lambda done: _waiting.pop(loop) if _waiting.get(loop) is done else None)
    elif loop is not None:
        import trio

        name = "paycore_django: close this run's flow at its end"
        trio.lowlevel.spawn_system_task(_close_at_end, weakref.ref(flow), name=name)


def let_go(loop: object) -> None:
    """Drop the closing task of ``loop``, closed by its runner without being wound down: the task can never run
    again, and is collected without a word (asyncio would log it as "destroyed but pending")."""
    task = _waiting.pop(loop, None)
    if task is not None:
        setattr(task, "_log_destroy_pending", False)  # noqa: B010  # asyncio's own switch for such a task


async def _close_at_end(flow: weakref.ref[PaymentFlow]) -> None:
    try:
        await anyio.sleep_forever()
    except GeneratorExit:  # collected after its loop was closed as it stood: nothing can run there any more
        raise
    except BaseException:  # the runner winds the loop down
        kept = flow()
        if kept is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await kept.aclose()
                except Exception:  # the loop ends all the same; what could not close goes to the garbage collector
                    log.warning("the flow of an ending event loop could not be closed", exc_info=True)
        raise
