"""Expiry: the reaper asks a pollable provider first; time alone never fails an unknown outcome."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from paycore import Money
from paycore.errors import ProviderNotSent, ValidationError
from paycore.flow import PaymentFlow
from paycore.records import Payment, ProviderUpdate
from paycore.status import Outcome, PaymentStatus, ReviewReason
from paycore.testing.fake import FakeProvider

if TYPE_CHECKING:
    from .conftest import Clock

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")
XOF_1000 = Money.of("1000", "XOF")
HOUR = timedelta(hours=1)


async def _processing(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    fake.script("initiate", "pending")
    return (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment


async def _never_sent(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    fake.script("initiate", "not_sent")
    with pytest.raises(ProviderNotSent):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    (payment,) = await flow.list_payments()
    return payment


async def test_a_payment_never_sent_expires_without_asking_the_provider(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _never_sent(flow, fake)
    clock.advance(hours=2)
    (expired,) = await flow.expire_stale(HOUR)
    assert expired.id == payment.id
    assert expired.status is PaymentStatus.EXPIRED
    assert ("check_status", payment.id) not in fake.calls
    assert (await flow.list_events(payment.id))[-1].cause == "reaper"


async def test_a_recent_payment_is_left_alone(flow: PaymentFlow, fake: FakeProvider, clock: Clock) -> None:
    payment = await _processing(flow, fake)
    clock.advance(minutes=30)
    assert await flow.expire_stale(HOUR) == []
    assert await flow.get_payment(payment.id) == payment
    assert ("check_status", payment.id) not in fake.calls


async def test_the_default_age_is_the_configured_payment_ttl(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    await _never_sent(flow, fake)
    clock.advance(seconds=flow.config.payment_ttl - 60)
    assert await flow.expire_stale() == []
    clock.advance(seconds=120)
    assert len(await flow.expire_stale()) == 1


async def test_a_sent_payment_expires_only_after_the_provider_says_it_is_unpaid(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    clock.advance(hours=2)
    (expired,) = await flow.expire_stale(HOUR)
    assert expired.status is PaymentStatus.EXPIRED
    assert ("check_status", payment.id) in fake.calls


@pytest.mark.parametrize("how", ["refresh", "reaper"])
async def test_a_payment_the_provider_named_and_then_reports_unknown_is_flagged_not_expired(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, how: str
) -> None:
    """A provider answering "no such payment" about an id it gave (a key of another account, a purge, a fault):
    expiring the payment would leave it payable there with no one told."""
    payment = await _processing(flow, fake)
    entry = fake.ledger.pop(payment.id)  # the provider reports no record of it, for now
    clock.advance(hours=2)
    if how == "refresh":
        flagged = await flow.refresh(payment.id)
    else:
        (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    assert payment.external_id is not None
    assert payment.external_id in flagged.review_message
    assert "settle it with resolve_payment" in flagged.review_message
    assert ("cancel", payment.id) not in fake.calls
    fake.ledger[payment.id] = entry
    fake.settle(payment.id, Outcome.SUCCEEDED)  # the customer pays it there
    assert await flow.expire_stale(HOUR) == [], "left to an operator, who asks again"
    assert (await flow.refresh(payment.id)).status is PaymentStatus.SUCCEEDED
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert kinds.count("provider_lost_payment") == 1


async def test_a_sent_payment_the_provider_reports_paid_succeeds_instead_of_expiring(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    clock.advance(hours=2)
    (after,) = await flow.expire_stale(HOUR)
    assert after.status is PaymentStatus.SUCCEEDED
    assert not after.needs_review


async def test_a_poll_without_answer_leaves_the_payment_for_the_next_run_then_flags_it_never_expires_it(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    fake.poll_answer = "lost"  # the status read timed out, or the provider answered 503
    clock.advance(minutes=90)
    assert await flow.expire_stale(HOUR) == []
    assert await flow.get_payment(payment.id) == payment, "left for the next run: the read says nothing of the money"
    clock.advance(hours=1)  # created more than twice the deadline ago: an operator is told
    await flow.expire_stale(HOUR)
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.PROCESSING
    assert (after.needs_review, after.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)


async def test_a_create_whose_answer_was_lost_is_settled_after_an_outage_of_status_reads_not_flagged(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    fake.settle(payment.id, Outcome.SUCCEEDED)  # the customer paid; every webhook lost
    fake.poll_answer = "lost"
    clock.advance(minutes=61)
    await flow.expire_stale(HOUR)
    assert not (await flow.get_payment(payment.id)).needs_review, "a read not served says nothing of the money"
    fake.poll_answer = None
    clock.advance(minutes=15)
    (settled,) = await flow.expire_stale(HOUR)
    assert (settled.status, settled.pending_call, settled.needs_review) == (PaymentStatus.SUCCEEDED, None, False)


@pytest.mark.parametrize("paid", [True, False], ids=["paid-meanwhile", "never-paid"])
async def test_stale_payments_polled_during_an_outage_are_settled_by_the_first_run_after_it(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, paid: bool
) -> None:
    payments = [await _processing(flow, fake) for _ in range(4)]
    if paid:
        for payment in payments:
            fake.settle(payment.id, Outcome.SUCCEEDED)  # paid at the provider; every webhook lost
    fake.poll_answer = "lost"  # the provider's status reads fail for a while
    clock.advance(minutes=61)
    assert await flow.expire_stale(HOUR) == []
    fake.poll_answer = None  # back
    settled = await flow.expire_stale(HOUR)
    assert {p.id for p in settled} == {p.id for p in payments}
    expected = PaymentStatus.SUCCEEDED if paid else PaymentStatus.EXPIRED
    for payment in payments:
        after = await flow.get_payment(payment.id)
        assert (after.status, after.needs_review) == (expected, False)


async def test_a_lost_answer_past_its_deadline_is_never_failed_by_time(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    fake.poll_answer = "lost"
    clock.advance(days=3)
    for _ in range(3):
        await flow.expire_stale(HOUR)
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.PROCESSING
    assert after.pending_call is not None
    assert after.pending_call.unknown
    assert after.review_reason is ReviewReason.UNKNOWN_OUTCOME


async def test_a_payment_at_a_provider_that_cannot_be_polled_is_flagged_not_expired(
    flow: PaymentFlow, clock: Clock
) -> None:
    limited = flow.provider("limited")
    limited.script("initiate", "pending")  # type: ignore[attr-defined]
    payment = (await flow.create_payment(amount=XOF_5000, provider="limited", order_id="o")).payment
    clock.advance(hours=2)
    await flow.expire_stale(HOUR)
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.PROCESSING
    assert after.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert ("check_status", payment.id) not in limited.calls  # type: ignore[attr-defined]


async def test_finished_payments_never_expire(flow: PaymentFlow, clock: Clock) -> None:
    paid = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    clock.advance(days=30)
    assert await flow.expire_stale(HOUR) == []
    assert await flow.get_payment(paid.id) == paid


async def test_a_confirmation_after_expiry_succeeds_the_payment_and_flags_it(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    clock.advance(hours=2)
    await flow.expire_stale(HOUR)
    fake.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = fake.webhook(payment.id)
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.captured_amount == XOF_5000
    assert after.needs_review
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION
    statuses = [e.to_status for e in await flow.list_events(payment.id) if e.kind == "status_changed"]
    assert statuses == ["processing", "expired", "succeeded"]


async def test_a_provider_that_cannot_be_reached_leaves_the_payment_for_the_next_run(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    fake.poll_answer = "not_sent"
    clock.advance(minutes=90)  # past its deadline, not yet twice past it
    assert await flow.expire_stale(HOUR) == []
    assert await flow.get_payment(payment.id) == payment
    fake.poll_answer = None
    (expired,) = await flow.expire_stale(HOUR)
    assert expired.status is PaymentStatus.EXPIRED


@pytest.mark.parametrize("refused", ["check_status", "cancel"])
async def test_a_provider_that_stays_unreachable_twice_past_the_deadline_gets_the_payment_flagged(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, refused: str
) -> None:
    payment = await _processing(flow, fake)
    if refused == "check_status":
        fake.poll_answer = "not_sent"
    else:
        fake.script("cancel", *["not_sent"] * 5)
    clock.advance(minutes=90)
    assert await flow.expire_stale(HOUR) == []
    clock.advance(hours=2)  # still unreachable, created more than twice the deadline ago: someone must be told
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.status, flagged.needs_review) == (PaymentStatus.PROCESSING, True)
    assert flagged.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert "not sent" in (flagged.review_message or "") or "could not be asked" in (flagged.review_message or "")
    assert await flow.expire_stale(HOUR) == [], "flagged, it is the operator's; the reaper does not ask again"
    assert (await flow.get_payment(payment.id)).version == flagged.version


async def test_payments_left_to_an_operator_never_hold_up_the_stale_ones_behind_them(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    first = await _processing(flow, fake)
    fake.poll_answer = "lost"  # the provider's answers keep getting lost
    clock.advance(hours=2)
    (flagged,) = await flow.expire_stale(HOUR, limit=1)
    assert (flagged.id, flagged.review_reason) == (first.id, ReviewReason.UNKNOWN_OUTCOME)
    second = await _processing(flow, fake)
    clock.advance(hours=2)  # both stale, the flagged one the oldest
    (next_one,) = await flow.expire_stale(HOUR, limit=1)
    assert next_one.id == second.id, "the run moved past the payment an operator already has"
    assert (await flow.get_payment(first.id)).version == flagged.version


async def test_an_unknown_outcome_at_a_provider_that_cannot_be_polled_gets_the_payment_flagged(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paycore.providers import Capabilities

    monkeypatch.setattr(type(fake), "capabilities", Capabilities(cancel=True, refund=True, webhooks=True))
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    assert payment.pending_call is not None
    clock.advance(hours=2)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    assert "initiate call is unknown" in (flagged.review_message or "")
    assert ("cancel", payment.id) not in fake.calls


async def test_an_unpaid_payment_is_canceled_at_the_provider_before_it_expires(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    clock.advance(hours=2)
    (expired,) = await flow.expire_stale(HOUR)
    assert expired.status is PaymentStatus.EXPIRED
    assert expired.pending_call is None
    assert [op for op, _ in fake.calls][-2:] == ["check_status", "cancel"]
    assert fake.ledger[payment.id].outcome is Outcome.CANCELED, "the customer can no longer pay it at the gateway"
    assert not expired.needs_review
    events = await flow.list_events(payment.id)
    assert [(e.kind, e.cause) for e in events][-1] == ("status_changed", "reaper"), "the reaper's doing, not the api's"


async def test_a_lost_cancel_answer_leaves_the_payment_open_until_the_provider_says(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    payment = await _processing(flow, fake)
    clock.advance(hours=2)
    fake.script("cancel", "lost")
    assert [p.status for p in await flow.expire_stale(HOUR)] == [PaymentStatus.PROCESSING]
    stuck = await flow.get_payment(payment.id)
    assert stuck.pending_call is not None
    assert stuck.pending_call.unknown
    clock.advance(hours=2)
    (settled,) = await flow.expire_stale(HOUR)
    assert settled.status is PaymentStatus.EXPIRED
    assert [op for op, _ in fake.calls].count("cancel") == 1, "the cancel is settled by asking, never sent again"


async def test_a_payment_its_provider_keeps_unfinished_after_each_cancel_is_flagged_past_twice_its_deadline(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    """Wave's session complete with its payment still processing: the expiry is refused and the session still
    pending; every run would send one more expiry and tell no one, for ever."""
    await _processing(flow, fake)
    clock.advance(minutes=90)
    fake.script("cancel", "decline", "decline")  # refused: the provider still holds the payment pending
    (first,) = await flow.expire_stale(HOUR)
    assert (first.status, first.needs_review) == (PaymentStatus.PROCESSING, False), "not yet twice its deadline"
    clock.advance(hours=1)
    (flagged,) = await flow.expire_stale(HOUR)
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    assert "unfinished after its cancel" in flagged.review_message
    assert await flow.expire_stale(HOUR) == [], "left to an operator"
    assert [op for op, _ in fake.calls].count("cancel") == 2


async def _stale_where_no_cancel(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch, *, webhooks: bool
) -> Payment:
    """A payment left processing past the deadline at a provider that cannot cancel (and sends ``webhooks``)."""
    from paycore.providers import Capabilities

    monkeypatch.setattr(type(fake), "capabilities", Capabilities(refund=True, webhooks=webhooks, polling=True))
    payment = await _processing(flow, fake)
    clock.advance(hours=2)
    return payment


async def test_a_payment_the_provider_cannot_cancel_expires_on_the_polls_word(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _stale_where_no_cancel(flow, fake, clock, monkeypatch, webhooks=True)
    (expired,) = await flow.expire_stale(HOUR)
    assert expired.status is PaymentStatus.EXPIRED
    assert ("cancel", payment.id) not in fake.calls


async def test_a_payment_the_provider_can_neither_cancel_nor_tell_of_is_flagged_not_expired(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _stale_where_no_cancel(flow, fake, clock, monkeypatch, webhooks=False)
    (flagged,) = await flow.expire_stale(HOUR)  # still payable there, and no webhook would tell of a payment
    assert (flagged.status, flagged.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
    fake.settle(payment.id, Outcome.SUCCEEDED)  # the customer pays later
    assert (await flow.refresh(payment.id)).status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize(
    "older_than", [float("inf"), float("nan"), -1, timedelta(seconds=-5), True, "an hour", 10**400]
)
async def test_an_age_that_is_no_age_is_refused_and_expires_nothing(flow: PaymentFlow, older_than: object) -> None:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T-1")
    with pytest.raises(ValidationError, match="an age must be"):
        await flow.expire_stale(older_than)  # type: ignore[arg-type]
    assert await flow.get_payment(checkout.payment.id) == checkout.payment


async def _stale(flow: PaymentFlow, code: str, count: int) -> list[Payment]:
    provider = flow.provider(code)
    assert isinstance(provider, FakeProvider)
    made = []
    for number in range(count):
        provider.script("initiate", "pending")
        made.append((await flow.create_payment(amount=XOF_1000, provider=code, order_id=f"{code}-{number}")).payment)
    return made


async def test_open_payments_awaiting_review_never_hold_up_the_ones_behind_them(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    underpaid = await _stale(flow, "fake", 3)
    for payment in underpaid:  # each customer paid 900 of 1000: flagged, left open for an operator
        fake.settle(payment.id, Outcome.SUCCEEDED, captured=Money.of("900", "XOF"))
        body, headers = fake.webhook(payment.id)
        (flagged,) = await flow.handle_webhook("fake", body, headers)
        assert flagged.needs_review
    abandoned = await _stale(flow, "fake", 3)
    clock.advance(hours=2)
    expired = await flow.expire_stale(HOUR, limit=3)
    assert sorted(p.id for p in expired) == sorted(p.id for p in abandoned)
    assert [(await flow.get_payment(p.id)).status for p in underpaid] == [PaymentStatus.PROCESSING] * 3


async def test_a_provider_that_cannot_be_asked_never_holds_up_the_others(
    make_flow: Callable[..., PaymentFlow], clock: Clock
) -> None:
    config = {"providers": {code: {"type": "fake", "webhook_secret": "whsec-test"} for code in ("down", "up")}}
    async with make_flow(config) as flow:
        down = await _stale(flow, "down", 6)
        up = await _stale(flow, "up", 3)
        provider = flow.provider("down")
        assert isinstance(provider, FakeProvider)
        provider.poll_answer = "not_sent"
        clock.advance(minutes=90)  # past the deadline, not yet twice past it: not flagged, left for the next run
        expired = await flow.expire_stale(HOUR, limit=3)
        assert sorted(p.id for p in expired) == sorted(p.id for p in up)
        polls = len([c for c in provider.calls if c[0] == "check_status"])
        assert polls == 3, "asked until three polls in a row failed, not six times"
        assert [(await flow.get_payment(p.id)).status for p in down] == [PaymentStatus.PROCESSING] * 6


async def test_a_status_poll_refused_for_one_payment_never_holds_up_its_providers_others(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    refused, *others = await _stale(flow, "fake", 5)
    check_status = fake.check_status

    async def refuse_one(payment: Payment) -> ProviderUpdate:
        if payment.id == refused.id:
            raise ProviderNotSent(f"the gateway refused to look up {payment.id}")
        return await check_status(payment)

    fake.check_status = refuse_one  # type: ignore[method-assign]
    clock.advance(minutes=90)
    expired = await flow.expire_stale(HOUR, limit=10)
    assert sorted(p.id for p in expired) == sorted(p.id for p in others)
    assert all(p.status is PaymentStatus.EXPIRED for p in expired)
    assert not (await flow.get_payment(refused.id)).needs_review, "left for the next run"


async def test_a_cancel_refused_for_one_payment_never_holds_up_its_providers_others(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock
) -> None:
    stale = await _stale(flow, "fake", 3)
    fake.script("cancel", "not_sent")  # the first cancel is refused; the provider answers the others
    clock.advance(minutes=90)
    expired = await flow.expire_stale(HOUR, limit=3)
    assert len(expired) == 2
    assert [c[0] for c in fake.calls].count("check_status") == 3, "every payment was asked about"
    assert [(await flow.get_payment(p.id)).status for p in stale].count(PaymentStatus.EXPIRED) == 2


@pytest.mark.parametrize("behind_another", [False, True], ids=["alone", "behind another payment"])
async def test_an_open_payment_with_a_lost_call_at_a_provider_down_waits_for_the_next_run(
    make_flow: Callable[..., PaymentFlow], clock: Clock, behind_another: bool
) -> None:
    config = {"providers": {"down": {"type": "fake", "webhook_secret": "whsec-test"}}}
    async with make_flow(config) as flow:
        down = flow.provider("down")
        assert isinstance(down, FakeProvider)
        if behind_another:  # polled first in the run, it finds the provider down
            await _stale(flow, "down", 1)
            clock.advance(seconds=1)
        (lost,) = await _stale(flow, "down", 1)
        down.script("cancel", "lost")
        assert (await flow.cancel(lost.id)).pending_call is not None
        down.poll_answer = "not_sent"
        clock.advance(minutes=90)  # past the deadline, not yet twice past it
        await flow.expire_stale(HOUR, limit=10)
        assert not (await flow.get_payment(lost.id)).needs_review, "left for the next run, as the open pass does"
        down.poll_answer = None
        clock.advance(minutes=5)
        await flow.expire_stale(HOUR, limit=10)
        settled = await flow.get_payment(lost.id)
        assert (settled.status, settled.pending_call, settled.needs_review) == (PaymentStatus.CANCELED, None, False)


async def test_the_stale_payments_of_a_tenant_no_longer_served_never_hold_up_the_others(
    make_flow: Callable[..., PaymentFlow], clock: Clock, tmp_path: Path
) -> None:
    """A restaurant that left keeps its open payments in the database; no provider of its can be asked now. A run
    reads on past them, as past a provider that is down, and reaches the tenants still served; a payment of its
    never sent expires, and the others are flagged for an operator once twice their deadline old."""
    import paycore_sqlalchemy.plugin

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fake = {"type": "fake", "webhook_secret": "whsec-test"}
    served = {"awa": {"providers": {"fake": fake}}}
    config = {"repository": url, "idempotency": url, "tenants": {**served, "gone": {"providers": {"fake": fake}}}}
    async with make_flow(config, plugins=(paycore_sqlalchemy.plugin,)) as flow:
        gone = flow.provider("fake", tenant="gone")
        assert isinstance(gone, FakeProvider)
        for number in range(3):
            gone.script("initiate", "pending")
            await flow.create_payment(amount=XOF_5000, provider="fake", order_id=f"G{number}", tenant="gone")
        gone.script("initiate", "not_sent")
        with pytest.raises(ProviderNotSent):
            await flow.create_payment(amount=XOF_5000, provider="fake", order_id="G-unsent", tenant="gone")
        clock.advance(minutes=1)
        awa = flow.provider("fake", tenant="awa")
        assert isinstance(awa, FakeProvider)
        awa.script("initiate", "pending")
        stale = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="A1", tenant="awa")).payment
        books = awa.ledger
    clock.advance(minutes=90)  # past the deadline, not yet twice it
    async with make_flow({**config, "tenants": served}, plugins=(paycore_sqlalchemy.plugin,)) as flow:
        awa = flow.provider("fake", tenant="awa")
        assert isinstance(awa, FakeProvider)
        awa.ledger.update(books)  # the provider's books outlive the process
        changed = {payment.order_id: payment.status for payment in await flow.expire_stale(HOUR, limit=3)}
        assert changed == {"A1": PaymentStatus.EXPIRED, "G-unsent": PaymentStatus.EXPIRED}
        assert (await flow.get_payment(stale.id)).status is PaymentStatus.EXPIRED
        clock.advance(hours=1)
        flagged = await flow.expire_stale(HOUR, limit=3)
        assert sorted(payment.order_id for payment in flagged) == ["G0", "G1", "G2"]
        for payment in flagged:
            assert (payment.status, payment.review_reason) == (PaymentStatus.PROCESSING, ReviewReason.UNKNOWN_OUTCOME)
            assert "no longer enabled for its tenant" in payment.review_message


def test_each_pass_of_a_run_shares_what_it_took_for_down_and_why() -> None:
    from paycore.reaper_run import NOT_ENABLED, Run
    from paycore.testing.records import make_payment

    first, gone = Run(3), make_payment(tenant="gone")
    first.not_enabled_for(gone)
    later = first.next_pass(give_up_before=None).next_pass(give_up_before=None)
    assert later.provider_down(gone)
    assert later.why_down(gone) == NOT_ENABLED
    assert (later.tried, later.seen is first.seen, later.changed is first.changed) == (0, True, True)
