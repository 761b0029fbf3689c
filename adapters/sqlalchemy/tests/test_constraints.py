"""The database itself refuses what would break paycore's rules, and the refusal changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from paycore.errors import DuplicatePayment, InvalidAmount, ValidationError
from paycore.money import Money
from paycore.testing.records import make_payment, next_version
from paycore_sqlalchemy import DuplicateExternalId, SqlPaymentRepository

pytestmark = pytest.mark.anyio


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SqlPaymentRepository]:
    repository = SqlPaymentRepository(database_url)
    yield repository
    await repository.aclose()


async def test_a_negative_amount_is_refused_and_nothing_is_stored(repository: SqlPaymentRepository) -> None:
    with pytest.raises(InvalidAmount):
        await repository.add(make_payment(amount=Money.minor(-5, "XOF")), [])
    assert await repository.list_payments() == []


async def test_an_external_id_taken_by_another_payment_is_refused(repository: SqlPaymentRepository) -> None:
    first = make_payment(tenant="chez-awa", external_id="gw-1")
    second = make_payment(tenant="chez-awa")
    await repository.add(first, [])
    await repository.add(second, [])
    with pytest.raises(DuplicateExternalId) as raised:
        await repository.save(next_version(second, external_id="gw-1"), [])
    assert isinstance(raised.value, DuplicatePayment)
    assert await repository.get(second.id) == second
    assert (await repository.get_by_external_id("fake", "chez-awa", "gw-1")).id == first.id


async def test_a_naive_datetime_is_refused(repository: SqlPaymentRepository) -> None:
    naive = make_payment(created_at=datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValidationError, match="naive datetime"):
        await repository.add(naive, [])
    assert await repository.list_payments() == []


async def test_an_amount_too_large_for_the_column_is_refused(repository: SqlPaymentRepository) -> None:
    with pytest.raises(InvalidAmount, match="too large"):
        await repository.add(make_payment(amount=Money.minor(10**20, "XOF")), [])
    assert await repository.list_payments() == []
