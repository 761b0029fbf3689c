"""A database made while the SQL adapter owned the cash tables upgrades without losing a drawer row.

Such a database had the drawer tables created by the adapter's revision 0001
and was stamped at that revision. The cash plugin's first revision adopts the
tables: after ``paycore db upgrade`` (or a SQLite database's first use) every
session and movement reads back through the cash plugin, unchanged.
"""

from __future__ import annotations

import importlib.machinery
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore_cash.backends.sql_schema import cash_movements, drawer_sessions
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import DrawerAlreadyOpen
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_sqlalchemy import migrate
from paycore_sqlalchemy.codec import store_tenant
from paycore_sqlalchemy.engine import acquire_engine
from paycore_sqlalchemy.schemas import ADAPTER_SCHEMA

pytestmark = pytest.mark.anyio

AS_SHIPPED = Path(__file__).parent / "fixtures" / "adapter_0001_as_shipped_with_cash_tables.py.txt"
OPENED = datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=UTC)


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


def _revision_as_shipped() -> ModuleType:
    """The revision file, kept as text (not a module of the test suite), loaded as Alembic would."""
    loader = importlib.machinery.SourceFileLoader("adapter_0001_as_shipped", str(AS_SHIPPED))
    module = ModuleType(loader.name)
    loader.exec_module(module)
    return module


CLOSED = DrawerSession(
    id="drw_closed",
    tenant="chez-awa",
    till="T1",
    currency="XOF",
    opening_float=xof(10_000),
    opened_by="Awa",
    opened_at=OPENED,
    status=DrawerStatus.CLOSED,
    closed_by="Awa",
    closed_at=OPENED + timedelta(hours=9),
    counted=xof(12_500),
    expected=xof(13_000),
    variance=xof(-500),
    version=4,
)
OPEN = DrawerSession(
    id="drw_open",
    tenant=None,
    till="T2",
    currency="XOF",
    opening_float=xof(5_000),
    opened_by="Binta",
    opened_at=OPENED + timedelta(minutes=5),
    version=2,
)
MOVEMENTS = [
    CashMovement(
        id="mov_sale",
        session_id=CLOSED.id,
        kind=MovementKind.SALE,
        amount=xof(3_500),
        at=OPENED + timedelta(hours=1),
        actor="Awa",
        reason="order 12",
        payment_id="pay_12",
        tendered=xof(5_000),
        change=xof(1_500),
    ),
    CashMovement(
        id="mov_refund",
        session_id=CLOSED.id,
        kind=MovementKind.REFUND,
        amount=xof(500),
        at=OPENED + timedelta(hours=2),
        actor="Awa",
        reason="cold soup",
        payment_id="pay_12",
        refund_id="ref_1",
    ),
    CashMovement(
        id="mov_in",
        session_id=CLOSED.id,
        kind=MovementKind.PAY_IN,
        amount=xof(1_000),
        at=OPENED + timedelta(hours=3),
        actor="Awa",
        reason="coins",
    ),
    CashMovement(
        id="mov_out",
        session_id=OPEN.id,
        kind=MovementKind.PAY_OUT,
        amount=xof(2_000),
        at=OPENED + timedelta(hours=4),
        actor="Binta",
        reason="drop to safe",
    ),
]


def _units(money: Money | None) -> int | None:
    return None if money is None else money.minor_units


def _session_row(session: DrawerSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "tenant": store_tenant(session.tenant),
        "till": session.till,
        "currency": session.currency,
        "opening_float": session.opening_float.minor_units,
        "opened_by": session.opened_by,
        "opened_at": session.opened_at,
        "status": session.status.value,
        "closed_by": session.closed_by,
        "closed_at": session.closed_at,
        "counted": _units(session.counted),
        "expected": _units(session.expected),
        "variance": _units(session.variance),
        "version": session.version,
    }


def _movement_row(movement: CashMovement, position: int) -> dict[str, Any]:
    return {
        "id": movement.id,
        "session_id": movement.session_id,
        "position": position,
        "kind": movement.kind.value,
        "currency": movement.amount.currency,
        "amount": movement.amount.minor_units,
        "at": movement.at,
        "actor": movement.actor,
        "reason": movement.reason,
        "payment_id": movement.payment_id,
        "refund_id": movement.refund_id,
        "tendered": _units(movement.tendered),
        "change": _units(movement.change),
    }


def build_database_as_shipped(url: str) -> None:
    """Create the tables as the adapter's 0001 did, stamp that revision, and store drawers with rows."""
    lease = acquire_engine(url)
    try:
        with lease.engine.begin() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": migrate.VERSION_TABLE})
            with Operations.context(context):
                _revision_as_shipped().upgrade()
            command.stamp(migrate.alembic_config(connection, schemas=[ADAPTER_SCHEMA]), "0001")
            connection.execute(sa.insert(drawer_sessions), [_session_row(CLOSED), _session_row(OPEN)])
            positions = {CLOSED.id: 0, OPEN.id: 0}
            for movement in MOVEMENTS:
                positions[movement.session_id] += 1
                connection.execute(sa.insert(cash_movements), _movement_row(movement, positions[movement.session_id]))
    finally:
        lease.release()
    assert migrate.current(url) == ("0001",)


async def read_everything_back(url: str) -> None:
    cash = {"type": "cash", "currency": "XOF"}
    config = {"repository": url, "providers": {"cash": cash}, "tenants": {"chez-awa": {"providers": {"cash": cash}}}}
    async with PaymentFlow.from_config(config) as flow:
        awa, default = CashDrawers(flow, tenant="chez-awa"), CashDrawers(flow)
        assert await awa.sessions() == [CLOSED]
        assert await default.sessions() == [OPEN]
        assert await awa.movements(CLOSED.id) == MOVEMENTS[:3]
        assert await default.movements(OPEN.id) == MOVEMENTS[3:]
        # The adopted tables still enforce their rules, and take new rows.
        with pytest.raises(DrawerAlreadyOpen):
            await default.open(till="T2", opening_float=xof(1_000), opened_by="Binta")
        await default.pay_in(till="T2", amount=xof(700), reason="coins", actor="Binta")
        assert (await default.totals(OPEN.id)).expected == xof(5_000 - 2_000 + 700)
        # The refund paid out before the upgrade stays paid out: it cannot be given up.
        assert await awa.storage.give_up_refund("ref_1", "pay_12", 1) == MOVEMENTS[1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shipped_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (SQLite file or fresh PostgreSQL database) to build as the old release did."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shipped.db'}"
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make(migrated=False)


async def test_paycore_db_upgrade_keeps_every_drawer_row(shipped_url: str) -> None:
    build_database_as_shipped(shipped_url)
    before, after = migrate.upgrade(shipped_url)
    assert (before, after) == (("0001",), migrate.head_revisions())
    assert "cash_0003" in after  # the cash branch at its head
    assert migrate.drift(shipped_url) == []
    await read_everything_back(shipped_url)


async def test_a_sqlite_database_is_upgraded_on_first_use_keeping_every_drawer_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shipped.db'}"
    build_database_as_shipped(url)
    await read_everything_back(url)
    assert migrate.current(url) == migrate.head_revisions()


async def test_an_empty_database_gets_the_drawer_tables_from_the_cash_branch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    migrate.upgrade(url)
    assert migrate.drift(url) == []
    migrate.downgrade(url, "cash@base")
    assert migrate.current(url) == migrate.head_revisions(schemas=[])
    missing = {diff[1].name for diff in migrate.drift(url) if diff[0] == "add_table"}
    assert missing == {"paycore_cash_drawer_sessions", "paycore_cash_movements", "paycore_cash_refund_claims"}
    migrate.upgrade(url)
    assert migrate.drift(url) == []
