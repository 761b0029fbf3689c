"""Refunds: records of their own; succeeded plus pending refunds never exceed the captured amount."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from paycore import Money, Payment, RefundUpdate
from paycore.errors import (
    CurrencyMismatch,
    InvalidAmount,
    InvalidTransition,
    PaymentBusy,
    ProviderNotSent,
    RefundExceedsCaptured,
    UnsupportedOperation,
)
from paycore.flow import PaymentFlow
from paycore.status import Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.fake import FakeProvider

if TYPE_CHECKING:
    from .conftest import Clock

pytestmark = pytest.mark.anyio

XOF = "XOF"


def xof(amount: int) -> Money:
    return Money.minor(amount, XOF)


async def test_a_full_refund_refunds_the_payment(flow: PaymentFlow, pay: Callable[..., Any]) -> None:
    payment = await pay()
    refund = await flow.refund(payment.id, reason="cold soup")
    assert (refund.amount, refund.status, refund.reason) == (xof(5000), RefundStatus.SUCCEEDED, "cold soup")
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.REFUNDED
    assert after.refunds == (refund,)


async def test_a_partial_refund_leaves_the_payment_partially_refunded(
    flow: PaymentFlow, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    await flow.refund(payment.id, amount=xof(1500))
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.PARTIALLY_REFUNDED
    assert after.refunded_amount == xof(1500)
    assert after.refundable_amount == xof(3500)


async def test_partial_refunds_that_reach_the_captured_amount_refund_the_payment(
    flow: PaymentFlow, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    for part in (1000, 1500, 2500):
        await flow.refund(payment.id, amount=xof(part))
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.REFUNDED
    assert len(after.refunds) == 3


async def test_a_refund_above_what_remains_is_refused_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    await flow.refund(payment.id, amount=xof(3000))
    before = await flow.get_payment(payment.id)
    calls = len(fake.calls)
    with pytest.raises(RefundExceedsCaptured, match=r"cannot refund 2001 XOF .*: only 2000 XOF remains refundable"):
        await flow.refund(payment.id, amount=xof(2001))
    assert await flow.get_payment(payment.id) == before
    assert len(fake.calls) == calls


async def test_a_pending_refund_counts_against_what_may_still_be_refunded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    pending = await flow.refund(payment.id, amount=xof(3000))
    assert pending.status is RefundStatus.PENDING
    with pytest.raises(RefundExceedsCaptured, match="pending 3000 XOF"):
        await flow.refund(payment.id, amount=xof(2001))
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED


async def test_a_pending_refund_is_confirmed_by_webhook(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))
    body, headers = fake.webhook(
        payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, refund.id, amount=xof(2000))]
    )
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.refund(refund.id).status is RefundStatus.SUCCEEDED
    assert after.status is PaymentStatus.PARTIALLY_REFUNDED
    kinds = [(e.kind, e.refund_id, e.cause) for e in await flow.list_events(payment.id)]
    assert ("refund_status_changed", refund.id, "webhook") in kinds


async def test_a_refund_confirmed_for_another_amount_is_flagged_and_not_succeeded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    refund = await flow.refund(payment.id, amount=xof(2000))
    body, headers = fake.webhook(
        payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, refund.id, amount=xof(2500))]
    )
    (after,) = await flow.handle_webhook("fake", body, headers)
    assert after.refund(refund.id).status is RefundStatus.PENDING
    assert after.needs_review
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH


async def test_a_declined_refund_fails_and_its_amount_is_refundable_again(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "decline")
    refund = await flow.refund(payment.id, amount=xof(5000))
    assert refund.status is RefundStatus.FAILED
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.refundable_amount == xof(5000)


async def test_a_refund_the_provider_made_elsewhere_is_recorded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    body, headers = fake.webhook(
        payment.id, refunds=[RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(500))]
    )
    (after,) = await flow.handle_webhook("fake", body, headers)
    (refund,) = after.refunds
    assert (refund.amount, refund.status) == (xof(500), RefundStatus.SUCCEEDED)
    assert after.status is PaymentStatus.PARTIALLY_REFUNDED


@pytest.mark.parametrize(
    "reports",
    [
        [(RefundStatus.PENDING, "evt-created"), (RefundStatus.SUCCEEDED, "evt-succeeded")],
        [(RefundStatus.SUCCEEDED, "evt-1"), (RefundStatus.SUCCEEDED, "evt-2")],
    ],
    ids=["pending-then-succeeded", "sent-again-under-a-new-event-id"],
)
async def test_a_refund_made_elsewhere_reported_twice_by_the_id_the_provider_gave_is_recorded_once(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], reports: list[tuple[RefundStatus, str]]
) -> None:
    payment = await pay()
    for status, event_id in reports:
        refund = RefundUpdate(status, "dashboard-1", amount=xof(2500))  # the provider's id only, no external id
        (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[refund], event_id=event_id))
    (refund,) = after.refunds
    assert (refund.amount, refund.status, refund.external_id) == (xof(2500), RefundStatus.SUCCEEDED, "dashboard-1")
    assert (after.refunded_amount, after.status) == (xof(2500), PaymentStatus.PARTIALLY_REFUNDED)


async def test_a_refund_reported_before_the_capture_it_refunds_waits_for_it_and_is_then_recorded(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider="fake", order_id="T-7")).payment
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(2000))
    early = fake.webhook(payment.id, outcome=Outcome.PENDING, refunds=[made], event_id="evt-refund")
    with pytest.raises(PaymentBusy, match="deliver it again later"):  # HTTP 503: the gateway sends it again
        await flow.handle_webhook("fake", *early)
    assert await flow.get_payment(payment.id) == payment
    fake.settle(payment.id, Outcome.SUCCEEDED)
    await flow.handle_webhook("fake", *fake.webhook(payment.id, event_id="evt-paid"))
    (after,) = await flow.handle_webhook("fake", *early)  # delivered again, after the capture's event
    assert (after.refunded_amount, after.status) == (xof(2000), PaymentStatus.PARTIALLY_REFUNDED)


@pytest.mark.parametrize("provider", ["fake", "limited"], ids=["polls-list-refunds", "no-polls"])
@pytest.mark.parametrize(
    "captured", [xof(3000), Money.of("5000", "EUR")], ids=["captured-in-part", "captured-in-another-currency"]
)
async def test_a_refund_reported_with_a_capture_that_does_not_match_is_told_not_waited_for(
    flow: PaymentFlow, provider: str, captured: Money
) -> None:
    """A refund reported with the payment's capture, when that capture is refused (another amount or currency than
    the payment's, flagged): the capture it would wait for is the one its own report carries, refused again at every
    delivery. The delivery is acknowledged, records no refund and no capture, and an operator is told of both, once
    each, whether the capture came before it on its own or only with it."""
    gateway = flow.provider(provider)
    assert isinstance(gateway, FakeProvider)
    gateway.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider=provider, order_id="T-20")).payment
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(1000))
    for attempt in ("evt-refund", "evt-refund", "evt-refund-again"):
        (after,) = await flow.handle_webhook(
            provider,
            *gateway.webhook(
                payment.id, outcome=Outcome.SUCCEEDED, captured=captured, refunds=[made], event_id=attempt
            ),
        )
        assert (after.status, after.captured_amount, after.refunds) == (PaymentStatus.PROCESSING, None, ())
    assert after.review_reason is ReviewReason.AMOUNT_MISMATCH
    assert "dashboard-1" in after.review_message
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert (kinds.count("amount_mismatch"), kinds.count("refund_of_uncaptured")) == (1, 1)
    assert "refund_created" not in kinds


async def test_a_refund_reported_with_a_capture_in_part_before_its_hold_waits_for_the_hold(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    """A payment made to be captured later, reported captured in part (with a refund of it) before its hold was
    reported, by a gateway whose capture reports do not name the hold: the capture is the hold's capture in
    part once the hold is heard of, so the refund waits for it (503), and is recorded when delivered again after
    the hold's report. Nothing is flagged."""
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider="fake", order_id="T-21", capture=False)).payment
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(1000))
    early = fake.webhook(
        payment.id, outcome=Outcome.SUCCEEDED, captured=xof(3000), refunds=[made], event_id="evt-refunded"
    )
    with pytest.raises(PaymentBusy, match="deliver it again later"):
        await flow.handle_webhook("fake", *early)
    assert await flow.get_payment(payment.id) == payment
    fake.settle(payment.id, Outcome.AUTHORIZED)
    await flow.handle_webhook("fake", *fake.webhook(payment.id, event_id="evt-held"))
    (after,) = await flow.handle_webhook("fake", *early)
    assert (after.status, after.captured_amount, after.refunded_amount) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        xof(3000),
        xof(1000),
    )
    assert not after.needs_review


@pytest.mark.parametrize("ended", [Outcome.CANCELED, Outcome.FAILED, Outcome.EXPIRED])
async def test_a_refund_reported_of_a_payment_that_ended_without_its_money_is_told_not_waited_for(
    flow: PaymentFlow, fake: FakeProvider, ended: Outcome
) -> None:
    """No capture will come to a payment that ended without its money (but a late one): a refund reported of it
    is acknowledged, never refused again and again, records nothing, and is told to an operator, once."""
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider="fake", order_id="T-8")).payment
    fake.settle(payment.id, ended)
    (closed,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, event_id="evt-ended"))
    assert closed.status.value == ended.value
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(2000))
    for attempt in ("evt-refund", "evt-refund-again"):
        (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made], event_id=attempt))
    assert (after.status, after.refunds, after.refunded_amount) == (closed.status, (), xof(0))
    assert after.review_reason is ReviewReason.LATE_CONFIRMATION
    assert "dashboard-1" in after.review_message
    told = [event for event in await flow.list_events(payment.id) if event.kind == "refund_of_uncaptured"]
    assert len(told) == 1
    fake.settle(payment.id, Outcome.SUCCEEDED)  # the provider took the money after all: its late confirmation
    (late,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made], event_id="evt-late"))
    assert (late.status, late.refunded_amount) == (PaymentStatus.PARTIALLY_REFUNDED, xof(2000))


async def test_a_refund_told_before_a_late_capture_is_recorded_once_the_capture_comes_without_it(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    """A refund reported of an expired payment is told, not recorded; the provider's late capture, reported by an
    event that lists no refund, is a late confirmation: paycore asks the provider for the rest, refunds included."""
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider="fake", order_id="T-9")).payment
    fake.settle(payment.id, Outcome.EXPIRED)
    await flow.handle_webhook("fake", *fake.webhook(payment.id, event_id="evt-expired"))
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(2000))
    await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made], event_id="evt-refund"))
    fake.settle(payment.id, Outcome.SUCCEEDED)
    fake.ledger[payment.id].refunds["dashboard-1"] = made  # the provider's books: captured, then refunded 2000
    (late,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, event_id="evt-captured"))
    assert (late.status, late.captured_amount, late.refunded_amount) == (
        PaymentStatus.PARTIALLY_REFUNDED,
        xof(5000),
        xof(2000),
    )
    assert late.review_reason is ReviewReason.LATE_CONFIRMATION


async def _expired_at_a_provider_without_polls(flow: PaymentFlow, order_id: str) -> tuple[FakeProvider, Payment]:
    """A payment of 5000 XOF at the ``limited`` provider (webhooks, no polling), expired by its webhook."""
    limited = flow.provider("limited")
    assert isinstance(limited, FakeProvider)
    limited.script("initiate", "pending")
    payment = (await flow.create_payment(amount=xof(5000), provider="limited", order_id=order_id)).payment
    limited.settle(payment.id, Outcome.EXPIRED)
    await flow.handle_webhook("limited", *limited.webhook(payment.id, event_id="evt-expired"))
    return limited, payment


async def test_at_a_provider_whose_polls_list_no_refunds_a_refund_of_an_ended_payment_waits_for_its_late_capture(
    flow: PaymentFlow,
) -> None:
    """Acknowledged, the refund would be recorded by nothing (no poll lists it): its delivery waits for the
    capture instead, as one of an open payment does, and is recorded when delivered again after it. An operator
    is told at once, and once, in case the capture never comes."""
    limited, payment = await _expired_at_a_provider_without_polls(flow, "T-10")
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(5000))
    early = limited.webhook(payment.id, refunds=[made], event_id="evt-refund")
    for _ in range(3):
        with pytest.raises(PaymentBusy, match="deliver it again later"):
            await flow.handle_webhook("limited", *early)
    told = await flow.get_payment(payment.id)
    assert (told.status, told.refunds, told.review_reason) == (
        PaymentStatus.EXPIRED,
        (),
        ReviewReason.LATE_CONFIRMATION,
    )
    assert "dashboard-1" in told.review_message
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert kinds.count("refund_of_uncaptured") == 1
    limited.settle(payment.id, Outcome.SUCCEEDED)
    await flow.handle_webhook("limited", *limited.webhook(payment.id, event_id="evt-captured"))
    (after,) = await flow.handle_webhook("limited", *early)  # delivered again, after the capture's event
    assert (after.status, after.refunded_amount, after.refundable_amount) == (
        PaymentStatus.REFUNDED,
        xof(5000),
        xof(0),
    )


async def test_many_refunds_of_an_ended_payment_waiting_for_its_capture_are_told_once_over_every_delivery(
    flow: PaymentFlow,
) -> None:
    """The review's text keeps its last 2 000 characters; the refunds are told once each all the same, however
    often the refused delivery comes back (no event, no version per delivery)."""
    limited, payment = await _expired_at_a_provider_without_polls(flow, "T-11")
    made = [RefundUpdate(RefundStatus.SUCCEEDED, f"r{n}-" + "x" * 240, amount=xof(500)) for n in range(6)]
    delivery = limited.webhook(payment.id, refunds=made, event_id="evt-refunds")
    seen = []
    for _ in range(4):
        with pytest.raises(PaymentBusy):
            await flow.handle_webhook("limited", *delivery)
        events = await flow.list_events(payment.id)
        seen.append(([event.kind for event in events].count("refund_of_uncaptured"), len(events)))
    assert seen == [seen[0]] * 4
    assert seen[0][0] == 6


async def test_a_refund_waiting_for_a_capture_that_came_meanwhile_is_not_told_as_unrecorded(
    flow: PaymentFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A late capture applied (by another worker) between the refusal of the refund's delivery and its flag: the
    payment has its money now, the delivery applies when it comes again, and nothing says the refund was lost."""
    limited, payment = await _expired_at_a_provider_without_polls(flow, "T-12")
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(5000))
    delivery = limited.webhook(payment.id, refunds=[made], event_id="evt-refund")
    listed = flow.repository.list_events

    async def capture_lands_first(payment_id: str) -> Any:
        monkeypatch.setattr(flow.repository, "list_events", listed)
        limited.settle(payment.id, Outcome.SUCCEEDED)
        await flow.handle_webhook("limited", *limited.webhook(payment.id, event_id="evt-captured"))
        return await listed(payment_id)

    monkeypatch.setattr(flow.repository, "list_events", capture_lands_first)
    with pytest.raises(PaymentBusy):
        await flow.handle_webhook("limited", *delivery)
    captured = await flow.get_payment(payment.id)
    assert captured.status is PaymentStatus.SUCCEEDED
    assert "not recorded" not in captured.review_message
    (after,) = await flow.handle_webhook("limited", *delivery)  # delivered again
    assert (after.status, after.refunded_amount) == (PaymentStatus.REFUNDED, xof(5000))


async def test_a_refund_made_elsewhere_reported_while_ours_is_pending_waits_for_ours_to_fail_and_is_then_recorded(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    ours = await flow.refund(payment.id)  # the whole 5000 held by our refund, pending at the provider
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(5000))  # ours failed; made by hand
    early = fake.webhook(payment.id, refunds=[made], event_id="evt-dashboard")
    held = await flow.get_payment(payment.id)
    with pytest.raises(PaymentBusy, match="deliver it again later"):  # HTTP 503: the gateway sends it again
        await flow.handle_webhook("fake", *early)
    assert await flow.get_payment(payment.id) == held, "nothing recorded, nothing flagged yet"
    failed = RefundUpdate(RefundStatus.FAILED, ours.id, amount=xof(5000))
    await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[failed], event_id="evt-ours-failed"))
    (after,) = await flow.handle_webhook("fake", *early)  # delivered again
    assert (after.refunded_amount, after.refundable_amount, after.status) == (xof(5000), xof(0), PaymentStatus.REFUNDED)
    assert not after.needs_review


@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-listed-first", "made-elsewhere-listed-first"])
async def test_one_report_of_our_refund_failed_and_one_made_elsewhere_records_both_in_any_order(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], ours_first: bool
) -> None:
    payment = await pay()
    fake.script("refund", "pending")
    ours = await flow.refund(payment.id, amount=xof(4000))
    told = [
        RefundUpdate(RefundStatus.FAILED, ours.id, amount=xof(4000)),
        RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(3000)),
    ]
    report = told if ours_first else told[::-1]  # a gateway listing its refunds newest first
    (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=report))
    assert [(r.amount, r.status) for r in after.refunds] == [
        (xof(4000), RefundStatus.FAILED),
        (xof(3000), RefundStatus.SUCCEEDED),
    ]
    assert (after.refunded_amount, after.status, after.needs_review) == (
        xof(3000),
        PaymentStatus.PARTIALLY_REFUNDED,
        False,
    )


async def test_a_poll_that_omits_a_lost_refund_of_ours_records_the_refund_made_elsewhere_in_its_room(
    make_flow: Callable[..., PaymentFlow], clock: Clock
) -> None:
    flow = make_flow(provider_timeout=1.0, idempotency_lease=2.0)
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    payment = (await flow.create_payment(amount=xof(10000), provider="fake", order_id="o")).payment
    fake.script("refund", "lost")
    ours = await flow.refund(payment.id, amount=xof(6000))
    fake.ledger[payment.id].refunds.pop(ours.id)  # it never arrived
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(5000))
    fake.ledger[payment.id].refunds["dashboard-1"] = made
    with pytest.raises(PaymentBusy):  # waits for ours, which the reaper's poll settles
        await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made]))
    clock.advance(seconds=60)
    await flow.expire_stale(timedelta(seconds=30))  # a fresh poll: it lists every refund, and not ours
    after = await flow.get_payment(payment.id)
    assert [(r.amount, r.status) for r in after.refunds] == [
        (xof(6000), RefundStatus.FAILED),
        (xof(5000), RefundStatus.SUCCEEDED),
    ], "one poll: ours failed, and the one made elsewhere recorded in the room it left"
    assert (after.status, after.needs_review) == (PaymentStatus.PARTIALLY_REFUNDED, False)


async def test_a_refund_made_elsewhere_never_waits_on_a_lost_refund_no_report_can_settle(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "capabilities", attrs.evolve(fake.capabilities, polls_report_refunds=False))
    payment = await pay(xof(10000))
    fake.script("refund", "lost")
    ours = await flow.refund(payment.id, amount=xof(6000))
    assert ours.status is RefundStatus.PENDING  # its outcome unknown: no poll can say, only an operator
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(5000))
    (flagged,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made]))  # 200, not 503
    assert (flagged.needs_review, flagged.review_reason) == (True, ReviewReason.AMOUNT_MISMATCH)
    fits = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-2", amount=xof(1000))
    (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made, fits]))
    assert after.refunded_amount == xof(1000), "a later delivery's other facts are not held up for ever"


async def test_a_refund_made_elsewhere_beyond_what_ours_pending_could_leave_is_flagged_not_deferred(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    await flow.refund(payment.id, amount=xof(2000))  # succeeded: 3000 left
    made = RefundUpdate(RefundStatus.SUCCEEDED, "dashboard-1", amount=xof(3500))
    (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[made]))
    assert (after.refunded_amount, after.needs_review, after.review_reason) == (
        xof(2000),
        True,
        ReviewReason.AMOUNT_MISMATCH,
    )


async def test_a_refund_reported_failed_after_it_succeeded_flags_the_payment_once_and_moves_no_money(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    refund = await flow.refund(payment.id, amount=xof(2000))
    refunded = await flow.get_payment(payment.id)
    reversed_ = RefundUpdate(RefundStatus.FAILED, refund.id, amount=xof(2000))
    for event_id in ("evt-refund-failed", "evt-refund-failed-again"):
        (after,) = await flow.handle_webhook("fake", *fake.webhook(payment.id, refunds=[reversed_], event_id=event_id))
    assert (after.needs_review, after.review_reason) == (True, ReviewReason.REFUND_REVERSED)
    assert (after.refunds, after.refunded_amount, after.status) == (
        refunded.refunds,
        xof(2000),
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert (kinds.count("refund_reversed"), kinds.count("flagged_for_review")) == (1, 1)


async def test_a_payment_not_captured_cannot_be_refunded(flow: PaymentFlow, authorized: Callable[..., Any]) -> None:
    payment = await authorized()
    with pytest.raises(InvalidTransition, match="it is authorized, not succeeded"):
        await flow.refund(payment.id)
    assert await flow.get_payment(payment.id) == payment


@pytest.mark.parametrize(
    ("amount", "error"),
    [(Money.of("1", "EUR"), CurrencyMismatch), (xof(0), InvalidAmount), (xof(-5), InvalidAmount)],
)
async def test_a_refund_of_another_currency_or_of_nothing_is_refused(
    flow: PaymentFlow, pay: Callable[..., Any], amount: Money, error: type[Exception]
) -> None:
    payment = await pay()
    with pytest.raises(error):
        await flow.refund(payment.id, amount=amount)
    assert await flow.get_payment(payment.id) == payment


async def test_a_fully_refunded_payment_has_nothing_left_to_refund(flow: PaymentFlow, pay: Callable[..., Any]) -> None:
    payment = await pay()
    await flow.refund(payment.id)
    with pytest.raises(InvalidTransition):
        await flow.refund(payment.id)


async def test_a_provider_without_partial_refunds_refuses_one(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=xof(5000), provider="limited", order_id="o")).payment
    with pytest.raises(UnsupportedOperation, match="cannot refund part"):
        await flow.refund(payment.id, amount=xof(1000))
    assert (await flow.refund(payment.id)).status is RefundStatus.SUCCEEDED


@pytest.mark.parametrize(("answer", "retry_key"), [("decline", "r-2"), ("not_sent", "r-1")])
async def test_a_provider_without_partial_refunds_refunds_in_full_after_a_refund_that_failed(
    flow: PaymentFlow, answer: str, retry_key: str
) -> None:
    limited = flow.provider("limited")
    assert isinstance(limited, FakeProvider)
    payment = (await flow.create_payment(amount=xof(5000), provider="limited", order_id="o")).payment
    limited.script("refund", answer)
    with contextlib.suppress(ProviderNotSent):
        assert (await flow.refund(payment.id, idempotency_key="r-1")).status is RefundStatus.FAILED
    # A failed refund moved nothing: the whole payment is still the one refund this provider can make.
    assert (await flow.refund(payment.id, idempotency_key=retry_key)).status is RefundStatus.SUCCEEDED
    assert (await flow.get_payment(payment.id)).refunded_amount == xof(5000)


async def test_a_refund_that_was_not_sent_is_sent_again_when_retried_with_its_key(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "not_sent")
    with pytest.raises(ProviderNotSent):
        await flow.refund(payment.id, amount=xof(1000), idempotency_key="refund-1")
    assert (await flow.get_payment(payment.id)).refundable_amount == xof(5000)
    refund = await flow.refund(payment.id, amount=xof(1000), idempotency_key="refund-1")
    assert refund.status is RefundStatus.SUCCEEDED
    assert [op for op, _ in fake.calls].count("refund") == 2
    after = await flow.get_payment(payment.id)
    assert after.refunded_amount == xof(1000)
    assert [r.id for r in after.refunds] == [refund.id]
