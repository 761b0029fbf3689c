"""Drawer operations follow the core's idempotency rules: a key binds its operation for ``idempotency_ttl``.

Within the ttl the same key replays (or refuses another request); after it the
key is free and names a new operation, as the flow's own keys do. A request
whose holder crashed after writing is resumed once its lease has passed, and
finds what it wrote instead of writing twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from paycore.config import load_config
from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.plugins import collect_registry, create_plugin_manager
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import DrawerClosed, NoOpenDrawer
from paycore_memory import MemoryIdempotencyStore, MemoryRepository

pytestmark = pytest.mark.anyio

TTL = 10.0
LEASE = 2.0


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


class Clock:
    """The flow's wall clock and the store's monotonic clock, moved together by hand."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
        self.seconds = 1_000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.seconds += seconds


class ProcessDied(BaseException):
    """The process stops where this is raised: nothing after it runs, nothing is cleaned up."""


class CrashingStore(MemoryIdempotencyStore):
    """Loses the holder before it can store its result, once: the request wrote, the key stays held."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock.monotonic)
        self.crash_next = False
        self.forget_on_crash = False
        """Also lose the key's record when crashing (as a store that lost its data would)."""

    async def complete(
        self, *, scope: str, key: str, token: str, result: Mapping[str, Any], ttl_seconds: float
    ) -> None:
        if self.crash_next:
            self.crash_next = False
            if self.forget_on_crash:
                await super().release(scope=scope, key=key, token=token)
            raise ProcessDied  # before storing the result
        await super().complete(scope=scope, key=key, token=token, result=result, ttl_seconds=ttl_seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(clock: Clock) -> CrashingStore:
    return CrashingStore(clock)


@pytest.fixture
async def drawers(clock: Clock, store: CrashingStore) -> AsyncIterator[CashDrawers]:
    async with _drawers_on(clock, MemoryRepository(), store) as drawers:
        yield drawers


async def test_an_open_key_within_its_ttl_replays_and_refuses_another_float(drawers: CashDrawers, clock: Clock) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="k")
    clock.advance(TTL - 1)
    assert await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="k") == first
    with pytest.raises(IdempotencyKeyReused):
        await drawers.open(till="T1", opening_float=xof(20_000), opened_by="Awa", idempotency_key="k")
    assert await drawers.sessions() == [first]


async def test_an_open_key_reused_after_its_ttl_opens_a_new_drawer(drawers: CashDrawers, clock: Clock) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="k")
    await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa")
    clock.advance(TTL + 1)
    second = await drawers.open(till="T1", opening_float=xof(20_000), opened_by="Awa", idempotency_key="k")
    assert second.id != first.id
    assert second.opening_float == xof(20_000)
    assert [s.id for s in await drawers.sessions()] == [first.id, second.id]


async def test_a_pay_in_key_within_its_ttl_replays_and_refuses_another_amount(
    drawers: CashDrawers, clock: Clock
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    first = await drawers.pay_in(till="T1", amount=xof(1_000), reason="coins", actor="Awa", idempotency_key="p")
    clock.advance(TTL - 1)
    again = await drawers.pay_in(till="T1", amount=xof(1_000), reason="coins", actor="Awa", idempotency_key="p")
    assert again == first
    with pytest.raises(IdempotencyKeyReused):
        await drawers.pay_in(till="T1", amount=xof(2_000), reason="coins", actor="Awa", idempotency_key="p")
    assert (await drawers.totals(session.id)).expected == xof(11_000)


async def test_a_pay_in_key_reused_after_its_ttl_records_a_new_pay_in(drawers: CashDrawers, clock: Clock) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    first = await drawers.pay_in(till="T1", amount=xof(1_000), reason="coins", actor="Awa", idempotency_key="p")
    clock.advance(TTL + 1)
    second = await drawers.pay_in(till="T1", amount=xof(2_000), reason="coins", actor="Awa", idempotency_key="p")
    assert second.id != first.id
    assert (await drawers.totals(session.id)).expected == xof(13_000)


async def test_an_open_whose_holder_crashed_is_resumed_after_the_lease_without_a_second_drawer(
    drawers: CashDrawers, clock: Clock, store: CrashingStore
) -> None:
    store.crash_next = True
    with pytest.raises(ProcessDied):
        await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="k")
    written = await drawers.sessions()
    with pytest.raises(IdempotencyInProgress):
        await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="k")
    clock.advance(LEASE + 1)
    resumed = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa", idempotency_key="k")
    assert [resumed] == written == await drawers.sessions()


@pytest.mark.parametrize("shifts_since", [0, 4])
async def test_a_pay_out_whose_holder_crashed_is_resumed_after_the_lease_without_paying_twice(
    drawers: CashDrawers, clock: Clock, store: CrashingStore, shifts_since: int
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    store.crash_next = True
    with pytest.raises(ProcessDied):
        await drawers.pay_out(till="T1", amount=xof(4_000), reason="drop", actor="Awa", idempotency_key="d")
    if shifts_since:
        await drawers.close(till="T1", counted=xof(6_000), closed_by="Awa")
    for _ in range(shifts_since):
        await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Moussa")
        await drawers.close(till="T1", counted=xof(5_000), closed_by="Moussa")
    clock.advance(LEASE + 1)
    resumed = await drawers.pay_out(till="T1", amount=xof(4_000), reason="drop", actor="Awa", idempotency_key="d")
    assert await drawers.movements(session.id) == [resumed]
    assert (await drawers.totals(session.id)).expected == xof(6_000)


async def test_a_close_whose_holder_crashed_is_resumed_after_the_lease_and_returns_that_close(
    drawers: CashDrawers, clock: Clock, store: CrashingStore
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    store.crash_next = True
    with pytest.raises(ProcessDied):
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="c")
    clock.advance(LEASE + 1)
    resumed = await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="c")
    assert resumed == await drawers.get(session.id)
    assert resumed.variance == xof(-1_000)


async def test_a_close_by_session_whose_holder_crashed_replays_that_close_instead_of_refusing_it_as_closed(
    drawers: CashDrawers, clock: Clock, store: CrashingStore
) -> None:
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    store.crash_next = True
    with pytest.raises(ProcessDied):
        await drawers.close(session_id=session.id, counted=xof(10_500), closed_by="Awa", idempotency_key="c")
    clock.advance(LEASE + 1)
    resumed = await drawers.close(session_id=session.id, counted=xof(10_500), closed_by="Awa", idempotency_key="c")
    assert resumed == await drawers.get(session.id)
    assert (resumed.counted, resumed.variance) == (xof(10_500), xof(500))


@pytest.mark.parametrize("shifts_since", [0, 3, 6])
async def test_a_keyed_close_retried_after_the_till_reopened_replays_the_first_close_and_leaves_the_new_drawer_open(
    drawers: CashDrawers, clock: Clock, store: CrashingStore, shifts_since: int
) -> None:
    """Looked for among the till's three latest sessions only, the first close was not found after three more
    shifts: the retry closed the next shift's drawer with the first close's count."""
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    store.crash_next = True
    with pytest.raises(ProcessDied):
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    for shift in range(shifts_since):
        await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Moussa")
        await drawers.close(till="T1", counted=xof(5_000), closed_by="Moussa", idempotency_key=f"shift-{shift}")
    second = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Binta")
    clock.advance(LEASE + 1)
    resumed = await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    assert resumed == await drawers.get(first.id)
    assert resumed.variance == xof(-1_000)
    assert await drawers.current("T1") == second


async def test_a_keyed_close_that_lost_its_session_to_another_close_is_refused_again_after_the_till_reopened(
    drawers: CashDrawers,
) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    storage = drawers.storage
    real_list = storage.list_movements

    async def list_then_close_elsewhere(session_id: str) -> Any:
        found = await real_list(session_id)
        del storage.list_movements  # once: the other close counts with the real one
        await drawers.close(till="T1", counted=xof(10_000), closed_by="Binta")
        return found

    storage.list_movements = list_then_close_elsewhere
    with pytest.raises(DrawerClosed, match=f"drawer session {first.id} .* was closed already by Binta"):
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    second = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Moussa")
    # The refusal's answer was lost: the till's retry under its key is refused the same way, never closing the
    # drawer opened since with the count of the first.
    with pytest.raises(DrawerClosed, match=f"drawer session {first.id} .* was closed already by Binta"):
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    assert await drawers.current("T1") == second
    assert (await drawers.get(first.id)).counted == xof(10_000)


def dies_once_counting(drawers: CashDrawers) -> None:
    """The next close dies as it counts the drawer: its key is claimed, nothing is written."""
    storage = drawers.storage

    async def dies(session_id: str) -> Any:
        del storage.list_movements  # once
        raise ProcessDied

    storage.list_movements = dies


@pytest.mark.parametrize("till_since", ["untouched", "closed", "closed and opened again"])
async def test_a_keyed_close_that_died_before_writing_closes_on_its_retry_only_the_session_it_was_asked_for(
    sql_or_memory_drawers: CashDrawers, clock: Clock, till_since: str
) -> None:
    """The retry, asked once the till was closed by another and opened again, closed the new shift's drawer with the
    first shift's count: a false variance on a drawer still in use, and the till closed mid-shift."""
    drawers = sql_or_memory_drawers
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    dies_once_counting(drawers)
    with pytest.raises(ProcessDied):
        await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa", idempotency_key="evening")
    second = None
    if till_since != "untouched":
        await drawers.close(till="T1", counted=xof(10_000), closed_by="Moussa")
    if till_since == "closed and opened again":
        second = await drawers.open(till="T1", opening_float=xof(500), opened_by="Moussa")
    clock.advance(LEASE + 1)
    if till_since == "untouched":
        resumed = await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa", idempotency_key="evening")
        assert resumed == await drawers.get(first.id)
        assert (resumed.counted, resumed.variance) == (xof(14_000), xof(4_000))
        again = await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa", idempotency_key="evening")
        assert again == resumed
        return
    for _ in range(2):  # the retry, and a retry of it: refused the same way
        with pytest.raises(DrawerClosed, match=f"drawer session {first.id} .* was closed already by Moussa"):
            await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa", idempotency_key="evening")
    assert await drawers.current("T1") == second
    assert ((await drawers.get(first.id)).counted, (await drawers.get(first.id)).closed_by) == (xof(10_000), "Moussa")
    # Another request under the key (another count) is refused too, and closes nothing either.
    with pytest.raises(IdempotencyKeyReused):
        await drawers.close(till="T1", counted=xof(500), closed_by="Awa", idempotency_key="evening")
    assert await drawers.current("T1") == second


async def test_a_keyed_close_asked_while_the_till_had_none_open_never_closes_one_opened_once_its_key_is_claimed(
    drawers: CashDrawers, store: CrashingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked once the manager had closed the shift, Awa's close closed the next shift's drawer, opened by Binta as
    the key was claimed, with Awa's count: a false variance, and the till closed under Binta."""
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.close(session_id=first.id, counted=xof(10_000), closed_by="Manager")
    claim, opened = store.claim, []

    async def claimed_as_binta_opens(**asked: Any) -> Any:
        claimed = await claim(**asked)
        if asked["scope"].endswith("|cash-drawers") and not opened:  # the close's key, not an earlier release's
            opened.append(await drawers.open(till="T1", opening_float=xof(25_000), opened_by="Binta"))
        return claimed

    monkeypatch.setattr(store, "claim", claimed_as_binta_opens)
    with pytest.raises(DrawerClosed, match=f"drawer session {first.id} .* was closed already by Manager"):
        await drawers.close(till="T1", counted=xof(12_500), closed_by="Awa", idempotency_key="awa-close")
    assert await drawers.current("T1") == opened[0]


async def test_a_keyed_close_asked_while_none_was_open_keeps_its_refusal_once_the_till_opens_again(
    drawers: CashDrawers,
) -> None:
    """Refused "no open drawer", its answer lost, Bob's close was retried once Cy had opened the till: it closed
    Cy's drawer with Bob's count, a false variance on a drawer in use."""
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.close(session_id=first.id, counted=xof(10_000), closed_by="Manager")
    asked = {"till": "T1", "counted": xof(9_000), "closed_by": "Bob", "idempotency_key": "bob-evening"}
    with pytest.raises(DrawerClosed, match=f"drawer session {first.id} .* was closed already by Manager"):
        await drawers.close(**asked)
    cy = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Cy")
    with pytest.raises(DrawerClosed, match=f"drawer session {first.id} .* was closed already by Manager"):
        await drawers.close(**asked)
    assert await drawers.current("T1") == cy


async def test_a_keyed_close_asked_while_none_was_open_whose_holder_died_is_refused_so_on_its_retry(
    drawers: CashDrawers, clock: Clock, store: CrashingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its retry, once a drawer had opened, was refused as another request under the key for as long as one was."""
    release = store.release

    async def dies_before_letting_go(**held: Any) -> None:
        if not held["scope"].endswith("|cash-drawers"):  # an earlier release's key space, asked first
            return await release(**held)
        monkeypatch.setattr(store, "release", release)
        raise ProcessDied

    monkeypatch.setattr(store, "release", dies_before_letting_go)
    with pytest.raises(ProcessDied):
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    opened = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Binta")
    clock.advance(LEASE + 1)
    with pytest.raises(NoOpenDrawer):  # what it answered when asked: nothing was open
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    assert await drawers.current("T1") == opened


async def test_a_close_key_whose_record_was_lost_refuses_another_count_and_closes_nothing(
    drawers: CashDrawers, clock: Clock, store: CrashingStore
) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    store.crash_next = store.forget_on_crash = True
    with pytest.raises(ProcessDied):
        await drawers.close(till="T1", counted=xof(9_000), closed_by="Awa", idempotency_key="evening")
    second = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Binta")
    with pytest.raises(IdempotencyKeyReused, match=f"close drawer session {first.id} with 9000 XOF counted by Awa"):
        await drawers.close(till="T1", counted=xof(5_000), closed_by="Awa", idempotency_key="evening")
    assert await drawers.current("T1") == second


async def test_the_same_close_key_after_its_ttl_closes_the_drawer_open_now(drawers: CashDrawers, clock: Clock) -> None:
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa", idempotency_key="evening")
    clock.advance(TTL + 1)
    second = await drawers.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    closed = await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa", idempotency_key="evening")
    assert closed.id == second.id != first.id
    assert await drawers.current("T1") is None


@pytest.fixture(params=["memory", "sqlite"])
async def sql_or_memory_drawers(
    request: pytest.FixtureRequest, clock: Clock, store: CrashingStore, tmp_path: Any
) -> AsyncIterator[CashDrawers]:
    """Drawers on the memory adapter, or on SQLite, whose repository claims keys in its own units of work."""
    if request.param == "memory":
        async with _drawers_on(clock, MemoryRepository(), store) as drawers:
            yield drawers
        return
    from paycore_sqlalchemy import Database, SqlIdempotencyStore, SqlPaymentRepository

    database = Database(f"sqlite:///{tmp_path / 'pos.db'}")
    keys = SqlIdempotencyStore(database=database, clock=lambda: clock.seconds)
    async with _drawers_on(clock, SqlPaymentRepository(database=database), keys) as drawers:
        yield drawers


@contextlib.asynccontextmanager
async def _drawers_on(clock: Clock, repository: Any, keys: Any) -> AsyncIterator[CashDrawers]:
    config = load_config(
        {
            "providers": {"cash": {"type": "cash", "currency": "XOF"}},
            "provider_timeout": 1,
            "idempotency_lease": LEASE,
            "idempotency_ttl": TTL,
        }
    )
    manager = create_plugin_manager()
    flow = PaymentFlow(
        config=config,
        plugin_manager=manager,
        registry=collect_registry(manager),
        repository=repository,
        idempotency_store=keys,
        clock=clock.now,
    )
    async with flow:
        yield CashDrawers(flow)


async def test_a_sale_whose_holder_crashed_before_the_drawer_had_it_is_settled_by_its_retry_after_the_close(
    sql_or_memory_drawers: CashDrawers, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry, refused "no open drawer" as a request that stored nothing, released its key and left the first
    attempt's payment pending with its call for good (on a repository claiming keys in its own writes)."""
    from paycore.status import PaymentStatus
    from paycore_cash.errors import CashSaleFailed
    from paycore_cash.sales import take_cash

    drawers = sql_or_memory_drawers
    await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    cash = drawers.flow.provider("cash")

    async def dies(payment: Any) -> Any:
        raise ProcessDied  # the payment and its call are stored; the drawer has nothing

    monkeypatch.setattr(cash, "initiate", dies)
    sale = {"amount": xof(3_000), "tendered": xof(5_000), "till": "T1", "order_id": "T1-7", "idempotency_key": "s"}
    with pytest.raises(ProcessDied):
        await take_cash(drawers.flow, **sale)
    monkeypatch.undo()
    await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa")
    clock.advance(LEASE + 1)
    with pytest.raises(CashSaleFailed) as failed:
        await take_cash(drawers.flow, **sale)
    payment = await drawers.flow.get_payment(failed.value.payment_id)
    assert (payment.status, payment.pending_call) == (PaymentStatus.FAILED, None)
    assert await drawers.flow.list_payments() == [payment]


@pytest.mark.parametrize("operation", ["pay_in", "pay_out"])
async def test_a_movement_key_whose_record_was_lost_is_refused_at_another_till(
    drawers: CashDrawers, clock: Clock, store: CrashingStore, operation: str
) -> None:
    """The same key sent for another till answered "done" with the first till's movement: nothing reached the
    second till's drawer, and its close was then off by the amount."""
    first = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    second = await drawers.open(till="T2", opening_float=xof(10_000), opened_by="Binta")
    move = getattr(drawers, operation)
    store.crash_next = store.forget_on_crash = True
    with pytest.raises(ProcessDied):
        await move(till="T1", amount=xof(4_000), reason="float", actor="Awa", idempotency_key="k")
    clock.advance(LEASE + 1)
    with pytest.raises(IdempotencyKeyReused, match="at till 'T1', not 'T2'"):
        await move(till="T2", amount=xof(4_000), reason="float", actor="Awa", idempotency_key="k")
    assert await drawers.movements(second.id) == []
    assert len(await drawers.movements(first.id)) == 1


@pytest.mark.parametrize("closed_meanwhile", [False, True])
@pytest.mark.parametrize("kind", ["pay_in", "pay_out"])
async def test_a_movement_whose_holder_stalled_past_its_lease_into_the_next_window_is_stored_once(
    sql_or_memory_drawers: CashDrawers,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    closed_meanwhile: bool,
) -> None:
    """The holder of a keyed movement freezes just before storing it (a till asleep); its lease passes and the
    window of ``idempotency_ttl`` turns (as at midnight UTC with the default day), and the retry takes the key
    over, finds nothing and stores the movement under the new window's id. The holder wakes: it stored its own
    under the old window's id, and the drawer counted the cash twice. With the drawer closed before it woke, it
    was told to open one first, though its movement was stored (a cashier would count the cash in again)."""
    drawers = sql_or_memory_drawers
    session = await drawers.open(till="T1", opening_float=xof(10_000), opened_by="Awa")
    clock.advance(TTL - LEASE - 1)  # late in the key's window
    storage, stored_by = drawers.storage, drawers.storage.add_movement
    frozen, woken = anyio.Event(), anyio.Event()

    async def freezing_once(movement: Any, **options: Any) -> Any:
        if not frozen.is_set():
            frozen.set()
            await woken.wait()
        return await stored_by(movement, **options)

    monkeypatch.setattr(storage, "add_movement", freezing_once)
    move = getattr(drawers, kind)
    asked = {"till": "T1", "amount": xof(4_000), "reason": "drop", "actor": "Awa", "idempotency_key": "drop-1"}
    answers: list[Any] = []

    async def holder() -> None:
        answers.append(await move(**asked))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(holder)
        await frozen.wait()
        clock.advance(LEASE + 2)  # past the lease, into the next window
        answers.append(await move(**asked))
        expected = xof(14_000 if kind == "pay_in" else 6_000)
        if closed_meanwhile:
            await drawers.close(till="T1", counted=expected, closed_by="Awa")
        woken.set()
    assert answers[0] == answers[1]
    assert [movement.id for movement in await drawers.movements(session.id)] == [answers[0].id]
    assert (await drawers.totals(session.id)).expected == expected
