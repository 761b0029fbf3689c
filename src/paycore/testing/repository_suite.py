"""``RepositoryConformance``: the rules every ``PaymentRepository`` must keep.

Subclass it in your package's tests and provide a fresh, empty repository::

    class TestMyRepository(RepositoryConformance):
        @pytest.fixture
        async def repository(self):
            repo = MyRepository(...)
            yield repo
            await repo.aclose()
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from attrs import evolve

from paycore.errors import ConcurrentUpdate, DuplicateExternalId, DuplicatePayment, PaymentNotFound, ValidationError
from paycore.inputs import as_kept, json_document
from paycore.listing import read_page
from paycore.money import Money
from paycore.records import Payment, Refund
from paycore.status import PaymentStatus, RefundStatus
from paycore.storage import PaymentRepository
from paycore.testing import records as test_records
from paycore.testing.call_listing_suite import CallListingConformance
from paycore.testing.cursor_suite import CursorConformance
from paycore.testing.keys_suite import KeysConformance
from paycore.testing.readback_suite import ReadBackConformance
from paycore.testing.records import BASE_TIME, make_event, make_payment, make_receipt, next_version, rich_payment
from paycore.testing.refund_listing_suite import RefundListingConformance
from paycore.testing.save_suite import SaveConformance
from paycore.testing.update_suite import UpdateConformance

__all__ = ["RepositoryConformance"]


class RepositoryConformance(
    SaveConformance, ReadBackConformance, UpdateConformance, KeysConformance, CallListingConformance,
    RefundListingConformance, CursorConformance,
):  # fmt: skip
    """Conformance tests for a :class:`~paycore.storage.PaymentRepository` and its optional parts (``update``,
    key completion, listings of the payments that carry a provider call or hold a pending refund)."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        """Every test runs under asyncio and under trio."""
        return request.param

    @pytest.fixture
    async def repository(self) -> Any:
        """Override: yield a fresh, empty repository."""
        raise NotImplementedError("subclasses provide the repository fixture")

    async def test_an_added_payment_reads_back_identical(self, repository: PaymentRepository) -> None:
        payment = rich_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])
        assert await repository.get(payment.id) == payment

    async def test_metadata_the_flow_accepted_reads_back_equal(self, repository: PaymentRepository) -> None:
        metadata = as_kept(json_document({"zz": 1, "fx": 1e23, "huge": 1.5e300, "neg": -0.0}, what="m"))  # jsonb
        await repository.add(payment := make_payment(metadata=metadata), [])
        assert await repository.get(payment.id) == payment

    async def test_unknown_payment_is_not_found(self, repository: PaymentRepository) -> None:
        with pytest.raises(PaymentNotFound):
            await repository.get("pay_missing")

    async def test_get_many_reads_the_stored_payments_among_the_ids(self, repository: PaymentRepository) -> None:
        first, second = rich_payment(), make_payment()
        await repository.add(first, [])
        await repository.add(second, [])
        found = await repository.get_many([second.id, "pay_missing", first.id, second.id])
        assert sorted(found, key=lambda p: p.id) == sorted([first, second], key=lambda p: p.id)
        assert await repository.get_many(["pay_missing"]) == []
        assert await repository.get_many([]) == []

    async def test_adding_an_existing_id_is_refused(self, repository: PaymentRepository) -> None:
        payment = make_payment()
        await repository.add(payment, [])
        with pytest.raises(DuplicatePayment):
            await repository.add(next_version(payment, order_id="other"), [])
        assert await repository.get(payment.id) == payment

    async def test_save_stores_the_next_version_and_appends_events(self, repository: PaymentRepository) -> None:
        payment = make_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])
        changed = next_version(payment, status=PaymentStatus.SUCCEEDED, captured_amount=payment.amount, event_count=2)
        await repository.save(changed, [make_event(payment, 2)])
        assert await repository.get(payment.id) == changed
        assert [e.sequence for e in await repository.list_events(payment.id)] == [1, 2]

    async def test_a_save_stores_every_event_it_carries(self, repository: PaymentRepository) -> None:
        """A save may carry several events (a refund, its status, the payment's): each is stored."""
        payment = make_payment()
        events = [make_event(payment, 1, "created")]
        await repository.add(payment, events)
        current = payment
        for kinds in (
            ("refund_created", "status_changed"),
            ("refund_created", "refund_status_changed", "status_changed"),
        ):
            carried = [make_event(payment, current.event_count + offset, kind) for offset, kind in enumerate(kinds, 1)]
            current = next_version(current, event_count=current.event_count + len(carried))
            await repository.save(current, carried)
            events += carried
            assert await repository.get(payment.id) == current
            assert [e.sequence for e in await repository.list_events(payment.id)] == list(
                range(1, current.event_count + 1)
            ), f"a save carrying {len(carried)} events did not store every one"
            assert await repository.list_events(payment.id) == events

    async def test_a_stale_write_is_refused_and_changes_nothing(self, repository: PaymentRepository) -> None:
        payment = make_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])
        first = next_version(payment, status=PaymentStatus.PROCESSING, event_count=2)
        await repository.save(first, [make_event(payment, 2)])
        stale = next_version(payment, status=PaymentStatus.FAILED, event_count=2)
        with pytest.raises(ConcurrentUpdate):
            await repository.save(stale, [make_event(payment, 2, "other")], [make_receipt(payment, "evt-x")])
        assert await repository.get(payment.id) == first
        assert [e.kind for e in await repository.list_events(payment.id)] == ["created", "status_changed"]
        assert not await repository.has_receipt(payment.provider, payment.tenant, "evt-x")

    async def test_saving_an_unknown_payment_is_not_found(self, repository: PaymentRepository) -> None:
        with pytest.raises(PaymentNotFound):
            await repository.save(make_payment(version=2), [])

    async def test_of_concurrent_writers_of_one_version_exactly_one_wins(self, repository: PaymentRepository) -> None:
        payment = make_payment()
        await repository.add(payment, [])
        outcomes: list[str] = []

        async def write(index: int) -> None:
            try:
                await repository.save(next_version(payment, description=f"writer {index}"), [])
                outcomes.append(f"won {index}")
            except ConcurrentUpdate:
                outcomes.append("lost")

        async with anyio.create_task_group() as group:
            for index in range(10):
                group.start_soon(write, index)
        winners = [o for o in outcomes if o.startswith("won")]
        assert len(winners) == 1
        assert (await repository.get(payment.id)).description == f"writer {winners[0].split()[1]}"

    async def test_a_webhook_receipt_is_recorded_once(self, repository: PaymentRepository) -> None:
        payment = make_payment()
        await repository.add(payment, [])
        assert not await repository.has_receipt("fake", None, "evt-1")
        second = next_version(payment)
        await repository.save(second, [], [make_receipt(payment, "evt-1")])
        assert await repository.has_receipt("fake", None, "evt-1")
        with pytest.raises(ConcurrentUpdate):
            await repository.save(next_version(second, description="again"), [], [make_receipt(payment, "evt-1")])
        assert await repository.get(payment.id) == second

    async def test_receipts_are_scoped_by_provider_and_tenant(self, repository: PaymentRepository) -> None:
        payment = make_payment(tenant="chez-awa")
        await repository.add(payment, [])
        await repository.save(next_version(payment), [], [make_receipt(payment, "evt-1")])
        assert await repository.has_receipt("fake", "chez-awa", "evt-1")
        assert not await repository.has_receipt("fake", "le-baobab", "evt-1")
        assert not await repository.has_receipt("wave", "chez-awa", "evt-1")
        assert not await repository.has_receipt("fake", None, "evt-1")

    async def test_a_payment_is_found_by_its_provider_external_id(self, repository: PaymentRepository) -> None:
        payment = make_payment(tenant="chez-awa")
        await repository.add(payment, [])
        await repository.save(next_version(payment, external_id="gw-77"), [])
        assert (await repository.get_by_external_id("fake", "chez-awa", "gw-77")).id == payment.id
        for provider, tenant in (("fake", "le-baobab"), ("wave", "chez-awa"), ("fake", None)):
            with pytest.raises(PaymentNotFound):
                await repository.get_by_external_id(provider, tenant, "gw-77")

    async def test_a_payment_is_found_by_any_of_its_references(self, repository: PaymentRepository) -> None:
        payment = make_payment(tenant="chez-awa", external_id="cs_1", references=("cs_1",))
        await repository.add(payment, [])
        await repository.save(next_version(payment, references=("cs_1", "pi_2")), [])
        assert (await repository.get_by_external_id("fake", "chez-awa", "cs_1")).id == payment.id
        assert (await repository.get_by_external_id("fake", "chez-awa", "pi_2")).id == payment.id
        with pytest.raises(PaymentNotFound):
            await repository.get_by_external_id("fake", "le-baobab", "pi_2")

    async def test_a_reference_another_payment_holds_is_refused(self, repository: PaymentRepository) -> None:
        first = make_payment(tenant="chez-awa", external_id="pi_1")
        second = make_payment(tenant="chez-awa")
        await repository.add(first, [])
        await repository.add(second, [])
        with pytest.raises(DuplicateExternalId):
            await repository.save(next_version(second, references=("pi_1",)), [])
        assert await repository.get(second.id) == second
        assert (await repository.get_by_external_id("fake", "chez-awa", "pi_1")).id == first.id

    async def test_refunds_are_stored_with_their_payment(self, repository: PaymentRepository) -> None:
        payment = make_payment(status=PaymentStatus.SUCCEEDED, captured_amount=Money.of("5000", "XOF"))
        await repository.add(payment, [])
        refund = Refund(
            id="re_1", payment_id=payment.id, amount=Money.of("1000", "XOF"), created_at=BASE_TIME, updated_at=BASE_TIME
        )
        second = next_version(payment, refunds=(refund,))
        await repository.save(second, [])
        settled = evolve(
            refund, status=RefundStatus.SUCCEEDED, external_id="r-9", updated_at=BASE_TIME + timedelta(seconds=5)
        )
        third = next_version(second, refunds=(settled,), status=PaymentStatus.PARTIALLY_REFUNDED)
        await repository.save(third, [])
        assert (await repository.get(payment.id)).refunds == (settled,)

    async def test_list_payments_filters_by_tenant_order_and_status(self, repository: PaymentRepository) -> None:
        made = []
        for index, (tenant, order, status) in enumerate([
            ("chez-awa", "o1", PaymentStatus.SUCCEEDED),
            ("chez-awa", "o2", PaymentStatus.PENDING),
            ("le-baobab", "o1", PaymentStatus.SUCCEEDED),
            (None, "o1", PaymentStatus.FAILED),
        ]):  # fmt: skip
            payment = make_payment(tenant=tenant, order_id=order, status=status,
                                   created_at=BASE_TIME + timedelta(minutes=index))  # fmt: skip
            await repository.add(payment, [])
            made.append(payment)
        assert [p.id for p in await repository.list_payments(tenant="chez-awa")] == [made[0].id, made[1].id]
        assert [p.id for p in await repository.list_payments(order_id="o1")] == [made[0].id, made[2].id, made[3].id]
        assert [p.id for p in await repository.list_payments(status=PaymentStatus.SUCCEEDED, tenant="le-baobab")] == [
            made[2].id
        ]
        assert len(await repository.list_payments(limit=2)) == 2
        assert await repository.list_payments(tenant="nobody") == []

    async def _seed_listing(self, repository: PaymentRepository) -> list[Payment]:
        """Six payments a minute apart: chez-awa's (succeeded, pending, succeeded), then le-baobab's."""
        made = []
        for index, (tenant, status) in enumerate([
            ("chez-awa", PaymentStatus.SUCCEEDED), ("chez-awa", PaymentStatus.PENDING),
            ("chez-awa", PaymentStatus.SUCCEEDED), ("le-baobab", PaymentStatus.SUCCEEDED),
            ("le-baobab", PaymentStatus.FAILED), (None, PaymentStatus.SUCCEEDED),
        ]):  # fmt: skip
            payment = make_payment(tenant=tenant, status=status, created_at=BASE_TIME + timedelta(minutes=index))
            await repository.add(payment, [])
            made.append(payment)
        return made

    async def test_list_payments_by_creation_time_includes_the_start_and_excludes_the_end(
        self, repository: PaymentRepository
    ) -> None:
        made = await self._seed_listing(repository)
        found = await repository.list_payments(
            created_from=BASE_TIME + timedelta(minutes=1), created_before=BASE_TIME + timedelta(minutes=4)
        )
        assert [p.id for p in found] == [made[1].id, made[2].id, made[3].id]
        an_hour_east = timezone(timedelta(hours=1))
        assert [p.id for p in await repository.list_payments(
            tenant="le-baobab", created_from=(BASE_TIME + timedelta(minutes=4)).astimezone(an_hour_east)
        )] == [made[4].id]  # fmt: skip

    async def test_list_payments_newest_first_reverses_the_order(self, repository: PaymentRepository) -> None:
        made = await self._seed_listing(repository)
        newest = await repository.list_payments(tenant="chez-awa", newest_first=True)
        assert [p.id for p in newest] == [made[2].id, made[1].id, made[0].id]
        assert [p.id for p in await repository.list_payments(newest_first=True, limit=2)] == [made[5].id, made[4].id]

    async def test_list_payments_by_status_alone_and_within_a_tenant(self, repository: PaymentRepository) -> None:
        made = await self._seed_listing(repository)
        succeeded = await repository.list_payments(status=PaymentStatus.SUCCEEDED)
        assert [p.id for p in succeeded] == [made[0].id, made[2].id, made[3].id, made[5].id]
        awa = await repository.list_payments(tenant="chez-awa", status=PaymentStatus.SUCCEEDED, newest_first=True)
        assert [p.id for p in awa] == [made[2].id, made[0].id]

    async def test_a_cursor_pages_through_every_payment_once_while_payments_are_added(
        self, repository: PaymentRepository
    ) -> None:
        made = await self._seed_listing(repository)
        first = await read_page(repository, limit=2, tenant="chez-awa")
        assert [p.id for p in first.items] == [made[0].id, made[1].id]
        assert first.next_cursor is not None
        backdated = make_payment(tenant="chez-awa", created_at=BASE_TIME - timedelta(hours=1))
        later = make_payment(tenant="chez-awa", created_at=BASE_TIME + timedelta(hours=1))
        tied = test_records.tied_with(made[1])  # the cursor's own time: only the id tells which page each belongs to
        for payment in (backdated, later, *tied):
            await repository.add(payment, [])
        seen = [p.id for p in first.items]
        cursor: str | None = first.next_cursor
        while cursor is not None:
            page = await read_page(repository, limit=2, tenant="chez-awa", after=cursor)
            seen += [p.id for p in page.items]
            cursor = page.next_cursor
        # Ties are ordered by id as the store's collation compares text: the store's own listing says which side of
        # the cursor each tied payment is on (a database whose collation is not C may differ from Python).
        listed = [p.id for p in await repository.list_payments(tenant="chez-awa")]
        assert listed[0] == backdated.id
        cursor_at = listed.index(made[1].id)
        for payment in tied:
            if listed.index(payment.id) < cursor_at:
                assert payment.id not in seen, "a payment made at the cursor's time, listed before it, came after it"
            else:
                assert payment.id in seen, "a payment made at the cursor's time, listed after it, was skipped"
        assert seen == [made[0].id, made[1].id, *listed[cursor_at + 1 :]]
        assert len(seen) == len(set(seen))

    async def test_a_cursor_pages_newest_first_down_to_the_oldest(self, repository: PaymentRepository) -> None:
        made = await self._seed_listing(repository)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            page = await read_page(repository, limit=4, newest_first=True, after=cursor)
            seen += [p.id for p in page.items]
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == [p.id for p in reversed(made)]
        assert pages == 2

    async def test_an_edited_cursor_is_refused(self, repository: PaymentRepository) -> None:
        await self._seed_listing(repository)
        cursor = (await read_page(repository, limit=1, tenant="chez-awa")).next_cursor
        assert cursor is not None
        body, _, check = cursor.partition(".")
        edited = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + check
        for wrong in (edited, "not-a-cursor", cursor + "0", ""):
            with pytest.raises(ValidationError, match="cursor"):
                await repository.list_payments(tenant="chez-awa", after=wrong)

    async def test_a_cursor_of_another_tenants_listing_is_refused(self, repository: PaymentRepository) -> None:
        await self._seed_listing(repository)
        cursor = (await read_page(repository, limit=1, tenant="chez-awa")).next_cursor
        assert cursor is not None
        with pytest.raises(ValidationError, match="another listing"):
            await repository.list_payments(tenant="le-baobab", after=cursor)
        with pytest.raises(ValidationError, match="another listing"):
            await repository.list_payments(tenant="chez-awa", newest_first=True, after=cursor)

    async def test_a_limit_that_is_no_count_is_refused(self, repository: PaymentRepository) -> None:
        await self._seed_listing(repository)
        for limit in (-1, 10**20, 2.5, "10", True):
            with pytest.raises(ValidationError, match="limit must be a whole number"):
                await repository.list_payments(limit=limit)  # type: ignore[arg-type]
            with pytest.raises(ValidationError, match="limit must be a whole number"):
                await read_page(repository, limit=limit)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="limit must be a whole number from 1"):
            await read_page(repository, limit=0)

    async def test_a_tenant_that_is_no_name_is_refused_not_read_as_no_tenant(
        self, repository: PaymentRepository
    ) -> None:
        await self._seed_listing(repository)
        for tenant in ("", "chez\tawa", "x" * 65):
            with pytest.raises(ValidationError, match="tenant must be"):
                await repository.list_payments(tenant=tenant)

    async def test_a_naive_creation_time_bound_is_refused(self, repository: PaymentRepository) -> None:
        with pytest.raises(ValidationError, match=r"created_from .* no time zone"):
            await repository.list_payments(created_from=datetime(2026, 12, 4))

    async def test_list_stale_finds_old_unfinished_payments(self, repository: PaymentRepository) -> None:
        old_pending = make_payment(status=PaymentStatus.PENDING, updated_at=BASE_TIME - timedelta(hours=2))
        old_done = make_payment(status=PaymentStatus.SUCCEEDED, updated_at=BASE_TIME - timedelta(hours=2))
        new_pending = make_payment(status=PaymentStatus.PROCESSING, updated_at=BASE_TIME)
        old_processing = make_payment(status=PaymentStatus.PROCESSING, updated_at=BASE_TIME - timedelta(hours=3))
        for payment in (old_pending, old_done, new_pending, old_processing):
            await repository.add(payment, [])
        stale = await repository.list_stale(
            statuses=[PaymentStatus.PENDING, PaymentStatus.PROCESSING],
            updated_before=BASE_TIME - timedelta(hours=1),
            limit=10,
        )
        assert [p.id for p in stale] == [old_processing.id, old_pending.id]
        limited = await repository.list_stale(
            statuses=[PaymentStatus.PENDING, PaymentStatus.PROCESSING], updated_before=BASE_TIME, limit=1
        )
        assert len(limited) == 1

    async def test_events_read_back_complete_and_in_order(self, repository: PaymentRepository) -> None:
        payment = rich_payment()
        events = [
            make_event(payment, 1, "created", to_status="pending", amount=payment.amount),
            make_event(payment, 2, "status_changed", from_status="pending", to_status="processing",
                       provider_event_id="evt-9", message="sent", cause="webhook"),
            make_event(payment, 3, "refund_created", refund_id="re_b", amount=Money.of("1.001", "KWD")),
        ]  # fmt: skip
        await repository.add(payment, events)
        assert await repository.list_events(payment.id) == events

    async def test_tenant_none_is_its_own_scope_for_external_ids(self, repository: PaymentRepository) -> None:
        mine = make_payment(tenant=None, external_id="same")
        theirs = make_payment(tenant="chez-awa", external_id="same")
        await repository.add(mine, [])
        await repository.add(theirs, [])
        assert (await repository.get_by_external_id("fake", None, "same")).id == mine.id
        assert (await repository.get_by_external_id("fake", "chez-awa", "same")).id == theirs.id
