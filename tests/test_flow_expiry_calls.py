"""The reaper settles provider calls whose answer was lost, whatever their payment's status.

A capture of an authorized payment, a refund of a paid one: if no caller acts
on that payment again, ``expire_stale`` is what learns the provider's truth
(by asking, never by sending again) or tells an operator.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from paycore import Money, hookimpl
from paycore.errors import PaycoreError
from paycore.flow import PaymentFlow
from paycore.hookspecs import AdapterContext, RepositoryRegistrar
from paycore.providers import Capabilities
from paycore.records import Payment
from paycore.status import PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.fake import FakeProvider
from paycore_memory import MemoryRepository

from .conftest import base_config

if TYPE_CHECKING:
    from .conftest import Clock

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")
HOUR = timedelta(hours=1)


async def _lost_capture(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    """An authorized payment whose capture reached the provider and whose answer was lost."""
    authorized = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
    fake.script("capture", "lost")
    payment = await flow.capture(authorized.id)
    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.pending_call is not None
    assert payment.pending_call.unknown
    return payment


def _past_the_lease(flow: PaymentFlow, clock: Clock) -> None:
    """Past the call's lease and a provider timeout more: a poll asked now settles the call, whatever it says."""
    clock.advance(seconds=flow.config.idempotency_lease + flow.config.provider_timeout + 1)


def _sent(fake: FakeProvider, operation: str, payment: Payment) -> int:
    return fake.calls.count((operation, payment.id))


async def test_a_lost_capture_answer_is_settled_by_asking_once_its_lease_has_run_out(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _lost_capture(flow, fake)
    _past_the_lease(flow, clock)
    (settled,) = await flow.expire_stale(HOUR)
    assert (settled.id, settled.status, settled.captured_amount) == (payment.id, PaymentStatus.SUCCEEDED, XOF_5000)
    assert settled.pending_call is None
    assert not settled.needs_review
    assert fake.ledger[payment.id].captured == XOF_5000
    assert _sent(fake, "capture", payment) == 1, "the capture is settled by asking, never sent again"
    assert _sent(fake, "check_status", payment) == 1
    assert [e.cause for e in await flow.list_events(payment.id)][-1] == "reaper"
    assert await flow.expire_stale(HOUR) == []


async def test_a_lost_refund_answer_is_settled_by_asking_once_its_lease_has_run_out(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    paid = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    fake.script("refund", "lost")
    refund = await flow.refund(paid.id)
    assert refund.status is RefundStatus.PENDING
    _past_the_lease(flow, clock)
    (settled,) = await flow.expire_stale(HOUR)
    assert settled.status is PaymentStatus.REFUNDED
    assert [(r.id, r.status) for r in settled.refunds] == [(refund.id, RefundStatus.SUCCEEDED)]
    assert settled.pending_call is None
    assert not settled.needs_review
    assert _sent(fake, "refund", paid) == 1, "the refund is settled by asking, never sent again"


async def test_a_call_within_its_lease_is_left_alone(flow: PaymentFlow, fake: FakeProvider, clock: Clock) -> None:
    payment = await _lost_capture(flow, fake)
    clock.advance(seconds=flow.config.idempotency_lease - 5)  # the request may still be on its way
    assert await flow.expire_stale(timedelta(0)) == []
    assert await flow.get_payment(payment.id) == payment
    assert _sent(fake, "check_status", payment) == 0


async def test_a_lost_answer_at_a_provider_that_cannot_be_polled_is_flagged_once(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    webhooks_only = Capabilities(authorize_capture=True, cancel=True, refund=True, webhooks=True)
    monkeypatch.setattr(type(fake), "capabilities", webhooks_only)
    payment = await _lost_capture(flow, fake)
    _past_the_lease(flow, clock)
    assert await flow.expire_stale(HOUR) == [], "its webhook may still come: not flagged before older_than"
    clock.advance(hours=1)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.id, flagged.status, flagged.needs_review) == (payment.id, PaymentStatus.AUTHORIZED, True)
    assert flagged.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert "capture call is unknown" in flagged.review_message
    assert flagged.pending_call == payment.pending_call, "flagged, not settled: its webhook still settles it"
    clock.advance(hours=5)
    assert await flow.expire_stale(HOUR) == [], "flagged once: a second run adds nothing"
    assert (await flow.get_payment(payment.id)).version == flagged.version
    assert (_sent(fake, "capture", payment), _sent(fake, "check_status", payment)) == (1, 0)


async def test_a_lost_answer_that_polling_cannot_settle_waits_then_is_flagged_once(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _lost_capture(flow, fake)
    fake.poll_answer = "lost"  # the status reads time out too: they say nothing of the capture
    _past_the_lease(flow, clock)
    assert await flow.expire_stale(HOUR) == [], "left for the next run while the provider may come back"
    clock.advance(hours=1)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.AUTHORIZED, ReviewReason.UNKNOWN_OUTCOME)
    clock.advance(hours=2)
    assert await flow.expire_stale(HOUR) == []
    flagged_events = [e for e in await flow.list_events(payment.id) if e.kind == "flagged_for_review"]
    assert len(flagged_events) == 1
    assert _sent(fake, "capture", payment) == 1


async def test_a_lost_answer_whose_provider_cannot_be_reached_waits_then_is_flagged(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _lost_capture(flow, fake)
    fake.poll_answer = "not_sent"
    _past_the_lease(flow, clock)
    assert await flow.expire_stale(HOUR) == [], "left for the next run while the provider may come back"
    clock.advance(hours=1)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.id, flagged.review_reason) == (payment.id, ReviewReason.UNKNOWN_OUTCOME)
    assert "could not be asked" in flagged.review_message
    fake.poll_answer = None
    settled = await flow.refresh(payment.id)
    assert (settled.status, settled.pending_call) == (PaymentStatus.SUCCEEDED, None), "a refresh still settles it"
    assert _sent(fake, "capture", payment) == 1


async def test_settled_calls_count_toward_the_limit(flow: PaymentFlow, fake: FakeProvider, clock: Clock) -> None:
    first = await _lost_capture(flow, fake)
    clock.advance(seconds=1)
    second = await _lost_capture(flow, fake)
    _past_the_lease(flow, clock)
    assert [p.id for p in await flow.expire_stale(HOUR, limit=1)] == [first.id], "oldest first"
    assert [p.id for p in await flow.expire_stale(HOUR, limit=1)] == [second.id]


class PlainRepository:
    """A third party's repository written against the contract before ``list_with_calls``."""

    CONTRACT = frozenset({"add", "get", "get_many", "get_by_external_id", "save", "list_payments", "list_stale",
                          "list_events", "has_receipt", "aclose"})  # fmt: skip

    def __init__(self) -> None:
        self._inner = MemoryRepository()

    def __getattr__(self, name: str) -> Any:
        if name not in self.CONTRACT:
            raise AttributeError(name)
        return getattr(self._inner, name)


class PlainPlugin:
    """Registers :class:`PlainRepository` as ``plain``."""

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        def build(context: AdapterContext) -> PlainRepository:
            return PlainRepository()

        register("plain", build)


async def test_a_repository_that_cannot_list_calls_still_gets_its_stale_payments_expired(
    make_flow: Callable[..., PaymentFlow], clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    async with make_flow(base_config(repository="plain", idempotency="memory"), plugins=(PlainPlugin(),)) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        lost = await _lost_capture(flow, fake)
        fake.script("initiate", "pending")
        walked_away = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o2")).payment
        clock.advance(hours=2)
        with caplog.at_level(logging.WARNING, logger="paycore.reaper"):
            (expired,) = await flow.expire_stale(HOUR)
        assert (expired.id, expired.status) == (walked_away.id, PaymentStatus.EXPIRED)
        assert await flow.get_payment(lost.id) == lost
        assert "CallListingRepository" in caplog.text


@pytest.mark.parametrize("provider_answers", ["canceled", "declined"])
async def test_a_call_made_while_the_reaper_asks_is_left_to_its_owner_unflagged(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch, provider_answers: str
) -> None:
    import anyio

    fake.script("initiate", "pending")
    stale = (await flow.create_payment(amount=Money.of("10000", "XOF"), provider="fake", order_id="o")).payment
    clock.advance(hours=2)
    asked, answer, cancel_now = anyio.Event(), anyio.Event(), anyio.Event()
    check_status, cancel = fake.check_status, fake.cancel

    async def slow_status(payment: Payment) -> Any:
        asked.set()
        await answer.wait()
        return await check_status(payment)

    async def held_cancel(payment: Payment) -> Any:
        await cancel_now.wait()
        if provider_answers == "declined":
            from paycore.errors import InvalidTransition

            raise InvalidTransition("the provider declines the cancel")
        return await cancel(payment)

    monkeypatch.setattr(fake, "check_status", slow_status)
    monkeypatch.setattr(fake, "cancel", held_cancel)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(flow.expire_stale, HOUR)
        await asked.wait()
        monkeypatch.setattr(fake, "check_status", check_status)

        async def caller() -> None:
            try:
                await flow.cancel(stale.id, idempotency_key="c-1")
            except PaycoreError:  # a declined cancel: the payment stays as it was
                pass

        tasks.start_soon(caller)
        while (await flow.get_payment(stale.id)).pending_call is None:  # noqa: ASYNC110  until its call is written
            await anyio.sleep(0.001)
        answer.set()  # the reaper's answer comes back while the caller's cancel is in flight
        await anyio.sleep(0.05)
        assert not (await flow.get_payment(stale.id)).needs_review, "a call in flight is not an unknown outcome"
        cancel_now.set()
    after = await flow.get_payment(stale.id)
    assert not after.needs_review
    if provider_answers == "declined":  # still open and unflagged: a later run asks and expires it
        monkeypatch.setattr(fake, "cancel", cancel)
        clock.advance(hours=2)
        (expired,) = await flow.expire_stale(HOUR)
        assert expired.status is PaymentStatus.EXPIRED
    else:
        assert after.status is PaymentStatus.CANCELED


async def test_a_lost_refund_is_left_alone_until_a_poll_can_settle_it_never_flagged_early(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "lost")
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    fake.ledger[payment.id].refunds.clear()  # it never reached the provider
    clock.advance(seconds=flow.config.idempotency_lease + 5)  # the lease ran out, a provider timeout has not
    assert await flow.expire_stale(HOUR) == []
    early = await flow.get_payment(payment.id)
    assert (early.needs_review, early.refund(refund.id).status) == (False, RefundStatus.PENDING)
    clock.advance(seconds=flow.config.provider_timeout)
    (settled,) = await flow.expire_stale(HOUR)
    assert (settled.needs_review, settled.refund(refund.id).status) == (False, RefundStatus.FAILED)


async def test_a_flagged_open_payment_whose_answer_was_lost_still_has_it_settled(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=Money.of("1000", "XOF"), provider="fake", order_id="o")).payment
    await flow.set_fraud_status(payment.id, "review", message="velocity")
    fake.script("cancel", "lost")
    cancelled = await flow.cancel(payment.id)
    assert cancelled.pending_call is not None
    _past_the_lease(flow, clock)
    clock.advance(hours=2)  # stale too: the open pass leaves it to the operator, the lost answers' pass settles it
    (settled,) = await flow.expire_stale(HOUR)
    assert (settled.id, settled.status, settled.pending_call) == (payment.id, PaymentStatus.CANCELED, None)


async def test_a_call_in_flight_stays_its_owners_when_the_wall_clock_steps_forward(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NTP stepping the clock forward by days (a resumed virtual machine) while a create's answer travels: the
    reaper took the call's lease for run out, polled, cancelled a 0.1 s old payment and expired it, and the
    create returned "expired" with a redirect to the checkout just cancelled."""
    checkout, reaped = await _create_while_the_clock_steps(flow, flow, fake, clock, monkeypatch)
    assert reaped == []
    assert [operation for operation, _ in fake.calls] == ["initiate"], "no poll, no cancel while its owner awaits"
    assert checkout.payment.status is PaymentStatus.PROCESSING
    assert checkout.action is not None
    assert checkout.action.url == f"https://fake.invalid/pay/{fake.ledger[checkout.payment.id].external_id}"
    clock.advance(days=2)  # its answer written, the payment is the reaper's like any other once stale
    (expired,) = await flow.expire_stale(HOUR)
    assert expired.status is PaymentStatus.EXPIRED


async def test_a_create_whose_payment_ended_while_its_answer_travelled_returns_no_action(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer with a page to pay, recorded on a payment already ended: the shop was sent the customer to a
    checkout nothing waits on."""
    from paycore.records import NextAction, ProviderUpdate
    from paycore.status import Outcome

    async def failed_with_a_page(payment: Payment) -> ProviderUpdate:
        fake.calls.append(("initiate", payment.id))
        page = NextAction("redirect", url="https://fake.invalid/pay/late")
        return ProviderUpdate(outcome=Outcome.FAILED, external_id="fk_late", next_action=page)

    monkeypatch.setattr(fake, "initiate", failed_with_a_page)
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    assert checkout.payment.status is PaymentStatus.FAILED
    assert checkout.action is None


async def test_a_call_in_flight_is_left_alone_by_every_flow_of_its_process(
    tmp_path: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Django site has a flow per event loop: the second flow's reaper, blind to the first flow's call in
    flight, polled, cancelled and expired the payment whose create the first still awaited."""
    import paycore.testing.fake
    import paycore_sqlalchemy.plugin

    config = {
        "repository": f"sqlite:///{tmp_path / 'pos.db'}",
        "providers": {"fake": base_config()["providers"]["fake"]},
    }

    def build() -> PaymentFlow:
        return PaymentFlow.from_config(
            config,
            plugins=[paycore.testing.fake, paycore_sqlalchemy.plugin],
            entry_points=False,
            environ={},
            clock=clock,
        )

    async with build() as owner, build() as other:
        fake, others_fake = owner.provider("fake"), other.provider("fake")
        assert isinstance(fake, FakeProvider)
        assert isinstance(others_fake, FakeProvider)
        checkout, reaped = await _create_while_the_clock_steps(owner, other, fake, clock, monkeypatch)
        assert reaped == []
        assert others_fake.calls == []
        assert checkout.payment.status is PaymentStatus.PROCESSING


async def _create_while_the_clock_steps(
    owner: PaymentFlow, reaping: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[Payment]]:
    """``owner`` creates a payment at ``fake``; while its answer travels back the wall clock steps two days
    forward and ``reaping`` runs the reaper. The checkout, and what the reaper returned."""
    import anyio

    fake.script("initiate", "pending")
    initiate, sent = fake.initiate, anyio.Event()

    async def travelling(payment: Payment) -> Any:
        answer = await initiate(payment)
        sent.set()
        await anyio.sleep(0.1)  # the answer on its way back
        return answer

    monkeypatch.setattr(fake, "initiate", travelling)
    reaped: list[Payment] = []
    async with anyio.create_task_group() as tasks:

        async def reaper() -> None:
            await sent.wait()
            clock.advance(days=2)
            reaped.extend(await reaping.expire_stale(HOUR))

        tasks.start_soon(reaper)
        checkout = await owner.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    return checkout, reaped
