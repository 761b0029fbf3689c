"""``RecordKeepingConformance``: the rules an ``IdempotencyStore`` that keeps records keeps too.

:class:`~paycore.storage.RecordKeepingStore` is optional: a store that keeps
paycore's immutable records as they are (no serialization) follows these rules
as well. :class:`~paycore.testing.idempotency_suite.IdempotencyStoreConformance`
runs them, and skips them for a store that keeps results as data only.
"""

from __future__ import annotations

from typing import Protocol

import anyio
import pytest

from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused, IdempotencyLeaseLost
from paycore.storage import IdempotencyStore, RecordKeepingStore
from paycore.testing.records import make_payment

__all__ = ["LEASE", "SHORT", "RecordKeepingConformance", "as_keeping"]

LEASE = 60.0
"""Seconds: a lease no test outlasts."""
SHORT = 0.3
"""Seconds: long enough for a slow store call, short enough to wait out in a test."""


class RecordKeepingConformance:
    """Conformance tests for a :class:`~paycore.storage.RecordKeepingStore` (needs an ``idempotency_store`` fixture)."""

    async def test_a_kept_record_is_replayed_as_it_is(self, idempotency_store: IdempotencyStore) -> None:
        keeping = as_keeping(idempotency_store)
        record = make_payment()
        claim = await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await keeping.complete_record(scope="", key="k1", token=claim.token or "", record=record, ttl_seconds=LEASE)
        replay = await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert (replay.token, replay.result, replay.record) == (None, None, record)
        with pytest.raises(IdempotencyKeyReused):
            await keeping.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)
        await keeping.release(scope="", key="k1", token=claim.token or "")  # after completion: keeps the record
        with pytest.raises(IdempotencyLeaseLost):
            await keeping.complete_record(scope="", key="k1", token=claim.token or "", record=record, ttl_seconds=1)
        assert (await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)).record == record

    async def test_a_record_is_kept_only_by_the_holder_of_the_key(self, idempotency_store: IdempotencyStore) -> None:
        keeping = as_keeping(idempotency_store)
        await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        with pytest.raises(IdempotencyLeaseLost):
            await keeping.complete_record(scope="", key="k1", token="not-ours", record=make_payment(), ttl_seconds=1)
        with pytest.raises(IdempotencyInProgress):
            await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)

    async def test_a_store_that_completes_without_waiting_keeps_a_record_for_a_caller_already_cancelled(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        keeping = as_keeping(idempotency_store)
        if getattr(keeping, "completes_without_waiting", False) is not True:
            pytest.skip(f"{type(keeping).__name__} does not say its complete_record never waits (it is shielded)")
        record = make_payment()
        claim = await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()  # the flow calls it unshielded: a wait inside it would end it here
            await keeping.complete_record(scope="", key="k1", token=claim.token or "", record=record, ttl_seconds=LEASE)
        assert not cancelled.cancelled_caught, "complete_record waited: it may not say completes_without_waiting"
        assert (await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)).record == record

    async def test_a_kept_record_is_forgotten_after_its_retention(self, idempotency_store: IdempotencyStore) -> None:
        keeping = as_keeping(idempotency_store)
        claim = await keeping.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await keeping.complete_record(
            scope="", key="k1", token=claim.token or "", record=make_payment(), ttl_seconds=SHORT
        )
        await anyio.sleep(SHORT + 0.2)
        again = await keeping.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)
        assert again.token
        assert again.record is None


class _Keeping(IdempotencyStore, RecordKeepingStore, Protocol):
    """A store with both protocols."""


def as_keeping(store: IdempotencyStore) -> _Keeping:
    """``store`` as a :class:`~paycore.storage.RecordKeepingStore`; the test is skipped for a store that is none."""
    if not isinstance(store, RecordKeepingStore):
        pytest.skip(f"{type(store).__name__} keeps results as data only (no complete_record)")
    return store
