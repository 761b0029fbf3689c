"""Sync callers reach the same flow through ``BlockingPaymentFlow``."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal

import paycore_memory.plugin
from paycore import BlockingPaymentFlow, Money, PaymentStatus
from paycore.errors import ConfigurationError, FlowClosed, IdempotencyKeyReused, PaycoreError
from paycore.testing import fake

CONFIG = {"providers": {"fake": {"type": "fake", "webhook_secret": "whsec-blocking"}}}


@pytest.fixture(params=["asyncio", "trio"])
def blocking_flow(request: pytest.FixtureRequest):
    flow = BlockingPaymentFlow.from_config(
        CONFIG, plugins=[fake, paycore_memory.plugin], entry_points=False, backend=request.param
    )
    with flow:
        yield flow


def test_a_payment_made_from_sync_code_succeeds(blocking_flow: BlockingPaymentFlow) -> None:
    checkout = blocking_flow.create_payment(amount=Money.of("2500", "XOF"), provider="fake", order_id="T1-1")
    assert checkout.payment.status is PaymentStatus.SUCCEEDED
    assert blocking_flow.get_payment(checkout.payment.id) == checkout.payment


def test_every_method_of_the_flow_is_a_method_of_the_facade_with_the_same_arguments() -> None:
    # "the same method names and arguments": flow.provider("fake") raised AttributeError on the facade.
    import inspect

    from paycore import PaymentFlow

    properties_on_flow = {"idempotency_store", "in_flight"}  # parts of the flow: blocking_flow.flow has them
    lifecycle = {"aclose", "from_config"}  # the facade's own: close() and its own from_config
    for name, member in inspect.getmembers(PaymentFlow):
        if name.startswith("_") or name in properties_on_flow | lifecycle or not callable(member):
            continue
        ours = getattr(BlockingPaymentFlow, name, None)
        assert ours is not None, f"BlockingPaymentFlow has no {name}"
        theirs = list(inspect.signature(member).parameters)
        assert list(inspect.signature(ours).parameters) == theirs, name


def test_the_facade_reaches_the_flows_providers_and_clock(blocking_flow: BlockingPaymentFlow) -> None:
    assert blocking_flow.provider("fake") is blocking_flow.flow.provider("fake")
    assert blocking_flow.providers() == blocking_flow.flow.providers()
    assert blocking_flow.now().tzinfo is not None


def test_refunds_and_idempotency_behave_as_in_async_code(blocking_flow: BlockingPaymentFlow) -> None:
    paid = blocking_flow.create_payment(
        amount=Money.of("2500", "XOF"), provider="fake", order_id="T1-2", idempotency_key="k-2"
    ).payment
    refund = blocking_flow.refund(paid.id, amount=Money.of("500", "XOF"), idempotency_key="r-2")
    assert blocking_flow.refund(paid.id, amount=Money.of("500", "XOF"), idempotency_key="r-2") == refund
    with pytest.raises(IdempotencyKeyReused):
        blocking_flow.refund(paid.id, amount=Money.of("700", "XOF"), idempotency_key="r-2")
    assert blocking_flow.get_payment(paid.id).status is PaymentStatus.PARTIALLY_REFUNDED


def test_many_threads_share_one_facade(blocking_flow: BlockingPaymentFlow) -> None:
    errors: list[BaseException] = []

    def till(number: int) -> None:
        try:
            for sale in range(5):
                blocking_flow.create_payment(
                    amount=Money.of("1000", "XOF"), provider="fake", order_id=f"T{number}-{sale}",
                    idempotency_key=f"T{number}-{sale}",
                )  # fmt: skip
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=till, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(blocking_flow.list_payments()) == 40
    assert len(blocking_flow.flow.provider("fake").calls) == 40  # type: ignore[attr-defined]


def test_a_closed_facade_says_how_to_open_it() -> None:
    flow = BlockingPaymentFlow.from_config(CONFIG, plugins=[fake, paycore_memory.plugin], entry_points=False)
    with pytest.raises(PaycoreError, match="not open"):
        flow.list_payments()


def test_a_call_from_the_facades_own_event_loop_is_refused_saying_what_to_do(
    blocking_flow: BlockingPaymentFlow,
) -> None:
    async def observer_calling_back() -> None:  # as a sync hook or a function given to run() might
        blocking_flow.list_payments()

    with pytest.raises(PaycoreError, match=r"its own event loop .* await its flow's list_payments"):
        blocking_flow.run(observer_calling_back)
    assert blocking_flow.list_payments() == [], "the facade still serves its callers"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_call_meeting_a_close_made_by_another_thread_is_told_the_flow_closed(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = BlockingPaymentFlow.from_config(
        CONFIG, plugins=[fake, paycore_memory.plugin], entry_points=False, backend=backend
    ).open()
    call = BlockingPortal.call

    def closed_meanwhile(portal: BlockingPortal, function: Any, *args: Any) -> Any:
        monkeypatch.setattr(BlockingPortal, "call", call)
        flow.close()  # another thread closes the facade after this caller found it open, before its call
        return call(portal, function, *args)

    monkeypatch.setattr(BlockingPortal, "call", closed_meanwhile)
    with pytest.raises(FlowClosed):
        flow.create_payment(amount=Money.of("2500", "XOF"), provider="fake", order_id="T1-1")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_a_facade_opened_before_a_fork_refuses_in_the_child_instead_of_hanging(
    blocking_flow: BlockingPaymentFlow,
) -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: a worker forked from a preloaded app
        try:
            blocking_flow.list_payments()
        except PaycoreError as error:
            os.write(write, f"refused: {error}".encode())
        except BaseException as error:
            os.write(write, f"other: {error!r}".encode())
        else:
            os.write(write, b"answered")
        blocking_flow.close()  # the parent's to close: nothing happens here
        os._exit(0)
    os.close(write)
    answered, _, _ = select.select([read], [], [], 10)
    if not answered:
        os.kill(child, signal.SIGKILL)
    with os.fdopen(read, "rb") as pipe:
        told = pipe.read().decode() if answered else "no answer within 10 s: the call hung"
    os.waitpid(child, 0)
    assert told.startswith("refused: this BlockingPaymentFlow was opened in process"), told
    assert blocking_flow.list_payments() == [], "the parent's flow still works"


@pytest.mark.parametrize("backend", ["curio", "", None, "ASYNCIO"])
def test_an_unknown_backend_is_a_configuration_error_when_the_facade_is_built(backend: object) -> None:
    with pytest.raises(ConfigurationError, match="backend must be 'asyncio' or 'trio'"):
        BlockingPaymentFlow.from_config(
            CONFIG,
            plugins=[fake, paycore_memory.plugin],
            entry_points=False,
            backend=backend,  # type: ignore[arg-type]
        )


def test_a_facade_left_open_does_not_hang_the_interpreter_at_exit() -> None:
    script = textwrap.dedent(
        """
        import paycore_memory.plugin
        from paycore.blocking import BlockingPaymentFlow
        flow = BlockingPaymentFlow.from_config(None, plugins=[paycore_memory.plugin], entry_points=False, environ={})
        flow.open()
        print("open")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout.strip()) == (0, "open")
