"""Cash-drawer sessions and movements live in the SQL database beside the payments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.plugins import create_plugin_manager
from paycore_cash.backends import drawer_storage
from paycore_cash.backends.sql import SqlDrawerStorage
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import DrawerNotFound, InvalidCashRequest
from paycore_cash.records import MovementKind
from paycore_cash.sales import refund_cash, take_cash
from paycore_cash.storage import DrawerStorage
from paycore_cash.testing import DrawerStorageConformance, pay_out_concurrently
from paycore_sqlalchemy import Database, SchemaOutOfDate, SqlPaymentRepository
from paycore_sqlalchemy.schemas import ADAPTER_SCHEMA


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


class TestSqlDrawerStorage(DrawerStorageConformance):
    @pytest.fixture
    async def drawer_storage(self, database_url: str) -> AsyncIterator[SqlDrawerStorage]:
        repository = SqlPaymentRepository(database_url)
        yield SqlDrawerStorage(repository.database)
        await repository.aclose()


@pytest.mark.anyio
async def test_the_cash_plugin_keeps_drawers_in_the_database_of_a_sql_repository(sqlite_url: str) -> None:
    repository = SqlPaymentRepository(sqlite_url)
    try:
        storage = drawer_storage(create_plugin_manager(), repository)
        assert isinstance(storage, DrawerStorage)
        assert isinstance(storage, SqlDrawerStorage)
        assert storage.database is repository.database
    finally:
        await repository.aclose()


@pytest.mark.anyio
async def test_drawers_opened_through_a_flow_outlive_it(sqlite_url: str) -> None:
    config = {"repository": sqlite_url, "providers": {"cash": {"type": "cash", "currency": "XOF"}}}

    async with PaymentFlow.from_config(config) as flow:
        opened = await CashDrawers(flow).open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    async with PaymentFlow.from_config(config) as flow:
        assert await CashDrawers(flow).current("T1") == opened


@pytest.mark.anyio
async def test_a_sqlite_database_made_without_the_cash_schema_gets_it_on_first_drawer_use(sqlite_url: str) -> None:
    database = Database(sqlite_url, schemas=[ADAPTER_SCHEMA])
    repository = SqlPaymentRepository(database, owns_database=True)
    try:
        assert await repository.list_payments() == []  # the adapter's tables only, so far
        storage = SqlDrawerStorage(database)
        assert await storage.list_sessions(None) == []
    finally:
        await repository.aclose()


@pytest.mark.anyio
@pytest.mark.postgres
async def test_a_postgres_database_without_the_cash_tables_is_refused_with_the_command_to_run(
    fresh_postgres_database: Callable[..., str],
) -> None:
    from paycore_sqlalchemy import migrate

    url = fresh_postgres_database(migrated=False)
    migrate.upgrade(url, schemas=[ADAPTER_SCHEMA])
    repository = SqlPaymentRepository(Database(url, schemas=[ADAPTER_SCHEMA]), owns_database=True)
    try:
        assert await repository.list_payments() == []
        storage = SqlDrawerStorage(repository.database)
        with pytest.raises(SchemaOutOfDate, match=r"cash.*paycore db upgrade"):
            await storage.list_sessions(None)
    finally:
        await repository.aclose()


@pytest.mark.anyio
async def test_twenty_pay_outs_racing_for_a_drawer_that_holds_five_store_exactly_five(database_url: str) -> None:
    config = {"repository": database_url, "providers": {"cash": {"type": "cash", "currency": "XOF"}}}
    async with PaymentFlow.from_config(config) as flow:
        drawers = CashDrawers(flow)
        session = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
        outcomes = await pay_out_concurrently(drawers, till="T1", amount=xof(1_000), times=20)
        assert outcomes == ["paid"] * 5 + ["refused"] * 15
        assert len(await drawers.movements(session.id)) == 5
        assert (await drawers.totals(session.id)).expected == xof(0)


@pytest.mark.anyio
async def test_a_refund_naming_another_till_is_paid_there_with_payments_in_sql(database_url: str) -> None:
    config = {"repository": database_url, "providers": {"cash": {"type": "cash", "currency": "XOF"}}}
    async with PaymentFlow.from_config(config) as flow:
        drawers = CashDrawers(flow)
        await drawers.open(till="T1", opening_float=xof(1_000), opened_by="Awa")
        sale = await take_cash(flow, amount=xof(3_000), tendered=xof(3_000), till="T1", order_id="o", cashier="Awa")
        await drawers.close(till="T1", counted=xof(4_000), closed_by="Awa")
        t2 = await drawers.open(till="T2", opening_float=xof(5_000), opened_by="Moussa")
        refund = await refund_cash(flow, sale.payment.id, amount=xof(2_000), till="T2", cashier="Moussa")
        [paid] = await drawers.movements(t2.id)
        assert (paid.kind, paid.refund_id, paid.actor) == (MovementKind.REFUND, refund.id, "Moussa")
        assert (await flow.get_payment(sale.payment.id)).refund(refund.id).metadata == {
            "till": "T2",
            "cashier": "Moussa",
        }


@pytest.mark.anyio
async def test_what_the_database_cannot_store_is_refused_before_anything_is_written(database_url: str) -> None:
    """Found by test_drawer_fuzz.py: these raised OverflowError, UnicodeEncodeError or a DataError from the
    database, and a drawer holding more than a BIGINT could never be closed."""
    config = {"repository": database_url, "providers": {"cash": {"type": "cash", "currency": "XOF"}}}
    biggest = Money.minor(MAX_MINOR_UNITS, "XOF")
    async with PaymentFlow.from_config(config) as flow:
        drawers = CashDrawers(flow)
        with pytest.raises(InvalidCashRequest):
            await drawers.open(till="T1", opening_float=biggest + xof(1), opened_by="Awa")
        with pytest.raises(InvalidCashRequest):
            await drawers.open(till="T" * 65, opening_float=xof(0), opened_by="Awa")
        session = await drawers.open(till="T1", opening_float=biggest, opened_by="Awa")
        sale = await take_cash(flow, amount=xof(5), tendered=xof(5), till="T1", order_id="o", cashier="Awa")
        with pytest.raises(InvalidCashRequest, match="pay out at least 5 XOF"):
            await drawers.close(till="T1", counted=xof(0), closed_by="Awa")
        with pytest.raises(ValidationError):  # InvalidCashRequest, if the core has not refused the metadata first
            await flow.create_payment(
                amount=xof(5), provider="cash", order_id="o2", metadata={"till": "T1", "cashier": "Awa\ud800"}
            )
        with pytest.raises(ValidationError):
            await flow.refund(sale.payment.id, amount=xof(1), metadata={"cashier": "Moussa\ud800"})
        for junk in (["drw"], "drw_\x00", "drw_\ud800"):
            with pytest.raises(DrawerNotFound):
                await drawers.get(junk)  # type: ignore[arg-type]
        await drawers.pay_out(till="T1", amount=xof(5), reason="drop to the safe", actor="Awa")
        closed = await drawers.close(till="T1", counted=biggest, closed_by="Awa")
        assert (closed.id, closed.expected, closed.variance) == (session.id, biggest, xof(0))
        assert [p.id for p in await flow.list_payments()] == [sale.payment.id]
        assert (await flow.get_payment(sale.payment.id)).refunds == ()
