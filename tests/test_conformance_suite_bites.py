"""The conformance suites fail deliberately wrong implementations of the gaps an audit found.

Each run puts a genuine implementation (the memory adapter, ``FakeProvider``) beside a broken
subclass of it in one test module, runs the suite's test about the broken behaviour on both, and
checks that it passes on the genuine one and fails on the copy, for the reason the test names:

* a repository whose ``save()`` drops or keeps stale values of the fields the flow sets (the
  write-ahead call record, a review, refund metadata);
* an idempotency store that keys its records by ``scope``, a separator and ``key`` joined as text.

A provider whose poll reads the gateway's "pending" as paid is in ``test_provider_conformance_bites.py``,
beside the suite's other broken providers.
"""

from __future__ import annotations

import pytest

from .conftest import run_suite_copy

pytest_plugins = ["pytester"]

# -- RepositoryConformance: save() stores every field it is given --------------------------------------

_REPOSITORIES = """
import pytest
from attrs import evolve

from paycore.errors import PaymentNotFound
from paycore.testing import RepositoryConformance
from paycore_memory import MemoryRepository


class DropsTheCallRecord(MemoryRepository):
    '''save() writes every column but the write-ahead call record (a column left out of its UPDATE).'''

    async def save(self, payment, events=(), receipts=()):
        try:
            stored = await self.get(payment.id)
        except PaymentNotFound:
            stored = payment
        await super().save(evolve(payment, pending_call=stored.pending_call), events, receipts)


class KeepsWhatIsCleared(MemoryRepository):
    '''save() writes only the fields that hold something (a partial update of the non-null ones).'''

    async def save(self, payment, events=(), receipts=()):
        try:
            stored = await self.get(payment.id)
        except PaymentNotFound:
            stored = payment
        kept = {
            name: getattr(stored, name)
            for name in ("pending_call", "needs_review", "review_reason", "review_message", "next_action")
            if not getattr(payment, name)
        }
        await super().save(evolve(payment, **kept), events, receipts)


class DropsRefundMetadata(MemoryRepository):
    '''save() stores each refund without its metadata (no column for it).'''

    async def save(self, payment, events=(), receipts=()):
        refunds = tuple(evolve(refund, metadata={}) for refund in payment.refunds)
        await super().save(evolve(payment, refunds=refunds), events, receipts)


class ForgetsWhoSentTheCall(MemoryRepository):
    '''save() stores the call record without its cause: every call reads back as the API's.'''

    async def save(self, payment, events=(), receipts=()):
        call = payment.pending_call
        await super().save(
            evolve(payment, pending_call=None if call is None else evolve(call, cause="api")), events, receipts
        )


class Conformance(RepositoryConformance):
    repository_type = MemoryRepository

    @pytest.fixture
    async def repository(self):
        repository = self.repository_type()
        yield repository
        await repository.aclose()


class TestGenuine(Conformance):
    pass


class TestDropsTheCallRecord(Conformance):
    repository_type = DropsTheCallRecord


class TestKeepsWhatIsCleared(Conformance):
    repository_type = KeepsWhatIsCleared


class TestDropsRefundMetadata(Conformance):
    repository_type = DropsRefundMetadata


class TestForgetsWhoSentTheCall(Conformance):
    repository_type = ForgetsWhoSentTheCall
"""

SAVE_TEST = "test_a_save_stores_every_field_it_sets_and_every_field_it_clears"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("TestDropsTheCallRecord", "a save did not store every field"),
        ("TestKeepsWhatIsCleared", "kept stale values"),
        ("TestDropsRefundMetadata", "a save did not store every field"),
        ("TestForgetsWhoSentTheCall", "a save did not store every field"),
    ],
)
def test_the_repository_suite_fails_a_save_that_drops_or_keeps_stale_fields(
    pytester: pytest.Pytester, broken: str, message: str
) -> None:
    """Each broken ``save()`` stores a plain payment's next version as given; this test fails it."""
    outcomes, failures = run_suite_copy(pytester, _REPOSITORIES, f"{SAVE_TEST} and ({broken} or TestGenuine)")
    assert outcomes[("TestGenuine", SAVE_TEST)] == {"passed"}
    assert outcomes[(broken, SAVE_TEST)] == {"failed"}
    assert message in failures


# -- IdempotencyStoreConformance: a scope and a key are two, not one joined text ------------------------

_STORES = """
import pytest

from paycore.testing import IdempotencyStoreConformance
from paycore_memory import MemoryIdempotencyStore


class JoinsScopeAndKey(MemoryIdempotencyStore):
    '''Keys its records by the text scope + separator + key (escaping the separator in the scope, maybe).'''

    separator = ":"
    escape = False

    def _joined(self, scope, key):
        if self.escape:
            scope = scope.replace(":", "%3A")
        return "", f"{scope}{self.separator}{key}"

    async def claim(self, *, scope, key, fingerprint, lease_seconds):
        scope, key = self._joined(scope, key)
        return await super().claim(scope=scope, key=key, fingerprint=fingerprint, lease_seconds=lease_seconds)

    async def complete(self, *, scope, key, token, result, ttl_seconds):
        scope, key = self._joined(scope, key)
        await super().complete(scope=scope, key=key, token=token, result=result, ttl_seconds=ttl_seconds)

    async def complete_record(self, *, scope, key, token, record, ttl_seconds):
        scope, key = self._joined(scope, key)
        await super().complete_record(scope=scope, key=key, token=token, record=record, ttl_seconds=ttl_seconds)

    async def release(self, *, scope, key, token):
        scope, key = self._joined(scope, key)
        await super().release(scope=scope, key=key, token=token)


class JoinsWithASlash(JoinsScopeAndKey):
    separator = "/"


class JoinsWithAPipe(JoinsScopeAndKey):
    separator = "|"


class EscapesTheColonAlone(JoinsScopeAndKey):
    escape = True


class Conformance(IdempotencyStoreConformance):
    store_type = MemoryIdempotencyStore

    @pytest.fixture
    async def idempotency_store(self):
        store = self.store_type()
        yield store
        await store.aclose()


class TestGenuine(Conformance):
    pass


class TestJoinsScopeAndKey(Conformance):
    store_type = JoinsScopeAndKey


class TestJoinsWithASlash(Conformance):
    store_type = JoinsWithASlash


class TestJoinsWithAPipe(Conformance):
    store_type = JoinsWithAPipe


class TestEscapesTheColonAlone(Conformance):
    store_type = EscapesTheColonAlone
"""

JOIN_TEST = "test_a_scope_and_key_that_join_to_the_same_text_are_two_independent_keys"
STORES = ("TestJoinsScopeAndKey", "TestJoinsWithASlash", "TestJoinsWithAPipe", "TestEscapesTheColonAlone")


def test_the_idempotency_suite_fails_a_store_that_joins_scope_and_key_into_one_text(
    pytester: pytest.Pytester,
) -> None:
    """Whatever the separator, and with the separator escaped in the scope alone, the joined store fails."""
    outcomes, failures = run_suite_copy(pytester, _STORES, JOIN_TEST)
    assert outcomes[("TestGenuine", JOIN_TEST)] == {"passed"}
    for broken in STORES:
        assert "failed" in outcomes[(broken, JOIN_TEST)], broken
    assert "was refused (IdempotencyInProgress): it is not another scope's key" in failures
