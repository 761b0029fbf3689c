"""The conformance suites fail deliberately wrong implementations of the gaps an audit found.

Each run puts a genuine implementation (the memory adapter, ``FakeProvider``) beside a broken
subclass of it in one test module, runs the suite's test about the broken behaviour on both, and
checks that it passes on the genuine one and fails on the copy, for the reason the test names:

* a repository whose ``save()`` drops or keeps stale values of the fields the flow sets (the
  write-ahead call record, a review, refund metadata);
* a repository that pages its payments on ``created_at`` alone, or its pending refunds with ``>=``, on
  ``updated_at`` alone or in short pages, lists only the payments whose last refund is pending, keeps a
  refused write's events, keeps amounts as floats, compares tenants without regard to case, answers
  ``get_many`` or ``update`` from a copy cached before a save;
* an idempotency store that keys its records by ``scope``, a separator and ``key`` joined as text, cuts keys
  to 64 characters, or compares keys and scopes without regard to case.

A provider whose poll reads the gateway's "pending" as paid is in ``test_provider_conformance_bites.py``,
beside the suite's other broken providers.
"""

from __future__ import annotations

import pytest

from paycore.testing import ProviderConformance, RepositoryConformance

from .conftest import run_suite_copy

pytest_plugins = ["pytester"]

# -- RepositoryConformance: save() stores every field it is given --------------------------------------

_REPOSITORIES = """
import time
from datetime import timedelta

import anyio
import pytest
from attrs import evolve

import paycore.testing.update_suite

from paycore.errors import ConcurrentUpdate, PaymentNotFound
from paycore.listing import PaymentListing
from paycore.money import Money
from paycore.status import RefundStatus
from paycore.testing import RepositoryConformance
from paycore_memory import MemoryRepository
from paycore_memory.repository import _stored

paycore.testing.update_suite.CONCURRENT_SECONDS = 1.0  # the bound BlocksInAThread blocks past


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


class PagesPaymentsByTimeAlone(MemoryRepository):
    '''list_payments() pages after the cursor's creation time, its id left out.'''

    async def list_payments(self, *, limit=None, after=None, **filters):
        found = await super().list_payments(**filters)
        if after is not None:
            mark = PaymentListing.build(after=after, **filters).after
            found = [p for p in found if p.created_at > mark.created_at]
        return found if limit is None else found[:limit]


class PagesRefundsFromTheLastSeen(MemoryRepository):
    '''list_with_pending_refunds() pages from the previous page's last payment included (``>=``).'''

    async def list_with_pending_refunds(self, *, updated_before, limit, after=None):
        found = await super().list_with_pending_refunds(updated_before=updated_before, limit=10**6)
        return [p for p in found if after is None or (p.updated_at, p.id) >= after][:limit]


class PagesRefundsByTimeAlone(MemoryRepository):
    '''list_with_pending_refunds() pages after the previous page's last update time, its id left out.'''

    async def list_with_pending_refunds(self, *, updated_before, limit, after=None):
        found = await super().list_with_pending_refunds(updated_before=updated_before, limit=10**6)
        return [p for p in found if after is None or p.updated_at > after[0]][:limit]


class ShortRefundPages(MemoryRepository):
    '''list_with_pending_refunds() lists at most 2 payments a page, whatever the limit (its own batch).'''

    async def list_with_pending_refunds(self, *, updated_before, limit, after=None):
        return await super().list_with_pending_refunds(updated_before=updated_before, limit=min(limit, 2), after=after)


class BoundsRefundsByTheirPayment(MemoryRepository):
    '''list_with_pending_refunds() reads updated_before on the payment's updated_at, not the pending refund's.'''

    async def list_with_pending_refunds(self, *, updated_before, limit, after=None):
        a_year_on = updated_before + timedelta(days=365)
        every = await super().list_with_pending_refunds(updated_before=a_year_on, limit=10**6)
        found = [p for p in every if p.updated_at < updated_before]
        return [p for p in found if after is None or (p.updated_at, p.id) > after][:limit]


class BoundsRefundsInclusively(MemoryRepository):
    '''list_with_pending_refunds() lists a refund heard of at updated_before itself (<= where < is due).'''

    async def list_with_pending_refunds(self, *, updated_before, limit, after=None):
        return await super().list_with_pending_refunds(
            updated_before=updated_before + timedelta(microseconds=1), limit=limit, after=after
        )


class ReadsTheLastRefundAlone(MemoryRepository):
    '''list_with_pending_refunds() lists the payments whose last refund is pending (an index of the last one).'''

    async def list_with_pending_refunds(self, *, updated_before, limit, after=None):
        found = await super().list_with_pending_refunds(updated_before=updated_before, limit=10**6, after=after)
        return [p for p in found if p.refunds[-1].status is RefundStatus.PENDING][:limit]


class KeepsRefusedEvents(MemoryRepository):
    '''A write refused for a receipt seen before keeps its events (inserted before the receipt, not rolled back).'''

    def _write(self, payment, events, receipts):
        try:
            super()._write(payment, events, receipts)
        except ConcurrentUpdate:
            stored = self._payments.get(payment.id)
            if receipts and stored is not None and payment.version == stored.version + 1:
                self._events[payment.id].extend(_stored(event) for event in events)
            raise


def _as_float(amount):
    return None if amount is None else Money.minor(int(float(amount.minor_units)), amount.currency)


def _inexact(payment):
    refunds = tuple(evolve(refund, amount=_as_float(refund.amount)) for refund in payment.refunds)
    return evolve(payment, amount=_as_float(payment.amount), authorized_amount=_as_float(payment.authorized_amount),
                  captured_amount=_as_float(payment.captured_amount), refunds=refunds)


class KeepsAmountsAsFloats(MemoryRepository):
    '''Keeps every amount as a float (a double precision column, a JSON number read by JavaScript).'''

    async def add(self, payment, events):
        await super().add(_inexact(payment), [evolve(event, amount=_as_float(event.amount)) for event in events])

    async def save(self, payment, events=(), receipts=()):
        events = [evolve(event, amount=_as_float(event.amount)) for event in events]
        await super().save(_inexact(payment), events, receipts)


class FoldsTenantCase(MemoryRepository):
    '''Keeps webhook receipts by the tenant in lower case (a case-insensitive collation).'''

    async def save(self, payment, events=(), receipts=()):
        receipts = [evolve(r, tenant=None if r.tenant is None else r.tenant.lower()) for r in receipts]
        await super().save(payment, events, receipts)

    async def has_receipt(self, provider, tenant, event_id):
        return await super().has_receipt(provider, None if tenant is None else tenant.lower(), event_id)


class CutsTenantsShort(MemoryRepository):
    '''Keeps webhook receipts by the first 32 characters of the tenant (a column narrower than paycore's names).'''

    async def save(self, payment, events=(), receipts=()):
        receipts = [evolve(r, tenant=None if r.tenant is None else r.tenant[:32]) for r in receipts]
        await super().save(payment, events, receipts)

    async def has_receipt(self, provider, tenant, event_id):
        return await super().has_receipt(provider, None if tenant is None else tenant[:32], event_id)


class BlocksInAThread(MemoryRepository):
    '''update() blocks in a worker thread past the suite's bound (a driver that never times out), then updates.'''

    async def update(self, lookup, decide, *, known=None):
        await anyio.to_thread.run_sync(time.sleep, 2.5)
        return await super().update(lookup, decide, known=known)


class CachesWhatItRead(MemoryRepository):
    '''get_many() answers from a copy of each payment it read before (a read cache a save does not clear).'''

    def __init__(self):
        super().__init__()
        self._cache = {}

    async def get_many(self, payment_ids):
        read = [self._cache.get(p.id, p) for p in await super().get_many(payment_ids)]
        self._cache.update((p.id, p) for p in read)
        return read


class UpdatesACachedCopy(MemoryRepository):
    '''update() decides on the payment as it was added (a stale read): its writes after the first are refused.'''

    def __init__(self):
        super().__init__()
        self._added = {}

    async def add(self, payment, events):
        await super().add(payment, events)
        self._added[payment.id] = payment

    def _find(self, lookup):
        return self._added.get(lookup.payment_id) or super()._find(lookup)


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


class TestPagesPaymentsByTimeAlone(Conformance):
    repository_type = PagesPaymentsByTimeAlone


class TestPagesRefundsFromTheLastSeen(Conformance):
    repository_type = PagesRefundsFromTheLastSeen


class TestPagesRefundsByTimeAlone(Conformance):
    repository_type = PagesRefundsByTimeAlone


class TestShortRefundPages(Conformance):
    repository_type = ShortRefundPages


class TestBoundsRefundsByTheirPayment(Conformance):
    repository_type = BoundsRefundsByTheirPayment


class TestBoundsRefundsInclusively(Conformance):
    repository_type = BoundsRefundsInclusively


class TestReadsTheLastRefundAlone(Conformance):
    repository_type = ReadsTheLastRefundAlone


class TestKeepsRefusedEvents(Conformance):
    repository_type = KeepsRefusedEvents


class TestKeepsAmountsAsFloats(Conformance):
    repository_type = KeepsAmountsAsFloats


class TestFoldsTenantCase(Conformance):
    repository_type = FoldsTenantCase


class TestCutsTenantsShort(Conformance):
    repository_type = CutsTenantsShort


class TestBlocksInAThread(Conformance):
    repository_type = BlocksInAThread


class TestCachesWhatItRead(Conformance):
    repository_type = CachesWhatItRead


class TestUpdatesACachedCopy(Conformance):
    repository_type = UpdatesACachedCopy
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


@pytest.mark.parametrize("conformance", [RepositoryConformance, ProviderConformance])  # suites mixed into one
def test_no_suite_mixed_into_a_conformance_class_hides_another_ones_test(conformance: type) -> None:
    """Two suites mixed into one class that define a test of the same name run only one of them: the refund
    listing's paging test once hid behind the call listing's."""
    defined: dict[str, str] = {}
    for suite in conformance.__mro__:
        for name in vars(suite):
            if name.startswith("test_"):
                assert name not in defined, f"{suite.__name__}.{name} is hidden by {defined[name]}.{name}"
                defined[name] = suite.__name__


REFUND_PAGES_TEST = "test_pages_after_a_position_list_every_payment_holding_a_pending_refund_once_in_order"
CALL_PAGES_TEST = "test_pages_after_a_position_list_every_payment_once_in_order"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("TestPagesRefundsFromTheLastSeen", "again: a page starts strictly after the previous page's last"),
        ("TestPagesRefundsByTimeAlone", "did not list every payment once in (updated_at, id) order"),
        ("TestShortRefundPages", "did not list every payment once in (updated_at, id) order"),
    ],
)
def test_the_repository_suite_pages_pending_refunds_and_fails_a_store_that_pages_them_wrong(
    pytester: pytest.Pytester, broken: str, message: str
) -> None:
    """The refund listing's paging test runs (no longer hidden by the call listing's of the same name), and fails,
    without looping for ever, a store paging with ``>=``, on the update time alone, or in short pages."""
    selection = f"pages_after_a_position and ({broken} or TestGenuine)"
    outcomes, failures = run_suite_copy(pytester, _REPOSITORIES, selection)
    assert outcomes[("TestGenuine", REFUND_PAGES_TEST)] == {"passed"}
    assert outcomes[("TestGenuine", CALL_PAGES_TEST)] == {"passed"}
    assert outcomes[(broken, REFUND_PAGES_TEST)] == {"failed"}
    assert outcomes[(broken, CALL_PAGES_TEST)] == {"passed"}, "its listing of calls pages right"
    assert message in failures


@pytest.mark.parametrize(
    ("broken", "test", "message"),
    [
        ("TestReadsTheLastRefundAlone", "test_a_pending_refund_followed_by_a_settled_one_is_listed",
         "is only its last refund read?"),
        ("TestBoundsRefundsByTheirPayment", "test_the_bound_is_the_refunds_own_last_word_strictly_before_it",
         "must read each pending refund's own updated_at"),
        ("TestBoundsRefundsInclusively", "test_the_bound_is_the_refunds_own_last_word_strictly_before_it",
         "strictly before updated_before"),
        ("TestKeepsRefusedEvents",
         "test_a_write_refused_for_a_receipt_seen_before_leaves_no_event_and_the_next_write_lands",
         "a write refused for its receipt left events"),
        ("TestKeepsRefusedEvents", "test_an_update_with_a_receipt_seen_before_is_refused_and_changes_nothing",
         "an update refused for its receipt left events"),
        ("TestKeepsAmountsAsFloats", "test_amounts_at_the_extremes_read_back_exact", "minor units) read back as"),
        ("TestFoldsTenantCase",
         "test_tenants_differing_only_in_letter_case_or_as_long_as_paycore_takes_are_each_their_own",
         "are tenants compared without regard to case"),
        ("TestCachesWhatItRead", "test_every_read_after_a_save_returns_the_payment_as_saved",
         "get_many after a save returned the payment with"),
        ("TestUpdatesACachedCopy", "test_concurrent_updates_lose_no_change", "does update() decide on a stale read"),
        ("TestCutsTenantsShort",
         "test_tenants_differing_only_in_letter_case_or_as_long_as_paycore_takes_are_each_their_own",
         "are tenants compared without regard to case, or cut?"),
        ("TestBlocksInAThread", "test_concurrent_updates_lose_no_change", "did not all end within 1.0 s"),
        ("TestPagesPaymentsByTimeAlone", "test_a_cursor_pages_through_every_payment_once_while_payments_are_added",
         "listed after it, was skipped"),
    ],
)  # fmt: skip
def test_the_repository_suite_fails_a_store_that_reads_back_other_than_it_was_given(
    pytester: pytest.Pytester, broken: str, test: str, message: str
) -> None:
    """Each broken repository fails the suite's test of what it gets wrong; the memory adapter passes it."""
    outcomes, failures = run_suite_copy(pytester, _REPOSITORIES, f"{test} and ({broken} or TestGenuine)")
    assert outcomes[("TestGenuine", test)] == {"passed"}
    assert outcomes[(broken, test)] == {"failed"}
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


class CutsKeysShort(JoinsScopeAndKey):
    '''Keeps the first 64 characters of each key and scope (a VARCHAR(64) column).'''

    def _joined(self, scope, key):
        return scope[:64], key[:64]


class CutsKeysToBytes(JoinsScopeAndKey):
    '''Keeps the first 255 bytes of each key in UTF-8 (a VARBINARY(255) column).'''

    def _joined(self, scope, key):
        return scope, key.encode()[:255].decode(errors="ignore")


class IgnoresCase(JoinsScopeAndKey):
    '''Compares keys and scopes without regard to case (a case-insensitive collation).'''

    def _joined(self, scope, key):
        return scope.lower(), key.lower()


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


class TestCutsKeysShort(Conformance):
    store_type = CutsKeysShort


class TestIgnoresCase(Conformance):
    store_type = IgnoresCase


class TestCutsKeysToBytes(Conformance):
    store_type = CutsKeysToBytes
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
    assert "was refused (IdempotencyInProgress): it is another key than" in failures


@pytest.mark.parametrize(
    ("broken", "test", "cases"),
    [
        ("TestCutsKeysShort", "test_the_longest_keys_and_tenants_are_kept_whole",
         {"keys", "tenants", "wide-keys", "wide-tenants"}),
        ("TestIgnoresCase", "test_keys_and_scopes_differing_only_in_letter_case_are_two_independent_keys",
         {"keys", "tenants"}),
    ],
)  # fmt: skip
def test_the_idempotency_suite_fails_a_store_that_cuts_keys_short_or_ignores_their_case(
    pytester: pytest.Pytester, broken: str, test: str, cases: set[str]
) -> None:
    """Every case of each test (``cases``: its parameters' ids) fails the broken store, under asyncio and trio, and
    passes the memory adapter."""
    outcomes, failures = run_suite_copy(pytester, _STORES, f"{test} and ({broken} or TestGenuine)")
    assert outcomes[("TestGenuine", test)] == {"passed"}
    assert outcomes[(broken, test)] == {"failed"}
    assert failures.count("was refused (IdempotencyInProgress): it is another key than") == 2 * len(cases)


def test_the_idempotency_suite_fails_a_store_that_keeps_255_bytes_of_a_key_not_255_characters(
    pytester: pytest.Pytester,
) -> None:
    """Keys of 255 characters that take two bytes each in UTF-8: the store that counts bytes fails those alone."""
    test = "test_the_longest_keys_and_tenants_are_kept_whole"
    outcomes, failures = run_suite_copy(pytester, _STORES, f"{test} and (TestCutsKeysToBytes or TestGenuine)")
    assert outcomes[("TestGenuine", test)] == {"passed"}
    assert outcomes[("TestCutsKeysToBytes", test)] == {"passed", "failed"}
    assert failures.count("was refused (IdempotencyInProgress): it is another key than") == 2
    assert "commande-à-emporter" in failures
