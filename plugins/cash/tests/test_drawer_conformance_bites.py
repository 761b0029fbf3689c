"""The drawer storage conformance suite fails a broken storage: broken copies of the memory storage, each with one
bug that puts money in the wrong drawer or reads it back wrong, fail the suite's test of that bug (run apart, by
pytester), and the memory storage passes it."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

_STORAGES = '''
import anyio.lowlevel
import pytest
from attrs import evolve

from paycore.money import Money
from paycore_cash.backends.memory import MemoryDrawerStorage
from paycore_cash.errors import DrawerClosed
from paycore_cash.records import DrawerStatus
from paycore_cash.testing import DrawerStorageConformance


class ChecksThenWrites(MemoryDrawerStorage):
    """Checks that the session is open, then writes the movement a moment later without checking again."""

    async def add_movement(self, movement, *, expected_version=None, payment_version=None):
        with self._lock:
            stored = self._duplicate_of(movement)
        if stored is not None:
            return stored
        if (await self.get_session(movement.session_id)).status is not DrawerStatus.OPEN:
            raise DrawerClosed("the drawer is closed")
        await anyio.lowlevel.checkpoint()  # the write, a statement later
        with self._lock:
            session = self._sessions[movement.session_id]
            self._movements[movement.id] = movement
            self._sessions[session.id] = evolve(session, version=session.version + 1)
            self._by_session[session.id].append(movement.id)
            if movement.payment_id is not None:
                self._sales[movement.payment_id] = movement.id
        return movement


class FoldsNameCase(MemoryDrawerStorage):
    """Finds a till's open session without regard to case (a case-insensitive collation)."""

    async def get_open_session(self, tenant, till):
        for (named, name), session_id in list(self._open.items()):
            if (named or "").lower() == (tenant or "").lower() and name.lower() == till.lower():
                return self._sessions[session_id]
        return None


class KeepsAmountsAsFloats(MemoryDrawerStorage):
    """Keeps the opening float as a float of minor units (a double precision column)."""

    async def open_session(self, session):
        blurred = Money.minor(int(float(session.opening_float.minor_units)), session.currency)
        await super().open_session(evolve(session, opening_float=blurred))


class ListsOnePage(MemoryDrawerStorage):
    """Lists the first 25 movements of a session and the first 10 sessions (a next page never fetched)."""

    async def list_movements(self, session_id):
        return (await super().list_movements(session_id))[:25]

    async def list_sessions(self, tenant, till=None):
        return (await super().list_sessions(tenant, till))[:10]


class ListsATillOfEveryTenant(MemoryDrawerStorage):
    """Lists a till's sessions by the till's name alone."""

    async def list_sessions(self, tenant, till=None):
        if till is None:
            return await super().list_sessions(tenant, till)
        found = []
        for name in ("chez-awa", "chez-binta", None):
            found += await super().list_sessions(name, till)
        return found


class LooksThenGivesUp(MemoryDrawerStorage):
    """Gives a refund up a statement after it looked for its movement, without looking again."""

    async def give_up_refund(self, refund_id, payment_id, through):
        with self._lock:
            movement_id = self._refunds.get(refund_id)
        if movement_id is not None:
            return self._movements[movement_id]
        await anyio.lowlevel.checkpoint()  # the record of the give-up, a statement later
        with self._lock:
            self._given_up[refund_id] = max(through, self._given_up.get(refund_id, through))
        return None


class TestGenuine(DrawerStorageConformance):
    storage_type = MemoryDrawerStorage

    @pytest.fixture
    async def drawer_storage(self):
        return self.storage_type()


class TestChecksThenWrites(TestGenuine):
    storage_type = ChecksThenWrites


class TestFoldsNameCase(TestGenuine):
    storage_type = FoldsNameCase


class TestKeepsAmountsAsFloats(TestGenuine):
    storage_type = KeepsAmountsAsFloats


class TestListsOnePage(TestGenuine):
    storage_type = ListsOnePage


class TestListsATillOfEveryTenant(TestGenuine):
    storage_type = ListsATillOfEveryTenant


class TestLooksThenGivesUp(TestGenuine):
    storage_type = LooksThenGivesUp
'''


@pytest.mark.parametrize(
    ("broken", "test"),
    [
        ("TestChecksThenWrites", "test_a_movement_racing_a_close_is_refused_or_counted_in_it"),
        ("TestFoldsNameCase", "test_tenants_and_tills_are_kept_exactly"),
        ("TestKeepsAmountsAsFloats", "test_amounts_up_to_the_largest_paycore_takes_are_exact"),
        ("TestListsOnePage", "test_every_movement_and_every_session_is_listed_however_many"),
        ("TestListsATillOfEveryTenant", "test_listing_a_till_keeps_to_its_tenant"),
        ("TestLooksThenGivesUp", "test_of_a_give_up_and_a_pay_out_racing_exactly_one_takes_effect"),
    ],
)
def test_the_drawer_suite_fails_a_storage_that_loses_or_misplaces_money(
    pytester: pytest.Pytester, broken: str, test: str
) -> None:
    pytester.makepyfile(test_storages=_STORAGES)
    recorder = pytester.inline_run(
        "-p", "no:cacheprovider", "-p", "no:django", "-k", f"{test} and ({broken} or TestGenuine)"
    )
    outcomes: dict[str, dict[str, str]] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        if report.when == "call" or report.outcome != "passed":
            _, klass, case = report.nodeid.split("::")
            outcomes.setdefault(klass, {})[case] = report.outcome
    assert set(outcomes["TestGenuine"].values()) == {"passed"}
    assert "failed" in set(outcomes[broken].values()), f"{broken} passed every case of {test}"
