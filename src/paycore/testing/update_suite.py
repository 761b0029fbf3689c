"""``UpdateConformance``: the rules of a repository's one-unit ``update`` (read, decide, write).

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`: a
repository that offers :class:`~paycore.storage.UpdatingRepository` runs these;
one that does not skips them, since the flow then reads and writes in two units.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest
from attrs import evolve

from paycore.errors import ConcurrentUpdate, DuplicateExternalId, PaymentNotFound, ValidationError
from paycore.money import Money
from paycore.records import Payment, PaymentEvent, Refund
from paycore.status import FraudStatus, PaymentStatus, RefundStatus
from paycore.storage import PaymentLookup, PaymentWrite, UpdatingRepository
from paycore.testing.records import make_event, make_payment, make_receipt, next_version, rich_payment

__all__ = ["UpdateConformance"]

WRITERS = 8
"""How many writers update one payment at once in the test of concurrent updates."""
ATTEMPTS = 10 * WRITERS
"""How many times each writer tries before it gives up (a correct store refuses it fewer than ``WRITERS`` times)."""
CONCURRENT_SECONDS = 60.0
"""How long those writers may take, together, before the test fails (a store that waits for ever)."""


def _updating(repository: Any) -> UpdatingRepository:
    if not isinstance(repository, UpdatingRepository):
        pytest.skip(f"{type(repository).__name__} has no update(): the flow reads and writes in two units")
    return repository


class UpdateConformance:
    """Conformance tests for :meth:`~paycore.storage.UpdatingRepository.update`."""

    async def test_update_decides_on_the_stored_payment_and_writes_it_with_its_events(self, repository: Any) -> None:
        updating = _updating(repository)
        payment = make_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])
        seen: list[Payment] = []

        def decide(current: Payment) -> PaymentWrite:
            seen.append(current)
            changed = next_version(current, status=PaymentStatus.SUCCEEDED, captured_amount=current.amount)
            return PaymentWrite(changed, [make_event(current, 2)], [make_receipt(current, "evt-paid")])

        read, written = await updating.update(PaymentLookup.by_id(payment.id), decide)
        assert seen == [payment]
        assert read == payment
        assert written is not None
        assert await repository.get(payment.id) == written.payment
        assert [e.sequence for e in await repository.list_events(payment.id)] == [1, 2]
        assert await repository.has_receipt(payment.provider, payment.tenant, "evt-paid")

    async def test_update_finds_a_payment_by_reference_within_its_tenant(self, repository: Any) -> None:
        updating = _updating(repository)
        payment = make_payment(tenant="chez-awa", external_id="ext-1", references=("ext-1", "ext-2"))
        await repository.add(payment, [])

        def keep(current: Payment) -> None:
            return None

        read, written = await updating.update(PaymentLookup.by_reference("fake", "chez-awa", "ext-2"), keep)
        assert (read, written) == (payment, None)
        for lookup in (
            PaymentLookup.by_reference("fake", "le-baobab", "ext-2"),
            PaymentLookup.by_reference("fake", None, "ext-2"),
            PaymentLookup.by_reference("other", "chez-awa", "ext-2"),
            PaymentLookup.by_id("pay_missing"),
        ):
            with pytest.raises(PaymentNotFound):
                await updating.update(lookup, keep)

    async def test_an_update_stores_every_event_it_carries(self, repository: Any) -> None:
        """An update may carry several events (a refund, its status, the payment's): each is stored."""
        updating = _updating(repository)
        payment = make_payment()
        events = [make_event(payment, 1, "created")]
        await repository.add(payment, events)
        writes = [
            (False, ("refund_created", "refund_status_changed")),  # read by the repository
            (True, ("refund_created", "refund_status_changed", "status_changed")),  # over the copy in hand
        ]
        for over_known, kinds in writes:
            held = await repository.get(payment.id)
            carried = [make_event(held, held.event_count + offset, kind) for offset, kind in enumerate(kinds, 1)]

            def decide(current: Payment, carried: list[PaymentEvent] = carried) -> PaymentWrite:
                return PaymentWrite(next_version(current, event_count=current.event_count + len(carried)), carried)

            known = held if over_known else None
            _, written = await updating.update(PaymentLookup.by_id(payment.id), decide, known=known)
            assert written is not None
            events += carried
            stored = await repository.get(payment.id)
            assert stored == written.payment
            assert [e.sequence for e in await repository.list_events(payment.id)] == list(
                range(1, stored.event_count + 1)
            ), f"an update carrying {len(carried)} events did not store every one"
            assert await repository.list_events(payment.id) == events

    async def test_an_update_giving_a_reference_another_payment_holds_is_refused_and_changes_nothing(
        self, repository: Any
    ) -> None:
        """``update`` keeps the rule of ``save``: a reference belongs to one payment per provider and tenant."""
        updating = _updating(repository)
        first = make_payment(tenant="chez-awa", external_id="pi_1", references=("pi_1",))
        second = make_payment(tenant="chez-awa", external_id="pi_2", references=("pi_2",))
        await repository.add(first, [make_event(first, 1, "created")])
        await repository.add(second, [make_event(second, 1, "created")])
        events = await repository.list_events(second.id)
        takes: list[dict[str, Any]] = [
            {"references": ("pi_2", "pi_1")},  # another reference it learns
            {"external_id": "pi_1", "references": ("pi_1",)},  # the gateway's id it reports
        ]
        for known in (None, second):
            for fields in takes:

                def decide(current: Payment, fields: dict[str, Any] = fields) -> PaymentWrite:
                    changed = next_version(current, event_count=2, **fields)
                    return PaymentWrite(changed, [make_event(current, 2)], [make_receipt(current, "evt-taken")])

                with pytest.raises(DuplicateExternalId):
                    await updating.update(PaymentLookup.by_id(second.id), decide, known=known)
                assert await repository.get(second.id) == second
                assert await repository.list_events(second.id) == events
                assert not await repository.has_receipt(second.provider, second.tenant, "evt-taken")
                assert await repository.get_by_external_id("fake", "chez-awa", "pi_1") == first
                assert await repository.get_by_external_id("fake", "chez-awa", "pi_2") == second
        assert await repository.get(first.id) == first

    async def test_a_decision_that_raises_writes_nothing(self, repository: Any) -> None:
        updating = _updating(repository)
        payment = make_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])

        def refuse(current: Payment) -> PaymentWrite:
            raise ValidationError("refused after deciding")

        with pytest.raises(ValidationError):
            await updating.update(PaymentLookup.by_id(payment.id), refuse)
        assert await repository.get(payment.id) == payment
        assert len(await repository.list_events(payment.id)) == 1

    async def test_an_update_with_a_receipt_seen_before_is_refused_and_changes_nothing(self, repository: Any) -> None:
        """The refused update leaves no event behind, and the payment's next update is stored."""
        updating = _updating(repository)
        payment = make_payment()
        events = [make_event(payment, 1, "created")]
        await repository.add(payment, events)
        second = next_version(payment, event_count=2)
        events.append(make_event(payment, 2, provider_event_id="evt-1", cause="webhook"))
        await repository.save(second, events[1:], [make_receipt(payment, "evt-1")])

        def again(current: Payment) -> PaymentWrite:
            carried = [make_event(current, 3, cause="webhook", provider_event_id="evt-1")]
            return PaymentWrite(next_version(current, description="again", event_count=3), carried,
                                [make_receipt(current, "evt-1")])  # fmt: skip

        for known in (None, second):
            with pytest.raises(ConcurrentUpdate):
                await updating.update(PaymentLookup.by_id(payment.id), again, known=known)
            assert await repository.get(payment.id) == second
            assert await repository.list_events(payment.id) == events, "an update refused for its receipt left events"
        polled = make_event(payment, 3, "fraud_status_changed", cause="poll")  # the refused update's sequence

        def poll(current: Payment) -> PaymentWrite:
            return PaymentWrite(next_version(current, fraud_status=FraudStatus.ACCEPTED, event_count=3), [polled])

        _, written = await updating.update(PaymentLookup.by_id(payment.id), poll)
        assert written is not None
        assert await repository.get(payment.id) == written.payment, "the update after a refused one was not stored"
        assert await repository.list_events(payment.id) == [*events, polled]

    async def test_concurrent_updates_lose_no_change(self, repository: Any) -> None:
        """Each update decides on what it read; a write over a changed payment is refused, never lost.

        Each refusal means another writer won meanwhile, so a writer refused :data:`ATTEMPTS` times in a row gives
        up: an update deciding on a stale read (a cache) is refused for ever, and the test fails saying so instead
        of hanging. The writers get :data:`CONCURRENT_SECONDS`: one waiting in the event loop is cancelled then,
        one blocked in a worker thread (which no cancellation reaches) fails the test once its thread returns."""
        updating = _updating(repository)
        payment = make_payment(description="0")
        await repository.add(payment, [])
        gave_up: list[int] = []

        def add_one(current: Payment) -> PaymentWrite:
            return PaymentWrite(next_version(current, description=str(int(current.description) + 1)))

        async def writer() -> None:
            for _ in range(ATTEMPTS):
                try:
                    await updating.update(PaymentLookup.by_id(payment.id), add_one)
                    return
                except ConcurrentUpdate:
                    await anyio.lowlevel.checkpoint()
            gave_up.append(1)

        started = anyio.current_time()
        with anyio.move_on_after(CONCURRENT_SECONDS) as bound:
            async with anyio.create_task_group() as group:
                for _ in range(WRITERS):
                    group.start_soon(writer)
        if bound.cancel_called or anyio.current_time() - started > CONCURRENT_SECONDS:
            pytest.fail(f"{WRITERS} concurrent updates of one payment did not all end within {CONCURRENT_SECONDS} s")
        assert not gave_up, (
            f"{len(gave_up)} of {WRITERS} writers were refused {ATTEMPTS} times in a row: does update() decide "
            "on a stale read of the payment (a cached copy)?"
        )
        stored = await repository.get(payment.id)
        assert (stored.description, stored.version) == (str(WRITERS), payment.version + WRITERS)

    async def test_an_update_over_the_copy_in_hand_writes_it_without_losing_what_it_did_not_change(
        self, repository: Any
    ) -> None:
        updating = _updating(repository)
        payment = rich_payment()  # refunds and references the write leaves as they are
        await repository.add(payment, [make_event(payment, 1, "created")])
        seen: list[Payment] = []

        def decide(current: Payment) -> PaymentWrite:
            seen.append(current)
            return PaymentWrite(next_version(current, description="paid at the till"), [make_event(current, 2)])

        read, written = await updating.update(PaymentLookup.by_id(payment.id), decide, known=payment)
        assert seen == [payment]
        assert read is payment
        assert written is not None
        stored = await repository.get(payment.id)
        assert stored == written.payment
        assert stored.refunds == payment.refunds
        for reference in payment.references:
            assert await repository.get_by_external_id(payment.provider, payment.tenant, reference) == stored
        assert [e.sequence for e in await repository.list_events(payment.id)] == [1, 2]

    async def test_an_update_over_a_stale_copy_is_refused_and_changes_nothing(self, repository: Any) -> None:
        updating = _updating(repository)
        payment = make_payment()
        await repository.add(payment, [])
        current = next_version(payment, description="changed meanwhile")
        await repository.save(current, [])

        def decide(stale: Payment) -> PaymentWrite:
            return PaymentWrite(next_version(stale, description="decided on a stale copy"), [make_event(stale, 2)])

        with pytest.raises(ConcurrentUpdate):
            await updating.update(PaymentLookup.by_id(payment.id), decide, known=payment)
        assert await repository.get(payment.id) == current
        assert await repository.list_events(payment.id) == []

    @pytest.mark.parametrize("step", [2, 0], ids=["skipping-a-version", "repeating-the-version"])
    async def test_an_update_whose_write_is_not_the_next_version_is_refused_and_changes_nothing(
        self, repository: Any, step: int
    ) -> None:
        """``update`` keeps the version check of ``save``: a decision writing a version that skips one, or repeats
        the stored one, is refused with ``ConcurrentUpdate`` whether the payment was read or in hand, and the
        payment, its events and the webhook receipts stay as they were (never a lost write over the winner's)."""
        updating = _updating(repository)
        payment = make_payment()
        events = [make_event(payment, 1, "created")]
        await repository.add(payment, events)

        def decide(current: Payment) -> PaymentWrite:
            wrong = evolve(current, version=current.version + step, description="wrong version", event_count=2)
            return PaymentWrite(wrong, [make_event(current, 2)], [make_receipt(current, "evt-x")])

        for known in (None, payment):
            with pytest.raises(ConcurrentUpdate):
                await updating.update(PaymentLookup.by_id(payment.id), decide, known=known)
            assert await repository.get(payment.id) == payment
            assert await repository.list_events(payment.id) == events, "an update refused for its version left events"
            assert not await repository.has_receipt(payment.provider, payment.tenant, "evt-x")

    async def test_a_write_that_does_not_follow_the_copy_in_hand_is_stored_as_it_is(self, repository: Any) -> None:
        updating = _updating(repository)
        payment = rich_payment()  # two refunds: a succeeded one, then a pending one
        await repository.add(payment, [])
        first, second = payment.refunds
        moved_on = next_version(payment, description="changed meanwhile", refunds=(first,))
        await repository.save(moved_on, [])

        def decide(held: Payment) -> PaymentWrite:  # the copy in hand is a version behind the write
            return PaymentWrite(evolve(held, version=moved_on.version + 1, order_id="order-2"))

        _, written = await updating.update(PaymentLookup.by_id(payment.id), decide, known=payment)
        assert written is not None
        stored = await repository.get(payment.id)
        assert stored == written.payment
        assert (stored.description, stored.refunds) == (payment.description, (first, second))

    async def test_refunds_added_changed_or_moved_by_an_update_are_stored_as_the_payment_holds_them(
        self, repository: Any
    ) -> None:
        updating = _updating(repository)
        payment = rich_payment()  # two refunds: a succeeded one, then a pending one
        await repository.add(payment, [])
        first, second = payment.refunds
        third = evolve(second, id="re_c", amount=Money.of("0.500", "KWD"), external_id=None)
        steps = [
            (first, evolve(second, status=RefundStatus.SUCCEEDED), third),  # one changed in place, one added
            (evolve(second, status=RefundStatus.SUCCEEDED), third, first),  # moved: the first is now last
            (third, first),  # one gone
        ]
        current = payment
        for refunds in steps:

            def decide(held: Payment, refunds: tuple[Refund, ...] = refunds) -> PaymentWrite:
                return PaymentWrite(next_version(held, refunds=refunds))

            _, written = await updating.update(PaymentLookup.by_id(payment.id), decide, known=current)
            assert written is not None
            current = written.payment
            assert (await repository.get(payment.id)).refunds == refunds
