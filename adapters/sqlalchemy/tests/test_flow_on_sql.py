"""A flow configured by URL keeps its payments in SQL: across restarts, under asyncio and trio."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import event

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.errors import PaymentNotFound, StorageUnavailable
from paycore.money import Money
from paycore.status import Outcome, PaymentStatus
from paycore.testing.fake import FakeProvider
from paycore_sqlalchemy import SqlIdempotencyStore, SqlPaymentRepository

pytestmark = pytest.mark.anyio

SECRET = "whsec_flow"


def _config(url: str) -> dict[str, object]:
    return {"repository": url, "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}}


async def test_a_payment_confirmed_by_webhook_survives_a_restart(database_url: str) -> None:
    async with PaymentFlow.from_config(_config(database_url), plugins=[paycore.testing.fake]) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        assert isinstance(flow.idempotency_store, SqlIdempotencyStore)
        provider = flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        provider.script("initiate", "pending")
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T12-0042", idempotency_key="k1"
        )
        body, headers = provider.webhook(checkout.payment.id, outcome=Outcome.SUCCEEDED)
        await flow.handle_webhook("fake", body, headers)
        refund = await flow.refund(checkout.payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r1")

    async with PaymentFlow.from_config(_config(database_url), plugins=[paycore.testing.fake]) as flow:
        payment = await flow.get_payment(checkout.payment.id)
        assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
        assert payment.refunds[0].id == refund.id
        replayed = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T12-0042", idempotency_key="k1"
        )
        assert replayed.payment.id == checkout.payment.id
        provider = flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        assert provider.calls == []


async def test_the_repository_and_the_store_of_a_flow_share_one_engine(sqlite_url: str) -> None:
    async with PaymentFlow.from_config(_config(sqlite_url), plugins=[paycore.testing.fake]) as flow:
        assert isinstance(flow.repository, SqlPaymentRepository)
        assert isinstance(flow.idempotency_store, SqlIdempotencyStore)
        assert flow.repository.database.engine is flow.idempotency_store.database.engine


async def test_an_unreachable_database_is_storage_unavailable_without_its_password(tmp_path: Path) -> None:
    repository = SqlPaymentRepository("postgresql+psycopg://paycore:hunter2-secret@127.0.0.1:1/paycore")
    try:
        assert "hunter2-secret" not in repr(repository)
        with pytest.raises(StorageUnavailable) as raised:
            await repository.get("pay_1")
        assert "hunter2-secret" not in str(raised.value)
    finally:
        await repository.aclose()


async def test_a_file_that_is_not_a_database_is_storage_unavailable_saying_so(tmp_path: Path) -> None:
    # It was SQLAlchemy's own DatabaseError (a traceback at the command line), not a PaycoreError.
    junk = tmp_path / "pos.db"
    junk.write_bytes(b"a till's receipt printer log, not a database" * 4)
    repository = SqlPaymentRepository(f"sqlite:///{junk}")
    try:
        with pytest.raises(StorageUnavailable, match=r"pos\.db failed: file is not a database"):
            await repository.get("pay_1")
    finally:
        await repository.aclose()
    assert junk.read_bytes().startswith(b"a till's receipt printer log")


async def test_a_driver_error_without_a_message_is_storage_unavailable_naming_its_class(tmp_path: Path) -> None:
    # An empty message (a driver error built without one) raised IndexError out of every repository call.
    repository = SqlPaymentRepository(f"sqlite:///{tmp_path / 'pos.db'}")
    try:
        await repository.get_many([])
        repository.database.engine.dispose()

        @event.listens_for(repository.database.engine, "do_connect")
        def refuse(*arguments: object) -> None:
            raise sqlite3.OperationalError()

        with pytest.raises(StorageUnavailable, match=r"pos\.db failed: OperationalError$"):
            await repository.get("pay_1")
    finally:
        await repository.aclose()


async def test_a_closed_repository_opens_no_connection_again(database_url: str) -> None:
    from paycore.errors import StorageError

    repository = SqlPaymentRepository(database_url)
    with pytest.raises(PaymentNotFound):
        await repository.get("pay_none")
    engine = repository.database.engine
    await repository.aclose()
    with pytest.raises(StorageError, match="was closed"):
        await repository.get("pay_none")
    assert engine.pool.checkedout() == 0
    assert engine.pool.checkedin() == 0, "no connection was taken from the disposed engine"


@pytest.mark.parametrize("how", ["removed", "replaced"])
async def test_a_sqlite_file_removed_or_replaced_under_an_open_flow_is_written_to_no_more(
    tmp_path: Path, how: str
) -> None:
    """In WAL mode SQLite goes on writing a file unlinked under it: every later payment was acknowledged, read
    back, and gone once the process ended (a new flow found an empty database, or never read a restored one).
    Nor may the flow open the file now at the path: it would read it through the old file's WAL, and corrupt it."""
    import os
    import shutil

    path, backup = tmp_path / "pos.db", tmp_path / "backup.db"
    xof = Money.of("5000", "XOF")
    async with PaymentFlow.from_config(_config(f"sqlite:///{backup}"), plugins=[paycore.testing.fake]) as flow:
        restored = (await flow.create_payment(amount=xof, provider="fake", order_id="restored")).payment
    async with PaymentFlow.from_config(_config(f"sqlite:///{path}"), plugins=[paycore.testing.fake]) as flow:
        await flow.create_payment(amount=xof, provider="fake", order_id="kept")
        if how == "removed":
            os.remove(path)  # a cleanup: its WAL stays, as the open connection keeps it
        else:
            shutil.copy(backup, tmp_path / "restoring.db")
            os.replace(tmp_path / "restoring.db", path)  # a backup restored under the open flow
            restored_bytes = path.read_bytes()
        refusals = []
        for order in ("lost", "lost again"):  # refused, never acknowledged
            with pytest.raises(StorageUnavailable, match="removed or replaced") as refused:
                await flow.create_payment(amount=xof, provider="fake", order_id=order)
            refusals.append(refused.value)
        assert refusals[0] is not refusals[1], "one error raised again keeps every refused call's traceback"
        with pytest.raises(StorageUnavailable, match="removed or replaced"):
            await flow.get_payment(restored.id)
    if how == "replaced":  # the restored file was neither read through the old WAL nor written
        assert path.read_bytes() == restored_bytes
    else:
        assert not path.exists(), "no empty database was made in its place"


@pytest.mark.postgres
async def test_a_read_only_postgresql_database_is_storage_unavailable_saying_so(postgres_url: str) -> None:
    """A hot standby after a failover (or default_transaction_read_only) raised SQLAlchemy's raw InternalError."""
    read_only = postgres_url + "?options=-c%20default_transaction_read_only%3Don"
    async with PaymentFlow.from_config(_config(read_only), plugins=[paycore.testing.fake]) as flow:
        with pytest.raises(StorageUnavailable, match="is read-only"):
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T1")
        assert await flow.list_payments() == []


async def test_a_pool_whose_connections_all_stay_busy_is_storage_unavailable_saying_so(tmp_path: Path) -> None:
    # It said "failed: TimeoutError", which reads as the server timing out.
    from paycore_sqlalchemy import Database

    database = Database(f"sqlite:///{tmp_path / 'busy.db'}", engine_options={"pool_timeout": 0.05})
    repository = SqlPaymentRepository(database)
    try:
        await repository.list_payments()
        held = [database.engine.connect() for _ in range(15)]  # the pool's five and its ten of overflow
        try:
            with pytest.raises(StorageUnavailable, match="every connection of paycore's pool stayed busy"):
                await repository.list_payments()
        finally:
            for connection in held:
                connection.close()
        assert await repository.list_payments() == []
    finally:
        await repository.aclose()
        database.close()
