"""What a key stores stays valid from one release of paycore to the next.

A request fingerprint and a key-bound id are kept (in the idempotency store, as
payment and refund ids): a retry made after an upgrade must compute the same
ones, or it would be refused as a reused key, or make a second payment where
its first attempt's should be found. Each is checked against its definition
and against a value pinned when it was defined.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from paycore import keys
from paycore.keys import derived_id, fingerprint

REFUND_ARGUMENTS: dict[str, Any] = {
    "payment_id": "pay_1",
    "amount": {"minor_units": 1500, "currency": "XOF"},
    "reason": "plat froid",
    "metadata": {"till": "caisse-2", "note": "café", "covers": [2, 2.5, None, True], "\u2028": {}},
}


def test_a_fingerprint_is_the_sha256_of_the_sorted_compact_json_of_the_request() -> None:
    canonical = json.dumps(
        {"operation": "refund", "arguments": REFUND_ARGUMENTS}, sort_keys=True, separators=(",", ":"), default=str
    )
    assert fingerprint("refund", REFUND_ARGUMENTS) == hashlib.sha256(canonical.encode()).hexdigest()


def test_a_fingerprint_is_the_same_without_the_json_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    accelerated = fingerprint("refund", REFUND_ARGUMENTS)
    monkeypatch.setattr(keys, "_ENCODE_CANONICAL", None)
    assert fingerprint("refund", REFUND_ARGUMENTS) == accelerated


def test_a_fingerprint_does_not_depend_on_the_order_of_the_arguments() -> None:
    reordered = dict(reversed(list(REFUND_ARGUMENTS.items())))
    assert fingerprint("refund", reordered) == fingerprint("refund", REFUND_ARGUMENTS)
    assert fingerprint("capture", REFUND_ARGUMENTS) != fingerprint("refund", REFUND_ARGUMENTS)


def test_a_fingerprint_is_the_one_pinned() -> None:
    arguments = {k: v for k, v in REFUND_ARGUMENTS.items() if k != "metadata"}
    arguments["metadata"] = {"till": "caisse-2", "note": "café"}
    assert fingerprint("refund", arguments) == "8b9fd39a925f92f43ad4e93e68aea78d14396f673460b9bed291111ddfd9d76d"


def test_a_key_bound_id_is_120_bits_of_sha256_in_lower_case_base32() -> None:
    digest = hashlib.sha256(b"pay\x00t:chez-awa\x00order-42\x0020427").digest()
    expected = "pay_" + base64.b32encode(digest[:15]).decode().lower()
    assert derived_id("pay", "t:chez-awa", "order-42\x0020427") == expected == "pay_4drwywwjr5cktmg6wf4fcsnc"


def test_a_keyed_refund_id_names_its_payment_and_a_retry_still_finds_one_named_before() -> None:
    from datetime import UTC, datetime, timedelta

    binding = keys.KeyBinding.at("t:chez-awa", "refund-1", datetime(2026, 12, 5, 12, tzinfo=UTC), timedelta(days=1))
    window = int(datetime(2026, 12, 5, 12, tzinfo=UTC).timestamp() // 86400)
    mine, theirs = binding.new_id("re", within="pay_a"), binding.new_id("re", within="pay_b")
    assert mine == derived_id("re", "t:chez-awa", f"refund-1\x00{window}\x00pay_a") != theirs
    named_before = derived_id("re", "t:chez-awa", f"refund-1\x00{window}")  # a refund stored by an earlier release
    assert binding.candidate_ids("re", within="pay_a")[0] == mine
    assert named_before in binding.candidate_ids("re", within="pay_a")


def test_the_ids_paycore_makes_are_told_from_references_that_only_begin_as_theirs() -> None:
    from paycore.keys import derived_id, is_record_id
    from paycore.records import new_id

    assert all(is_record_id("pay", new_id("pay")) for _ in range(500))
    assert all(is_record_id("pay", derived_id("pay", "chez-awa", f"order-{n}")) for n in range(500))
    assert not any(
        is_record_id("pay", other)
        for other in ("pay_8812", "pay_order 42/2024", "ORDER-42", "pay_", "ref_" + new_id("pay")[4:], "")
    )
    assert not is_record_id("ref", new_id("pay"))


def test_a_retry_still_finds_a_record_named_before_ids_named_their_window() -> None:
    """Until December 2026 a key-bound id was ``derived_id(prefix, scope, key)``: a retry after the upgrade looks
    for it last, for a payment and for a refund alike."""
    from datetime import UTC, datetime, timedelta

    binding = keys.KeyBinding.at("t:chez-awa", "order-42", datetime(2026, 12, 6, 12, tzinfo=UTC), timedelta(days=1))
    named_before = derived_id("pay", "t:chez-awa", "order-42")
    assert binding.candidate_ids("pay")[-1] == named_before == "pay_kacva3yjacbbn4aki7efw4xr"
    assert derived_id("re", "t:chez-awa", "order-42") in binding.candidate_ids("re", within="pay_a")
    assert binding.new_id("pay") != binding.candidate_ids("pay")[-1]  # a record made now names its window


def test_a_refund_s_retry_finds_one_its_first_attempt_keyed_in_no_tenant_s_key_space() -> None:
    """Before December 2026 a refund asked without ``tenant=`` was keyed in no tenant's key space, under each
    of the namings of its time (with its window and payment, with its window, with neither)."""
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    window = int(now.timestamp() // 86400)
    binding = keys.KeyBinding.at("t:chez-awa", "re-9", now, timedelta(days=1))
    candidates = binding.candidate_ids("re", within="pay_a")
    for name in (f"re-9\x00{window}\x00pay_a", f"re-9\x00{window - 1}\x00pay_a", f"re-9\x00{window}", "re-9"):
        assert derived_id("re", "", name) in candidates
    assert candidates[0] == binding.new_id("re", within="pay_a")  # the newest naming first
    unscoped = keys.KeyBinding.at("", "re-9", now, timedelta(days=1)).candidate_ids("re", within="pay_a")
    assert len(set(unscoped)) == len(unscoped) == 5


def test_a_refund_request_is_also_fingerprinted_as_before_it_carried_metadata() -> None:
    arguments = {k: v for k, v in REFUND_ARGUMENTS.items() if k != "metadata"}
    assert keys.earlier_forms("refund", {**arguments, "metadata": {}}) == (arguments,)
    assert keys.earlier_forms("refund", REFUND_ARGUMENTS) == ()  # metadata given: no earlier release could
    assert keys.earlier_forms("capture", {"payment_id": "pay_1", "metadata": {}}) == ()
