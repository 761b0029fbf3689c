"""When a provider call ends without a definitive answer: "not sent" or "unknown".

Not sent changes nothing and may be retried; unknown leaves the payment
processing with the call recorded, and only asking the provider settles it:
the request is never sent twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from attrs import evolve

from paycore import Money
from paycore.errors import (
    IdempotencyKeyReused,
    InvalidTransition,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    UnsupportedOperation,
)
from paycore.flow import PaymentFlow
from paycore.records import Customer, LineItem
from paycore.status import FraudStatus, Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.testing.fake import FakeProvider

if TYPE_CHECKING:
    from .conftest import Clock

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


def _count(fake: FakeProvider, operation: str) -> int:
    return [op for op, _ in fake.calls].count(operation)


# -- not sent ----------------------------------------------------------------------------


async def test_a_create_that_was_not_sent_leaves_the_payment_pending_with_no_call(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "not_sent")
    with pytest.raises(ProviderNotSent, match="connection refused"):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (payment,) = await flow.list_payments()
    assert payment.status is PaymentStatus.PENDING
    assert payment.pending_call is None
    assert payment.external_id is None


async def test_retrying_a_create_that_was_not_sent_sends_once_more_for_the_same_payment(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "not_sent")
    with pytest.raises(ProviderNotSent):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (first,) = await flow.list_payments()
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    assert checkout.payment.id == first.id
    assert checkout.payment.status is PaymentStatus.SUCCEEDED
    assert fake.calls == [("initiate", first.id), ("initiate", first.id)]
    assert len(await flow.list_payments()) == 1


@pytest.mark.parametrize(
    "changed",
    [
        {"capture": False},
        {"description": "Table 9"},
        {"metadata": {"table": 9}},
        {"return_url": "https://chez-awa.example/other"},
        {"customer": Customer(phone="+221770000000")},
        {"items": (LineItem("thieboudienne", 1, XOF_5000),)},
    ],
    ids=lambda changed: next(iter(changed)),
)
async def test_a_create_that_was_not_sent_retried_with_another_request_under_its_key_is_refused(
    flow: PaymentFlow, fake: FakeProvider, changed: dict[str, Any]
) -> None:
    fake.script("initiate", "not_sent")
    with pytest.raises(ProviderNotSent):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (first,) = await flow.list_payments()
    with pytest.raises(IdempotencyKeyReused):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k", **changed)
    assert await flow.list_payments() == [first]
    assert fake.calls == [("initiate", first.id)]  # the refused retry sent nothing
    resumed = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    assert resumed.payment.id == first.id
    assert resumed.payment.status is PaymentStatus.SUCCEEDED


async def test_a_capture_that_was_not_sent_changes_nothing_and_may_be_retried(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    fake.script("capture", "not_sent")
    with pytest.raises(ProviderNotSent):
        await flow.capture(payment.id, idempotency_key="cap")
    after = await flow.get_payment(payment.id)
    assert (after.status, after.pending_call, after.captured_amount) == (PaymentStatus.AUTHORIZED, None, None)
    assert (await flow.capture(payment.id, idempotency_key="cap")).status is PaymentStatus.SUCCEEDED


async def test_a_poll_that_was_not_sent_changes_nothing(flow: PaymentFlow, fake: FakeProvider) -> None:
    fake.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    fake.poll_answer = "not_sent"
    with pytest.raises(ProviderNotSent):
        await flow.refresh(payment.id)
    assert await flow.get_payment(payment.id) == payment


async def test_a_create_answered_with_another_amount_is_never_sent_again_by_its_keys_retry(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway answered the create (it took 5 100 XOF, fees added), so the payment stays pending, flagged, with
    the gateway's reference; the process died before its key kept the result. The key's retry, once the lease is
    over, finds the payment its first attempt made and sends nothing (it sent the create a second time), and a
    status poll still asks the gateway about it."""
    from paycore_memory import MemoryIdempotencyStore

    initiate = fake.initiate

    async def fees_added(payment: Any) -> Any:
        update = await initiate(payment)
        return evolve(update, captured=Money.of("5100", "XOF"))

    class Died(BaseException):
        """The process ending between the answer's write and the key's."""

    async def dies(**_: Any) -> None:
        raise Died

    leases = [1000.0]
    store = MemoryIdempotencyStore(clock=lambda: leases[0])
    monkeypatch.setattr(flow, "idempotency_store", store)
    monkeypatch.setattr(fake, "initiate", fees_added)
    monkeypatch.setattr(store, "complete", dies)
    monkeypatch.setattr(store, "complete_record", dies)
    with pytest.raises(Died):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    monkeypatch.undo()
    monkeypatch.setattr(flow, "idempotency_store", store)
    (answered,) = await flow.list_payments()
    assert (answered.status, answered.pending_call, answered.review_reason) == (
        PaymentStatus.PENDING,
        None,
        ReviewReason.AMOUNT_MISMATCH,
    )
    assert answered.external_id is not None
    leases[0] += flow.config.idempotency_lease + 1
    retried = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    assert retried.payment == answered
    assert _count(fake, "initiate") == 1
    await flow.refresh(answered.id)
    assert _count(fake, "check_status") == 1


# -- unknown -----------------------------------------------------------------------------


async def test_a_lost_answer_leaves_the_payment_processing_with_the_call_recorded(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    assert payment.status is PaymentStatus.PROCESSING
    assert payment.pending_call is not None
    assert (payment.pending_call.operation, payment.pending_call.unknown) == ("initiate", True)
    events = await flow.list_events(payment.id)
    assert events[-1].kind == "provider_call_unknown"
    assert "connection reset" in events[-1].message


async def test_refresh_settles_a_lost_answer_by_asking_the_provider(flow: PaymentFlow, fake: FakeProvider) -> None:
    fake.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    settled = await flow.refresh(payment.id)
    assert settled.status is PaymentStatus.SUCCEEDED
    assert settled.pending_call is None
    assert _count(fake, "initiate") == 1


async def test_a_provider_that_never_answers_hits_the_timeout_and_the_outcome_is_unknown(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    async with make_flow(provider_timeout=0.05, idempotency_lease=5) as flow:
        fake = flow.provider("fake")
        fake.script("initiate", "hang")  # type: ignore[attr-defined]
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
        assert payment.status is PaymentStatus.PROCESSING
        assert payment.pending_call is not None
        assert payment.pending_call.unknown
        assert "no answer within 0.05s" in (await flow.list_events(payment.id))[-1].message


async def test_a_capture_after_a_lost_capture_answer_polls_first_and_never_captures_twice(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    fake.script("capture", "lost")
    unknown = await flow.capture(payment.id)
    assert unknown.status is PaymentStatus.AUTHORIZED
    assert unknown.pending_call is not None
    assert unknown.pending_call.unknown
    with pytest.raises(InvalidTransition, match="it is succeeded"):
        await flow.capture(payment.id)
    after = await flow.get_payment(payment.id)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.pending_call is None
    assert _count(fake, "capture") == 1
    assert fake.calls.index(("check_status", payment.id)) > fake.calls.index(("capture", payment.id))


async def test_a_refund_after_a_lost_refund_answer_polls_first_and_never_refunds_twice(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any]
) -> None:
    payment = await pay()
    fake.script("refund", "lost")
    first = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    assert first.status is RefundStatus.PENDING
    second = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
    after = await flow.get_payment(payment.id)
    assert after.refund(first.id).status is RefundStatus.SUCCEEDED
    assert after.refund(second.id).status is RefundStatus.SUCCEEDED
    assert after.refunded_amount == Money.of("3000", "XOF")
    assert _count(fake, "refund") == 2
    operations = [op for op, _ in fake.calls]
    assert operations[operations.index("refund") + 1] == "check_status"


async def test_a_refund_the_provider_never_received_is_failed_by_a_poll_once_its_lease_ran_out(
    flow: PaymentFlow, fake: FakeProvider, pay: Callable[..., Any], clock: Clock
) -> None:
    payment = await pay()
    fake.script("refund", "lost")
    refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    fake.ledger[payment.id].refunds.clear()  # the provider has no record of it: not yet, or never
    early = await flow.refresh(payment.id)  # the request may still be on its way: nothing is concluded
    assert early.refund(refund.id).status is RefundStatus.PENDING
    assert early.pending_call is not None
    assert early.pending_call.unknown
    with pytest.raises(ProviderOutcomeUnknown, match="still unknown"):
        await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    clock.advance(seconds=flow.config.idempotency_lease)  # the lease ran out: still within a timeout of it
    assert (await flow.refresh(payment.id)).refund(refund.id).status is RefundStatus.PENDING
    clock.advance(seconds=flow.config.provider_timeout)  # and a timeout more: no request is still on its way
    after = await flow.refresh(payment.id)
    assert after.refund(refund.id).status is RefundStatus.FAILED
    assert after.pending_call is None
    assert after.refundable_amount == Money.of("5000", "XOF")
    assert _count(fake, "refund") == 1


@pytest.mark.parametrize("operation", ["refund", "capture"])
async def test_a_provider_no_longer_knowing_a_payment_it_named_settles_no_lost_call(
    flow: PaymentFlow,
    fake: FakeProvider,
    pay: Callable[..., Any],
    authorized: Callable[..., Any],
    clock: Clock,
    operation: str,
) -> None:
    """ "No such payment" about an id the provider gave (a key of another account or mode, a fault) proves nothing
    of a call whose answer was lost: failed as "never arrived", the refund it may have made would be refundable,
    and paid, again."""
    payment = await (pay() if operation == "refund" else authorized())
    fake.script(operation, "lost")
    if operation == "refund":
        refund = await flow.refund(payment.id, amount=Money.of("2000", "XOF"))
    else:
        await flow.capture(payment.id)
    entry = fake.ledger.pop(payment.id)  # the provider answers "no such payment" for now
    clock.advance(seconds=flow.config.idempotency_lease + flow.config.provider_timeout)
    after = await flow.refresh(payment.id)  # a fresh poll: it would fail a refund it omits
    assert after.pending_call is not None
    assert after.pending_call.unknown
    assert (after.needs_review, after.review_reason) == (True, ReviewReason.UNKNOWN_OUTCOME)
    assert f"no record of {payment.external_id}" in after.review_message
    told = "settle its refund with resolve_refund" if operation == "refund" else "once the provider answers for it"
    assert told in after.review_message, "the flag names what the operator can do"
    if operation == "refund":
        assert after.refund(refund.id).status is RefundStatus.PENDING
        assert after.refundable_amount == Money.of("3000", "XOF"), "its amount stays reserved"
    else:
        assert after.status is PaymentStatus.AUTHORIZED
    with pytest.raises(ProviderOutcomeUnknown, match="still unknown"):
        await getattr(flow, operation)(payment.id)
    fake.ledger[payment.id] = entry  # the provider answers again: its books settle the call
    settled = await flow.refresh(payment.id)
    assert settled.pending_call is None
    if operation == "refund":
        assert settled.refund(refund.id).status is RefundStatus.SUCCEEDED
    else:
        assert settled.status is PaymentStatus.SUCCEEDED
    assert _count(fake, operation) == 1


async def test_an_unknown_outcome_that_polling_cannot_settle_is_flagged_and_blocks_new_operations(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    fake.script("capture", "lost")
    await flow.capture(payment.id)
    fake.poll_answer = "lost"
    with pytest.raises(ProviderOutcomeUnknown, match="no usable answer: timed out"):
        await flow.refresh(payment.id)
    flagged = await flow.get_payment(payment.id)
    assert flagged.needs_review
    assert flagged.review_reason is ReviewReason.UNKNOWN_OUTCOME
    assert flagged.status is PaymentStatus.AUTHORIZED
    with pytest.raises(ProviderOutcomeUnknown, match="still unknown"):
        await flow.capture(payment.id)
    assert _count(fake, "capture") == 1


async def test_an_unknown_outcome_at_a_provider_that_cannot_be_polled_waits_for_its_webhook(flow: PaymentFlow) -> None:
    limited = flow.provider("limited")
    assert isinstance(limited, FakeProvider)
    limited.script("initiate", "lost")
    payment = (await flow.create_payment(amount=XOF_5000, provider="limited", order_id="o")).payment
    with pytest.raises(ProviderOutcomeUnknown, match="cannot be polled; wait for its webhook"):
        await flow.refund(payment.id)
    assert await flow.get_payment(payment.id) == payment
    body, headers = limited.webhook(payment.id)
    (after,) = await flow.handle_webhook("limited", body, headers)
    assert after.status is PaymentStatus.SUCCEEDED
    assert after.pending_call is None
    assert (await flow.refund(payment.id)).status is RefundStatus.SUCCEEDED


async def test_a_cancel_whose_answer_was_lost_is_settled_before_the_next_operation(
    flow: PaymentFlow, fake: FakeProvider, authorized: Callable[..., Any]
) -> None:
    payment = await authorized()
    fake.script("cancel", "lost")
    unknown = await flow.cancel(payment.id)
    assert unknown.pending_call is not None
    assert unknown.pending_call.unknown
    with pytest.raises(InvalidTransition, match="it is canceled"):
        await flow.capture(payment.id)
    assert _count(fake, "capture") == 0
    assert (await flow.get_payment(payment.id)).status is PaymentStatus.CANCELED


async def test_refreshing_a_payment_at_a_provider_that_cannot_be_polled_is_refused(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="limited", order_id="o")).payment
    with pytest.raises(UnsupportedOperation, match="cannot be polled"):
        await flow.refresh(payment.id)


# -- polls older than the call they met ------------------------------------------------


def _polls_answering_late(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, *, answer_once: anyio.Event
) -> anyio.Event:
    """Make ``fake``'s polls read its books at once and answer only once ``answer_once`` is set; returns the event
    set when a poll has read them."""
    read, check_status = anyio.Event(), fake.check_status

    async def answer_late(payment: Any) -> Any:
        answer = await check_status(payment)
        read.set()
        await answer_once.wait()
        return answer

    monkeypatch.setattr(fake, "check_status", answer_late)
    return read


def _create_arriving_after_a_poll_read_the_books(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, *, answer_once: anyio.Event
) -> tuple[dict[str, Any], anyio.Event]:
    """Make a create's request reach ``fake`` only once a poll has read its books ("no such payment" then), and
    that poll answer only once ``answer_once`` is set. Returns what was seen (``"id"``: the payment's) and the
    event set when the create was sent."""
    sent, initiate = anyio.Event(), fake.initiate
    read = _polls_answering_late(fake, monkeypatch, answer_once=answer_once)
    seen: dict[str, Any] = {}

    async def initiate_once_the_books_were_read(payment: Any) -> Any:
        seen["id"] = payment.id
        sent.set()
        await read.wait()
        return await initiate(payment)

    monkeypatch.setattr(fake, "initiate", initiate_once_the_books_were_read)
    return seen, sent


async def test_a_poll_that_read_the_books_before_the_create_arrived_declines_nothing_once_answered_later(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh asked while the create travels reads "no such payment"; its answer comes back after the
    create's own answer cleared the call. It is older than that answer: the payment stays open, never expired,
    and the customer's payment later is an ordinary one, not a late confirmation."""
    fake.script("initiate", "pending")
    created = anyio.Event()
    seen, sent = _create_arriving_after_a_poll_read_the_books(fake, monkeypatch, answer_once=created)

    async def create() -> None:
        seen["created"] = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
        created.set()

    async def refresh() -> None:
        await sent.wait()
        seen["refreshed"] = await flow.refresh(seen["id"])

    async with anyio.create_task_group() as group:
        group.start_soon(create)
        group.start_soon(refresh)
    assert seen["created"].status is PaymentStatus.PROCESSING
    assert seen["refreshed"].status is PaymentStatus.PROCESSING
    stored = await flow.get_payment(seen["id"])
    assert (stored.status, stored.pending_call, stored.needs_review) == (PaymentStatus.PROCESSING, None, False)
    monkeypatch.undo()
    fake.settle(stored.id, Outcome.SUCCEEDED)
    (paid,) = await flow.handle_webhook("fake", *fake.webhook(stored.id))
    assert (paid.status, paid.needs_review) == (PaymentStatus.SUCCEEDED, False)


async def test_a_poll_older_than_a_lost_capture_settles_nothing_and_no_capture_is_sent_twice(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh asked while the create travels reads "no such payment"; before it comes back, the create is
    answered (authorized) and a capture is sent whose answer is lost. The old "not found" proves nothing of the
    capture: its call stays unknown, and the next capture asks the provider (captured) instead of capturing again."""
    release = anyio.Event()
    seen, sent = _create_arriving_after_a_poll_read_the_books(fake, monkeypatch, answer_once=release)

    async def create_then_capture() -> None:
        created = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
        fake.script("capture", "lost")
        seen["captured"] = await flow.capture(created.id)
        release.set()

    async def refresh() -> None:
        await sent.wait()
        await flow.refresh(seen["id"])

    async with anyio.create_task_group() as group:
        group.start_soon(create_then_capture)
        group.start_soon(refresh)
    monkeypatch.undo()
    stored = await flow.get_payment(seen["id"])
    assert stored.status is PaymentStatus.AUTHORIZED
    assert stored.pending_call is not None
    assert stored.pending_call.unknown, "the capture's call is still the provider's to settle"
    with pytest.raises(InvalidTransition, match="succeeded"):  # asks first: the provider captured already
        await flow.capture(stored.id)
    assert (await flow.get_payment(stored.id)).status is PaymentStatus.SUCCEEDED
    assert _count(fake, "capture") == 1


async def test_a_fresh_poll_settles_its_call_though_an_operator_wrote_the_payment_while_it_travelled(
    flow: PaymentFlow, fake: FakeProvider, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel's answer was lost; once its lease has run out, the reaper's poll reads "canceled". An operator's
    fraud verdict is written while the poll travels: it sent nothing to the provider, the payment carried the
    same call throughout, so the poll still settles the call (the payment is canceled, nobody is asked to look)."""
    created = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
    fake.script("cancel", "lost")
    lost = await flow.cancel(created.id)
    assert lost.pending_call is not None
    assert lost.pending_call.unknown
    clock.advance(minutes=10)
    asked = fake.check_status

    async def check_status_while_an_operator_writes(payment: Any) -> Any:
        answer = await asked(payment)
        await flow.set_fraud_status(created.id, FraudStatus.ACCEPTED, message="checked by the manager")
        return answer

    monkeypatch.setattr(fake, "check_status", check_status_while_an_operator_writes)
    await flow.expire_stale(timedelta(minutes=5))
    stored = await flow.get_payment(created.id)
    assert (stored.status, stored.pending_call, stored.needs_review) == (PaymentStatus.CANCELED, None, False)
    assert stored.fraud_status is FraudStatus.ACCEPTED
    assert _count(fake, "cancel") == 1


async def test_a_refresh_of_a_create_that_was_not_sent_asks_nothing_and_its_keys_retry_sends_it(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    """A create was not sent: its payment is pending with no call. A refresh has nothing to ask the provider, which
    would answer "no such payment" (that expired the payment, and the key's retry then answered it expired): the
    payment stays as it is, and the retry under its key sends it."""
    fake.script("initiate", "not_sent", "pending")
    with pytest.raises(ProviderNotSent):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    (pending,) = await flow.list_payments()
    assert (pending.status, pending.pending_call) == (PaymentStatus.PENDING, None)
    assert await flow.refresh(pending.id) == pending
    assert _count(fake, "check_status") == 0
    retried = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", idempotency_key="k")
    assert (retried.payment.id, retried.payment.status) == (pending.id, PaymentStatus.PROCESSING)
    assert retried.action is not None
    assert _count(fake, "initiate") == 2
    fake.settle(pending.id, Outcome.SUCCEEDED)
    (paid,) = await flow.handle_webhook("fake", *fake.webhook(pending.id))
    assert (paid.status, paid.needs_review) == (PaymentStatus.SUCCEEDED, False)


@pytest.mark.parametrize("operation", ["create", "capture", "refund"])
async def test_a_providers_answer_whose_first_write_meets_a_lost_connection_is_written_on_a_fresh_one(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """A database restarted while the provider answered: the answer's write failed, and the call stayed in
    flight for its whole lease (every retry of the payment's operations "busy" for two minutes)."""
    from paycore.errors import StorageUnavailable
    from paycore.storage import UpdatingRepository

    repository = flow.repository
    assert isinstance(repository, UpdatingRepository)
    update, answered = repository.update, []

    async def first_write_after_an_answer_fails(*args: Any, **kwargs: Any) -> Any:
        if answered and answered.pop():
            raise StorageUnavailable("database: the connection was lost (server restarted)")
        return await update(*args, **kwargs)

    def answering(method: str) -> None:
        original = getattr(fake, method)

        async def answer(*args: Any) -> Any:
            result = await original(*args)
            answered.append(True)
            return result

        monkeypatch.setattr(fake, method, answer)

    monkeypatch.setattr(repository, "update", first_write_after_an_answer_fails)
    if operation == "create":
        answering("initiate")
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
        assert payment.status is PaymentStatus.SUCCEEDED
    elif operation == "capture":
        held = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)).payment
        answering("capture")
        payment = await flow.capture(held.id)
        assert payment.captured_amount == XOF_5000
    else:
        paid = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
        answering("refund")
        refund = await flow.refund(paid.id, amount=Money.of("1000", "XOF"))
        assert refund.status is RefundStatus.SUCCEEDED
        payment = await flow.get_payment(paid.id)
    assert answered == []  # the failing write was met
    stored = await flow.get_payment(payment.id)
    assert stored.pending_call is None
    assert not stored.needs_review
