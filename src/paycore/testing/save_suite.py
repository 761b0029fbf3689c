"""``SaveConformance``: a repository's ``save()`` stores the whole next version it is given.

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`. A
``save()`` that writes only some columns (an ``UPDATE`` forgetting what the
``INSERT`` wrote) keeps stale values: a write-ahead call record that never
reaches other processes lets a second one capture again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest
from attrs import evolve

from paycore.errors import ConcurrentUpdate
from paycore.records import Payment, Refund
from paycore.status import FraudStatus, PaymentStatus
from paycore.storage import PaymentRepository
from paycore.testing.records import BASE_TIME, make_event, make_payment, make_receipt, next_version, rich_payment

__all__ = ["SaveConformance", "as_created"]


class SaveConformance:
    """Conformance tests for what :meth:`~paycore.storage.PaymentRepository.save` stores."""

    async def test_a_save_stores_every_field_it_sets_and_every_field_it_clears(
        self, repository: PaymentRepository
    ) -> None:
        """Each saved version reads back whole: what the flow sets (the write-ahead call record, a review, the
        provider's state, refund metadata...) and, in a later version, what it puts back to its default."""
        shape = rich_payment()
        assert shape.pending_call is not None
        plain = as_created(shape, version=1, event_count=1, updated_at=shape.created_at)
        await repository.add(plain, [make_event(plain, 1, "created")])
        set_by_the_flow = {field: getattr(shape, field) for field in _SET_BY_THE_FLOW}
        set_by_the_flow["pending_call"] = evolve(shape.pending_call, cause="reaper")  # not the default "api"
        rich = next_version(plain, **set_by_the_flow, event_count=2, updated_at=BASE_TIME + timedelta(minutes=5))
        await repository.save(rich, [make_event(plain, 2)])
        assert await repository.get(rich.id) == rich, "a save did not store every field of the payment it was given"

        later = BASE_TIME + timedelta(minutes=9)
        cleared = as_created(
            rich,
            refunds=tuple(_as_created_refund(refund, updated_at=later) for refund in rich.refunds),
            version=rich.version + 1,
            event_count=3,
            updated_at=later,
        )
        await repository.save(cleared, [make_event(plain, 3)])
        assert await repository.get(rich.id) == cleared, (
            "a save that put fields back to their defaults (no call in flight, no review...) kept stale values"
        )
        assert [e.sequence for e in await repository.list_events(rich.id)] == [1, 2, 3]

    async def test_a_write_refused_for_a_receipt_seen_before_leaves_no_event_and_the_next_write_lands(
        self, repository: PaymentRepository
    ) -> None:
        """A webhook delivered twice: the second delivery's write is refused whole, its events too (not written
        before the receipt's unique key refused it), and the payment's next write, a poll's, is stored."""
        payment = make_payment()
        events = [make_event(payment, 1, "created")]
        await repository.add(payment, events)
        paid = next_version(payment, status=PaymentStatus.SUCCEEDED, captured_amount=payment.amount, event_count=2)
        events.append(make_event(payment, 2, provider_event_id="evt-paid", cause="webhook"))
        await repository.save(paid, events[1:], [make_receipt(payment, "evt-paid")])
        again = next_version(paid, description="delivered twice", event_count=4)
        refused = [make_event(payment, sequence, "status_changed", cause="webhook", provider_event_id="evt-paid")
                   for sequence in (3, 4)]  # fmt: skip
        with pytest.raises(ConcurrentUpdate):
            await repository.save(again, refused, [make_receipt(payment, "evt-paid")])
        assert await repository.get(payment.id) == paid
        assert await repository.list_events(payment.id) == events, "a write refused for its receipt left events"
        polled = next_version(paid, fraud_status=FraudStatus.ACCEPTED, event_count=3)
        events.append(make_event(payment, 3, "fraud_status_changed", cause="poll"))  # the refused write's sequence
        await repository.save(polled, events[2:])
        assert await repository.get(payment.id) == polled, "the write after a refused one was not stored"
        assert await repository.list_events(payment.id) == events

    @pytest.mark.parametrize("step", [2, 0], ids=["skipping-a-version", "repeating-the-version"])
    async def test_a_save_whose_version_is_not_the_next_one_is_refused_and_changes_nothing(
        self, repository: PaymentRepository, step: int
    ) -> None:
        """A save is stored only as the very next version: one that skips a version (written over a copy no one
        stored) or repeats the stored one (a writer that lost a race, or forgot to count) is refused with
        ``ConcurrentUpdate``, and the payment, its events and the webhook receipts stay as they were; a store that
        took it would let a lost write overwrite the winner's, and the versions no longer tell writers apart."""
        payment = make_payment()
        events = [make_event(payment, 1, "created")]
        await repository.add(payment, events)
        stored = next_version(payment, status=PaymentStatus.PROCESSING, event_count=2)
        events.append(make_event(payment, 2))
        await repository.save(stored, events[1:])
        wrong = evolve(stored, version=stored.version + step, status=PaymentStatus.FAILED, event_count=3)
        with pytest.raises(ConcurrentUpdate):
            await repository.save(wrong, [make_event(payment, 3, "other")], [make_receipt(payment, "evt-x")])
        assert await repository.get(payment.id) == stored, f"a refused save of version {wrong.version} was stored"
        assert await repository.list_events(payment.id) == events, "a save refused for its version left events"
        assert not await repository.has_receipt(payment.provider, payment.tenant, "evt-x")


_SET_BY_THE_FLOW = (
    "status",
    "authorized_amount",
    "captured_amount",
    "refunds",
    "external_id",
    "references",
    "provider_state",
    "next_action",
    "fraud_status",
    "fraud_message",
    "needs_review",
    "review_reason",
    "review_message",
    "pending_call",
)
"""The fields of a payment the flow changes after creating it (besides ``version``, ``event_count`` and
``updated_at``); the others keep what the payment was created with."""


def as_created(payment: Payment, **fields: Any) -> Payment:
    """``payment`` with each field in :data:`_SET_BY_THE_FLOW` back to its default, then ``fields``."""
    declared = attrs.fields_dict(Payment)
    return evolve(payment, **{**{name: declared[name].default for name in _SET_BY_THE_FLOW}, **fields})


def _as_created_refund(refund: Refund, **fields: Any) -> Refund:
    """``refund`` with every optional field back to its default (its status pending), then ``fields``."""
    plain = Refund(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        created_at=refund.created_at,
        updated_at=refund.updated_at,
    )
    return evolve(plain, **fields)
