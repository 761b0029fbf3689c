"""A dispute (a chargeback) reported by the provider: told to an operator, once per state, and no amount changes."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from paycore import DisputeUpdate, Money
from paycore.flow import PaymentFlow
from paycore.records import Payment, ProviderUpdate
from paycore.status import Outcome, PaymentStatus, ReviewReason
from paycore.testing.fake import FakeProvider
from paycore.wire import InvalidReport

from .conftest import alter_reports

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def _paid(flow: PaymentFlow, fake: FakeProvider) -> Payment:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T4-17")
    assert checkout.payment.status is PaymentStatus.SUCCEEDED
    return checkout.payment


def _reporting(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, disputes: list[DisputeUpdate]) -> None:
    """The fake provider's webhooks and polls carry ``disputes[0]`` (the dispute as it stands now)."""
    alter_reports(fake, monkeypatch, lambda report: attrs.evolve(report, dispute=disputes[0]))


async def test_a_dispute_is_told_once_per_state_and_changes_no_amount(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _paid(flow, fake)
    dispute = DisputeUpdate("dp_1", "needs_response", amount=XOF_5000, reason="fraudulent")
    told = [dispute]
    _reporting(fake, monkeypatch, told)
    (flagged,) = await flow.handle_webhook("fake", *fake.webhook(payment.id))
    assert (flagged.status, flagged.captured_amount, flagged.refunded_amount) == (
        PaymentStatus.SUCCEEDED,
        XOF_5000,
        Money.of("0", "XOF"),
    )
    assert (flagged.needs_review, flagged.review_reason) == (True, ReviewReason.DISPUTE)
    assert "dispute dp_1 is needs_response, reason fraudulent" in flagged.review_message
    (event,) = [event for event in await flow.list_events(payment.id) if event.kind == "dispute"]
    assert event.amount == XOF_5000
    await flow.handle_webhook("fake", *fake.webhook(payment.id))  # the same state again: a known fact
    await flow.refresh(payment.id)
    await flow.resolve_review(payment.id, note="evidence sent to the bank")
    assert not (await flow.refresh(payment.id)).needs_review, "its state is known: nothing new to tell"
    told[0] = attrs.evolve(dispute, status="lost")  # the bank took the money back
    lost = await flow.refresh(payment.id)
    assert (lost.needs_review, lost.review_reason, lost.captured_amount) == (True, ReviewReason.DISPUTE, XOF_5000)
    assert "dispute dp_1 is lost" in lost.review_message
    kinds = [event.kind for event in await flow.list_events(payment.id)]
    assert kinds.count("dispute") == 2


async def test_a_dispute_is_the_reason_kept_beside_an_amount_mismatch(
    flow: PaymentFlow, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await _paid(flow, fake)
    _reporting(fake, monkeypatch, [DisputeUpdate("dp_2", "needs_response")])
    fake.settle(payment.id, Outcome.SUCCEEDED, captured=Money.of("4000", "XOF"))  # and an amount that disagrees
    after = await flow.refresh(payment.id)
    assert after.review_reason is ReviewReason.DISPUTE, "the more pressing of the two"
    assert "dispute dp_2" in after.review_message
    assert "captured amount" in after.review_message


@pytest.mark.parametrize(
    "fields",
    [{"dispute_id": ""}, {"status": ""}, {"status": "x" * 101}, {"reason": 5}, {"amount": 5000}],
    ids=["no-id", "no-status", "status-too-long", "reason-not-text", "amount-not-money"],
)
def test_a_dispute_paycore_cannot_keep_is_an_invalid_report(fields: dict[str, Any]) -> None:
    given: dict[str, Any] = {"dispute_id": "dp_1", "status": "needs_response", **fields}
    with pytest.raises(InvalidReport):
        DisputeUpdate(**given)
    with pytest.raises(InvalidReport):
        ProviderUpdate(dispute="dp_1")  # type: ignore[arg-type]
