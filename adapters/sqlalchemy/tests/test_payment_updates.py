"""A write over a known copy sets only the columns that changed, and every field still round-trips."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from attrs import evolve

from paycore import Money
from paycore.errors import ConcurrentUpdate
from paycore.records import Payment
from paycore.status import RefundStatus
from paycore.storage import PaymentLookup, PaymentWrite
from paycore.testing.records import make_payment, next_version, rich_payment
from paycore_sqlalchemy import SqlPaymentRepository
from paycore_sqlalchemy.payment_updates import ALL_COLUMNS, COLUMNS_OF_FIELD, changed_columns, changed_refund_columns
from paycore_sqlalchemy.schema import payments

pytestmark = pytest.mark.anyio

CHANGING = sorted(name for name in COLUMNS_OF_FIELD if name != "version")
"""Every field an update may change (the version changes on every one)."""


def test_every_column_but_the_key_is_the_column_of_one_field() -> None:
    written = [column for columns in COLUMNS_OF_FIELD.values() for column in columns]
    assert sorted(written) == sorted(ALL_COLUMNS)
    assert set(ALL_COLUMNS) == {column.name for column in payments.c} - {"id"}


def test_the_changed_columns_are_those_of_the_fields_that_differ() -> None:
    stored = make_payment(amount=Money.of("12.500", "KWD"))
    paid = next_version(stored, captured_amount=stored.amount, event_count=stored.event_count + 1)
    assert changed_columns(stored, paid) == ("captured_amount", "captured_currency", "version", "event_count")
    equal_copy = evolve(paid, metadata=dict(paid.metadata), references=tuple(paid.references))
    assert changed_columns(paid, equal_copy) == ()


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[SqlPaymentRepository]:
    repository = SqlPaymentRepository(database_url)
    yield repository
    await repository.aclose()


@pytest.fixture
def statements(repository: SqlPaymentRepository) -> Iterator[list[str]]:
    seen: list[str] = []

    def listen(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(repository.database.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sa.event.remove(repository.database.engine, "before_cursor_execute", listen)


async def _update_over(repository: SqlPaymentRepository, stored: Payment, new: Payment) -> None:
    await repository.update(PaymentLookup.by_id(stored.id), lambda found: PaymentWrite(new), known=stored)


@pytest.mark.parametrize("field", CHANGING)
async def test_any_one_field_changed_over_the_known_copy_is_stored(
    repository: SqlPaymentRepository, field: str
) -> None:
    stored = make_payment(amount=Money.of("10.000", "KWD"))
    target = rich_payment(refunds=(), id=stored.id)
    await repository.add(stored, [])
    new = next_version(stored, **{field: getattr(target, field)})
    await _update_over(repository, stored, new)
    assert await repository.get(stored.id) == new


async def test_a_transition_sets_only_what_it_changed_and_keeps_the_rest(
    repository: SqlPaymentRepository, statements: list[str]
) -> None:
    stored = rich_payment(refunds=())
    await repository.add(stored, [])
    new = next_version(stored, description="Yassa — table 2", event_count=stored.event_count + 1)
    statements.clear()
    await _update_over(repository, stored, new)
    (update,) = [s for s in statements if s.startswith("UPDATE paycore_payments")]
    assigned = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert sorted(part.split("=")[0].strip() for part in assigned.split(", ")) == [
        "description",
        "event_count",
        "version",
    ]
    # the version pins the row to the known copy: nothing else (references, say) is compared
    assert update.split(" WHERE ", 1)[1].count("=") == 2
    assert await repository.get(stored.id) == new


async def test_a_reference_added_over_the_known_copy_finds_the_payment(repository: SqlPaymentRepository) -> None:
    stored = make_payment(provider="wave")
    await repository.add(stored, [])
    new = next_version(stored, external_id="cos-1", references=("TRX-9",))
    await _update_over(repository, stored, new)
    for reference in ("cos-1", "TRX-9"):
        assert await repository.get_by_external_id("wave", None, reference) == new


def test_a_refunds_changed_columns_are_those_of_the_fields_that_differ() -> None:
    (settled, pending) = rich_payment().refunds
    confirmed = evolve(pending, status=RefundStatus.SUCCEEDED, external_id="ext-r2", updated_at=settled.updated_at)
    assert changed_refund_columns(pending, confirmed) == ("status", "external_id", "updated_at")
    assert changed_refund_columns(confirmed, evolve(confirmed, metadata={})) == ()


async def test_a_refund_changed_in_place_sets_only_what_changed(
    repository: SqlPaymentRepository, statements: list[str]
) -> None:
    stored = rich_payment()
    await repository.add(stored, [])
    pending = stored.refunds[1]
    confirmed = evolve(pending, status=RefundStatus.SUCCEEDED, external_id="ext-r2")
    new = next_version(stored, refunds=(stored.refunds[0], confirmed), event_count=stored.event_count + 1)
    statements.clear()
    await _update_over(repository, stored, new)
    (update,) = [s for s in statements if s.startswith("UPDATE paycore_refunds")]
    assigned = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert sorted(part.split("=")[0].strip() for part in assigned.split(", ")) == ["external_id", "status"]
    assert not [s for s in statements if s.startswith(("DELETE", "INSERT INTO paycore_refunds"))]
    assert await repository.get(stored.id) == new


async def test_a_write_over_a_stale_copy_changes_nothing(repository: SqlPaymentRepository) -> None:
    stored = make_payment()
    await repository.add(stored, [])
    won = next_version(stored, description="first")
    await _update_over(repository, stored, won)
    with pytest.raises(ConcurrentUpdate):
        await _update_over(repository, stored, next_version(stored, order_id="second"))
    assert await repository.get(stored.id) == won


async def test_a_write_that_does_not_follow_the_known_copy_stores_every_column(
    repository: SqlPaymentRepository,
) -> None:
    first = make_payment(description="as created")
    await repository.add(first, [])
    second = next_version(first, description="changed once")
    await _update_over(repository, first, second)
    # decided on the first copy, written over the second: only a full write stores what it says
    third = evolve(first, version=second.version + 1, order_id="order-9")
    await _update_over(repository, first, third)
    assert await repository.get(first.id) == third
