"""``CallListingConformance``: the rules of a repository's listing of the payments that carry a provider call.

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`: a
repository that offers :class:`~paycore.storage.CallListingRepository` runs these;
one that does not skips them, since the reaper then settles only the calls of
unfinished payments (lost answers on paid ones wait for the next operation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from paycore.calls import CallOperation, CallState, ProviderCall
from paycore.money import Money
from paycore.records import Payment
from paycore.status import PaymentStatus
from paycore.storage import CallListingRepository, PaymentLookup, PaymentWrite, UpdatingRepository
from paycore.testing.records import BASE_TIME, make_payment, next_version

__all__ = ["NOT_EVERY_ONE", "CallListingConformance", "all_pages", "write_over"]

XOF_5000 = Money.of("5000", "XOF")
NOT_EVERY_ONE = "pages of {} did not list every payment once in (updated_at, id) order (a short page is the last)"
"""What a listing's paging test says when the pages, joined, are not the listing."""


def _listing(repository: Any) -> CallListingRepository:
    if not isinstance(repository, CallListingRepository):
        pytest.skip(f"{type(repository).__name__} has no list_with_calls(): the reaper settles open payments only")
    return repository


def _call(operation: CallOperation, *, minutes: int = 0, unknown: bool = True) -> ProviderCall:
    """A call of ``operation`` written ``minutes`` after :data:`BASE_TIME` (its answer lost, unless not ``unknown``)."""
    call = ProviderCall.start(
        operation, now=BASE_TIME + timedelta(minutes=minutes), lease=timedelta(minutes=2), amount=XOF_5000
    )
    return ProviderCall(
        id=call.id,
        operation=operation,
        started_at=call.started_at,
        lease_until=call.lease_until,
        amount=call.amount,
        state=CallState.UNKNOWN if unknown else CallState.SUBMITTING,
        reason="the answer was lost" if unknown else "",
    )


def _paid(**fields: Any) -> Payment:
    """A captured payment, with ``fields``."""
    return make_payment(status=PaymentStatus.SUCCEEDED, authorized_amount=XOF_5000, captured_amount=XOF_5000, **fields)


async def all_pages(read: Callable[..., Awaitable[list[Payment]]], limit: int) -> list[str]:
    """The ids of every payment a reaper's listing ``read(limit=, after=)`` lists, ``limit`` at a time through the
    ``after`` position (the previous page's last ``(updated_at, id)``), as the reaper pages: a short page is the last.

    Fails, rather than loops for ever, on a page that lists a payment again (a store comparing ``after`` with
    ``>=`` serves the same page for ever) or lists more than ``limit``."""
    seen: list[str] = []
    after = None
    while True:
        page = await read(limit=limit, after=after)
        if len(page) > limit:
            pytest.fail(f"a page of at most {limit} listed {len(page)} payments")
        again = [p.id for p in page if p.id in seen]
        if again or len({p.id for p in page}) < len(page):
            pytest.fail(
                f"the page of {limit} after {after} listed {again or 'a payment'} again: a page starts strictly "
                f"after the previous page's last (updated_at, id); is `after` compared with >= ?"
            )
        seen += [p.id for p in page]
        if len(page) < limit:
            return seen
        after = (page[-1].updated_at, page[-1].id)


class CallListingConformance:
    """Conformance tests for :meth:`~paycore.storage.CallListingRepository.list_with_calls`."""

    async def test_only_payments_carrying_a_call_are_listed_whatever_their_status_oldest_first(
        self, repository: Any
    ) -> None:
        listing = _listing(repository)
        at = [BASE_TIME + timedelta(minutes=m) for m in range(6)]
        refunding = _paid(updated_at=at[3], pending_call=_call(CallOperation.REFUND, minutes=3))
        capturing = make_payment(status=PaymentStatus.AUTHORIZED, authorized_amount=XOF_5000, updated_at=at[1],
                                 capture=False, pending_call=_call(CallOperation.CAPTURE, minutes=1))  # fmt: skip
        creating = make_payment(status=PaymentStatus.PENDING, updated_at=at[4],
                                pending_call=_call(CallOperation.INITIATE, minutes=4, unknown=False))  # fmt: skip
        for payment in (
            refunding,
            capturing,
            creating,
            _paid(updated_at=at[0]),
            make_payment(status=PaymentStatus.PROCESSING, updated_at=at[2]),
        ):
            await repository.add(payment, [])
        found = await listing.list_with_calls(limit=10)
        assert [p.id for p in found] == [capturing.id, refunding.id, creating.id]
        assert found[0] == capturing, "listed payments read back whole, their call included"
        assert [p.id for p in await listing.list_with_calls(limit=1)] == [capturing.id]

    async def test_a_payment_leaves_the_listing_when_its_call_is_cleared_and_joins_it_when_one_is_written(
        self, repository: Any
    ) -> None:
        listing = _listing(repository)
        settled = _paid(pending_call=_call(CallOperation.REFUND))
        idle = _paid(updated_at=BASE_TIME + timedelta(minutes=1))
        await repository.add(settled, [])
        await repository.add(idle, [])
        assert [p.id for p in await listing.list_with_calls(limit=10)] == [settled.id]
        later = BASE_TIME + timedelta(minutes=5)
        await write_over(repository, settled, next_version(settled, pending_call=None, updated_at=later))
        captured = next_version(idle, pending_call=_call(CallOperation.REFUND, minutes=5), updated_at=later)
        await write_over(repository, idle, captured)
        assert [p.id for p in await listing.list_with_calls(limit=10)] == [idle.id]

    async def test_pages_after_a_position_list_every_payment_once_in_order(self, repository: Any) -> None:
        listing = _listing(repository)
        made = []
        for index in range(7):  # pairs share an update time: the id breaks the tie
            payment = _paid(
                updated_at=BASE_TIME + timedelta(minutes=index // 2), pending_call=_call(CallOperation.REFUND)
            )
            await repository.add(payment, [])
            made.append(payment)
        await repository.add(_paid(updated_at=BASE_TIME), [])
        expected = [p.id for p in sorted(made, key=lambda p: (p.updated_at, p.id))]
        for limit in (1, 2, 3, 7, 8):
            assert await all_pages(listing.list_with_calls, limit) == expected, NOT_EVERY_ONE.format(limit)
        last = max(made, key=lambda p: (p.updated_at, p.id))
        assert await listing.list_with_calls(limit=5, after=(last.updated_at, last.id)) == []


async def write_over(repository: Any, stored: Payment, payment: Payment) -> None:
    """Store ``payment`` over ``stored``: through ``update`` with the copy in hand when the repository has it
    (a store may then write only what changed), else ``save``."""
    if isinstance(repository, UpdatingRepository):
        await repository.update(PaymentLookup.by_id(stored.id), lambda _: PaymentWrite(payment), known=stored)
    else:
        await repository.save(payment, [])
