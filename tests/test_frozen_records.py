"""Records are immutable all the way down: a caller cannot change what a store keeps or a replay returns.

The memory stores keep and return the very record objects, so a payment's
metadata, provider state, a refund's metadata and a next action's fields are
frozen (:mod:`paycore.frozen`): every change is refused, and the stored payment
and every replay stay as they were. The frozen documents still equal the plain
dicts and lists they were made of, serialize as they did, and every record
pickles, deep-copies and hashes. A provider state is kept as a store reads it
back (a tuple as an array), so a first result equals its replay from any store.
"""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

import paycore_sqlalchemy.plugin
from paycore import Money, serialization
from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.frozen import EMPTY, FrozenDict, FrozenList, freeze, thaw
from paycore.records import NextAction, Payment, ProviderUpdate, Refund
from paycore.rows import payment_values, refund_values
from paycore.testing.fake import FakeProvider
from paycore.testing.records import make_payment, rich_payment

from .conftest import base_config

METADATA: dict[str, Any] = {"table": 4, "tags": ["vip"], "nested": {"seats": [1, {"by": "window"}]}}


def _metadata() -> dict[str, Any]:
    """A fresh copy of :data:`METADATA`, so no test can change what another compares with."""
    return copy.deepcopy(METADATA)


# -- the frozen JSON values ------------------------------------------------------------------


def test_a_frozen_document_equals_the_plain_one_either_way_round() -> None:
    frozen = freeze(_metadata())
    assert type(frozen) is FrozenDict
    assert type(frozen["tags"]) is FrozenList
    assert frozen == METADATA
    assert METADATA == frozen  # noqa: SIM300  # the other way round is the point
    assert frozen["tags"] == ["vip"]
    assert ["vip"] == frozen["tags"]  # noqa: SIM300
    assert (frozen["tags"] != ["vip"], ["vip"] != frozen["tags"]) == (False, False)  # noqa: SIM300
    assert frozen["tags"] != ["other"]
    assert ["vip", "x"] != frozen["tags"]  # noqa: SIM300
    assert frozen["nested"]["seats"] == [1, {"by": "window"}]
    assert frozen["tags"] == ("vip",)
    assert repr(frozen) == repr(METADATA)


def test_a_frozen_document_hashes_consistently_with_its_equality() -> None:
    first, second = freeze({"a": [1, 2], "b": {"c": None}}), freeze({"b": {"c": None}, "a": (1, 2)})
    assert first == second
    assert hash(first) == hash(second)
    assert hash(FrozenList([1, 2])) == hash((1, 2))
    assert {first: "found"}[second] == "found"


def _refused_changes(document: Any) -> list[Callable[[], object]]:
    tags = document["tags"]
    return [
        lambda: tags.append("x"),
        lambda: tags.extend(["x"]),
        lambda: tags.insert(0, "x"),
        lambda: tags.pop(),
        lambda: tags.remove("vip"),
        lambda: tags.clear(),
        lambda: tags.sort(),
        lambda: tags.__setitem__(0, "x"),
        lambda: tags.__delitem__(0),
        lambda: document.__setitem__("table", 5),
        lambda: document.__delitem__("table"),
        lambda: document.update(table=5),
        lambda: document.setdefault("new", 1),
        lambda: document.pop("table"),
        lambda: document.popitem(),
        lambda: document.clear(),
        lambda: document.__ior__({"table": 5}),
        lambda: document["nested"]["seats"][1].__setitem__("by", "door"),
    ]


@pytest.mark.parametrize("change", range(len(_refused_changes(freeze(METADATA)))))
def test_every_change_to_a_frozen_document_is_refused(change: int) -> None:
    document = freeze(_metadata())
    with pytest.raises((TypeError, AttributeError)):
        _refused_changes(document)[change]()
    assert document == METADATA


def test_a_frozen_document_pickles_copies_and_writes_json_as_the_plain_one() -> None:
    document = freeze(_metadata())
    for copied in (pickle.loads(pickle.dumps(document)), copy.deepcopy(document), copy.copy(document)):
        assert copied == document
        assert type(copied["nested"]["seats"]) is FrozenList
    assert pickle.loads(pickle.dumps(EMPTY)) is EMPTY
    assert json.dumps(document) == json.dumps(METADATA)
    plain = thaw(document)
    plain["tags"].append("x")  # a plain copy changes; the document does not
    assert type(plain["nested"]["seats"]) is list
    assert document["tags"] == ["vip"]


# -- records ---------------------------------------------------------------------------------


RECORDS: dict[str, Callable[[], object]] = {
    "payment at its defaults": make_payment,
    "payment with every field": rich_payment,
    "refund at its defaults": lambda: Refund(id="re_1", payment_id="pay_1", amount=Money.of("1", "XOF")),
    "next action at its defaults": lambda: NextAction("redirect", url="https://pay.example.test/c/1"),
    "next action with fields": lambda: NextAction("form_post", url="https://pay.example.test/c", fields={"t": "1"}),
}


@pytest.mark.parametrize("build", RECORDS.values(), ids=RECORDS.keys())
def test_a_record_pickles_deep_copies_and_hashes(build: Callable[[], object]) -> None:
    record = build()
    for copied in (pickle.loads(pickle.dumps(record)), copy.deepcopy(record)):
        assert copied == record
        assert hash(copied) == hash(record)


def test_a_payment_read_back_from_json_equals_and_hashes_as_the_first() -> None:
    payment = rich_payment(metadata=_metadata(), provider_state={"steps": ("3ds", "otp")})
    again = serialization.loads(serialization.dumps(payment), Payment)
    assert again == payment
    assert payment == again
    assert hash(again) == hash(payment)


def test_the_documents_of_a_record_are_frozen_all_the_way_down() -> None:
    payment = rich_payment(metadata=_metadata())
    with pytest.raises(AttributeError):
        payment.metadata["tags"].append("x")  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        payment.provider_state["nested"]["ok"] = False
    with pytest.raises(TypeError):
        payment.refunds[0].metadata["till"] = "T9"  # type: ignore[index]
    assert payment.next_action is not None
    with pytest.raises(TypeError):
        payment.next_action.fields["t"] = "2"  # type: ignore[index]
    assert payment.metadata == METADATA


def _plain(value: Any) -> bool:
    """True when every object and array in ``value`` is a plain ``dict`` or ``list`` (none frozen, no tuple)."""
    if type(value) is dict:
        return all(_plain(item) for item in value.values())
    if type(value) is list:
        return all(_plain(item) for item in value)
    return not isinstance(value, dict | list | tuple)


def test_a_record_serializes_to_plain_data_as_before() -> None:
    payment = rich_payment(metadata=_metadata(), provider_state={"steps": ("3ds", "otp")})
    for data in (serialization.unstructure(payment), serialization.unstructure_compact(payment)):
        assert _plain(data)
        assert data["metadata"] == METADATA
        assert data["provider_state"] == {"steps": ["3ds", "otp"]}
    assert json.loads(serialization.dumps(payment))["metadata"] == METADATA
    values = payment_values(payment)
    assert all(_plain(values[name]) for name in ("metadata", "provider_state", "next_action"))
    assert all(_plain(row["metadata"]) for row in refund_values(payment))
    assert serialization.unstructure_compact(make_payment()).keys().isdisjoint({"metadata", "provider_state"})


def test_a_provider_state_is_kept_as_a_store_reads_it_back() -> None:
    state = ProviderUpdate(provider_state={"steps": ("3ds", "otp"), "by_attempt": {1: "declined"}}).provider_state
    assert state == {"steps": ["3ds", "otp"], "by_attempt": {"1": "declined"}}
    assert state is not None
    assert type(state["steps"]) is FrozenList


# -- through the flow, on memory and SQLite --------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "sqlite with memory keys"])
async def flow(
    request: pytest.FixtureRequest, make_flow: Callable[..., PaymentFlow], tmp_path: Path
) -> AsyncIterator[PaymentFlow]:
    """A flow on the memory stores, on SQLite, or on SQLite with idempotency keys kept in memory."""
    extra: dict[str, Any] = {}
    if request.param != "memory":
        extra["repository"] = f"sqlite:///{tmp_path / 'paycore.db'}"
    if request.param == "sqlite with memory keys":
        extra["idempotency"] = ["memory"]
    async with make_flow(base_config(**extra), plugins=(paycore_sqlalchemy.plugin,)) as opened:
        yield opened


@pytest.mark.anyio
async def test_a_caller_cannot_change_the_stored_payment_or_a_replay_through_its_metadata(flow: PaymentFlow) -> None:
    def create() -> Any:
        return flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T-1", metadata=_metadata(), idempotency_key="k"
        )

    first = await create()
    for change in _refused_changes(first.payment.metadata):
        with pytest.raises((TypeError, AttributeError)):
            change()
    stored = await flow.get_payment(first.payment.id)
    again = await create()
    assert stored.metadata == METADATA
    assert again.payment.metadata == METADATA
    assert again == first
    assert stored == first.payment


@pytest.mark.anyio
async def test_a_caller_cannot_change_a_stored_refund_through_its_metadata(flow: PaymentFlow) -> None:
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T-2")
    metadata = {"till": "T2", "notes": ["cold soup"]}
    refund = await flow.refund(checkout.payment.id, metadata=metadata, idempotency_key="r")
    with pytest.raises(AttributeError):
        refund.metadata["notes"].append("x")
    with pytest.raises(TypeError):
        refund.metadata["till"] = "T9"  # type: ignore[index]
    stored = await flow.get_payment(checkout.payment.id)
    assert stored.refund(refund.id).metadata == metadata
    assert await flow.refund(checkout.payment.id, metadata=metadata, idempotency_key="r") == refund


@pytest.mark.anyio
async def test_a_tuple_in_a_provider_state_survives_storage_and_replay(flow: PaymentFlow) -> None:
    fake = flow.provider("fake")
    assert isinstance(fake, FakeProvider)
    initiate = fake.initiate

    async def initiate_with_state(payment: Payment) -> ProviderUpdate:
        return evolve(await initiate(payment), provider_state={"steps": ("3ds", "otp")})

    fake.initiate = initiate_with_state  # type: ignore[method-assign]

    def create() -> Any:
        return flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T-3", idempotency_key="k")

    first = await create()
    again = await create()
    stored = await flow.get_payment(first.payment.id)
    assert first.payment.provider_state == {"steps": ["3ds", "otp"]}
    assert again == first
    assert stored == first.payment
    assert type(stored.provider_state["steps"]) is type(first.payment.provider_state["steps"]) is FrozenList


@pytest.mark.anyio
@pytest.mark.parametrize("metadata", [{"note": "a\x00b"}, {"a\x00": 1}, {"deep": [["\x00"]]}])
async def test_metadata_holding_a_nul_character_is_refused_and_stores_nothing(
    flow: PaymentFlow, metadata: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError, match="NUL character"):
        await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="o", metadata=metadata, idempotency_key="k"
        )
    assert await flow.list_payments() == []
    payment = (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o")).payment
    with pytest.raises(ValidationError, match="NUL character"):
        await flow.refund(payment.id, amount=Money.of("100", "XOF"), metadata=metadata)
    assert await flow.get_payment(payment.id) == payment
