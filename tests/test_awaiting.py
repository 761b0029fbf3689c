"""``paycore.awaiting``: a provider request's time limit (``within``), under asyncio and trio; work that
must end, run to its end (``run_to_end``) whatever asyncio's own ``Task.cancel()`` does to its caller.

A request that answers without waiting is never timed; one that waits runs
under a deadline counted from its start, nested around any scope it opens, and
everything the event loop sends or throws reaches it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest

from paycore.awaiting import WorkCancelled, run_to_end, to_the_end, within

pytestmark = pytest.mark.anyio


async def test_a_request_that_answers_without_waiting_gives_its_answer() -> None:
    async def answer() -> str:
        time.sleep(0.05)  # noqa: ASYNC251  # longer than the limit, but nothing waits: nothing could end it
        return "paid"

    assert await within(answer(), 0.01) == "paid"


async def test_a_request_that_waits_and_answers_in_time_gives_its_answer() -> None:
    async def answer() -> str:
        await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.01)
        return "paid"

    assert await within(answer(), 5) == "paid"


async def test_what_the_event_loop_sends_reaches_the_request() -> None:
    send, receive = anyio.create_memory_object_stream[str](1)

    async def answer() -> str:
        async with receive:
            return await receive.receive()  # waits until the other task sends

    async def gateway() -> None:
        await anyio.sleep(0.01)
        async with send:
            await send.send("captured")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(gateway)
        assert await within(answer(), 5) == "captured"


async def test_a_request_still_waiting_at_the_deadline_ends_in_timeout_error_and_cleans_up() -> None:
    cleaned = []

    async def answer() -> str:
        try:
            await anyio.sleep(10)
            return "late"
        finally:
            cleaned.append("closed")

    with pytest.raises(TimeoutError, match=r"no answer within 0\.05s"):
        await within(answer(), 0.05)
    assert cleaned == ["closed"]


async def test_the_deadline_counts_the_time_the_request_ran_before_it_waited() -> None:
    async def answer() -> str:
        time.sleep(0.2)  # noqa: ASYNC251  # 0.2s of work before the first wait ...
        await anyio.sleep(0.2)  # ... then 0.2s of waiting: 0.4s in all, past the 0.3s limit
        return "late"

    with pytest.raises(TimeoutError):
        await within(answer(), 0.3)


async def test_a_scope_the_request_opens_before_waiting_nests_inside_the_deadline() -> None:
    async def gives_up_first() -> str:
        with anyio.move_on_after(0.01):  # the request's own, shorter limit
            await anyio.sleep(10)
        return "gave up"

    async def outlives_its_own_limit() -> str:
        with anyio.move_on_after(10):
            await anyio.sleep(10)
        return "late"

    assert await within(gives_up_first(), 5) == "gave up"
    with pytest.raises(TimeoutError):
        await within(outlives_its_own_limit(), 0.05)
    await anyio.lowlevel.checkpoint()  # the task's scopes are intact: it still waits and is woken normally


async def test_an_outer_cancellation_reaches_the_waiting_request_and_is_not_a_timeout() -> None:
    seen = []

    async def answer() -> str:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise
        return "late"

    with anyio.move_on_after(0.05) as outer:
        await within(answer(), 5)
    assert outer.cancelled_caught
    assert seen == ["cancelled"]


async def test_an_error_the_request_raises_after_waiting_comes_out_as_it_is() -> None:
    async def answer() -> str:
        await anyio.lowlevel.checkpoint()
        raise ConnectionResetError("the gateway hung up")

    with pytest.raises(ConnectionResetError, match="hung up"):
        await within(answer(), 5)


async def test_an_error_the_request_raises_before_waiting_comes_out_as_it_is() -> None:
    async def answer() -> str:
        raise ConnectionRefusedError("no route to the gateway")

    with pytest.raises(ConnectionRefusedError, match="no route"):
        await within(answer(), 5)


def _cut_as_the_work_ends(work_result: Callable[[], object]) -> BaseException | object:
    """Under asyncio: what a caller of ``run_to_end`` gets when its own ``Task.cancel()`` lands in the loop turn
    its work ends in (returning ``work_result()``, or raising what it raises)."""

    async def main() -> BaseException | object:
        holder: dict[str, asyncio.Task[object]] = {}

        async def work() -> object:
            asyncio.get_running_loop().call_soon(holder["caller"].cancel)
            return work_result()

        async def caller() -> object:
            return await run_to_end(work)

        holder["caller"] = asyncio.ensure_future(caller())
        try:
            return await holder["caller"]
        except BaseException as ended:  # what the caller's task ended with is the subject
            return ended

    return asyncio.run(main())


def test_a_caller_cancelled_as_its_work_returns_is_cancelled_not_told_the_work_failed() -> None:
    ended = _cut_as_the_work_ends(lambda: "done")
    assert isinstance(ended, asyncio.CancelledError), ended
    assert not isinstance(ended, WorkCancelled)


def test_a_caller_cancelled_as_its_work_fails_is_cancelled_with_the_failure_as_cause() -> None:
    def fail() -> object:
        raise RuntimeError("the work failed")

    ended = _cut_as_the_work_ends(fail)
    assert isinstance(ended, asyncio.CancelledError), ended
    assert isinstance(ended.__cause__, RuntimeError)


def test_work_that_cancels_itself_is_a_failure_of_the_work_not_a_cut_caller() -> None:
    async def main() -> BaseException | None:
        async def work() -> None:
            cancelled = asyncio.get_running_loop().create_future()
            cancelled.cancel()
            await cancelled

        try:
            await run_to_end(work)
        except BaseException as ended:
            return ended
        return None

    assert isinstance(asyncio.run(main()), WorkCancelled)


def _to_the_end_cut_midway(work_ends: Callable[[], object], message: str) -> tuple[object, BaseException | None]:
    """Under asyncio: what ``to_the_end`` gives a caller whose own ``Task.cancel(message)`` lands while its work
    waits (the work then ends by returning ``work_ends()`` or raising what it raises)."""

    async def main() -> tuple[object, BaseException | None]:
        started = asyncio.Event()

        async def work() -> object:
            started.set()
            await asyncio.sleep(0.05)  # a unit of work in its worker thread: the caller goes meanwhile
            return work_ends()

        async def caller() -> tuple[object, BaseException | None]:
            return await to_the_end(work)

        task = asyncio.ensure_future(caller())
        await started.wait()
        task.cancel(message)
        try:
            return await task
        except BaseException as ended:  # what the caller's task ended with is the subject
            return ended, None

    return asyncio.run(main())


def test_to_the_end_hands_a_caller_cut_midway_the_work_s_result_and_its_own_cancellation() -> None:
    result, cut = _to_the_end_cut_midway(lambda: "token", "client went away")
    assert result == "token", "the work ran to its end and its result reached the caller"
    assert isinstance(cut, asyncio.CancelledError)
    assert cut.args == ("client went away",), "the caller's own cancellation, with its message"


def test_to_the_end_raises_the_cut_caller_s_cancellation_with_the_work_s_failure_as_cause() -> None:
    def fail() -> object:
        raise RuntimeError("the unit failed")

    ended, _ = _to_the_end_cut_midway(fail, "client went away")
    assert isinstance(ended, asyncio.CancelledError), ended
    assert ended.args == ("client went away",)
    assert isinstance(ended.__cause__, RuntimeError)


async def test_to_the_end_keeps_a_cancel_scope_s_cancellation_out_until_the_work_has_ended() -> None:
    ended: list[str] = []

    async def work() -> str:
        await anyio.sleep(0.05)
        ended.append("work")
        return "token"

    with anyio.CancelScope() as scope:
        scope.cancel()
        result, cut = await to_the_end(work)
        ended.append(f"handed {result}, cut {cut}")
        await anyio.lowlevel.checkpoint()  # the scope's cancellation lands at the caller's next wait
        ended.append("not reached")
    assert scope.cancelled_caught
    assert ended == ["work", "handed token, cut None"]
