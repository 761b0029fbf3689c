"""A closed flow sends and stores nothing more: every operation that would is refused with ``FlowClosed``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import paycore_sqlalchemy.plugin
from paycore import Money
from paycore.errors import FlowClosed
from paycore.flow import PaymentFlow
from paycore.status import Outcome, PaymentStatus
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")

OPERATIONS: dict[str, Callable[[PaymentFlow, str, FakeProvider], Awaitable[Any]]] = {
    "create_payment": lambda flow, _, __: flow.create_payment(amount=XOF_5000, provider="fake", order_id="o2"),
    "capture": lambda flow, payment_id, _: flow.capture(payment_id, idempotency_key="k"),
    "cancel": lambda flow, payment_id, _: flow.cancel(payment_id),
    "refund": lambda flow, payment_id, _: flow.refund(payment_id, amount=Money.of("1", "XOF")),
    "refresh": lambda flow, payment_id, _: flow.refresh(payment_id),
    "handle_webhook": lambda flow, payment_id, fake: flow.handle_webhook("fake", *fake.webhook(payment_id)),
    "expire_stale": lambda flow, _, __: flow.expire_stale(0),
    "set_fraud_status": lambda flow, payment_id, _: flow.set_fraud_status(payment_id, "review", message="m"),
    "resolve_review": lambda flow, payment_id, _: flow.resolve_review(payment_id, note="n"),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_every_operation_of_a_closed_flow_is_refused_and_changes_nothing(
    make_flow: Callable[..., PaymentFlow], operation: str
) -> None:
    flow = make_flow()
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
    fake.settle(payment.id, Outcome.AUTHORIZED)
    sent = list(fake.calls)
    await flow.aclose()
    with pytest.raises(FlowClosed, match="closed"):
        await OPERATIONS[operation](flow, payment.id, fake)
    assert fake.calls == sent, "nothing reached the provider"
    assert await flow.get_payment(payment.id) == payment, "nothing was stored"


async def test_a_closed_flow_is_not_opened_again(make_flow: Callable[..., PaymentFlow]) -> None:
    flow = make_flow()
    async with flow:
        pass
    with pytest.raises(FlowClosed):
        async with flow:
            pass


def test_a_closed_blocking_flow_is_not_opened_again(make_flow: Callable[..., PaymentFlow]) -> None:
    from paycore.blocking import BlockingPaymentFlow

    blocking = BlockingPaymentFlow(make_flow())
    with blocking:
        pass
    with pytest.raises(FlowClosed), blocking:
        pass
    assert "closed" in repr(blocking)


async def test_closing_a_flow_lets_a_create_under_way_record_its_answer_first(
    make_flow: Callable[..., PaymentFlow], tmp_path: Path
) -> None:
    config = {
        "repository": f"sqlite:///{tmp_path}/shop.db",  # a store that refuses everything once closed
        "idempotency": "memory",
        "providers": {"fake": {"type": "fake", "webhook_secret": "whsec-test"}},
    }
    flow = make_flow(config, plugins=(paycore_sqlalchemy.plugin,))
    async with flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        initiate, charged = fake.initiate, anyio.Event()

        async def charge_then_answer_late(payment: Any) -> Any:
            answer = await initiate(payment)
            charged.set()
            await anyio.sleep(0.2)  # the customer is charged; the answer is on its way back
            return answer

        fake.initiate = charge_then_answer_late  # type: ignore[method-assign]
        created: list[Any] = []
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(
                lambda: _append(created, flow.create_payment(amount=XOF_5000, provider="fake", order_id="o"))
            )
            await charged.wait()
            await flow.aclose()  # the server shuts down while the create is under way
            assert flow.in_flight.count == 0
    (checkout,) = created
    assert checkout.payment.status is PaymentStatus.SUCCEEDED, "the caller got the provider's answer"
    async with make_flow(config, plugins=(paycore_sqlalchemy.plugin,)) as reopened:
        stored = await reopened.get_payment(checkout.payment.id)
    assert (stored.status, stored.pending_call) == (PaymentStatus.SUCCEEDED, None), "and it was stored"


async def _append(results: list[Any], operation: Awaitable[Any]) -> None:
    results.append(await operation)


async def test_two_closes_at_once_both_return_once_the_operation_under_way_ends(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    flow = make_flow(idempotency_lease=60)  # a close waits for up to the lease: far longer than the operation
    async with flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        initiate, started = fake.initiate, anyio.Event()

        async def answer_in_a_moment(payment: Any) -> Any:
            started.set()
            await anyio.sleep(0.2)
            return await initiate(payment)

        fake.initiate = answer_in_a_moment  # type: ignore[method-assign]
        closed_at: list[float] = []

        async def close() -> None:
            await flow.aclose()
            closed_at.append(anyio.current_time())

        begun = anyio.current_time()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(lambda: flow.create_payment(amount=XOF_5000, provider="fake", order_id="o"))
            await started.wait()
            tasks.start_soon(close)
            tasks.start_soon(close)  # the app's shutdown and the server's lifespan, say
    assert len(closed_at) == 2
    assert max(closed_at) - begun < 5, "neither close waited out the lease"


KEYED: dict[str, Callable[[PaymentFlow, str], Awaitable[Any]]] = {
    "create_payment": lambda flow, _: flow.create_payment(
        amount=XOF_5000, provider="fake", order_id="o2", idempotency_key="k"
    ),
    "capture": lambda flow, payment_id: flow.capture(payment_id, idempotency_key="k"),
    "cancel": lambda flow, payment_id: flow.cancel(payment_id, idempotency_key="k"),
    "refund": lambda flow, payment_id: flow.refund(payment_id, amount=Money.of("1", "XOF"), idempotency_key="k"),
}


@pytest.mark.parametrize("operation", sorted(KEYED))
async def test_a_keyed_operation_under_way_when_closing_begins_finishes_before_the_stores_close(
    make_flow: Callable[..., PaymentFlow], operation: str
) -> None:
    flow = make_flow()
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
    if operation == "refund":
        payment = await flow.capture(payment.id)
    store, claimed = flow.idempotency_store, anyio.Event()
    claim = store.claim

    async def claim_then_wait(**arguments: Any) -> Any:
        held = await claim(**arguments)
        claimed.set()
        await anyio.sleep(0.05)  # the key is claimed; the operation waits on its store while closing begins
        return held

    store.claim = claim_then_wait  # type: ignore[method-assign]
    done: list[Any] = []
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(lambda: _append(done, KEYED[operation](flow, payment.id)))
        await claimed.wait()
        tasks.start_soon(flow.aclose)
    assert len(done) == 1  # it finished: a FlowClosed would have left its key claimed until the lease ran out
    sent = "initiate" if operation == "create_payment" else operation
    assert [name for name, _ in fake.calls].count(sent) == (2 if sent == "initiate" else 1), "sent once"
    assert flow.in_flight.count == 0


def _record_closes(flow: PaymentFlow, closed: list[str]) -> None:
    """Make the flow's idempotency store and repository append their names to ``closed`` as they close."""
    for name, part in (("idempotency store", flow.idempotency_store), ("repository", flow.repository)):

        async def close(close: Callable[[], Awaitable[None]] = part.aclose, name: str = name) -> None:
            closed.append(name)
            await close()

        part.aclose = close  # type: ignore[method-assign]


async def test_a_provider_whose_close_fails_leaves_no_other_part_open_and_its_error_is_raised(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    flow = make_flow()
    closed: list[str] = []

    async def fail() -> None:
        raise RuntimeError("the provider's HTTP client would not close")

    flow.provider("fake").aclose = fail  # type: ignore[method-assign]
    _record_closes(flow, closed)
    with pytest.raises(RuntimeError, match="would not close"):
        async with flow:
            pass
    assert closed == ["idempotency store", "repository"]
    with pytest.raises(FlowClosed):
        await flow.create_payment(amount=XOF_5000, provider="limited", order_id="o")
    await flow.aclose()  # closing again: nothing more to close, nothing raised


async def test_when_several_parts_fail_to_close_the_first_failure_is_raised_and_the_others_logged(
    make_flow: Callable[..., PaymentFlow], caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow()
    closed: list[str] = []

    async def fail_with(error: Exception) -> None:
        raise error

    flow.provider("fake").aclose = lambda: fail_with(RuntimeError("first"))  # type: ignore[method-assign]
    flow.provider("limited").aclose = lambda: fail_with(OSError("second, at postgres://u:hunter2@db"))  # type: ignore[method-assign]
    _record_closes(flow, closed)
    with pytest.raises(RuntimeError, match="first"):
        await flow.aclose()
    assert closed == ["idempotency store", "repository"]
    logged = [record.getMessage() for record in caplog.records if record.name == "paycore.flow"]
    assert logged == ["LimitedProvider could not be closed: OSError"]


async def test_a_cancelled_close_whose_provider_fails_still_closes_every_other_part(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    flow = make_flow()
    closed: list[str] = []

    async def fail_later() -> None:
        await anyio.sleep(0.01)  # a cancellation outside does not reach it: the close is shielded
        raise RuntimeError("the provider's HTTP client would not close")

    flow.provider("fake").aclose = fail_later  # type: ignore[method-assign]
    _record_closes(flow, closed)
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(RuntimeError, match="would not close"):
            await flow.aclose()
    assert closed == ["idempotency store", "repository"]
