"""A cash refund given up is never paid out afterwards, with drawers in the Django database.

The flow gives a refund up, through the payment's version, when its call's lease
ran out with nothing paid out; a till that was only asleep may then try to pay
it out, and a keyed retry written down later may send it again. The refund
claims table (``paycore_cash_refund_claim``, migration ``0003_refundclaim``)
holds one row per refund id: of a give-up and the payout it races, on a SQLite
file or on PostgreSQL under READ COMMITTED, exactly one takes effect. A
database migrated to ``0003_refundclaim`` has a claim for every refund its
drawers paid out before, so none of those can be given up.

Every test runs under asyncio and trio; ``using`` is the database alias (see
``paycore_cash_django_project``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
import pytest
from attrs import evolve
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from paycore_cash_django_project import POSTGRES_DATABASE
from psycopg import sql

from paycore.testing.postgres import PostgresServer
from paycore_cash.backends.django.models import RefundClaim
from paycore_cash.backends.django.storage import DjangoDrawerStorage
from paycore_cash.backends.rows import movement_values, session_values
from paycore_cash.errors import RefundGivenUp
from paycore_cash.records import CashMovement, DrawerSession, MovementKind
from paycore_django.storage import DjangoPaymentRepository, run_unit

from .conftest import migrate_django
from .refund_claims import OPEN, OPENED, OTHER_TILL, PAID_OUT, SALE, a_refund, a_session, storm, while_held

pytestmark = pytest.mark.anyio

APP: Final = "paycore_cash"
"""The app label of the drawers' Django app."""
BEFORE_CLAIMS: Final = "0002_drawersession_close_id"
"""The drawers' last migration without refund claims."""
CLAIMS: Final = "0003_refundclaim"
"""The migration that makes the refund claims table and claims the refunds paid out before it."""

GIVEN_UP_THROUGH: Final = 5
"""The payment version the tests give refunds up through; a call written down at it or before is refused."""
LATER: Final = 7
"""A payment version after :data:`GIVEN_UP_THROUGH`: a keyed retry's call, which pays the refund out."""


async def claims_of(using: str) -> list[tuple[str, str, str, int | None, datetime]]:
    """Every refund claim stored on ``using`` (refund id, payment id, outcome, through, time), by refund id."""
    claims = RefundClaim.objects.using(using).order_by("refund_id")
    rows = claims.values_list("refund_id", "payment_id", "outcome", "through", "at")
    return await run_unit(using, lambda: list(rows), atomic=False)


@pytest.fixture
def storage(using: str) -> DjangoDrawerStorage:
    """Drawer storage in the Django database ``using``."""
    return DjangoDrawerStorage(DjangoPaymentRepository(using))


# -- the migration -----------------------------------------------------------------------------


@pytest.fixture
def before_claims(using: str, django_db_blocker: Any) -> Iterator[str]:
    """``using`` with the drawers' migrations applied up to ``0002`` (no claims table); all of them afterwards."""
    with django_db_blocker.unblock():
        migrate_django(using, APP, BEFORE_CLAIMS)
        connections[using].close()
        try:
            yield using
        finally:
            migrate_django(using)
            connections[using].close()


UNNAMED = evolve(a_refund(OPEN, "ref_none", movement_id="mov_unnamed"), refund_id=None)
"""A refund movement without a refund id (``refund_id`` NULL): it has no claim."""


def store_drawers_before_claims(alias: str) -> None:
    """Store drawers with refunds paid out on ``alias``, through the models of ``0002`` (as that release did)."""
    state = MigrationExecutor(connections[alias]).loader.project_state((APP, BEFORE_CLAIMS))
    assert (APP, "refundclaim") not in state.models
    sessions = state.apps.get_model(APP, "DrawerSession").objects.using(alias)
    model = state.apps.get_model(APP, "CashMovement")
    movements = [SALE, *PAID_OUT, UNNAMED]
    positions = dict.fromkeys((OPEN.id, OTHER_TILL.id), 1)
    rows = []
    for movement in movements:
        positions[movement.session_id] += 1
        rows.append(model(**movement_values(movement, positions[movement.session_id])))
    sessions.bulk_create(
        [sessions.model(**{**session_values(s), "version": positions[s.id]}) for s in (OPEN, OTHER_TILL)]
    )
    model.objects.using(alias).bulk_create(rows)


async def test_migrating_to_0003_claims_every_refund_paid_out_before_so_none_is_given_up(before_claims: str) -> None:
    """Drawers stored by ``0002`` with refunds paid out: migrating claims each (and nothing else), so a give-up
    answers with its movement; a refund nothing paid out is given up as before."""
    using = before_claims
    await run_unit(using, lambda: store_drawers_before_claims(using))
    await run_unit(using, lambda: migrate_django(using, APP, CLAIMS), atomic=False)

    assert await claims_of(using) == [(m.refund_id, m.payment_id or "", "paid_out", None, m.at) for m in PAID_OUT]
    storage = DjangoDrawerStorage(DjangoPaymentRepository(using))
    version = (await storage.get_session(OPEN.id)).version
    for paid in PAID_OUT:
        assert await storage.give_up_refund(paid.refund_id or "", paid.payment_id or "pay_x", LATER) == paid
        again = a_refund(OPEN, paid.refund_id or "", movement_id=f"{paid.id}_again")
        assert await storage.add_movement(again, payment_version=1) == paid  # the stored payout, not a second one
    assert (await storage.get_session(OPEN.id)).version == version
    assert await storage.list_movements(OPEN.id) == [SALE, PAID_OUT[0], PAID_OUT[2], UNNAMED]

    # A refund nothing paid out can still be given up, and is refused afterwards.
    assert await storage.give_up_refund("ref_4", "pay_1", GIVEN_UP_THROUGH) is None
    with pytest.raises(RefundGivenUp, match=r"ref_4 was given up"):
        await storage.add_movement(a_refund(OPEN, "ref_4"), payment_version=GIVEN_UP_THROUGH)
    assert (await storage.get_session(OPEN.id)).version == version
    assert (await claims_of(using))[-1][:4] == ("ref_4", "pay_1", "given_up", GIVEN_UP_THROUGH)


# -- what the claims hold ------------------------------------------------------------------------


async def test_a_payout_claims_its_refund_and_a_give_up_claims_it_through_the_payment_version(
    storage: DjangoDrawerStorage, using: str
) -> None:
    """A payout writes its refund's ``paid_out`` claim; a give-up a ``given_up`` one, through the payment version
    it names, raised (never lowered) by a later give-up; a refund movement without a refund id has none."""
    session = a_session()
    await storage.open_session(session)
    paid = await storage.add_movement(a_refund(session, "ref_1", payment_id="pay_1"), payment_version=3)
    unnamed = await storage.add_movement(evolve(a_refund(session, "ref_none"), refund_id=None))
    before = datetime.now(UTC)
    assert await storage.give_up_refund("ref_2", "pay_2", GIVEN_UP_THROUGH) is None
    after = datetime.now(UTC)
    [claim_1, claim_2] = await claims_of(using)
    assert claim_1 == ("ref_1", "pay_1", "paid_out", None, paid.at)
    assert claim_2[:4] == ("ref_2", "pay_2", "given_up", GIVEN_UP_THROUGH)
    assert before <= claim_2[4] <= after
    assert await storage.give_up_refund("ref_1", "pay_1", LATER) == paid
    assert await storage.give_up_refund("ref_2", "pay_2", GIVEN_UP_THROUGH - 2) is None
    assert await claims_of(using) == [claim_1, claim_2]  # asked again (through an older version), nothing changes
    assert await storage.give_up_refund("ref_2", "pay_2", LATER) is None
    assert (await claims_of(using))[1] == (*claim_2[:3], LATER, claim_2[4])  # the highest version is kept
    assert await storage.list_movements(session.id) == [paid, unnamed]


async def test_a_refund_given_up_is_refused_to_every_call_written_down_through_that_version(
    storage: DjangoDrawerStorage,
) -> None:
    """Given up through version 5, a payout sent by a call written down at 5 or before, or at no known version, is
    refused in any session, at any session version, under any movement id; the drawers do not move."""
    first, second = a_session("drw_1", "T1"), a_session("drw_2", "T2")
    await storage.open_session(first)
    await storage.open_session(second)
    assert await storage.give_up_refund("ref_1", "pay_1", GIVEN_UP_THROUGH) is None
    for session in (first, second):
        for version, sent_at in ((None, None), (1, GIVEN_UP_THROUGH), (7, 1)):
            late = a_refund(session, "ref_1", movement_id=f"mov_{session.id}_{version}")
            with pytest.raises(RefundGivenUp, match=r"refund ref_1 was given up.*new idempotency key"):
                await storage.add_movement(late, expected_version=version, payment_version=sent_at)
        assert (await storage.get_session(session.id)).version == 1
        assert await storage.list_movements(session.id) == []
    assert await storage.find_movement(kind=MovementKind.REFUND, refund_id="ref_1") is None
    paid = await storage.add_movement(a_refund(first, "ref_2"), payment_version=1)  # another refund: not affected
    assert await storage.give_up_refund("ref_2", "pay_1", GIVEN_UP_THROUGH) == paid


async def test_a_refund_given_up_is_paid_out_by_a_call_written_down_later_and_claimed_as_paid_out(
    storage: DjangoDrawerStorage, using: str
) -> None:
    """A keyed retry, its call written down after the give-up's version, pays the refund out once and turns its
    claim into ``paid_out``; the call given up, waking after, and a later give-up find that movement."""
    session = a_session()
    await storage.open_session(session)
    await storage.give_up_refund("ref_1", "pay_1", GIVEN_UP_THROUGH)
    again = a_refund(session, "ref_1", movement_id="mov_again")
    assert await storage.add_movement(again, payment_version=LATER) == again
    assert await claims_of(using) == [("ref_1", "pay_1", "paid_out", None, again.at)]
    woke = a_refund(session, "ref_1", movement_id="mov_woke")  # the call given up, waking after
    assert await storage.add_movement(woke, payment_version=GIVEN_UP_THROUGH) == again
    assert await storage.give_up_refund("ref_1", "pay_1", LATER + 2) == again
    assert await storage.list_movements(session.id) == [again]
    assert (await storage.get_session(session.id)).version == 2


# -- give-ups and payouts racing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "given_up_before",
    [False, True],
    ids=["first-call", "keyed-retry-of-a-refund-given-up-before"],
)
async def test_of_give_ups_and_payouts_racing_each_refund_has_exactly_one_effect(
    storage: DjangoDrawerStorage, using: str, given_up_before: bool
) -> None:
    """A storm of pairs (a give-up and a payout of one refund, each pair its own refund id), started together:
    each refund is paid out (and its give-up answers with the movement) or given up (and its payout refused,
    nothing stored), never both, never neither; its claim says which. A refund given up before (through
    version 5) races a payout written down later (7) and a give-up through a later version still (9)."""
    earlier = GIVEN_UP_THROUGH if given_up_before else None
    through, sent_at = (LATER + 2, LATER) if given_up_before else (GIVEN_UP_THROUGH, GIVEN_UP_THROUGH)
    outcomes = await storm(storage, earlier=earlier, through=through, sent_at=sent_at)
    assert {claim[0]: (claim[2], claim[3]) for claim in await claims_of(using)} == outcomes


# -- the window between a read and a write, held open on PostgreSQL ------------------------------


@pytest.fixture
def held(postgres_using: str, postgres_server: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the Django PostgreSQL database whose transaction the test holds open, as a concurrent
    writer's."""
    with psycopg.connect(postgres_server.dsn(POSTGRES_DATABASE)) as connection:
        yield connection


def _claim(held: psycopg.Connection[Any], outcome: str, through: int | None, at: datetime) -> None:
    """Write the claim of ``ref_1`` (for ``pay_1``) in the held transaction, or update the one stored."""
    held.execute(
        "INSERT INTO paycore_cash_refund_claim (refund_id, payment_id, outcome, through, at) "
        "VALUES ('ref_1', 'pay_1', %s, %s, %s) "
        "ON CONFLICT (refund_id) DO UPDATE SET outcome = excluded.outcome, through = excluded.through",
        (outcome, through, at),
    )


def _pay_out_held(held: psycopg.Connection[Any], session: DrawerSession, refund: CashMovement) -> None:
    """Pay ``refund`` out in the held transaction, as ``add_movement`` does: version, movement, claim."""
    values = movement_values(refund, session.version + 1)
    insert = sql.SQL("INSERT INTO paycore_cash_movement ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)), sql.SQL(", ").join(sql.Placeholder() * len(values))
    )
    held.execute("UPDATE paycore_cash_drawer_session SET version = version + 1 WHERE id = %s", (session.id,))
    held.execute(insert, list(values.values()))
    _claim(held, "paid_out", None, refund.at)


@pytest.mark.postgres
@pytest.mark.parametrize("given_up_before", [False, True], ids=["first-call", "keyed-retry"])
async def test_a_payout_racing_a_give_up_that_commits_first_is_refused_and_stores_nothing(
    postgres_using: str, held: psycopg.Connection[Any], postgres_server: PostgresServer, given_up_before: bool
) -> None:
    """The payout read the claim (none; or given up through an older version than its call's), bumped its
    drawer's version and wrote its movement; its claim waits for the give-up's. Once that commits, the payout
    is refused, its version and movement rolled back."""
    storage = DjangoDrawerStorage(DjangoPaymentRepository(postgres_using))
    session = a_session()
    await storage.open_session(session)
    if given_up_before:
        await storage.give_up_refund("ref_1", "pay_1", GIVEN_UP_THROUGH)
    outcome: list[CashMovement | RefundGivenUp] = []

    async def pay_out() -> None:
        try:
            outcome.append(await storage.add_movement(a_refund(session, "ref_1"), payment_version=LATER))
        except RefundGivenUp as refused:
            outcome.append(refused)

    _claim(held, "given_up", LATER + 2, OPENED)
    await while_held(held.commit, postgres_server.dsn(POSTGRES_DATABASE), pay_out)
    [refused] = outcome
    assert isinstance(refused, RefundGivenUp)
    assert await storage.list_movements(session.id) == []
    assert (await storage.get_session(session.id)).version == 1
    assert await storage.give_up_refund("ref_1", "pay_1", LATER) is None


@pytest.mark.postgres
@pytest.mark.parametrize("given_up_before", [False, True], ids=["first-call", "keyed-retry"])
async def test_a_give_up_racing_a_payout_that_commits_first_returns_its_movement(
    postgres_using: str, held: psycopg.Connection[Any], postgres_server: PostgresServer, given_up_before: bool
) -> None:
    """The give-up read no movement, and the claim (none; or given up through an older version than its
    own); its claim waits for the payout's. Once that commits, the give-up returns the movement paid out."""
    storage = DjangoDrawerStorage(DjangoPaymentRepository(postgres_using))
    session = a_session()
    await storage.open_session(session)
    if given_up_before:
        await storage.give_up_refund("ref_1", "pay_1", GIVEN_UP_THROUGH)
    refund = a_refund(session, "ref_1")
    outcome: list[CashMovement | None] = []

    async def give_up() -> None:
        outcome.append(await storage.give_up_refund("ref_1", "pay_1", LATER + 2))

    _pay_out_held(held, session, refund)
    await while_held(held.commit, postgres_server.dsn(POSTGRES_DATABASE), give_up)
    assert outcome == [refund]
    assert await storage.add_movement(refund, payment_version=GIVEN_UP_THROUGH) == refund
    assert await storage.list_movements(session.id) == [refund]
    assert (await storage.get_session(session.id)).version == 2
