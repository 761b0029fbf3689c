"""``IdempotencyStoreConformance``: the rules every ``IdempotencyStore`` must keep.

Subclass it and provide a fresh, empty store as the ``idempotency_store``
fixture. Lease and retention tests use real short durations (a fraction of a
second), so a store's own clock is exercised, not mocked.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from paycore.config import MAX_CODE_LENGTH
from paycore.errors import IdempotencyInProgress, IdempotencyKeyReused, IdempotencyLeaseLost
from paycore.keys import MAX_KEY_LENGTH, scope_of
from paycore.storage import IdempotencyClaim, IdempotencyStore, RecordKeepingStore
from paycore.testing.record_keeping_suite import LEASE, SHORT, RecordKeepingConformance, as_keeping
from paycore.testing.records import make_payment

__all__ = ["IdempotencyStoreConformance"]

PAST_A_SECOND = 1.0 + SHORT
"""Seconds a long lease or retention must outlast: a store that reads seconds as milliseconds, or
caps either at a second, has let the key go by then."""
RACERS = 50
"""How many callers claim one key at once in the tests of concurrent claims."""
LONGEST_TENANT = ("chez-awa-" * 8)[:MAX_CODE_LENGTH]
"""A tenant name as long as paycore takes."""
LONGEST_KEY_STEM = ("T1-2026-11-22-order-0017-" * 11)[: MAX_KEY_LENGTH - 1]
"""A key one character short of the longest paycore takes: a last character makes each of two keys whole."""
LONGEST_WIDE_TENANT = ("Café-Thiéboudienne-" * 4)[:MAX_CODE_LENGTH]
"""A tenant name as long as paycore takes, of characters that take two bytes in UTF-8 (a store counting bytes)."""
LONGEST_WIDE_KEY_STEM = ("commande-à-emporter-n°17-" * 11)[: MAX_KEY_LENGTH - 1]
"""As :data:`LONGEST_KEY_STEM`, with characters that take two bytes in UTF-8."""


class IdempotencyStoreConformance(RecordKeepingConformance):
    """Conformance tests for an :class:`~paycore.storage.IdempotencyStore`."""

    pytestmark = pytest.mark.anyio

    says_how_long_results_are_kept: bool = False
    """Set ``True`` for a store that gives :attr:`~paycore.storage.IdempotencyClaim.expires_in` with a replayed
    result (a cache in front of it is then refilled): the suite then requires it. A store that does not say is
    correct too; a tiered store copies none of its results into a cache."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        """Every test runs under asyncio and under trio."""
        return request.param

    @pytest.fixture
    async def idempotency_store(self) -> Any:
        """Override: yield a fresh, empty store."""
        raise NotImplementedError("subclasses provide the idempotency_store fixture")

    async def test_a_new_key_is_taken_with_a_token(self, idempotency_store: IdempotencyStore) -> None:
        claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert claim.token
        assert claim.result is None
        assert not claim.taken_over

    async def test_a_completed_request_replays_its_result(self, idempotency_store: IdempotencyStore) -> None:
        claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        result = {"value": {"id": "pay_1", "amount": [1500, "XOF"], "note": "café ✓", "n": None, "ok": True}}
        await idempotency_store.complete(scope="", key="k1", token=claim.token or "", result=result, ttl_seconds=LEASE)
        replay = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert replay.token is None
        assert replay.result == result

    async def test_a_replayed_result_is_said_to_be_kept_no_longer_than_its_retention(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.complete(
            scope="", key="k1", token=claim.token or "", result={"v": 1}, ttl_seconds=LEASE
        )
        first = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await anyio.sleep(0.05)
        later = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        if first.expires_in is None:  # the store does not say: a cache in front of it keeps no copy
            assert not self.says_how_long_results_are_kept, "a replayed result came without its expires_in"
            assert later.expires_in is None
            return
        assert later.expires_in is not None
        assert 0 < later.expires_in < first.expires_in <= LEASE  # counted from the completion, never renewed

    async def test_a_completed_key_used_for_another_request_is_refused(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.complete(
            scope="", key="k1", token=claim.token or "", result={"v": 1}, ttl_seconds=LEASE
        )
        with pytest.raises(IdempotencyKeyReused):
            await idempotency_store.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)

    async def test_a_running_key_is_refused_as_in_progress(self, idempotency_store: IdempotencyStore) -> None:
        await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        with pytest.raises(IdempotencyInProgress):
            await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)

    async def test_a_running_key_used_for_another_request_is_refused_as_reused(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        with pytest.raises(IdempotencyKeyReused):
            await idempotency_store.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)

    async def test_a_released_key_can_be_taken_again(self, idempotency_store: IdempotencyStore) -> None:
        first = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.release(scope="", key="k1", token=first.token or "")
        second = await idempotency_store.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)
        assert second.token
        assert second.token != first.token

    async def test_release_with_a_foreign_token_does_nothing(self, idempotency_store: IdempotencyStore) -> None:
        await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.release(scope="", key="k1", token="not-the-owner")
        with pytest.raises(IdempotencyInProgress):
            await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)

    async def test_release_after_completion_keeps_the_result(self, idempotency_store: IdempotencyStore) -> None:
        claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.complete(
            scope="", key="k1", token=claim.token or "", result={"v": 1}, ttl_seconds=LEASE
        )
        await idempotency_store.release(scope="", key="k1", token=claim.token or "")
        replay = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert replay.result == {"v": 1}

    async def test_complete_with_a_foreign_token_is_refused_and_stores_nothing(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        with pytest.raises(IdempotencyLeaseLost):
            await idempotency_store.complete(scope="", key="k1", token="intruder", result={"v": 2}, ttl_seconds=LEASE)
        with pytest.raises(IdempotencyInProgress):
            await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)

    async def test_an_expired_lease_is_taken_over(self, idempotency_store: IdempotencyStore) -> None:
        crashed = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=SHORT)
        await anyio.sleep(SHORT + 0.2)
        successor = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert successor.token
        assert successor.token != crashed.token
        assert successor.taken_over

    async def test_a_late_holder_cannot_overwrite_its_successor(self, idempotency_store: IdempotencyStore) -> None:
        late = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=SHORT)
        await anyio.sleep(SHORT + 0.2)
        successor = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        with pytest.raises(IdempotencyLeaseLost):
            await idempotency_store.complete(scope="", key="k1", token=late.token or "", result={"by": "late"},
                                             ttl_seconds=LEASE)  # fmt: skip
        await idempotency_store.release(scope="", key="k1", token=late.token or "")
        await idempotency_store.complete(scope="", key="k1", token=successor.token or "", result={"by": "successor"},
                                         ttl_seconds=LEASE)  # fmt: skip
        replay = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert replay.result == {"by": "successor"}

    async def test_an_expired_lease_still_refuses_another_request(self, idempotency_store: IdempotencyStore) -> None:
        await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=SHORT)
        await anyio.sleep(SHORT + 0.2)
        with pytest.raises(IdempotencyKeyReused):
            await idempotency_store.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)

    async def test_a_result_is_forgotten_after_its_retention(self, idempotency_store: IdempotencyStore) -> None:
        claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.complete(
            scope="", key="k1", token=claim.token or "", result={"v": 1}, ttl_seconds=SHORT
        )
        await anyio.sleep(SHORT + 0.2)
        fresh = await idempotency_store.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)
        assert fresh.token
        assert fresh.result is None

    async def test_a_long_lease_and_a_long_retention_hold(self, idempotency_store: IdempotencyStore) -> None:
        """A lease and a retention of ``LEASE`` seconds still hold a while later (one wait for both: fast)."""
        await idempotency_store.claim(scope="", key="held", fingerprint="f1", lease_seconds=LEASE)
        done = await idempotency_store.claim(scope="", key="done", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.complete(
            scope="", key="done", token=done.token or "", result={"v": 1}, ttl_seconds=LEASE
        )
        keeping = idempotency_store if isinstance(idempotency_store, RecordKeepingStore) else None
        record = make_payment()
        if keeping is not None:
            kept = await idempotency_store.claim(scope="", key="kept", fingerprint="f1", lease_seconds=LEASE)
            await keeping.complete_record(
                scope="", key="kept", token=kept.token or "", record=record, ttl_seconds=LEASE
            )
        await anyio.sleep(PAST_A_SECOND)
        try:
            taken = await idempotency_store.claim(scope="", key="held", fingerprint="f1", lease_seconds=LEASE)
        except IdempotencyInProgress:
            pass
        else:
            pytest.fail(
                f"a lease of {LEASE:.0f} s ended within {PAST_A_SECOND} s: the key was taken again "
                f"(taken_over={taken.taken_over}); is the lease read as milliseconds, or capped?"
            )
        replay = await idempotency_store.claim(scope="", key="done", fingerprint="f1", lease_seconds=LEASE)
        assert (replay.token, replay.result) == (None, {"v": 1}), (
            f"a result kept for {LEASE:.0f} s was forgotten within {PAST_A_SECOND} s: "
            "is the retention read as milliseconds, or capped?"
        )
        if keeping is not None:
            again = await idempotency_store.claim(scope="", key="kept", fingerprint="f1", lease_seconds=LEASE)
            assert (again.token, again.record) == (None, record), (
                f"a record kept for {LEASE:.0f} s was forgotten within {PAST_A_SECOND} s"
            )

    async def test_scopes_do_not_share_keys(self, idempotency_store: IdempotencyStore) -> None:
        ours = await idempotency_store.claim(scope="t:chez-awa", key="k1", fingerprint="f1", lease_seconds=LEASE)
        theirs = await idempotency_store.claim(scope="t:le-baobab", key="k1", fingerprint="f2", lease_seconds=LEASE)
        assert ours.token
        assert theirs.token
        await idempotency_store.complete(scope="t:chez-awa", key="k1", token=ours.token or "", result={"v": "awa"},
                                         ttl_seconds=LEASE)  # fmt: skip
        with pytest.raises(IdempotencyInProgress):
            await idempotency_store.claim(scope="t:le-baobab", key="k1", fingerprint="f2", lease_seconds=LEASE)

    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [
            (("t:a", "b:k"), ("t:a:b", "k")),
            (("", "t:x:k"), ("t:x", "k")),
            (("t/a", "b/k"), ("t/a/b", "k")),
            (("t|a", "b|k"), ("t|a|b", "k")),
            (("t", "a:b"), ("t:a", "b")),
            (("t%3Aa", "k"), ("t:a", "k")),
        ],
        ids=["colon", "empty-scope", "slash", "pipe", "split-key", "escaped-colon"],
    )
    async def test_a_scope_and_key_that_join_to_the_same_text_are_two_independent_keys(
        self, idempotency_store: IdempotencyStore, ours: tuple[str, str], theirs: tuple[str, str]
    ) -> None:
        """Tenant ``"shop"`` with key ``"x:1"`` is not tenant ``"shop:x"`` with key ``"1"``: a store that keys its
        records by ``scope + separator + key`` (or escapes the separator alone) replays one tenant's payment to
        the other. Both are taken, and each replays its own result."""
        await _two_independent_keys(idempotency_store, ours, theirs)

    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [
            ((scope_of(LONGEST_TENANT), LONGEST_KEY_STEM + "1"), (scope_of(LONGEST_TENANT), LONGEST_KEY_STEM + "2")),
            ((scope_of(LONGEST_TENANT[:-1] + "1"), "k1"), (scope_of(LONGEST_TENANT[:-1] + "2"), "k1")),
            (
                (scope_of(LONGEST_WIDE_TENANT), LONGEST_WIDE_KEY_STEM + "1"),
                (scope_of(LONGEST_WIDE_TENANT), LONGEST_WIDE_KEY_STEM + "2"),
            ),
            ((scope_of(LONGEST_WIDE_TENANT[:-1] + "1"), "k1"), (scope_of(LONGEST_WIDE_TENANT[:-1] + "2"), "k1")),
        ],
        ids=["keys", "tenants", "wide-keys", "wide-tenants"],
    )
    async def test_the_longest_keys_and_tenants_are_kept_whole(
        self, idempotency_store: IdempotencyStore, ours: tuple[str, str], theirs: tuple[str, str]
    ) -> None:
        """paycore takes keys of up to ``MAX_KEY_LENGTH`` (255) characters and tenants of up to ``MAX_CODE_LENGTH``
        (64): two keys of 255 characters that differ only in their last, or two tenants of 64, are two (a column
        or a hash of the first 64 characters, or of the first 200, or of 255 bytes, would make one request replay
        the other's)."""
        await _two_independent_keys(idempotency_store, ours, theirs)

    @pytest.mark.parametrize(
        ("ours", "theirs"),
        [(("", "Order-1"), ("", "order-1")), (("t:Chez-Awa", "k1"), ("t:chez-awa", "k1"))],
        ids=["keys", "tenants"],
    )
    async def test_keys_and_scopes_differing_only_in_letter_case_are_two_independent_keys(
        self, idempotency_store: IdempotencyStore, ours: tuple[str, str], theirs: tuple[str, str]
    ) -> None:
        """Key ``Order-1`` is not ``order-1``, tenant ``Chez-Awa`` is not ``chez-awa``: a store comparing them
        without regard to case (a case-insensitive collation) replays one's result to the other."""
        await _two_independent_keys(idempotency_store, ours, theirs)

    @pytest.mark.parametrize("kept_as", ["result", "record"])
    async def test_a_request_completed_in_one_scope_is_new_in_another(
        self, idempotency_store: IdempotencyStore, kept_as: str
    ) -> None:
        """Two restaurants send the same key with the same request (the same fingerprint): each its own."""
        ours = await idempotency_store.claim(scope="t:chez-awa", key="k1", fingerprint="f1", lease_seconds=LEASE)
        if kept_as == "record":
            await as_keeping(idempotency_store).complete_record(
                scope="t:chez-awa", key="k1", token=ours.token or "", record=make_payment(), ttl_seconds=LEASE
            )
        else:
            await idempotency_store.complete(
                scope="t:chez-awa", key="k1", token=ours.token or "", result={"v": "awa"}, ttl_seconds=LEASE
            )
        for scope in ("t:le-baobab", ""):
            theirs = await idempotency_store.claim(scope=scope, key="k1", fingerprint="f1", lease_seconds=LEASE)
            assert theirs.token, f"scope {scope!r} was answered with another scope's result"
            assert (theirs.result, getattr(theirs, "record", None)) == (None, None)

    async def test_of_many_concurrent_claims_exactly_one_takes_the_key(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        """Many retries of one new request at once: one runs it, the others are told it is in progress."""
        await _exactly_one_takes(idempotency_store, "f1", "one new key")

    async def test_of_many_concurrent_claims_of_an_expired_lease_exactly_one_takes_it_over(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        """A request whose process died holds its key until its lease ends; the retries that then come at once
        (a client's, a reaper's) are one takeover: one runs the request again, the others are told it is in
        progress and, once it completes, replay its result. A takeover that is not atomic lets several run it:
        the customer is charged more than once."""
        crashed = await idempotency_store.claim(scope="", key="race", fingerprint="f1", lease_seconds=SHORT)
        await anyio.sleep(SHORT + 0.2)
        winner = await _exactly_one_takes(idempotency_store, "f1", "over one expired lease")
        assert winner.taken_over
        assert winner.token != crashed.token
        await _complete_then_replay(idempotency_store, "f1", winner)

    async def test_of_many_concurrent_claims_of_a_key_past_its_retention_exactly_one_takes_it(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        """A key kept its retention is new again; the requests that then come with it at once are one new request
        and its retries: one runs it, the others are told it is in progress and, once it completes, replay its
        result (not the forgotten one). A store that lets several take the forgotten key charges more than once."""
        first = await idempotency_store.claim(scope="", key="race", fingerprint="f1", lease_seconds=LEASE)
        await idempotency_store.complete(scope="", key="race", token=first.token or "", result={"by": "forgotten"},
                                         ttl_seconds=SHORT)  # fmt: skip
        await anyio.sleep(SHORT + 0.2)
        winner = await _exactly_one_takes(idempotency_store, "f2", "one key past its retention")
        await _complete_then_replay(idempotency_store, "f2", winner)

    async def test_a_store_that_claims_without_waiting_claims_for_a_caller_already_cancelled(
        self, idempotency_store: IdempotencyStore
    ) -> None:
        if getattr(idempotency_store, "claims_without_waiting", False) is not True:
            pytest.skip(f"{type(idempotency_store).__name__} does not say its claim never waits (it is run to its end)")
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()  # the flow awaits it as it is: a wait inside it would end it here, the key taken
            claim = await idempotency_store.claim(scope="", key="k1", fingerprint="f1", lease_seconds=LEASE)
        assert not cancelled.cancelled_caught, "claim waited: it may not say claims_without_waiting"
        await idempotency_store.release(scope="", key="k1", token=claim.token or "")
        assert (await idempotency_store.claim(scope="", key="k1", fingerprint="f2", lease_seconds=LEASE)).token


async def _two_independent_keys(store: IdempotencyStore, ours: tuple[str, str], theirs: tuple[str, str]) -> None:
    """Claim ``(scope, key)`` ``ours`` and ``theirs``: each is taken, and each replays its own result."""
    claims = []
    for scope, key in (ours, theirs):
        try:
            claim = await store.claim(scope=scope, key=key, fingerprint="f1", lease_seconds=LEASE)
        except (IdempotencyInProgress, IdempotencyKeyReused) as error:
            other = ours if (scope, key) != ours else theirs
            pytest.fail(f"(scope={scope!r}, key={key!r}) was refused ({type(error).__name__}): it is another key "
                        f"than {other}, yet the store holds it as taken; does it cut keys or scopes short, fold "
                        "their case, or join them ambiguously?")  # fmt: skip
        assert claim.token, f"(scope={scope!r}, key={key!r}) replayed another scope's result"
        assert (claim.result, getattr(claim, "record", None)) == (None, None)
        claims.append(claim)
    for (scope, key), claim in zip((ours, theirs), claims, strict=True):
        await store.complete(scope=scope, key=key, token=claim.token or "", result={"scope": scope, "key": key},
                             ttl_seconds=LEASE)  # fmt: skip
    for scope, key in (ours, theirs):
        replay = await store.claim(scope=scope, key=key, fingerprint="f1", lease_seconds=LEASE)
        assert (replay.token, replay.result) == (None, {"scope": scope, "key": key}), (
            f"(scope={scope!r}, key={key!r}) replayed another scope's result"
        )


async def _exactly_one_takes(store: IdempotencyStore, fingerprint: str, what: str) -> IdempotencyClaim:
    """:data:`RACERS` claims at once of key ``"race"`` (scope ``""``): one takes it, the others are refused."""
    taken: list[IdempotencyClaim] = []
    refused: list[IdempotencyInProgress] = []

    async def claim() -> None:
        try:
            taken.append(await store.claim(scope="", key="race", fingerprint=fingerprint, lease_seconds=LEASE))
        except IdempotencyInProgress as error:
            refused.append(error)

    async with anyio.create_task_group() as group:
        for _ in range(RACERS):
            group.start_soon(claim)
    assert (len(taken), len(refused)) == (1, RACERS - 1), (
        f"{len(taken)} of {RACERS} concurrent claims took {what}, {len(refused)} were refused: is the claim atomic?"
    )
    assert taken[0].token, "a claim of a key no live lease holds replayed a result"
    return taken[0]


async def _complete_then_replay(store: IdempotencyStore, fingerprint: str, winner: IdempotencyClaim) -> None:
    """``winner`` completes key ``"race"``; then the retries of the callers it beat each replay its result."""
    result = {"by": winner.token}
    await store.complete(scope="", key="race", token=winner.token or "", result=result, ttl_seconds=LEASE)
    for _ in range(RACERS - 1):
        replay = await store.claim(scope="", key="race", fingerprint=fingerprint, lease_seconds=LEASE)
        assert (replay.token, replay.result) == (None, result), "a refused caller's retry did not replay the result"
