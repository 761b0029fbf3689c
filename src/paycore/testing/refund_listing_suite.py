"""``RefundListingConformance``: the rules of a repository's listing of the payments holding a pending refund.

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`: a
repository that offers :class:`~paycore.storage.RefundListingRepository` runs these;
one that does not skips them, since the reaper then leaves a refund pending at the
provider to its report, a refresh or an operator.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from attrs import evolve

from paycore.money import Money
from paycore.records import Payment, Refund, new_id
from paycore.status import PaymentStatus, RefundStatus
from paycore.storage import RefundListingRepository
from paycore.testing.call_listing_suite import NOT_EVERY_ONE, all_pages, write_over
from paycore.testing.records import BASE_TIME, make_payment, next_version

__all__ = ["RefundListingConformance"]

XOF_5000 = Money.of("5000", "XOF")
LATER = BASE_TIME + timedelta(hours=1)
"""A time after every refund the tests make: the listing's ``updated_before``."""


def _listing(repository: Any) -> RefundListingRepository:
    if not isinstance(repository, RefundListingRepository):
        pytest.skip(f"{type(repository).__name__} has no list_with_pending_refunds(): refunds wait for their report")
    return repository


def _refund(payment_id: str, status: RefundStatus, *, minutes: int = 0, amount: str = "1000") -> Refund:
    at = BASE_TIME + timedelta(minutes=minutes)
    return Refund(
        id=new_id("re"),
        payment_id=payment_id,
        amount=Money.of(amount, "XOF"),
        status=status,
        reason="",
        created_at=at,
        updated_at=at,
    )


def _paid(*statuses: RefundStatus, minutes: int = 0, **fields: Any) -> Payment:
    """A captured payment updated ``minutes`` after :data:`BASE_TIME`, with a refund of each of ``statuses``."""
    payment = make_payment(
        status=PaymentStatus.SUCCEEDED,
        authorized_amount=XOF_5000,
        captured_amount=XOF_5000,
        updated_at=BASE_TIME + timedelta(minutes=minutes),
        **fields,
    )
    refunds = tuple(_refund(payment.id, status, minutes=minutes) for status in statuses)
    return evolve(payment, refunds=refunds)


class RefundListingConformance:
    """Conformance tests for :meth:`~paycore.storage.RefundListingRepository.list_with_pending_refunds`."""

    async def test_only_payments_holding_a_pending_refund_are_listed_each_once_oldest_first(
        self, repository: Any
    ) -> None:
        listing = _listing(repository)
        two_pending = _paid(RefundStatus.PENDING, RefundStatus.PENDING, minutes=3)
        pending = _paid(RefundStatus.SUCCEEDED, RefundStatus.PENDING, minutes=1)
        for payment in (
            two_pending,
            pending,
            _paid(RefundStatus.SUCCEEDED, minutes=0),
            _paid(RefundStatus.FAILED, minutes=2),
            _paid(minutes=4),
        ):
            await repository.add(payment, [])
        found = await listing.list_with_pending_refunds(updated_before=LATER, limit=10)
        assert [p.id for p in found] == [pending.id, two_pending.id], "each once, by (updated_at, id)"
        assert found[0] == pending, "listed payments read back whole, their refunds included"
        assert [p.id for p in await listing.list_with_pending_refunds(updated_before=LATER, limit=1)] == [pending.id]

    async def test_a_pending_refund_followed_by_a_settled_one_is_listed(self, repository: Any) -> None:
        """A partial refund still pending at the gateway, then a second one paid out at once: the payment holds a
        pending refund whatever its last refund says, whether it was added with both or the second came later."""
        listing = _listing(repository)
        added = _paid(RefundStatus.PENDING, RefundStatus.SUCCEEDED, minutes=0)
        written = _paid(RefundStatus.PENDING, minutes=1)
        for payment in (added, written, _paid(RefundStatus.SUCCEEDED, minutes=2)):
            await repository.add(payment, [])
        at = BASE_TIME + timedelta(minutes=3)
        refunds = (*written.refunds, _refund(written.id, RefundStatus.SUCCEEDED, minutes=3, amount="500"))
        await write_over(repository, written, next_version(written, refunds=refunds, updated_at=at))
        found = await listing.list_with_pending_refunds(updated_before=LATER, limit=10)
        assert [p.id for p in found] == [added.id, written.id], (
            "a payment whose pending refund is followed by a settled one was not listed: is only its last refund read?"
        )

    async def test_a_refund_updated_since_the_bound_is_not_listed(self, repository: Any) -> None:
        listing = _listing(repository)
        old, recent = _paid(RefundStatus.PENDING, minutes=0), _paid(RefundStatus.PENDING, minutes=30)
        await repository.add(old, [])
        await repository.add(recent, [])
        bound = BASE_TIME + timedelta(minutes=10)
        assert [p.id for p in await listing.list_with_pending_refunds(updated_before=bound, limit=10)] == [old.id]

    async def test_the_bound_is_the_refunds_own_last_word_strictly_before_it(self, repository: Any) -> None:
        """``updated_before`` is read on each pending refund's own ``updated_at`` (when it was last heard of), not
        on its payment's, and strictly: a refund heard of at the bound itself is not listed yet."""
        listing = _listing(repository)
        bound = BASE_TIME + timedelta(minutes=10)
        heard_of_lately = _paid(RefundStatus.PENDING, minutes=0)  # the payment is old, its refund heard of since
        heard_of_lately = evolve(
            heard_of_lately, refunds=(_refund(heard_of_lately.id, RefundStatus.PENDING, minutes=30),)
        )
        long_unheard = _paid(RefundStatus.PENDING, minutes=0)  # the refund is old, its payment written since
        long_unheard = evolve(long_unheard, updated_at=BASE_TIME + timedelta(minutes=30))
        at_the_bound = _paid(RefundStatus.PENDING, minutes=10)
        for payment in (heard_of_lately, long_unheard, at_the_bound):
            await repository.add(payment, [])
        found = [p.id for p in await listing.list_with_pending_refunds(updated_before=bound, limit=10)]
        assert found == [long_unheard.id], (
            "the listing must read each pending refund's own updated_at, strictly before updated_before: "
            f"listed {found}, where only the refund unheard of since before the bound is due"
        )

    async def test_a_payment_leaves_the_listing_when_its_refund_settles_and_joins_it_when_one_is_pending(
        self, repository: Any
    ) -> None:
        listing = _listing(repository)
        settling, idle = _paid(RefundStatus.PENDING), _paid(minutes=1)
        await repository.add(settling, [])
        await repository.add(idle, [])
        assert [p.id for p in await listing.list_with_pending_refunds(updated_before=LATER, limit=10)] == [settling.id]
        at = BASE_TIME + timedelta(minutes=5)
        (refund,) = settling.refunds
        succeeded = evolve(refund, status=RefundStatus.SUCCEEDED, updated_at=at)
        await write_over(repository, settling, next_version(settling, refunds=(succeeded,), updated_at=at))
        refunding = next_version(idle, refunds=(_refund(idle.id, RefundStatus.PENDING, minutes=5),), updated_at=at)
        await write_over(repository, idle, refunding)
        assert [p.id for p in await listing.list_with_pending_refunds(updated_before=LATER, limit=10)] == [idle.id]

    async def test_pages_after_a_position_list_every_payment_holding_a_pending_refund_once_in_order(
        self, repository: Any
    ) -> None:
        listing = _listing(repository)
        made = []
        for index in range(7):  # pairs share an update time: the id breaks the tie
            payment = _paid(RefundStatus.PENDING, RefundStatus.PENDING, minutes=index // 2)
            await repository.add(payment, [])
            made.append(payment)
        await repository.add(_paid(RefundStatus.SUCCEEDED), [])
        expected = [p.id for p in sorted(made, key=lambda p: (p.updated_at, p.id))]
        for limit in (1, 2, 3, 7, 8):
            pages = await all_pages(partial(listing.list_with_pending_refunds, updated_before=LATER), limit)
            assert pages == expected, NOT_EVERY_ONE.format(limit)
        last = max(made, key=lambda p: (p.updated_at, p.id))
        after = (last.updated_at, last.id)
        assert await listing.list_with_pending_refunds(updated_before=LATER, limit=5, after=after) == []
