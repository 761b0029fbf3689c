"""``KeysConformance``: a repository that does an idempotency key's work in its own units.

Part of :class:`~paycore.testing.repository_suite.RepositoryConformance`. A
repository that offers :class:`~paycore.storage.CompletingRepository` (and
perhaps :class:`~paycore.storage.ClaimingRepository`) runs these against the
store its ``keys_store`` fixture gives: one that keeps its keys in the
repository's database. A repository that offers neither skips them.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from paycore.errors import ConcurrentUpdate, DuplicatePayment, IdempotencyInProgress, IdempotencyKeyReused
from paycore.records import Payment
from paycore.storage import (
    ClaimingRepository,
    CompletingRepository,
    IdempotencyStore,
    KeyClaim,
    KeyCompletion,
    PaymentLookup,
    PaymentWrite,
    UpdatingRepository,
)
from paycore.testing.records import make_event, make_payment, next_version

__all__ = ["KeysConformance"]

RESULT = {"value": {"id": "re_1", "status": "pending"}}
"""What a completed request stored, as the flow hands it over (``paycore.keys.stored_result``)."""


class KeysConformance:
    """Conformance tests for :class:`~paycore.storage.CompletingRepository` and ``ClaimingRepository``."""

    @pytest.fixture
    def keys_store(self) -> IdempotencyStore | None:
        """A store whose keys the repository completes (override it); ``None``: it completes none."""
        return None

    def _completing(self, repository: Any, keys_store: IdempotencyStore | None) -> IdempotencyStore:
        if not isinstance(repository, CompletingRepository):
            pytest.skip(f"{type(repository).__name__} completes no idempotency keys in its own writes")
        if keys_store is None:
            pytest.fail(
                f"{type(repository).__name__} offers completes_keys_of(): give the suite a keys_store fixture, "
                "a store that keeps its keys in the repository's database"
            )
        assert isinstance(repository, UpdatingRepository), "a repository completes keys through update()"
        assert repository.completes_keys_of(keys_store)
        return keys_store

    async def _write(
        self, repository: Any, payment: Payment, completion: KeyCompletion
    ) -> tuple[Payment, PaymentWrite | None]:
        def decide(current: Payment) -> PaymentWrite:
            return PaymentWrite(next_version(current, description="answered"), [make_event(current, 2)], (), completion)

        updating: UpdatingRepository = repository
        return await updating.update(PaymentLookup.by_id(payment.id), decide, known=payment)

    async def test_a_write_completes_the_key_it_carries(self, repository: Any, keys_store: Any) -> None:
        store = self._completing(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])
        claim = await store.claim(scope="", key="k-write", fingerprint="f", lease_seconds=60)
        assert claim.token is not None
        completion = KeyCompletion(store, "", "k-write", claim.token, RESULT, 3600)
        _, written = await self._write(repository, payment, completion)
        assert written is not None
        assert completion.completed is True
        assert await repository.get(payment.id) == written.payment
        replay = await store.claim(scope="", key="k-write", fingerprint="f", lease_seconds=60)
        assert (replay.token, replay.result) == (None, RESULT)

    async def test_a_lost_lease_leaves_the_key_to_its_taker_and_the_write_stands(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._completing(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [])
        held = await store.claim(scope="", key="k-lost", fingerprint="f", lease_seconds=60)
        assert held.token is not None
        completion = KeyCompletion(store, "", "k-lost", "not-the-holders-token", RESULT, 3600)
        _, written = await self._write(repository, payment, completion)
        assert written is not None
        assert completion.completed is False
        assert (await repository.get(payment.id)).description == "answered"
        with pytest.raises(IdempotencyInProgress):
            await store.claim(scope="", key="k-lost", fingerprint="f", lease_seconds=60)

    async def test_a_refused_write_completes_nothing(self, repository: Any, keys_store: Any) -> None:
        store = self._completing(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [])
        await repository.save(next_version(payment, description="meanwhile"), [])
        claim = await store.claim(scope="", key="k-refused", fingerprint="f", lease_seconds=60)
        assert claim.token is not None
        completion = KeyCompletion(store, "", "k-refused", claim.token, RESULT, 3600)
        with pytest.raises(ConcurrentUpdate):
            await self._write(repository, payment, completion)  # a stale copy
        assert completion.completed is None
        with pytest.raises(IdempotencyInProgress):
            await store.claim(scope="", key="k-refused", fingerprint="f", lease_seconds=60)

    async def test_claim_and_get_claims_as_the_store_does_and_reads_only_for_the_holder(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._completing(repository, keys_store)
        claims = isinstance(repository, ClaimingRepository)  # a flag: ``repository`` stays a whole repository
        if not claims:
            pytest.skip(f"{type(repository).__name__} claims no keys with its reads")
        payment = make_payment()
        await repository.add(payment, [])
        claim = KeyClaim(scope="t:chez-awa", key="k-claim", fingerprint="f", lease_seconds=60)
        held, found = await repository.claim_and_get(store, claim, [payment.id, "pay_missing", payment.id])
        assert held.token is not None
        assert found == [payment]
        with pytest.raises(IdempotencyInProgress):
            await repository.claim_and_get(store, claim, [payment.id])
        other = KeyClaim(scope="t:chez-awa", key="k-claim", fingerprint="another request", lease_seconds=60)
        with pytest.raises(IdempotencyKeyReused):
            await repository.claim_and_get(store, other, [payment.id])
        await store.complete(scope="t:chez-awa", key="k-claim", token=held.token, result=RESULT, ttl_seconds=3600)
        replayed, read = await repository.claim_and_get(store, claim, [payment.id])
        assert (replayed.token, replayed.result, read) == (None, RESULT, [])
        elsewhere = KeyClaim(scope="t:le-baobab", key="k-claim", fingerprint="f", lease_seconds=60)
        fresh, again = await repository.claim_and_get(store, elsewhere, [payment.id])
        assert fresh.token is not None
        assert again == [payment]

    async def test_claim_and_add_stores_the_new_payment_with_the_claim_for_the_holder_only(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        new = make_payment(id="pay_new")
        write = PaymentWrite(new, [make_event(new, 1)])
        seen: list[list[Payment]] = []

        def add(found: list[Payment]) -> PaymentWrite | None:
            seen.append(found)
            return write

        claim = KeyClaim(scope="", key="k-add", fingerprint="f", lease_seconds=60)
        held, found, added = await repository.claim_and_add(store, claim, [new.id], add)
        assert held.token is not None
        assert (found, added, seen) == ([], write, [[]])
        assert await repository.get(new.id) == new
        assert [event.id for event in await repository.list_events(new.id)] == [write.events[0].id]
        with pytest.raises(IdempotencyInProgress):
            await repository.claim_and_add(store, claim, [new.id], add)
        await store.complete(scope="", key="k-add", token=held.token, result=RESULT, ttl_seconds=3600)
        replayed, read, again = await repository.claim_and_add(store, claim, [new.id], add)
        assert (replayed.token, replayed.result, read, again) == (None, RESULT, [], None)
        assert len(seen) == 1, "add is asked only by the key's holder"

    async def test_claim_and_add_adds_nothing_where_add_finds_an_earlier_attempt(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        earlier = make_payment(id="pay_earlier")
        await repository.add(earlier, [])
        claim = KeyClaim(scope="", key="k-earlier", fingerprint="f", lease_seconds=60)
        held, found, added = await repository.claim_and_add(store, claim, [earlier.id, "pay_later"], lambda f: None)
        assert held.token is not None
        assert (found, added) == ([earlier], None)
        assert await repository.get_many(["pay_later"]) == []

    async def test_claim_and_add_asks_add_about_the_earlier_attempt_stored_and_adds_nothing_it_refuses(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        earlier = make_payment(id="pay_stored_before")
        await repository.add(earlier, [])
        new = make_payment(id="pay_would_be_new")
        seen: list[list[Payment]] = []

        def add(found: list[Payment]) -> PaymentWrite | None:
            seen.append(found)
            return None if found else PaymentWrite(new, [make_event(new, 1)])

        claim = KeyClaim(scope="", key="k-stored-before", fingerprint="f", lease_seconds=60)
        held, found, added = await repository.claim_and_add(store, claim, [new.id, earlier.id], add)
        assert held.token is not None
        assert (found, added) == ([earlier], None)
        assert seen[-1] == [earlier], "add decides last on the payment stored before"
        assert await repository.get_many([new.id]) == []
        assert await repository.get(earlier.id) == earlier

    async def test_a_refused_add_leaves_the_key_unclaimed(self, repository: Any, keys_store: Any) -> None:
        store = self._claiming(repository, keys_store)
        taken = make_payment(id="pay_taken")
        await repository.add(taken, [])
        duplicate = PaymentWrite(make_payment(id="pay_taken", order_id="another"), [])
        claim = KeyClaim(scope="", key="k-refused-add", fingerprint="f", lease_seconds=60)
        with pytest.raises(DuplicatePayment):
            await repository.claim_and_add(store, claim, ["pay_other"], lambda found: duplicate)
        assert await repository.get(taken.id) == taken
        fresh = await store.claim(scope="", key="k-refused-add", fingerprint="f", lease_seconds=60)
        assert fresh.token is not None, "the claim was undone with the refused insert"

    async def test_claim_and_update_writes_what_the_holder_decides_on_the_payment_read(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [make_event(payment, 1, "created")])
        seen: list[Payment] = []

        def decide(current: Payment) -> PaymentWrite:
            seen.append(current)
            return PaymentWrite(next_version(current, description="refund started"), [make_event(current, 2)])

        claim = KeyClaim(scope="", key="k-update", fingerprint="f", lease_seconds=60)
        held, found, written = await repository.claim_and_update(store, claim, payment.id, decide)
        assert held.token is not None
        assert (found, seen) == ([payment], [payment])
        assert written is not None
        assert await repository.get(payment.id) == written.payment
        assert [event.sequence for event in await repository.list_events(payment.id)] == [1, 2]
        with pytest.raises(IdempotencyInProgress):
            await repository.claim_and_update(store, claim, payment.id, decide)
        await store.complete(scope="", key="k-update", token=held.token, result=RESULT, ttl_seconds=3600)
        replayed, read, again = await repository.claim_and_update(store, claim, payment.id, decide)
        assert (replayed.token, replayed.result, read, again) == (None, RESULT, [], None)
        assert len(seen) == 1, "decide is asked only by the key's holder"

    async def test_claim_and_update_claims_alone_when_there_is_nothing_to_write(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [])
        claim = KeyClaim(scope="", key="k-nothing", fingerprint="f", lease_seconds=60)
        held, found, written = await repository.claim_and_update(store, claim, payment.id, lambda current: None)
        assert held.token is not None
        assert (found, written) == ([payment], None)
        assert await repository.get(payment.id) == payment
        missing = KeyClaim(scope="", key="k-missing", fingerprint="f", lease_seconds=60)
        asked: list[Payment] = []
        held, found, written = await repository.claim_and_update(store, missing, "pay_missing", asked.append)
        assert held.token is not None
        assert (found, written, asked) == ([], None, []), "decide is not asked about a payment that does not exist"

    async def test_claim_and_update_takes_over_an_expired_lease_and_decides_on_the_payment_as_it_is(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [])
        crashed = await store.claim(scope="", key="k-crashed", fingerprint="f", lease_seconds=0.2)
        moved = next_version(payment, description="written by the request that crashed")
        await repository.save(moved, [make_event(payment, 2)])
        await anyio.sleep(0.4)
        seen: list[Payment] = []

        def decide(current: Payment) -> PaymentWrite:
            seen.append(current)
            return PaymentWrite(next_version(current, description="refund started"), [make_event(current, 3)])

        claim = KeyClaim(scope="", key="k-crashed", fingerprint="f", lease_seconds=60)
        held, found, written = await repository.claim_and_update(store, claim, payment.id, decide)
        assert held.token not in (None, crashed.token)
        assert held.taken_over
        assert (found, seen) == ([moved], [moved])
        assert written is not None
        assert await repository.get(payment.id) == written.payment

    async def test_a_refused_update_leaves_the_key_unclaimed_and_the_payment_as_it_was(
        self, repository: Any, keys_store: Any
    ) -> None:
        store = self._claiming(repository, keys_store)
        payment = make_payment()
        await repository.add(payment, [])
        stale = PaymentWrite(next_version(next_version(payment), description="two versions on"), [])
        claim = KeyClaim(scope="", key="k-refused-update", fingerprint="f", lease_seconds=60)
        with pytest.raises(ConcurrentUpdate):
            await repository.claim_and_update(store, claim, payment.id, lambda current: stale)
        assert await repository.get(payment.id) == payment
        fresh = await store.claim(scope="", key="k-refused-update", fingerprint="f", lease_seconds=60)
        assert fresh.token is not None, "the claim was undone with the refused write"

    def _claiming(self, repository: Any, keys_store: IdempotencyStore | None) -> IdempotencyStore:
        store = self._completing(repository, keys_store)
        if not isinstance(repository, ClaimingRepository):
            pytest.skip(f"{type(repository).__name__} claims no keys with its reads")
        return store
