"""A write over the copy in hand sets only the fields that changed, on SQLite and PostgreSQL; each still round-trips."""

from __future__ import annotations

import pytest
from attrs import evolve

from paycore import Money
from paycore.errors import ConcurrentUpdate
from paycore.records import Payment
from paycore.rows import VALUES_OF_FIELD
from paycore.status import RefundStatus
from paycore.storage import PaymentLookup, PaymentWrite
from paycore.testing.records import make_payment, next_version, rich_payment
from paycore_django.storage import DjangoPaymentRepository

pytestmark = pytest.mark.anyio

CHANGING = sorted(name for name in VALUES_OF_FIELD if name not in ("id", "version"))
"""Every field an update may change (the version changes on every one)."""


async def _update_over(repository: DjangoPaymentRepository, stored: Payment, new: Payment) -> None:
    await repository.update(PaymentLookup.by_id(stored.id), lambda found: PaymentWrite(new), known=stored)


@pytest.mark.parametrize("field", CHANGING)
async def test_any_one_field_changed_over_the_known_copy_is_stored(using: str, field: str) -> None:
    repository = DjangoPaymentRepository(using)
    stored = make_payment(amount=Money.of("10.000", "KWD"))
    target = rich_payment(refunds=(), id=stored.id)
    await repository.add(stored, [])
    new = next_version(stored, **{field: getattr(target, field)})
    await _update_over(repository, stored, new)
    assert await repository.get(stored.id) == new


async def test_a_refund_changed_in_place_over_the_known_copy_is_stored(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    stored = rich_payment()
    await repository.add(stored, [])
    confirmed = evolve(stored.refunds[1], status=RefundStatus.SUCCEEDED, external_id="ext-r2")
    new = next_version(stored, refunds=(stored.refunds[0], confirmed), event_count=stored.event_count + 1)
    await _update_over(repository, stored, new)
    assert await repository.get(stored.id) == new


async def test_a_write_over_a_stale_copy_changes_nothing(using: str) -> None:
    repository = DjangoPaymentRepository(using)
    stored = make_payment()
    await repository.add(stored, [])
    won = next_version(stored, description="first")
    await _update_over(repository, stored, won)
    with pytest.raises(ConcurrentUpdate):
        await _update_over(repository, stored, next_version(stored, order_id="second"))
    assert await repository.get(stored.id) == won
