"""A cash refund given up is never paid out afterwards, with drawers in a SQL database.

The flow gives a refund up, through the payment version its call was written
down at, when that call's lease ran out with nothing paid out; a till that was
only asleep may then try to pay it out under that call. The refund claims table
(revision ``cash_0003``) settles each refund id: of a give-up and the payout it
races, on SQLite or on PostgreSQL under READ COMMITTED, exactly one takes
effect. A database upgraded to that revision has a claim for every refund its
drawers paid out before, so none of those can be given up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from paycore.errors import StorageError
from paycore_cash.backends import sql as sql_backend
from paycore_cash.backends.rows import movement_values, session_values
from paycore_cash.backends.sql import SqlDrawerStorage
from paycore_cash.backends.sql_schema import cash_movements, drawer_sessions, refund_claims
from paycore_cash.errors import RefundGivenUp
from paycore_cash.records import CashMovement
from paycore_sqlalchemy import SqlPaymentRepository, migrate
from paycore_sqlalchemy.engine import acquire_engine

from .refund_claims import OPEN, OPENED, OTHER_TILL, PAID_OUT, SALE, a_refund, a_session, storm, while_held

pytestmark = pytest.mark.anyio

CALL = 5
"""The payment version a refund's call was written down at."""


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[SqlDrawerStorage]:
    """Drawer storage in a SQLite file, then in a fresh PostgreSQL database."""
    repository = SqlPaymentRepository(database_url)
    yield SqlDrawerStorage(repository.database)
    await repository.aclose()


# -- the migration -----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database (SQLite file or fresh PostgreSQL database), migrated by the test itself."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cash_0002.db'}"
    make: Callable[..., str] = request.getfixturevalue("fresh_postgres_database")
    return make(migrated=False)


def store_drawers_at_cash_0002(url: str) -> None:
    """Migrate the cash branch to ``cash_0002`` and store drawers with refunds paid out, as that revision did."""
    migrate.upgrade(url, "cash_0002")
    assert "cash_0002" in migrate.current(url)
    lease = acquire_engine(url)
    try:
        with lease.engine.begin() as connection:
            assert not sa.inspect(connection).has_table(refund_claims.name)
            movements = [SALE, *PAID_OUT]
            versions = {OPEN.id: 1 + sum(m.session_id == OPEN.id for m in movements)}
            versions[OTHER_TILL.id] = 1 + sum(m.session_id == OTHER_TILL.id for m in movements)
            for session in (OPEN, OTHER_TILL):
                connection.execute(
                    sa.insert(drawer_sessions), {**session_values(session), "version": versions[session.id]}
                )
            positions = dict.fromkeys(versions, 0)
            for movement in movements:
                positions[movement.session_id] += 1
                connection.execute(sa.insert(cash_movements), movement_values(movement, positions[movement.session_id]))
    finally:
        lease.release()


async def test_the_upgrade_claims_every_refund_paid_out_before_so_none_is_given_up(empty_url: str) -> None:
    store_drawers_at_cash_0002(empty_url)
    before, after = migrate.upgrade(empty_url)
    assert "cash_0002" in before
    assert after == migrate.head_revisions()
    assert "cash_0003" in after
    assert migrate.drift(empty_url) == []

    lease = acquire_engine(empty_url)
    try:
        with lease.engine.connect() as connection:
            claims = connection.execute(sa.select(refund_claims).order_by(refund_claims.c.refund_id)).all()
    finally:
        lease.release()
    assert [tuple(claim) for claim in claims] == [
        (m.refund_id, m.payment_id or "", "paid_out", None, m.at) for m in PAID_OUT
    ]

    repository = SqlPaymentRepository(empty_url)
    try:
        storage = SqlDrawerStorage(repository.database)
        version = (await storage.get_session(OPEN.id)).version
        for paid in PAID_OUT:
            assert await storage.give_up_refund(paid.refund_id or "", paid.payment_id or "pay_x", CALL) == paid
            again = a_refund(OPEN, paid.refund_id or "", movement_id=f"{paid.id}_again")
            assert await storage.add_movement(again, payment_version=CALL) == paid  # the payout stored, not another
        assert (await storage.get_session(OPEN.id)).version == version
        assert await storage.list_movements(OPEN.id) == [SALE, PAID_OUT[0], PAID_OUT[2]]

        # A refund nothing paid out can still be given up, and is refused afterwards.
        assert await storage.give_up_refund("ref_4", "pay_1", CALL) is None
        with pytest.raises(RefundGivenUp, match=r"ref_4.*given up"):
            await storage.add_movement(a_refund(OPEN, "ref_4"), payment_version=CALL)
        assert (await storage.get_session(OPEN.id)).version == version
    finally:
        await repository.aclose()


async def test_a_downgrade_to_cash_0002_drops_the_claims_and_an_upgrade_restores_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'down.db'}"
    store_drawers_at_cash_0002(url)
    migrate.upgrade(url)
    migrate.downgrade(url, "cash_0002")
    assert {diff[1].name for diff in migrate.drift(url) if diff[0] == "add_table"} == {refund_claims.name}
    migrate.upgrade(url)
    assert migrate.drift(url) == []
    repository = SqlPaymentRepository(url)
    try:
        assert await SqlDrawerStorage(repository.database).give_up_refund("ref_1", "pay_1", CALL) == PAID_OUT[0]
    finally:
        await repository.aclose()


# -- give-ups and payouts ----------------------------------------------------------------------


def _claim(url: str, refund_id: str) -> tuple[Any, ...] | None:
    """The claims row of ``refund_id`` as (payment_id, outcome, through), if any."""
    lease = acquire_engine(url)
    try:
        with lease.engine.connect() as connection:
            columns = (refund_claims.c.payment_id, refund_claims.c.outcome, refund_claims.c.through)
            row = connection.execute(sa.select(*columns).where(refund_claims.c.refund_id == refund_id)).first()
    finally:
        lease.release()
    return None if row is None else tuple(row)


async def test_a_refund_s_claim_keeps_the_highest_version_given_up_through_until_a_later_call_pays_it_out(
    storage: SqlDrawerStorage, database_url: str
) -> None:
    session = a_session()
    await storage.open_session(session)
    assert await storage.give_up_refund("ref_1", "pay_1", 5) is None
    assert _claim(database_url, "ref_1") == ("pay_1", "given_up", 5)
    assert await storage.give_up_refund("ref_1", "pay_1", 7) is None
    assert await storage.give_up_refund("ref_1", "pay_1", 6) is None
    assert _claim(database_url, "ref_1") == ("pay_1", "given_up", 7)
    for refused in (7, 2, None):
        with pytest.raises(RefundGivenUp):
            await storage.add_movement(a_refund(session, "ref_1"), payment_version=refused)
    assert (await storage.get_session(session.id)).version == 1

    paid = await storage.add_movement(a_refund(session, "ref_1"), payment_version=8)
    assert _claim(database_url, "ref_1") == ("pay_1", "paid_out", None)
    assert await storage.give_up_refund("ref_1", "pay_1", 9) == paid
    assert _claim(database_url, "ref_1") == ("pay_1", "paid_out", None)
    assert await storage.list_movements(session.id) == [paid]
    assert (await storage.get_session(session.id)).version == 2

    other = await storage.add_movement(a_refund(session, "ref_2", payment_id=None))  # names no payment
    assert _claim(database_url, "ref_2") == ("", "paid_out", None)
    assert await storage.give_up_refund("ref_2", "pay_2", CALL) == other


async def test_a_write_that_loses_every_round_to_concurrent_writers_is_refused_with_a_storage_error(
    storage: SqlDrawerStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every round of a payout or a give-up finds the refund's claim taken by another writer (the
    storage reads no claim, stands in for writers that keep winning), the caller gets a StorageError naming
    what did not happen, not the driver's IntegrityError, and nothing more is stored."""
    session = a_session()
    await storage.open_session(session)
    paid = await storage.add_movement(a_refund(session, "ref_1"), payment_version=CALL)
    assert await storage.give_up_refund("ref_2", "pay_1", CALL) is None
    monkeypatch.setattr(sql_backend, "_claim_of", lambda connection, refund_id: None)

    again = a_refund(session, "ref_2", movement_id="mov_again")
    with pytest.raises(StorageError, match=r"movement mov_again not stored .*refused in 3 attempts"):
        await storage.add_movement(again, payment_version=CALL + 1)
    with pytest.raises(StorageError, match=r"refund ref_2 not given up .*refused in 3 attempts") as raised:
        await storage.give_up_refund("ref_2", "pay_1", CALL + 2)
    assert raised.value.__cause__ is None
    assert await storage.list_movements(session.id) == [paid]
    assert (await storage.get_session(session.id)).version == 2


@pytest.mark.parametrize(
    ("earlier", "through"),
    [(None, CALL), (CALL - 2, CALL + 1)],
    ids=["never-given-up-before", "given-up-before-through-an-older-version"],
)
async def test_of_a_give_up_and_a_payout_racing_exactly_one_takes_effect(
    storage: SqlDrawerStorage, earlier: int | None, through: int
) -> None:
    """Pairs of a give-up and a payout of one refund, started at once: each refund is paid out (and the
    give-up answers with its movement) or given up (and the payout refused, nothing stored), never both;
    the session's version counts its movements. Given up earlier through an older version, the refund's
    claim is updated rather than inserted by both."""
    await storm(storage, earlier=earlier, through=through, sent_at=CALL)


# -- the window between a read and a write, held open on PostgreSQL ------------------------------


@pytest.fixture
def postgres_url(fresh_postgres_database: Callable[..., str]) -> str:
    """A fresh PostgreSQL database at every schema's head."""
    return fresh_postgres_database()


@pytest.fixture
def held(postgres_url: str) -> Iterator[sa.Connection]:
    """A connection to the database whose transaction the test holds open, as a concurrent writer's."""
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _libpq(url: str) -> str:
    """The libpq connection string of the SQLAlchemy ``url`` of a PostgreSQL database."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.mark.postgres
@pytest.mark.parametrize("attempts", [1, 3], ids=["last-attempt", "retried"])
@pytest.mark.parametrize("earlier", [None, CALL - 2], ids=["claim-inserted", "claim-updated"])
async def test_a_payout_racing_a_give_up_that_commits_first_is_refused(
    postgres_url: str, held: sa.Connection, attempts: int, earlier: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payout read no claim (or one given up through an older version), and its write of the claim waits
    for the give-up's: once that commits, the payout is refused, even on its last attempt, and stores nothing."""
    monkeypatch.setattr(sql_backend, "_ATTEMPTS", attempts)
    repository = SqlPaymentRepository(postgres_url)
    try:
        storage = SqlDrawerStorage(repository.database)
        session = a_session()
        await storage.open_session(session)
        if earlier is not None:
            await storage.give_up_refund("ref_1", "pay_1", earlier)
        refund = a_refund(session, "ref_1")
        outcome: list[object] = []

        async def pay_out() -> None:
            try:
                outcome.append(await storage.add_movement(refund, payment_version=CALL))
            except RefundGivenUp as refused:
                outcome.append(refused)

        with held.begin():
            if earlier is None:
                claim = {"refund_id": "ref_1", "payment_id": "pay_1", "outcome": "given_up", "through": CALL}
                held.execute(sa.insert(refund_claims), {**claim, "at": OPENED})
            else:
                held.execute(sa.update(refund_claims).values(through=CALL))
            await while_held(held.commit, _libpq(postgres_url), pay_out)
        [refused] = outcome
        assert isinstance(refused, RefundGivenUp)
        assert await storage.list_movements(session.id) == []
        assert (await storage.get_session(session.id)).version == 1
        assert await storage.give_up_refund("ref_1", "pay_1", CALL) is None
    finally:
        await repository.aclose()


@pytest.mark.postgres
async def test_a_give_up_racing_a_payout_that_commits_first_returns_its_movement(
    postgres_url: str, held: sa.Connection
) -> None:
    """The give-up read no movement, and its claim waits for the payout's: once that commits, the give-up
    returns the movement paid out."""
    repository = SqlPaymentRepository(postgres_url)
    try:
        storage = SqlDrawerStorage(repository.database)
        session = a_session()
        await storage.open_session(session)
        refund = a_refund(session, "ref_1")
        outcome: list[CashMovement | None] = []

        async def give_up() -> None:
            outcome.append(await storage.give_up_refund("ref_1", "pay_1", CALL))

        with held.begin():
            held.execute(sa.update(drawer_sessions).values(version=drawer_sessions.c.version + 1))
            held.execute(sa.insert(cash_movements), movement_values(refund, 2))
            claim = {"refund_id": "ref_1", "payment_id": "pay_1", "outcome": "paid_out", "at": refund.at}
            held.execute(sa.insert(refund_claims), claim)
            await while_held(held.commit, _libpq(postgres_url), give_up)
        assert outcome == [refund]
        assert await storage.add_movement(refund, payment_version=CALL) == refund
        assert await storage.list_movements(session.id) == [refund]
    finally:
        await repository.aclose()
