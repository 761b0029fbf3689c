"""``DrawerStorageConformance``: the rules every drawer storage must keep, as pytest tests.

Subclass it in the tests of a drawer storage implementation and override the ``drawer_storage`` fixture
with a fresh, empty storage::

    from paycore_cash.testing import DrawerStorageConformance

    class TestMyDrawerStorage(DrawerStorageConformance):
        @pytest.fixture
        async def drawer_storage(self, tmp_path):
            storage = ...
            yield storage

Every test runs under asyncio and trio. ``pip install 'paycore-cash[testing]'`` installs what the suite needs
(``paycore[test]``, and the memory adapter that holds the payments beside the drawers under test).
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import pytest
from attrs import evolve

from paycore.calls import HeldCalls
from paycore.clock import utcnow
from paycore.errors import ConcurrentUpdate, InvalidTransition, PaymentBusy, StorageError
from paycore.flow import PaymentFlow
from paycore.hookspecs import RepositoryRegistrar, hookimpl
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.records import Payment, Refund, RefundUpdate
from paycore.status import PaymentStatus, RefundStatus
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import (
    CashSaleFailed,
    DrawerAlreadyOpen,
    DrawerClosed,
    DrawerNotFound,
    InsufficientDrawerCash,
    RefundGivenUp,
    RefundIdTaken,
)
from paycore_cash.hookspecs import DrawerBackendRegistrar
from paycore_cash.records import (
    CashMovement,
    DrawerSession,
    DrawerStatus,
    MovementKind,
    new_movement_id,
    new_session_id,
)
from paycore_cash.sales import take_cash
from paycore_cash.storage import DrawerStorage
from paycore_cash.totals import drawer_totals

__all__ = [
    "DrawerStorageConformance",
    "RacedStorage",
    "another_process",
    "closed_record",
    "flow_on",
    "make_movement",
    "make_session",
    "pay_out_concurrently",
]

_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
_T = TypeVar("_T")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def make_session(
    *, tenant: str | None = "chez-awa", till: str = "T1", float_: str = "10000", currency: str = "XOF", **fields: Any
) -> DrawerSession:
    """An open session, ready to store."""
    values: dict[str, Any] = {
        "id": new_session_id(),
        "tenant": tenant,
        "till": till,
        "currency": currency,
        "opening_float": Money.of(float_, currency),
        "opened_by": "Awa",
        "opened_at": _START,
    }
    values.update(fields)
    return DrawerSession(**values)


def make_movement(
    session: DrawerSession, kind: MovementKind = MovementKind.PAY_IN, amount: str = "500", **fields: Any
) -> CashMovement:
    """A movement of ``amount`` into or out of ``session``."""
    values: dict[str, Any] = {
        "id": new_movement_id(),
        "session_id": session.id,
        "kind": kind,
        "amount": Money.of(amount, session.currency),
        "at": _START + timedelta(minutes=5),
        "actor": "Awa",
        "reason": "float top-up",
    }
    values.update(fields)
    return CashMovement(**values)


def closed_record(session: DrawerSession, counted: str = "10000") -> DrawerSession:
    """The closed record of ``session`` as stored now, counted at ``counted``."""
    count = Money.of(counted, session.currency)
    return evolve(
        session,
        status=DrawerStatus.CLOSED,
        closed_by="Awa",
        closed_at=_START + timedelta(hours=12),
        counted=count,
        expected=session.opening_float,
        variance=count - session.opening_float,
        version=session.version + 1,
    )


async def pay_out_concurrently(drawers: CashDrawers, *, till: str, amount: Money, times: int) -> list[str]:
    """Start ``times`` pay-outs of ``amount`` from ``till`` at once; each outcome, ``"paid"`` or ``"refused"``
    (:class:`~paycore_cash.errors.InsufficientDrawerCash`), sorted."""
    outcomes: list[str] = []

    async def pay_out(index: int) -> None:
        try:
            await drawers.pay_out(till=till, amount=amount, reason=f"supplier {index}", actor="Awa")
        except InsufficientDrawerCash:
            outcomes.append("refused")
        else:
            outcomes.append("paid")

    async with anyio.create_task_group() as group:
        for index in range(times):
            group.start_soon(pay_out, index)
    return sorted(outcomes)


_TENANT = "chez-awa"
_BACKEND = "drawer-storage-under-test"


class _StorageUnderTest:
    """A repository type of its own (payments in memory) whose cash drawers are kept in one given storage."""

    def __init__(self, storage: DrawerStorage) -> None:
        self.storage = storage

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        from paycore_memory import MemoryRepository

        class Repository(MemoryRepository):
            storage_backend = _BACKEND

        register(_BACKEND, lambda context: Repository())

    @hookimpl
    def paycore_cash_drawer_backends(self, register: DrawerBackendRegistrar) -> None:
        register(_BACKEND, lambda repository: self.storage)


@asynccontextmanager
async def flow_on(storage: DrawerStorage, *, clock: Callable[[], datetime] | None = None) -> AsyncIterator[PaymentFlow]:
    """A flow with the cash provider for tenant ``chez-awa``, its payments in memory (``paycore-memory``) and
    its cash drawers (the provider's and :class:`CashDrawers`') in ``storage``; on ``clock`` if given."""
    cash = {"type": "cash"}
    config = {"repository": _BACKEND, "idempotency": "memory", "tenants": {_TENANT: {"providers": {"cash": cash}}}}
    timed = utcnow if clock is None else clock
    async with PaymentFlow.from_config(config, plugins=[_StorageUnderTest(storage)], clock=timed) as flow:
        yield flow


def another_process(flow: PaymentFlow, *, clock: Callable[[], datetime]) -> PaymentFlow:
    """A flow on ``flow``'s payments, keys and drawers as another process would run it, reading ``clock``: it
    awaits none of ``flow``'s calls. Close ``flow``, not it (they share the repository and the key store)."""
    other = PaymentFlow(
        config=flow.config,
        plugin_manager=flow.plugin_manager,
        registry=flow.registry,
        repository=flow.repository,
        idempotency_store=flow.idempotency_store,
        clock=clock,
    )
    other.calls.held = HeldCalls()
    return other


_Hook = Callable[..., Awaitable[None]]
"""What happens around a storage call: given the call's arguments."""


class _Sleepers:
    """Tills that fall asleep inside a drawer write (a laptop closed), each until the test wakes it."""

    def __init__(self, *names: str) -> None:
        self.asleep = {name: anyio.Event() for name in names}
        """Set once the till ``name`` fell asleep."""
        self.wake = {name: anyio.Event() for name in names}
        """Set by the test to wake the till ``name``."""

    def sleeps(self, name: str) -> Callable[..., Awaitable[None]]:
        """A :class:`RacedStorage` hook: the till ``name`` falls asleep there until woken."""

        async def sleeping(*args: Any, **kwargs: Any) -> None:
            self.asleep[name].set()
            await self.wake[name].wait()

        return sleeping


class RacedStorage:
    """``storage``, where other callers act around the first call of chosen methods.

    ``before[name]`` runs just before the first call of the method ``name``,
    ``after[name]`` just after it (whether it stored or was refused); each is
    given that call's arguments. Every other call goes straight to ``storage``.
    """

    def __init__(
        self, storage: DrawerStorage, *, before: Mapping[str, _Hook] = _EMPTY, after: Mapping[str, _Hook] = _EMPTY
    ) -> None:
        self.storage = storage
        self.before = dict(before)
        self.after = dict(after)

    async def _call(self, name: str, call: Callable[..., Awaitable[_T]], *args: Any, **kwargs: Any) -> _T:
        before, after = self.before.pop(name, None), self.after.pop(name, None)
        if before is not None:
            await before(*args, **kwargs)
        try:
            return await call(*args, **kwargs)
        finally:
            if after is not None:
                await after(*args, **kwargs)

    async def open_session(self, session: DrawerSession) -> None:
        """As ``storage`` does."""
        await self._call("open_session", self.storage.open_session, session)

    async def get_session(self, session_id: str) -> DrawerSession:
        """As ``storage`` does."""
        return await self._call("get_session", self.storage.get_session, session_id)

    async def get_open_session(self, tenant: str | None, till: str) -> DrawerSession | None:
        """As ``storage`` does."""
        return await self._call("get_open_session", self.storage.get_open_session, tenant, till)

    async def list_sessions(self, tenant: str | None, till: str | None = None) -> list[DrawerSession]:
        """As ``storage`` does."""
        return await self._call("list_sessions", self.storage.list_sessions, tenant, till)

    async def add_movement(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        """As ``storage`` does."""
        return await self._call(
            "add_movement",
            self.storage.add_movement,
            movement,
            expected_version=expected_version,
            payment_version=payment_version,
        )

    async def find_movement(
        self, *, kind: MovementKind, payment_id: str | None = None, refund_id: str | None = None
    ) -> CashMovement | None:
        """As ``storage`` does."""
        return await self._call(
            "find_movement", self.storage.find_movement, kind=kind, payment_id=payment_id, refund_id=refund_id
        )

    async def give_up_refund(self, refund_id: str, payment_id: str, through: int) -> CashMovement | None:
        """As ``storage`` does."""
        return await self._call("give_up_refund", self.storage.give_up_refund, refund_id, payment_id, through)

    async def get_movements(self, movement_ids: Sequence[str]) -> list[CashMovement]:
        """As ``storage`` does."""
        return await self._call("get_movements", self.storage.get_movements, movement_ids)

    async def list_movements(self, session_id: str) -> list[CashMovement]:
        """As ``storage`` does."""
        return await self._call("list_movements", self.storage.list_movements, session_id)

    async def close_session(self, session: DrawerSession) -> None:
        """As ``storage`` does."""
        await self._call("close_session", self.storage.close_session, session)


class DrawerStorageConformance:
    """The drawer storage contract (:class:`paycore_cash.storage.DrawerStorage`), as tests."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    async def drawer_storage(self) -> DrawerStorage:
        """Override: yield a fresh, empty drawer storage."""
        raise NotImplementedError("override the drawer_storage fixture with a fresh, empty storage")

    async def test_the_storage_has_every_method_of_the_protocol(self, drawer_storage: DrawerStorage) -> None:
        assert isinstance(drawer_storage, DrawerStorage)

    # -- opening ------------------------------------------------------------------------------

    async def test_an_opened_session_reads_back_equal(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        assert await drawer_storage.get_session(session.id) == session
        assert await drawer_storage.get_open_session("chez-awa", "T1") == session

    async def test_an_unknown_session_is_not_found(self, drawer_storage: DrawerStorage) -> None:
        with pytest.raises(DrawerNotFound):
            await drawer_storage.get_session("drw_missing")

    async def test_a_till_without_an_open_session_has_none(self, drawer_storage: DrawerStorage) -> None:
        assert await drawer_storage.get_open_session("chez-awa", "T1") is None

    async def test_a_second_open_session_of_a_till_is_refused(self, drawer_storage: DrawerStorage) -> None:
        first = make_session()
        await drawer_storage.open_session(first)
        second = make_session()
        with pytest.raises(DrawerAlreadyOpen) as refused:
            await drawer_storage.open_session(second)
        assert first.id in str(refused.value)  # the cashier is told which session to close
        assert second.id not in str(refused.value)
        assert await drawer_storage.list_sessions("chez-awa") == [first]

    async def test_a_session_id_is_never_stored_twice(self, drawer_storage: DrawerStorage) -> None:
        first = make_session()
        await drawer_storage.open_session(first)
        await drawer_storage.close_session(closed_record(first))
        with pytest.raises(DrawerAlreadyOpen):
            await drawer_storage.open_session(evolve(first, opened_by="Binta"))
        assert (await drawer_storage.get_session(first.id)).status is DrawerStatus.CLOSED

    async def test_of_ten_concurrent_opens_of_a_till_exactly_one_wins(self, drawer_storage: DrawerStorage) -> None:
        outcomes: list[str] = []

        async def open_one(index: int) -> None:
            try:
                await drawer_storage.open_session(make_session(opened_by=f"cashier-{index}"))
            except DrawerAlreadyOpen:
                outcomes.append("refused")
            else:
                outcomes.append("opened")

        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(open_one, index)
        assert sorted(outcomes) == ["opened"] + ["refused"] * 9
        assert len(await drawer_storage.list_sessions("chez-awa", "T1")) == 1

    async def test_a_till_may_open_again_once_closed(self, drawer_storage: DrawerStorage) -> None:
        first = make_session()
        await drawer_storage.open_session(first)
        await drawer_storage.close_session(closed_record(first))
        second = make_session(opened_at=_START + timedelta(days=1))
        await drawer_storage.open_session(second)
        assert await drawer_storage.get_open_session("chez-awa", "T1") == second
        assert [s.id for s in await drawer_storage.list_sessions("chez-awa", "T1")] == [first.id, second.id]

    async def test_the_same_till_in_two_tenants_is_two_drawers(self, drawer_storage: DrawerStorage) -> None:
        awa = make_session(tenant="chez-awa")
        binta = make_session(tenant="chez-binta")
        default = make_session(tenant=None)
        for session in (awa, binta, default):
            await drawer_storage.open_session(session)
        assert await drawer_storage.get_open_session("chez-awa", "T1") == awa
        assert await drawer_storage.get_open_session("chez-binta", "T1") == binta
        assert await drawer_storage.get_open_session(None, "T1") == default
        assert await drawer_storage.list_sessions("chez-binta") == [binta]
        assert await drawer_storage.list_sessions(None) == [default]

    async def test_the_tenantless_default_also_has_one_open_session_per_till(
        self, drawer_storage: DrawerStorage
    ) -> None:
        first = make_session(tenant=None)
        await drawer_storage.open_session(first)
        with pytest.raises(DrawerAlreadyOpen) as refused:
            await drawer_storage.open_session(make_session(tenant=None))
        assert first.id in str(refused.value)
        assert "tenant" not in str(refused.value)

    async def test_sessions_list_oldest_first_filtered_by_till(self, drawer_storage: DrawerStorage) -> None:
        late = make_session(till="T2", opened_at=_START + timedelta(hours=2))
        early = make_session(till="T1")
        await drawer_storage.open_session(late)
        await drawer_storage.open_session(early)
        assert await drawer_storage.list_sessions("chez-awa") == [early, late]
        assert await drawer_storage.list_sessions("chez-awa", "T2") == [late]

    # -- movements ------------------------------------------------------------------------------

    async def test_movements_list_in_the_order_added(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        added = [
            make_movement(session, MovementKind.PAY_IN, "1000"),
            make_movement(
                session,
                MovementKind.SALE,
                "1500",
                payment_id="pay_1",
                tendered=Money.of("2000", "XOF"),
                change=Money.of("500", "XOF"),
            ),
            make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1"),
            make_movement(session, MovementKind.PAY_OUT, "5000", reason="drop to safe"),
        ]
        for movement in added:
            assert await drawer_storage.add_movement(movement) == movement
        assert await drawer_storage.list_movements(session.id) == added

    async def test_a_stored_movement_adds_one_to_the_session_version(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        await drawer_storage.add_movement(make_movement(session))
        assert (await drawer_storage.get_session(session.id)).version == session.version + 1

    async def test_a_movement_into_a_closed_session_is_refused(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        await drawer_storage.close_session(closed_record(session))
        with pytest.raises(DrawerClosed):
            await drawer_storage.add_movement(make_movement(session))
        assert await drawer_storage.list_movements(session.id) == []

    async def test_a_movement_into_an_unknown_session_is_refused(self, drawer_storage: DrawerStorage) -> None:
        ghost = make_session()
        with pytest.raises(DrawerNotFound):
            await drawer_storage.add_movement(make_movement(ghost))

    async def test_a_second_sale_for_a_payment_returns_the_first(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        first = make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1")
        again = make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1")
        assert await drawer_storage.add_movement(first) == first
        assert await drawer_storage.add_movement(again) == first
        assert await drawer_storage.list_movements(session.id) == [first]
        assert (await drawer_storage.get_session(session.id)).version == session.version + 1

    async def test_a_second_refund_movement_for_a_refund_returns_the_first(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        first = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        again = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        await drawer_storage.add_movement(first)
        assert await drawer_storage.add_movement(again) == first
        assert await drawer_storage.list_movements(session.id) == [first]

    async def test_a_refund_of_a_payment_is_not_mistaken_for_its_sale(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        sale = make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1")
        refund = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        second = make_movement(session, MovementKind.REFUND, "300", payment_id="pay_1", refund_id="ref_2")
        for movement in (sale, refund, second):
            assert await drawer_storage.add_movement(movement) == movement
        assert await drawer_storage.list_movements(session.id) == [sale, refund, second]

    async def test_a_movement_id_stored_before_returns_the_stored_movement(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        first = make_movement(session, MovementKind.PAY_OUT, "2000")
        await drawer_storage.add_movement(first)
        assert await drawer_storage.add_movement(evolve(first, amount=Money.of("9", "XOF"))) == first
        assert await drawer_storage.list_movements(session.id) == [first]

    async def test_a_retried_sale_after_closing_returns_the_stored_sale(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        sale = make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1")
        await drawer_storage.add_movement(sale)
        await drawer_storage.close_session(closed_record(await drawer_storage.get_session(session.id)))
        assert await drawer_storage.add_movement(evolve(sale, id=new_movement_id())) == sale

    async def test_concurrent_sales_for_one_payment_store_one(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        returned: list[CashMovement] = []

        async def sell() -> None:
            movement = make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1")
            returned.append(await drawer_storage.add_movement(movement))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(sell)
        stored = await drawer_storage.list_movements(session.id)
        assert len(stored) == 1
        assert all(movement == stored[0] for movement in returned)

    async def test_a_movement_at_the_version_read_is_stored(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        movement = make_movement(session, MovementKind.PAY_OUT, "2000")
        assert await drawer_storage.add_movement(movement, expected_version=session.version) == movement
        assert (await drawer_storage.get_session(session.id)).version == session.version + 1

    async def test_a_movement_checked_against_a_stale_version_is_refused_and_stores_nothing(
        self, drawer_storage: DrawerStorage
    ) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        first = make_movement(session, MovementKind.PAY_OUT, "6000")
        await drawer_storage.add_movement(first, expected_version=session.version)
        with pytest.raises(ConcurrentUpdate, match=f"version {session.version + 1}, not {session.version}"):
            await drawer_storage.add_movement(
                make_movement(session, MovementKind.PAY_OUT, "6000"), expected_version=session.version
            )
        assert await drawer_storage.list_movements(session.id) == [first]
        assert (await drawer_storage.get_session(session.id)).version == session.version + 1

    async def test_a_retried_movement_returns_the_stored_one_whatever_the_version(
        self, drawer_storage: DrawerStorage
    ) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        refund = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        await drawer_storage.add_movement(refund, expected_version=session.version)
        await drawer_storage.add_movement(make_movement(session))
        assert await drawer_storage.add_movement(refund, expected_version=session.version) == refund

    async def test_a_stale_version_does_not_hide_a_closed_session(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        await drawer_storage.close_session(closed_record(session))
        with pytest.raises(DrawerClosed):
            await drawer_storage.add_movement(make_movement(session), expected_version=session.version)

    async def test_of_twenty_concurrent_pay_outs_only_the_five_the_drawer_holds_are_stored(
        self, drawer_storage: DrawerStorage
    ) -> None:
        session = make_session(float_="5000")
        await drawer_storage.open_session(session)
        outcomes: list[str] = []

        async def pay_out(index: int) -> None:
            """What a caller does: read, check the drawer holds it, store at the version read; again if raced."""
            for _ in range(100):
                current = await drawer_storage.get_session(session.id)
                in_drawer = drawer_totals(current, await drawer_storage.list_movements(session.id)).expected
                movement = make_movement(session, MovementKind.PAY_OUT, "1000", reason=f"drop {index}")
                if movement.amount > in_drawer:
                    outcomes.append("refused")
                    return
                try:
                    await drawer_storage.add_movement(movement, expected_version=current.version)
                except ConcurrentUpdate:
                    continue
                outcomes.append("paid")
                return
            outcomes.append("gave up")

        async with anyio.create_task_group() as group:
            for index in range(20):
                group.start_soon(pay_out, index)
        stored = await drawer_storage.list_movements(session.id)
        assert sorted(outcomes) == ["paid"] * 5 + ["refused"] * 15
        assert len(stored) == 5
        balance = session.opening_float
        for movement in stored:
            balance = balance + movement.signed_amount
            assert not balance.is_negative(), f"the drawer went negative after {movement.reason}"
        final = await drawer_storage.get_session(session.id)
        assert drawer_totals(final, stored).expected == Money.of("0", "XOF")
        assert final.version == session.version + 5

    async def test_find_movement_finds_a_sale_by_payment_and_a_refund_by_refund(
        self, drawer_storage: DrawerStorage
    ) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        sale = make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1")
        refund = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        await drawer_storage.add_movement(sale)
        await drawer_storage.add_movement(refund)
        assert await drawer_storage.find_movement(kind=MovementKind.SALE, payment_id="pay_1") == sale
        assert await drawer_storage.find_movement(kind=MovementKind.REFUND, refund_id="ref_1") == refund
        assert await drawer_storage.find_movement(kind=MovementKind.SALE, payment_id="pay_2") is None
        assert await drawer_storage.find_movement(kind=MovementKind.REFUND, refund_id="ref_2") is None

    async def test_get_movements_finds_the_stored_among_the_ids_in_any_session(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """How a keyed pay-in's retry finds its first attempt, however many sessions the till opened since."""
        first = make_session()
        await drawer_storage.open_session(first)
        kept = make_movement(first, MovementKind.PAY_IN, "500")
        await drawer_storage.add_movement(kept)
        await drawer_storage.close_session(closed_record(await drawer_storage.get_session(first.id)))
        later = make_session()
        await drawer_storage.open_session(later)
        other = make_movement(later, MovementKind.PAY_OUT, "200")
        await drawer_storage.add_movement(other)
        found = await drawer_storage.get_movements([other.id, "mov_missing", kept.id, kept.id])
        assert sorted(found, key=lambda movement: movement.id) == sorted([kept, other], key=lambda m: m.id)
        assert await drawer_storage.get_movements(["mov_missing"]) == []
        assert await drawer_storage.get_movements([]) == []

    async def test_amounts_keep_their_currency_and_minor_units(self, drawer_storage: DrawerStorage) -> None:
        session = make_session(float_="150.25", currency="EUR")
        await drawer_storage.open_session(session)
        movement = make_movement(
            session,
            MovementKind.SALE,
            "12.34",
            payment_id="pay_eur",
            tendered=Money.of("20", "EUR"),
            change=Money.of("7.66", "EUR"),
        )
        await drawer_storage.add_movement(movement)
        stored = (await drawer_storage.list_movements(session.id))[0]
        assert stored.amount == Money.minor(1234, "EUR")
        assert stored.change == Money.minor(766, "EUR")
        assert (await drawer_storage.get_session(session.id)).opening_float == Money.minor(15025, "EUR")

    # -- closing --------------------------------------------------------------------------------

    async def test_a_closed_session_reads_back_with_its_count(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        record = closed_record(session, counted="9500")
        await drawer_storage.close_session(record)
        assert await drawer_storage.get_session(session.id) == record
        assert await drawer_storage.get_open_session("chez-awa", "T1") is None

    async def test_a_keyed_close_keeps_its_close_id(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        record = evolve(closed_record(session), close_id="cls_derived_from_the_key")
        await drawer_storage.close_session(record)
        assert (await drawer_storage.get_session(session.id)).close_id == "cls_derived_from_the_key"
        assert await drawer_storage.list_sessions("chez-awa", "T1") == [record]

    async def test_closing_a_closed_session_is_refused_and_changes_nothing(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        record = closed_record(session, counted="9500")
        await drawer_storage.close_session(record)
        with pytest.raises(DrawerClosed):
            await drawer_storage.close_session(closed_record(record, counted="12000"))
        assert await drawer_storage.get_session(session.id) == record

    async def test_a_close_based_on_a_stale_version_is_refused(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        stale = closed_record(session)
        await drawer_storage.add_movement(make_movement(session))
        with pytest.raises(ConcurrentUpdate):
            await drawer_storage.close_session(stale)
        current = await drawer_storage.get_session(session.id)
        assert current.status is DrawerStatus.OPEN
        await drawer_storage.close_session(closed_record(current))
        assert (await drawer_storage.get_session(session.id)).status is DrawerStatus.CLOSED

    async def test_of_two_concurrent_closes_exactly_one_wins(self, drawer_storage: DrawerStorage) -> None:
        session = make_session()
        await drawer_storage.open_session(session)
        outcomes: list[str] = []

        async def close(counted: str) -> None:
            try:
                await drawer_storage.close_session(closed_record(session, counted=counted))
            except (DrawerClosed, ConcurrentUpdate):
                outcomes.append("refused")
            else:
                outcomes.append(counted)

        async with anyio.create_task_group() as group:
            group.start_soon(close, "9000")
            group.start_soon(close, "11000")
        assert len(outcomes) == 2
        assert outcomes.count("refused") == 1
        stored = await drawer_storage.get_session(session.id)
        assert stored.counted == Money.of(next(o for o in outcomes if o != "refused"), "XOF")

    async def test_closing_an_unknown_session_is_not_found(self, drawer_storage: DrawerStorage) -> None:
        with pytest.raises(DrawerNotFound):
            await drawer_storage.close_session(closed_record(make_session()))

    # -- what CashDrawers and the cash provider make of it ---------------------------------------

    @pytest.mark.parametrize("key", [None, "close-T1-evening"], ids=["unkeyed", "keyed"])
    async def test_a_close_raced_by_a_sale_never_closes_the_session_its_till_opened_since(
        self, drawer_storage: DrawerStorage, key: str | None
    ) -> None:
        """A manager counts 777 000 in drawer T1; a sale lands before the count is stored, and before it is
        counted again another manager closes that session and a cashier opens T1 again. The first close is
        refused: it never closes the fresh drawer with a count made of another one."""
        first = make_session(float_="1000")
        await drawer_storage.open_session(first)
        second = make_session(float_="5000", opened_by="Moussa", opened_at=_START + timedelta(hours=1))

        async def sale_lands(closing: DrawerSession) -> None:
            await drawer_storage.add_movement(make_movement(first, MovementKind.SALE, "2000", payment_id="pay_1"))

        async def closed_and_opened_again(closing: DrawerSession) -> None:
            latest = await drawer_storage.get_session(first.id)
            await drawer_storage.close_session(evolve(closed_record(latest, counted="3000"), closed_by="Binta"))
            await drawer_storage.open_session(second)

        raced = RacedStorage(
            drawer_storage, before={"close_session": sale_lands}, after={"close_session": closed_and_opened_again}
        )
        async with flow_on(raced) as flow:
            drawers = CashDrawers(flow, tenant=_TENANT)
            with pytest.raises(DrawerClosed, match=f"{first.id} of till 'T1' was closed already by Binta"):
                await drawers.close(till="T1", counted=Money.of("777000", "XOF"), closed_by="Awa", idempotency_key=key)
            assert await drawers.current("T1") == second
        assert await drawer_storage.get_session(second.id) == second
        closed = await drawer_storage.get_session(first.id)
        assert (closed.closed_by, closed.counted) == ("Binta", Money.of("3000", "XOF"))

    async def test_a_keyed_close_whose_session_the_same_key_closed_meanwhile_replays_that_close(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """A keyed close stalls past its lease and a retry under the key closes the session first. The stalled
        close's write is refused, and it answers with the close the key made, not with DrawerClosed."""
        session = make_session(float_="1000")
        await drawer_storage.open_session(session)
        stored: list[DrawerSession] = []

        async def retry_under_the_key_closes_it(closing: DrawerSession) -> None:
            await drawer_storage.close_session(closing)
            stored.append(closing)

        raced = RacedStorage(drawer_storage, before={"close_session": retry_under_the_key_closes_it})
        async with flow_on(raced) as flow:
            closed = await CashDrawers(flow, tenant=_TENANT).close(
                till="T1", counted=Money.of("1000", "XOF"), closed_by="Awa", idempotency_key="close-T1-evening"
            )
        assert closed == stored[0] == await drawer_storage.get_session(session.id)
        assert closed.close_id is not None

    @pytest.mark.parametrize("closed_before", ["find_movement", "add_movement"], ids=["read", "write"])
    async def test_a_sale_whose_drawer_closed_before_it_was_recorded_fails_and_says_so(
        self, drawer_storage: DrawerStorage, closed_before: str
    ) -> None:
        """The sale passed the drawer check and its payment was stored; the manager closed the drawer before
        the sale was recorded in it (before the provider read the drawer, or between that read and its
        write). The payment fails, none is left pending, the drawer holds no sale, and the cashier is told
        the drawer closed: once it is open again, the cash is taken."""
        session = make_session(float_="1000")
        await drawer_storage.open_session(session)
        xof = Money.of("1000", "XOF")

        async def manager_closes_the_drawer(*args: Any, **kwargs: Any) -> None:
            await drawer_storage.close_session(closed_record(await drawer_storage.get_session(session.id)))

        raced = RacedStorage(drawer_storage, before={closed_before: manager_closes_the_drawer})
        async with flow_on(raced) as flow:
            with pytest.raises(CashSaleFailed) as failed:
                await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            assert str(failed.value).endswith(
                "the drawer of till 'T1' was closed before the sale was recorded; "
                "open the drawer of till 'T1' and take the cash again under a new idempotency key"
            )
            [payment] = await flow.list_payments(tenant=_TENANT)
            assert (payment.id, payment.status, payment.pending_call) == (
                failed.value.payment_id,
                PaymentStatus.FAILED,
                None,
            )
            assert await drawer_storage.list_movements(session.id) == []
            reopened = await CashDrawers(flow, tenant=_TENANT).open(till="T1", opening_float=xof, opened_by="Awa")
            sale = await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            assert sale.payment.status is PaymentStatus.SUCCEEDED
            assert [m.payment_id for m in await drawer_storage.list_movements(reopened.id)] == [sale.payment.id]

    async def test_a_sale_whose_drawer_closed_and_opened_again_before_it_was_recorded_fails(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """The sale passed the drawer check and its payment was stored; the manager counted and closed that
        drawer and the next shift opened the till again before the sale was recorded. The sale went into the
        next shift's drawer, dated before it opened, while the count it belonged to lacked it. The payment
        fails and the cashier is told the drawer closed; neither drawer holds the sale."""
        raced = RacedStorage(drawer_storage)
        xof = Money.of("1000", "XOF")
        async with flow_on(raced) as flow:
            drawers = CashDrawers(flow, tenant=_TENANT)
            first = await drawers.open(till="T1", opening_float=xof, opened_by="Awa")
            reopened: list[DrawerSession] = []

            async def closed_and_opened_again(*args: Any, **kwargs: Any) -> None:
                await drawers.close(till="T1", counted=xof, closed_by="Awa")
                reopened.append(await drawers.open(till="T1", opening_float=xof, opened_by="Binta"))

            raced.before["find_movement"] = closed_and_opened_again  # the sale's first drawer read
            with pytest.raises(CashSaleFailed, match="the drawer of till 'T1' was closed before the sale was recorded"):
                await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            [payment] = await flow.list_payments(tenant=_TENANT)
        assert (payment.status, payment.pending_call) == (PaymentStatus.FAILED, None)
        assert await drawer_storage.list_movements(reopened[0].id) == []
        assert await drawer_storage.list_movements(first.id) == []

    async def test_a_refund_paid_out_of_a_drawer_opened_after_it_started_is_not_dated_before_that(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """The refund was checked against the till's drawer; that drawer was closed and the till opened again
        before the cash was paid out. It is paid out of the drawer open now, but was dated when the refund
        started: the next shift's report showed cash leaving before the shift began."""
        raced = RacedStorage(drawer_storage)
        xof = Money.of("1000", "XOF")
        async with flow_on(raced) as flow:
            drawers = CashDrawers(flow, tenant=_TENANT)
            await drawers.open(till="T1", opening_float=xof, opened_by="Awa")
            sale = await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            reopened: list[DrawerSession] = []

            async def closed_and_opened_again(*args: Any, **kwargs: Any) -> None:
                await drawers.close(till="T1", counted=xof + xof, closed_by="Awa")
                reopened.append(await drawers.open(till="T1", opening_float=xof, opened_by="Binta"))

            raced.before["find_movement"] = closed_and_opened_again  # the refund's first drawer read
            refund = await flow.refund(sale.payment.id, amount=Money.of("500", "XOF"), tenant=_TENANT)
        [paid] = await drawer_storage.list_movements(reopened[0].id)
        assert (refund.status, paid.refund_id) == (RefundStatus.SUCCEEDED, refund.id)
        assert paid.at >= reopened[0].opened_at

    @pytest.mark.parametrize("paid_before", ["find_movement", "add_movement"], ids=["read", "write"])
    async def test_a_refund_whose_id_paid_out_another_payments_refund_is_refused_and_pays_nothing(
        self, drawer_storage: DrawerStorage, paid_before: str
    ) -> None:
        """Refunds stored before refund ids named their payment could share an id across two payments. Payment
        B's refund was paid out under the id of payment A's refund (before the drawer was read for A's, or
        between that read and its write), and A's refund was reported paid with B's cash. It is refused and
        fails; the drawer pays out nothing for it."""
        raced = RacedStorage(drawer_storage)
        xof = Money.of("1000", "XOF")
        async with flow_on(raced) as flow:
            session = await CashDrawers(flow, tenant=_TENANT).open(till="T1", opening_float=xof, opened_by="Awa")
            a = await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="A", tenant=_TENANT)
            b = await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="B", tenant=_TENANT)

            async def b_refund_paid_out_under_the_same_id(*args: Any, **kwargs: Any) -> None:
                refund_id = args[0].refund_id if args else kwargs["refund_id"]
                b_refund = make_movement(
                    session, MovementKind.REFUND, "700", payment_id=b.payment.id, refund_id=refund_id
                )
                await drawer_storage.add_movement(b_refund)

            raced.before[paid_before] = b_refund_paid_out_under_the_same_id
            with pytest.raises(
                RefundIdTaken, match=f"was not paid out: the drawer paid out a refund of payment {b.payment.id}"
            ):
                await flow.refund(a.payment.id, amount=Money.of("500", "XOF"), tenant=_TENANT)
            after = await flow.get_payment(a.payment.id, tenant=_TENANT)
        assert ([r.status for r in after.refunds], after.refundable_amount) == ([RefundStatus.FAILED], xof)
        refunds = [m for m in await drawer_storage.list_movements(session.id) if m.kind is MovementKind.REFUND]
        assert [(m.payment_id, m.amount) for m in refunds] == [(b.payment.id, Money.of("700", "XOF"))]

    async def test_a_refund_paid_out_for_another_payment_under_its_id_is_not_settled_as_paid(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """Payment A's refund was being paid out when payment B's refund was paid out under the same id (ids
        stored before refund ids named their payment), and A's write gave no answer. Settling A took B's cash
        for A's refund: succeeded, with nothing paid out for it. It is not: while A's request may still arrive
        it stays pending, and then it fails: the drawer holds no refund of A."""
        raced = RacedStorage(drawer_storage)
        xof = Money.of("1000", "XOF")
        now = [datetime(2026, 3, 2, 12, 0, tzinfo=UTC)]
        async with flow_on(raced, clock=lambda: now[0]) as flow:
            session = await CashDrawers(flow, tenant=_TENANT).open(till="T1", opening_float=xof, opened_by="Awa")
            a = await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="A", tenant=_TENANT)
            b = await take_cash(flow, amount=xof, tendered=xof, till="T1", order_id="B", tenant=_TENANT)

            async def b_paid_out_then_the_write_is_lost(movement: CashMovement, **kwargs: Any) -> None:
                b_refund = make_movement(
                    session, MovementKind.REFUND, "700", payment_id=b.payment.id, refund_id=movement.refund_id
                )
                await drawer_storage.add_movement(b_refund)
                raise StorageError("the drawer's database went away")

            raced.before["add_movement"] = b_paid_out_then_the_write_is_lost
            pending = await flow.refund(a.payment.id, amount=Money.of("500", "XOF"), tenant=_TENANT)
            soon = await flow.refresh(a.payment.id, tenant=_TENANT)
            now[0] += timedelta(seconds=flow.config.idempotency_lease + flow.config.provider_timeout + 1)
            settled = await flow.refresh(a.payment.id, tenant=_TENANT)
        assert (pending.status, [r.status for r in soon.refunds]) == (RefundStatus.PENDING, [RefundStatus.PENDING])
        assert ([r.status for r in settled.refunds], settled.refundable_amount) == ([RefundStatus.FAILED], xof)

    # -- refunds given up --------------------------------------------------------------------

    async def test_a_refund_given_up_is_never_paid_out_by_a_call_it_was_given_up_through(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """Given up through payment version 5 (nothing paid out under it), no REFUND under the refund's id sent by
        a call written down at version 5 or before is stored: not at the session version read, not under another
        movement id, not into another session; nor one that names no payment version; the drawers do not move."""
        session, other = make_session(), make_session(till="T2")
        await drawer_storage.open_session(session)
        await drawer_storage.open_session(other)
        assert await drawer_storage.give_up_refund("ref_1", "pay_1", 5) is None
        for into, version, sent_at in ((session, session.version, 5), (session, None, 3), (other, None, None)):
            late = make_movement(into, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
            with pytest.raises(RefundGivenUp, match="ref_1"):
                await drawer_storage.add_movement(late, expected_version=version, payment_version=sent_at)
        for stored in (session, other):
            assert await drawer_storage.list_movements(stored.id) == []
            assert (await drawer_storage.get_session(stored.id)).version == stored.version
        assert await drawer_storage.find_movement(kind=MovementKind.REFUND, refund_id="ref_1") is None
        assert await drawer_storage.give_up_refund("ref_1", "pay_1", 2) is None, "a second give-up answers as the first"
        with pytest.raises(RefundGivenUp):  # the second give-up, through an older version, kept the first's
            await drawer_storage.add_movement(
                make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1"),
                payment_version=4,
            )

    async def test_a_refund_given_up_is_paid_out_once_by_a_call_written_after(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """A keyed retry sends a given-up refund again under its id, by a call written down at a later payment
        version: it is paid out, once; the call given up, waking after, finds that movement; a give-up now
        answers with it."""
        session = make_session()
        await drawer_storage.open_session(session)
        await drawer_storage.give_up_refund("ref_1", "pay_1", 5)
        again = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        assert await drawer_storage.add_movement(again, payment_version=7) == again
        woke = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        assert await drawer_storage.add_movement(woke, payment_version=4) == again
        assert await drawer_storage.give_up_refund("ref_1", "pay_1", 9) == again
        assert await drawer_storage.list_movements(session.id) == [again]

    async def test_a_refund_paid_out_is_not_given_up(self, drawer_storage: DrawerStorage) -> None:
        """Giving up a refund that was paid out answers with its movement and changes nothing: a retry of its
        write still answers with it."""
        session = make_session()
        await drawer_storage.open_session(session)
        paid = make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_1")
        await drawer_storage.add_movement(paid, payment_version=3)
        assert await drawer_storage.give_up_refund("ref_1", "pay_1", 3) == paid
        assert await drawer_storage.add_movement(evolve(paid, id=new_movement_id()), payment_version=3) == paid
        assert (await drawer_storage.get_session(session.id)).version == session.version + 1

    async def test_giving_up_a_refund_leaves_every_other_movement_alone(self, drawer_storage: DrawerStorage) -> None:
        """Only a REFUND under the given-up id is refused: the payment's sale, its other refunds and any other
        movement are stored as before."""
        session = make_session()
        await drawer_storage.open_session(session)
        await drawer_storage.give_up_refund("ref_1", "pay_1", 5)
        others = [
            make_movement(session, MovementKind.SALE, "1500", payment_id="pay_1"),
            make_movement(session, MovementKind.REFUND, "700", payment_id="pay_1", refund_id="ref_2"),
            make_movement(session, MovementKind.PAY_IN, "300"),
        ]
        for movement in others:
            assert await drawer_storage.add_movement(movement, payment_version=5) == movement
        assert await drawer_storage.list_movements(session.id) == others

    async def test_of_a_give_up_and_a_pay_out_racing_exactly_one_takes_effect(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """Thirty refunds each paid out and given up at once, at seeded random points: each is paid out (and its
        give-up answers with the movement) or given up (and its pay-out refused, nothing stored), never both."""
        session = make_session()
        await drawer_storage.open_session(session)
        pauses = random.Random(30)
        given: dict[str, CashMovement | None] = {}
        written: dict[str, CashMovement | None] = {}

        async def pause(steps: int) -> None:
            for _ in range(steps):
                await anyio.lowlevel.checkpoint()

        async def give_up(refund_id: str, steps: int) -> None:
            await pause(steps)
            given[refund_id] = await drawer_storage.give_up_refund(refund_id, "pay_1", 5)

        async def pay_out(refund_id: str, steps: int) -> None:
            await pause(steps)
            movement = make_movement(session, MovementKind.REFUND, "10", payment_id="pay_1", refund_id=refund_id)
            try:
                written[refund_id] = await drawer_storage.add_movement(movement, payment_version=5)
            except RefundGivenUp:
                written[refund_id] = None

        async with anyio.create_task_group() as group:
            for number in range(30):
                group.start_soon(give_up, f"ref_{number}", pauses.randrange(4))
                group.start_soon(pay_out, f"ref_{number}", pauses.randrange(4))
        stored = {m.refund_id: m for m in await drawer_storage.list_movements(session.id)}
        for number in range(30):
            refund_id = f"ref_{number}"
            if refund_id in stored:
                assert given[refund_id] == written[refund_id] == stored[refund_id], f"{refund_id}: paid and given up"
            else:
                assert (given[refund_id], written[refund_id]) == (None, None), f"{refund_id}: lost"
        assert (await drawer_storage.get_session(session.id)).version == session.version + len(stored)

    @pytest.mark.parametrize("settled_by", ["refresh", "operator"])
    async def test_a_refund_whose_till_slept_past_its_lease_is_not_paid_out_when_it_wakes(
        self, drawer_storage: DrawerStorage, settled_by: str
    ) -> None:
        """A till paying a refund out stops (a laptop asleep) just before its drawer write. Past the call's
        lease, another process settles the payment (a refresh: the drawer holds no refund, it failed; or an
        operator who found none resolves it failed) and the rest of the sale is refunded there. When the till
        wakes, its write is refused: the drawers had paid out more than the sale took in (4 000 of 3 000)."""
        raced = RacedStorage(drawer_storage)
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        sale_amount, first, rest = (Money.of(a, "XOF") for a in ("3000", "1000", "3000"))
        async with flow_on(raced, clock=lambda: start) as till:
            drawers = CashDrawers(till, tenant=_TENANT)
            session = await drawers.open(till="T1", opening_float=Money.of("10000", "XOF"), opened_by="Awa")
            sale = await take_cash(
                till, amount=sale_amount, tendered=sale_amount, till="T1", order_id="o1", tenant=_TENANT
            )
            later = start + timedelta(seconds=till.config.idempotency_lease + till.config.provider_timeout + 60)
            office = another_process(till, clock=lambda: later)
            settled: list[Any] = []

            async def asleep_then_settled_elsewhere(movement: CashMovement, **kwargs: Any) -> None:
                if settled_by == "refresh":
                    settled.append(await office.refresh(sale.payment.id, tenant=_TENANT))
                else:
                    settled.append(
                        await office.resolve_refund(
                            sale.payment.id, movement.refund_id or "", outcome="failed", note="none in the drawer"
                        )
                    )
                settled.append(await office.refund(sale.payment.id, amount=rest, tenant=_TENANT))

            raced.before["add_movement"] = asleep_then_settled_elsewhere
            woke = await till.refund(sale.payment.id, amount=first, tenant=_TENANT)
            payment = await till.get_payment(sale.payment.id, tenant=_TENANT)
        refreshed, second = settled
        assert [r.status for r in refreshed.refunds] == [RefundStatus.FAILED]
        assert (second.status, woke.status) == (RefundStatus.SUCCEEDED, RefundStatus.FAILED)
        paid_out = [m for m in await drawer_storage.list_movements(session.id) if m.kind is MovementKind.REFUND]
        assert [(m.refund_id, m.amount) for m in paid_out] == [(second.id, rest)]
        assert sorted((r.id, r.status) for r in payment.refunds) == sorted(
            [(woke.id, RefundStatus.FAILED), (second.id, RefundStatus.SUCCEEDED)]
        )
        assert payment.refunded_amount == rest

    async def test_a_refund_paid_out_is_not_resolved_failed_by_an_operator(self, drawer_storage: DrawerStorage) -> None:
        """A refund whose drawer write landed, its answer lost: an operator who resolves it failed is refused
        (the drawer paid it out), and nothing changes; a refresh records it paid."""
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        xof = Money.of("3000", "XOF")
        async with flow_on(drawer_storage, clock=lambda: start) as till:
            await CashDrawers(till, tenant=_TENANT).open(
                till="T1", opening_float=Money.of("10000", "XOF"), opened_by="Awa"
            )
            sale = await take_cash(till, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            cash = till.provider("cash", tenant=_TENANT)
            paid_out = cash.refund

            async def answer_lost(payment: Payment, refund: Refund) -> RefundUpdate:
                await paid_out(payment, refund)
                raise StorageError("the drawer's database went away after its commit")

            cash.refund = answer_lost  # type: ignore[method-assign]
            pending = await till.refund(sale.payment.id, amount=Money.of("1000", "XOF"), tenant=_TENANT)
            later = start + timedelta(seconds=till.config.idempotency_lease + till.config.provider_timeout + 60)
            office = another_process(till, clock=lambda: later)
            with pytest.raises(InvalidTransition, match="was paid out at the provider"):
                await office.resolve_refund(sale.payment.id, pending.id, outcome="failed", note="found none")
            assert [r.status for r in (await office.get_payment(sale.payment.id, tenant=_TENANT)).refunds] == [
                RefundStatus.PENDING
            ]
            refreshed = await office.refresh(sale.payment.id, tenant=_TENANT)
        assert [r.status for r in refreshed.refunds] == [RefundStatus.SUCCEEDED]

    async def test_a_woken_tills_failure_does_not_fail_the_refund_its_key_sent_again(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """Two tills asleep in turn: the first while paying a keyed refund out; past its lease another process
        fails it and sends it again under its key, and its till falls asleep too. The first wakes past that
        call's lease as well, and is refused: its answer, "failed", was of its own attempt; it failed the refund
        sent again, which the second till then paid out unrecorded. The refund stays pending until the second
        answers."""
        from paycore_memory import MemoryIdempotencyStore

        raced = RacedStorage(drawer_storage)
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        first_now, keys_now = [start], [0.0]
        xof, part = Money.of("3000", "XOF"), Money.of("1000", "XOF")
        async with flow_on(raced, clock=lambda: first_now[0]) as till:
            till.idempotency_store = MemoryIdempotencyStore(clock=lambda: keys_now[0])
            session = await CashDrawers(till, tenant=_TENANT).open(
                till="T1", opening_float=Money.of("10000", "XOF"), opened_by="Awa"
            )
            sale = await take_cash(till, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            waited = timedelta(seconds=till.config.idempotency_lease + till.config.provider_timeout + 60)
            second = another_process(till, clock=lambda: start + waited)
            tills = _Sleepers("first", "second")
            answers: dict[str, Any] = {}

            answered = anyio.Event()

            async def refund(name: str, flow: PaymentFlow) -> None:
                answers[name] = await flow.refund(sale.payment.id, amount=part, tenant=_TENANT, idempotency_key="r")
                answered.set()

            async with anyio.create_task_group() as group:
                raced.before["add_movement"] = tills.sleeps("first")
                group.start_soon(refund, "first", till)
                await tills.asleep["first"].wait()
                keys_now[0] += waited.total_seconds()
                raced.before["add_movement"] = tills.sleeps("second")
                group.start_soon(refund, "second", second)
                await tills.asleep["second"].wait()
                first_now[0] = start + waited * 2  # the first till's clock, past the second call's lease too
                tills.wake["first"].set()
                await answered.wait()
                meanwhile = await till.get_payment(sale.payment.id, tenant=_TENANT)
                tills.wake["second"].set()
            payment = await till.get_payment(sale.payment.id, tenant=_TENANT)
        paid_out = [m.amount for m in await drawer_storage.list_movements(session.id) if m.kind is MovementKind.REFUND]
        assert answers["first"].status is RefundStatus.PENDING  # refused: the refund is the second's to pay now
        assert [r.status for r in meanwhile.refunds] == [RefundStatus.PENDING], "the first's failure failed the second"
        assert (answers["second"].status, paid_out) == (RefundStatus.SUCCEEDED, [part])
        assert ([r.status for r in payment.refunds], payment.refunded_amount) == ([RefundStatus.SUCCEEDED], part)

    async def test_an_operators_failure_is_refused_when_the_refund_was_sent_again_as_it_was_given_up(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """A till paying a keyed refund out falls asleep before its drawer write. Past its lease an operator
        resolves the refund failed; the drawer gives it up for the calls the operator read, then the operator's
        process stalls. Meanwhile a refresh fails the refund, its key sends it again (a new call) and that till
        falls asleep too. The stalled resolution is refused when it wakes, even past the new call's lease: the
        new call was not given up, and its till would pay it out. Resolved again, the refund fails; the rest of
        the sale is refunded, and neither till pays anything out when it wakes."""
        from paycore_memory import MemoryIdempotencyStore

        raced = RacedStorage(drawer_storage)
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        keys_now = [0.0]
        xof, part, rest = (Money.of(a, "XOF") for a in ("3000", "1000", "3000"))
        async with flow_on(raced, clock=lambda: start) as till:
            till.idempotency_store = MemoryIdempotencyStore(clock=lambda: keys_now[0])
            session = await CashDrawers(till, tenant=_TENANT).open(
                till="T1", opening_float=Money.of("10000", "XOF"), opened_by="Awa"
            )
            sale = await take_cash(till, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            waited = timedelta(seconds=till.config.idempotency_lease + till.config.provider_timeout + 60)
            office_now = [start + waited]
            office = another_process(till, clock=lambda: office_now[0])
            elsewhere = another_process(till, clock=lambda: start + waited)
            tills = _Sleepers("first", "retry")
            answers: dict[str, Any] = {}

            async def refund(name: str, flow: PaymentFlow) -> None:
                answers[name] = await flow.refund(sale.payment.id, amount=part, tenant=_TENANT, idempotency_key="r")

            async with anyio.create_task_group() as group:
                raced.before["add_movement"] = tills.sleeps("first")
                group.start_soon(refund, "first", till)
                await tills.asleep["first"].wait()
                (pending,) = (await till.get_payment(sale.payment.id, tenant=_TENANT)).refunds

                async def stalled_while_sent_again(*args: Any, **kwargs: Any) -> None:
                    await elsewhere.refresh(sale.payment.id, tenant=_TENANT)  # the drawer holds none: failed
                    keys_now[0] += waited.total_seconds()
                    raced.before["add_movement"] = tills.sleeps("retry")
                    group.start_soon(refund, "retry", elsewhere)
                    await tills.asleep["retry"].wait()
                    office_now[0] = start + waited * 2  # the operator's process wakes past the new call's lease

                raced.after["give_up_refund"] = stalled_while_sent_again
                with pytest.raises(PaymentBusy, match="resolve it again"):
                    await office.resolve_refund(
                        sale.payment.id, pending.id, outcome="failed", note="none in the drawer"
                    )
                again = await office.get_payment(sale.payment.id, tenant=_TENANT)
                assert [r.status for r in again.refunds] == [RefundStatus.PENDING]
                assert again.pending_call is not None
                assert again.pending_call.refund_id == pending.id
                resolved = await office.resolve_refund(
                    sale.payment.id, pending.id, outcome="failed", note="none in the drawer"
                )
                second = await office.refund(sale.payment.id, amount=rest, tenant=_TENANT)
                tills.wake["retry"].set()
                tills.wake["first"].set()
            payment = await till.get_payment(sale.payment.id, tenant=_TENANT)
        assert [r.status for r in resolved.refunds] == [RefundStatus.FAILED]
        assert (answers["first"].status, answers["retry"].status) == (RefundStatus.FAILED, RefundStatus.FAILED)
        paid_out = [m for m in await drawer_storage.list_movements(session.id) if m.kind is MovementKind.REFUND]
        assert [(m.refund_id, m.amount) for m in paid_out] == [(second.id, rest)]
        assert (payment.refunded_amount, payment.needs_review) == (rest, False)

    async def test_a_refund_given_up_and_sent_again_by_its_key_is_paid_out_once(
        self, drawer_storage: DrawerStorage
    ) -> None:
        """A till paying a keyed refund out stops before its drawer write; past the call's lease another
        process settles the payment (the refund never reached the drawer: failed) and retries the refund under
        its key, which sends it again under the same id: it is paid out. The till, waking, pays nothing more."""
        from paycore_memory import MemoryIdempotencyStore

        raced = RacedStorage(drawer_storage)
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        sale_amount, first = Money.of("3000", "XOF"), Money.of("1000", "XOF")
        keys_now = [0.0]
        async with flow_on(raced, clock=lambda: start) as till:
            till.idempotency_store = MemoryIdempotencyStore(clock=lambda: keys_now[0])
            drawers = CashDrawers(till, tenant=_TENANT)
            session = await drawers.open(till="T1", opening_float=Money.of("10000", "XOF"), opened_by="Awa")
            sale = await take_cash(
                till, amount=sale_amount, tendered=sale_amount, till="T1", order_id="o1", tenant=_TENANT
            )
            waited = till.config.idempotency_lease + till.config.provider_timeout + 60
            office = another_process(till, clock=lambda: start + timedelta(seconds=waited))
            retried: list[Any] = []

            async def asleep_then_retried_elsewhere(*args: Any, **kwargs: Any) -> None:
                keys_now[0] += waited
                await office.refresh(sale.payment.id, tenant=_TENANT)
                retried.append(await office.refund(sale.payment.id, amount=first, tenant=_TENANT, idempotency_key="r"))

            raced.before["add_movement"] = asleep_then_retried_elsewhere
            woke = await till.refund(sale.payment.id, amount=first, tenant=_TENANT, idempotency_key="r")
            payment = await till.get_payment(sale.payment.id, tenant=_TENANT)
        [again] = retried
        paid_out = [m for m in await drawer_storage.list_movements(session.id) if m.kind is MovementKind.REFUND]
        assert (again.id, again.status, woke.id) == (woke.id, RefundStatus.SUCCEEDED, again.id)
        assert [(m.refund_id, m.amount) for m in paid_out] == [(again.id, first)]
        assert ([r.status for r in payment.refunds], payment.refunded_amount) == ([RefundStatus.SUCCEEDED], first)

    @pytest.mark.parametrize("poller_ahead", ["within-the-lease", "past-the-lease-within-the-timeout"])
    async def test_a_refund_in_flight_is_not_given_up_by_a_poll(
        self, drawer_storage: DrawerStorage, poller_ahead: str
    ) -> None:
        """A poll of the payment while its refund's request may still arrive (its call within its lease, or
        past it by less than a timeout: a poller's clock may run ahead of the till's) says nothing of that
        refund: the refund is paid out as it was asked."""
        raced = RacedStorage(drawer_storage)
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        xof = Money.of("3000", "XOF")
        async with flow_on(raced, clock=lambda: start) as till:
            drawers = CashDrawers(till, tenant=_TENANT)
            await drawers.open(till="T1", opening_float=Money.of("10000", "XOF"), opened_by="Awa")
            sale = await take_cash(till, amount=xof, tendered=xof, till="T1", order_id="o1", tenant=_TENANT)
            ahead = 1.0 if poller_ahead == "within-the-lease" else till.config.idempotency_lease + 0.5
            assert ahead < till.config.idempotency_lease + till.config.provider_timeout
            office = another_process(till, clock=lambda: start + timedelta(seconds=ahead))
            polled: list[Any] = []

            async def polled_meanwhile(*args: Any, **kwargs: Any) -> None:
                provider = office.provider("cash", tenant=_TENANT)
                polled.append(await provider.check_status(await office.get_payment(sale.payment.id, tenant=_TENANT)))

            raced.before["add_movement"] = polled_meanwhile
            refund = await till.refund(sale.payment.id, amount=Money.of("1000", "XOF"), tenant=_TENANT)
        assert refund.status is RefundStatus.SUCCEEDED
        assert polled[0].refunds == ()

    # -- names, amounts and lists kept whole ---------------------------------------------------

    async def test_a_movement_racing_a_close_is_refused_or_counted_in_it(self, drawer_storage: DrawerStorage) -> None:
        """Cashiers keep selling while a manager closes (reads, sums, closes at the version read): every sale lands
        before the close and is in its expected amount, or is refused as the drawer closed; none lands in a closed
        session, uncounted (a storage that checks the session is open, then writes, with no check in the write).
        Cashiers and manager pause at seeded random points; such a race shows in almost every run under trio's
        scheduling, and in some under asyncio's."""
        for round_ in range(20):
            session = make_session(till=f"R{round_}")
            await drawer_storage.open_session(session)
            pauses = random.Random(round_)  # where the manager pauses between reading and closing, the same each run

            async def cashier(number: int, session: DrawerSession = session, round_: int = round_) -> None:
                steps = random.Random(round_ * 10 + number)  # cashiers out of step with each other and the manager
                for sale in range(30):
                    for _ in range(steps.randrange(6)):
                        await anyio.lowlevel.checkpoint()
                    try:
                        await drawer_storage.add_movement(
                            make_movement(session, MovementKind.SALE, "100", payment_id=f"p{number}-{sale}")
                        )
                    except DrawerClosed:
                        return

            async def manager(session: DrawerSession = session, pauses: random.Random = pauses) -> None:
                for _ in range(500):
                    current = await drawer_storage.get_session(session.id)
                    expected = drawer_totals(current, await drawer_storage.list_movements(session.id)).expected
                    for _ in range(pauses.randrange(8)):
                        await anyio.lowlevel.checkpoint()
                    try:
                        await drawer_storage.close_session(evolve(closed_record(current), expected=expected))
                        return
                    except ConcurrentUpdate:
                        continue

            async with anyio.create_task_group() as group:
                for number in range(2):
                    group.start_soon(cashier, number)
                group.start_soon(manager)
            stored = await drawer_storage.get_session(session.id)
            assert stored.status is DrawerStatus.CLOSED
            movements = await drawer_storage.list_movements(session.id)
            counted = drawer_totals(evolve(stored, status=DrawerStatus.OPEN), movements).expected
            assert counted == stored.expected, (
                f"a sale landed in the closed session: {counted}, closed at {stored.expected}"
            )

    @pytest.mark.parametrize("kind", ["refund", "movement-id"])
    async def test_concurrent_writes_of_one_refund_or_movement_store_one(
        self, drawer_storage: DrawerStorage, kind: str
    ) -> None:
        """Ten writes at once of one refund's pay-out (or of one movement id): one is stored, as for a sale."""
        session = make_session()
        await drawer_storage.open_session(session)
        same = {"payment_id": "p", "refund_id": "r"} if kind == "refund" else {"id": new_movement_id()}
        movement_kind = MovementKind.REFUND if kind == "refund" else MovementKind.PAY_IN

        answers: list[CashMovement] = []

        async def write() -> None:
            answers.append(await drawer_storage.add_movement(make_movement(session, movement_kind, "700", **same)))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(write)
        stored = await drawer_storage.list_movements(session.id)
        assert len(stored) == 1, "one write stored more than once"
        assert answers == stored * 10, "a write of what was stored already did not answer with the stored movement"

    @pytest.mark.parametrize("units", [2**53 + 1, MAX_MINOR_UNITS - 1], ids=["past-a-float", "largest-but-one"])
    async def test_amounts_up_to_the_largest_paycore_takes_are_exact(
        self, drawer_storage: DrawerStorage, units: int
    ) -> None:
        """Amounts are integers of minor units up to ``MAX_MINOR_UNITS`` (a ``BIGINT``), never a float."""
        most = Money.minor(MAX_MINOR_UNITS, "XOF")
        session = make_session(opening_float=Money.minor(units, "XOF"))
        await drawer_storage.open_session(session)
        sale = make_movement(
            session,
            MovementKind.SALE,
            str(units),
            payment_id="p",
            tendered=most,
            change=most - Money.minor(units, "XOF"),
        )
        await drawer_storage.add_movement(sale)
        assert (await drawer_storage.get_session(session.id)).opening_float == Money.minor(units, "XOF")
        assert await drawer_storage.list_movements(session.id) == [sale]
        closed = evolve(
            closed_record(await drawer_storage.get_session(session.id)),
            counted=most,
            expected=most,
            variance=Money.minor(-MAX_MINOR_UNITS, "XOF"),
        )
        await drawer_storage.close_session(closed)
        assert await drawer_storage.get_session(session.id) == closed, "an amount did not read back exact"

    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [
            (("Chez-Awa", "T1"), ("chez-awa", "T1")),
            (("chez-awa", "T1"), ("chez-awa", "t1")),
            (("Café-" * 11 + "Thiéboud1", "T1"), ("Café-" * 11 + "Thiéboud2", "T1")),
            (("chez-awa", "Caisse-" * 9 + "1"), ("chez-awa", "Caisse-" * 9 + "2")),
        ],
        ids=["tenant-case", "till-case", "longest-tenants", "longest-tills"],
    )
    async def test_tenants_and_tills_are_kept_exactly(
        self, drawer_storage: DrawerStorage, ours: tuple[str, str], theirs: tuple[str, str]
    ) -> None:
        """Two tenants, or two tills, whose names differ only in case or in their 64th character are two: a
        storage that folds case or cuts names would put one restaurant's sales in another's drawer."""
        first, second = make_session(tenant=ours[0], till=ours[1]), make_session(tenant=theirs[0], till=theirs[1])
        await drawer_storage.open_session(first)
        assert await drawer_storage.get_open_session(*theirs) is None, f"{theirs} found {ours}'s open session"
        await drawer_storage.open_session(second)
        assert await drawer_storage.get_open_session(*ours) == first
        assert await drawer_storage.get_open_session(*theirs) == second
        assert await drawer_storage.list_sessions(theirs[0], theirs[1]) == [second]

    async def test_listing_a_till_keeps_to_its_tenant(self, drawer_storage: DrawerStorage) -> None:
        sessions = [make_session(tenant=tenant) for tenant in ("chez-awa", "chez-binta", None)]
        for session in sessions:
            await drawer_storage.open_session(session)
        for session in sessions:
            listed = await drawer_storage.list_sessions(session.tenant, "T1")
            assert listed == [session], f"tenant {session.tenant!r}'s till T1 listed {[s.tenant for s in listed]}"

    async def test_every_movement_and_every_session_is_listed_however_many(self, drawer_storage: DrawerStorage) -> None:
        """No page limit: a busy session's 120 movements in the order added, and a tenant's 60 sessions."""
        session = make_session()
        await drawer_storage.open_session(session)
        added = [make_movement(session, MovementKind.SALE, "100", payment_id=f"p{i}") for i in range(120)]
        for movement in added:
            await drawer_storage.add_movement(movement)
        assert await drawer_storage.list_movements(session.id) == added
        tills = [make_session(till=f"T{i:03d}") for i in range(60)]
        for till in tills:
            await drawer_storage.open_session(till)
        listed = await drawer_storage.list_sessions("chez-awa")
        assert len(listed) == 61, f"{len(listed)} of the tenant's 61 sessions listed"
