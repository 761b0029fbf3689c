"""Revision 0003: listings by status read an index, and refunds keep their metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from paycore.money import Money
from paycore.records import Refund
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.records import BASE_TIME, make_payment, next_version
from paycore_sqlalchemy import SqlPaymentRepository, migrate
from paycore_sqlalchemy.codec import payment_row
from paycore_sqlalchemy.engine import acquire_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database that was never migrated."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return str(request.getfixturevalue("fresh_postgres_database")(migrated=False))


def _indexed_columns(url: str) -> list[list[str]]:
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            return [list(index["column_names"]) for index in sa.inspect(connection).get_indexes("paycore_payments")]
    finally:
        lease.release()


def test_listing_by_status_alone_or_within_a_tenant_has_an_index(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    indexed = _indexed_columns(empty_url)
    assert ["status", "created_at", "id"] in indexed
    assert ["tenant", "status", "created_at", "id"] in indexed


@pytest.mark.anyio
async def test_refunds_stored_before_their_metadata_read_back_with_none_after_upgrading(empty_url: str) -> None:
    migrate.upgrade(empty_url, "0002")
    paid = make_payment(status=PaymentStatus.SUCCEEDED, captured_amount=Money.of("5000", "XOF"))
    refund = Refund(id="re_old", payment_id=paid.id, amount=Money.of("1000", "XOF"), status=RefundStatus.SUCCEEDED,
                    created_at=BASE_TIME, updated_at=BASE_TIME)  # fmt: skip
    lease = acquire_engine(empty_url)
    try:
        with lease.engine.begin() as connection:
            rows = sa.Table("paycore_refunds", sa.MetaData(), autoload_with=connection)
            payments = sa.Table("paycore_payments", sa.MetaData(), autoload_with=connection)
            connection.execute(sa.insert(payments), [payment_row(paid)])
            connection.execute(sa.insert(rows), [{
                "id": "re_old", "payment_id": paid.id, "position": 0, "currency": "XOF", "amount": 1000,
                "status": "succeeded", "reason": "", "external_id": None,
                "created_at": BASE_TIME, "updated_at": BASE_TIME,
            }])  # fmt: skip
    finally:
        lease.release()
    migrate.upgrade(empty_url)
    repository = SqlPaymentRepository(empty_url)
    try:
        assert (await repository.get(paid.id)).refunds == (refund,)
        kept = Refund(id="re_new", payment_id=paid.id, amount=Money.of("500", "XOF"), metadata={"till": "T2"},
                      created_at=BASE_TIME, updated_at=BASE_TIME)  # fmt: skip
        await repository.save(next_version(paid, refunds=(refund, kept)), [])
        assert (await repository.get(paid.id)).refunds[1].metadata == {"till": "T2"}
    finally:
        await repository.aclose()
