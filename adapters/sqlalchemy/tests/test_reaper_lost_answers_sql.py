"""On SQLite and PostgreSQL, the reaper settles a capture and a refund whose answers were lost, by asking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.money import Money
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")
HOUR = timedelta(hours=1)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


async def test_lost_capture_and_refund_answers_are_settled_once_their_lease_has_run_out(database_url: str) -> None:
    clock = Clock()
    config = {"repository": database_url, "providers": {"fake": {"type": "fake", "webhook_secret": "whsec_reaper"}}}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake], clock=clock) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        authorized = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="A", capture=False)).payment
        fake.script("capture", "lost")
        await flow.capture(authorized.id)
        paid = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="B")).payment
        fake.script("refund", "lost")
        refund = await flow.refund(paid.id)
        assert await flow.expire_stale(HOUR) == [], "within their lease the calls are their owners'"
        clock.now += timedelta(seconds=flow.config.idempotency_lease + 1)
        changed = {payment.id: payment for payment in await flow.expire_stale(HOUR)}
        assert (changed[authorized.id].status, changed[authorized.id].captured_amount) == (
            PaymentStatus.SUCCEEDED,
            XOF_5000,
        )
        assert changed[paid.id].status is PaymentStatus.REFUNDED
        assert [(r.id, r.status) for r in changed[paid.id].refunds] == [(refund.id, RefundStatus.SUCCEEDED)]
        assert all(p.pending_call is None and not p.needs_review for p in changed.values())
        assert fake.calls.count(("capture", authorized.id)) == 1
        assert fake.calls.count(("refund", paid.id)) == 1
