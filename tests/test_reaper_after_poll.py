"""The reaper acts on what it asked about: a payment that changed since is not expired, canceled or re-flagged.

A report can land after the reaper's poll said "unpaid" (or after its listing, when its provider cannot be polled)
and before the reaper writes what it decided: the customer paid, maybe less than asked (the payment is flagged
``amount_mismatch`` and stays ``processing`` for an operator). The reaper's decision was made on the payment as it
was: it is not written over the report, so the money that arrived can still be recorded (``resolve_payment``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from paycore import Money
from paycore.flow import PaymentFlow
from paycore.providers import Capabilities
from paycore.records import Payment, ProviderUpdate
from paycore.status import Outcome, PaymentStatus, ReviewReason
from paycore.testing.fake import FakeProvider

if TYPE_CHECKING:
    from .conftest import Clock

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")
XOF_4000 = Money.of("4000", "XOF")
HOUR = timedelta(hours=1)

Report = Callable[[], Awaitable[None]]


async def _stale(flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch,
                 capabilities: Capabilities, *, orders: int = 1) -> list[Payment]:  # fmt: skip
    """``orders`` payments left processing past the deadline at a provider that can do what ``capabilities`` say."""
    monkeypatch.setattr(type(fake), "capabilities", capabilities)
    payments = []
    for order in range(orders):
        fake.script("initiate", "pending")
        payments.append((await flow.create_payment(amount=XOF_5000, provider="fake", order_id=f"o{order}")).payment)
    clock.advance(hours=2)
    return payments


def _underpaid(flow: PaymentFlow, fake: FakeProvider, payment: Payment) -> Report:
    """The customer pays 4000 of the 5000 asked, and the provider's webhook says so."""

    async def report() -> None:
        fake.settle(payment.id, Outcome.SUCCEEDED, captured=XOF_4000)
        body, headers = fake.webhook(payment.id)
        (flagged,) = await flow.handle_webhook("fake", body, headers)
        assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.AMOUNT_MISMATCH)

    return report


def _after_the_poll(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, report: Report
) -> list[str]:
    """Deliver ``report`` once, just after the reaper's poll was answered "pending" and recorded; the list it returns
    holds ``"delivered"`` once it was."""
    repository: Any = flow.repository  # the memory adapter's: it reads, decides and writes in one ``update``
    check_status, update = fake.check_status, repository.update
    answered, delivered = [False], list[str]()

    async def polled(payment: Payment) -> ProviderUpdate:
        answer = await check_status(payment)
        answered[0] = answer.outcome is Outcome.PENDING
        return answer

    async def updating(*args: Any, **kwargs: Any) -> Any:
        written = await update(*args, **kwargs)  # the poll's own write (or read): its answer is recorded
        if answered[0]:
            answered[0] = False
            await report()
            delivered.append("delivered")
        return written

    monkeypatch.setattr(fake, "check_status", polled)
    monkeypatch.setattr(repository, "update", updating)
    return delivered


def _after_the_listing(flow: PaymentFlow, monkeypatch: pytest.MonkeyPatch, report: Report) -> list[str]:
    """Deliver ``report`` once, just after the reaper listed the stale payments; the list it returns holds
    ``"delivered"`` once it was."""
    list_stale, delivered = flow.repository.list_stale, list[str]()

    async def listing(**kwargs: Any) -> list[Payment]:
        stale = await list_stale(**kwargs)
        if not delivered:
            await report()
            delivered.append("delivered")
        return stale

    monkeypatch.setattr(flow.repository, "list_stale", listing)
    return delivered


async def _money_still_recordable(flow: PaymentFlow, payment: Payment) -> None:
    """``payment`` was left to its operator, flagged for the amount it was paid: the money can be recorded."""
    after = await flow.get_payment(payment.id)
    assert (after.status, after.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.AMOUNT_MISMATCH)
    assert "unfinished" not in (after.review_message or ""), "flagged for what the provider reported, nothing else"
    assert await flow.expire_stale(HOUR) == [], "an operator has it: later runs leave it alone"
    resolved = await flow.resolve_payment(payment.id, outcome="succeeded", amount=XOF_4000, note="paid 4000 of 5000")
    assert resolved.status is PaymentStatus.SUCCEEDED


async def test_an_underpayment_reported_after_the_poll_is_not_expired_over(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that cannot cancel: the poll's "pending" would have expired it."""
    (payment,) = await _stale(flow, fake, clock, monkeypatch, Capabilities(refund=True, webhooks=True, polling=True))
    delivered = _after_the_poll(flow, fake, monkeypatch, _underpaid(flow, fake, payment))
    assert await flow.expire_stale(HOUR) == [], "a report changed it, not the reaper: the run says it changed none"
    assert delivered == ["delivered"]
    events = [(event.kind, event.cause) for event in await flow.list_events(payment.id)]
    assert ("status_changed", "reaper") not in events
    await _money_still_recordable(flow, payment)


async def test_an_underpayment_reported_after_the_poll_is_not_canceled_at_the_provider(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that can cancel: the poll's "pending" would have had a cancel sent, then the payment re-flagged."""
    (payment,) = await _stale(flow, fake, clock, monkeypatch, type(fake).capabilities)
    delivered = _after_the_poll(flow, fake, monkeypatch, _underpaid(flow, fake, payment))
    assert await flow.expire_stale(HOUR) == []
    assert delivered == ["delivered"]
    assert ("cancel", payment.id) not in fake.calls, "decided on a payment that changed since: nothing is sent"
    await _money_still_recordable(flow, payment)


async def test_an_underpayment_reported_after_the_listing_is_not_canceled_at_a_provider_that_cannot_be_polled(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No poll: the cancel is decided on the payment as listed, and a report since makes that copy stale. The payment
    listed with it, unchanged, is still canceled at the provider and expired, without a poll."""
    can_cancel = Capabilities(cancel=True, refund=True, webhooks=True)
    payment, abandoned = await _stale(flow, fake, clock, monkeypatch, can_cancel, orders=2)
    delivered = _after_the_listing(flow, monkeypatch, _underpaid(flow, fake, payment))
    assert [changed.id for changed in await flow.expire_stale(HOUR)] == [abandoned.id]
    assert delivered == ["delivered"]
    assert ("cancel", payment.id) not in fake.calls
    assert (await flow.get_payment(abandoned.id)).status is PaymentStatus.EXPIRED
    assert [op for op, asked in fake.calls if asked == abandoned.id] == ["initiate", "cancel"], "no poll"
    await _money_still_recordable(flow, payment)


async def test_a_cancel_answered_paid_with_another_amount_keeps_its_own_flag(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The customer paid 4000 just before the reaper's cancel came: the provider refuses the cancel and answers with
    the payment as it holds it. The answer flags it ``amount_mismatch``; the run does not re-flag it as unfinished."""
    (payment,) = await _stale(flow, fake, clock, monkeypatch, type(fake).capabilities)
    clock.advance(hours=1)  # past twice its deadline: a payment left unfinished after its cancel would be flagged
    cancel = fake.cancel

    async def paid_meanwhile(paid: Payment) -> ProviderUpdate:
        fake.settle(paid.id, Outcome.SUCCEEDED, captured=XOF_4000)
        fake.script("cancel", "decline")
        return await cancel(paid)

    monkeypatch.setattr(fake, "cancel", paid_meanwhile)
    await flow.expire_stale(HOUR)
    assert ("cancel", payment.id) in fake.calls
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert kinds.count("flagged_for_review") == 1
    await _money_still_recordable(flow, payment)


async def test_two_runs_at_once_name_each_never_sent_payment_they_expired_once_between_them(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each run returned, as changed, the payments the other had just expired (and its log and span counted them):
    two hosts running the reaper at once reported the day's never-sent checkouts twice. (A payment the other run
    ended that a poll then finds ended is still named by both: the poll's write cannot tell whose it was.)"""
    import anyio

    from paycore.errors import ProviderNotSent

    list_stale, listed = flow.repository.list_stale, anyio.Event()
    waiting = [2]

    async def listing_together(**kwargs: Any) -> list[Payment]:
        stale = await list_stale(**kwargs)
        waiting[0] -= 1
        if waiting[0] == 0:
            listed.set()
        await listed.wait()  # both runs listed the same payments before either changes one
        return stale

    monkeypatch.setattr(flow.repository, "list_stale", listing_together)

    for number in range(6):
        fake.script("initiate", "not_sent")
        with pytest.raises(ProviderNotSent):
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id=f"T-{number}")
    clock.advance(hours=2)
    returned: list[list[Payment]] = []

    async def run() -> None:
        returned.append(await flow.expire_stale(HOUR))

    async with anyio.create_task_group() as runs:
        runs.start_soon(run)
        runs.start_soon(run)
    named = [payment.id for changed in returned for payment in changed]
    stored = await flow.list_payments()
    assert sorted(named) == sorted(payment.id for payment in stored)
    assert {payment.status for payment in stored} == {PaymentStatus.EXPIRED}


async def test_a_payment_the_poll_changed_and_a_report_changed_since_is_returned_as_stored(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll settled a create whose answer was lost (a write of the reaper's), then an underpayment was reported
    before the expiry, which was left: the run returned the copy its poll left, unflagged, as the payment changed,
    and the command printed it so."""
    monkeypatch.setattr(type(fake), "capabilities", Capabilities(refund=True, webhooks=True, polling=True))
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o0")).payment
    assert payment.pending_call is not None, "its answer lost: its call stays for a poll to settle"
    fake.ledger[payment.id].outcome = Outcome.PENDING  # the provider holds it, unpaid
    clock.advance(hours=2)
    delivered = _after_the_poll(flow, fake, monkeypatch, _underpaid(flow, fake, payment))
    (returned,) = await flow.expire_stale(HOUR)
    assert delivered == ["delivered"]
    assert returned == await flow.get_payment(payment.id)
    assert (returned.status, returned.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.AMOUNT_MISMATCH)
