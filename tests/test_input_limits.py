"""How large a request's metadata and basket may be: what paycore keeps is bounded, and the rest is refused
before anything is stored or sent, with an error that says the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paycore import LineItem, Money
from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.inputs import (
    MAX_ITEM_NAME_BYTES,
    MAX_ITEM_QUANTITY,
    MAX_LINE_ITEMS,
    MAX_METADATA_BYTES,
    check_items,
    json_document,
)
from paycore.money import MAX_MINOR_UNITS
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


def metadata_of(size: int, character: str = "a") -> dict[str, Any]:
    """``{"note": ...}`` of ``size`` bytes as compact UTF-8 JSON (``character`` repeated, ``a`` to make up)."""
    room = size - len('{"note":""}')
    width = len(character.encode())
    metadata = {"note": character * (room // width) + "a" * (room % width)}
    assert len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()) == size
    return metadata


# -- metadata ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["a", "é", "\N{GRINNING FACE}"])
async def test_metadata_of_the_largest_size_is_kept_as_given(flow: PaymentFlow, character: str) -> None:
    metadata = metadata_of(MAX_METADATA_BYTES, character)
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", metadata=metadata)
    assert dict((await flow.get_payment(checkout.payment.id)).metadata) == metadata


@pytest.mark.parametrize(
    ("metadata", "size"),
    [
        (metadata_of(MAX_METADATA_BYTES + 1), MAX_METADATA_BYTES + 1),
        ({"note": "é" * 300_000}, 600_011),  # counted in UTF-8 bytes, not characters: 300 011 of those
        ({f"k{n}": n for n in range(10_000)}, 127_781),  # many small keys
    ],
    ids=["one-byte-over", "non-ascii", "many-keys"],
)
async def test_a_payment_with_larger_metadata_is_refused_saying_the_limit_and_nothing_is_stored_or_sent(
    flow: PaymentFlow, fake: FakeProvider, metadata: dict[str, Any], size: int
) -> None:
    assert len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()) == size
    limit = f"metadata may hold at most {MAX_METADATA_BYTES} bytes of JSON \\(compact, UTF-8\\), not {size}"
    with pytest.raises(ValidationError, match=limit):
        await flow.create_payment(
            amount=XOF_5000, provider="fake", order_id="o", metadata=metadata, idempotency_key="k-1"
        )
    assert await flow.list_payments() == []
    assert fake.calls == []
    # The key is free for the corrected request.
    checkout = await flow.create_payment(
        amount=XOF_5000, provider="fake", order_id="o", metadata={"note": "short"}, idempotency_key="k-1"
    )
    assert dict(checkout.payment.metadata) == {"note": "short"}


async def test_a_refund_with_larger_metadata_is_refused_and_changes_nothing(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")).payment
    before = [operation for operation, _ in fake.calls]
    with pytest.raises(ValidationError, match=f"refund metadata may hold at most {MAX_METADATA_BYTES} bytes"):
        await flow.refund(payment.id, metadata=metadata_of(MAX_METADATA_BYTES + 1))
    assert await flow.get_payment(payment.id) == payment
    assert [operation for operation, _ in fake.calls] == before
    refund = await flow.refund(payment.id, metadata=metadata_of(MAX_METADATA_BYTES))
    assert dict(refund.metadata) == metadata_of(MAX_METADATA_BYTES)


def test_the_limit_is_a_serious_one() -> None:
    """Above any provider's own (Stripe: 50 keys of 40 characters, values of 500: 27 KB), far below the 1 MiB a
    webhook endpoint takes, even escaped at 3 bytes per byte (``\\ud83d\\ude00`` for a 4-byte character)."""
    stripe = {f"{n:040d}": "v" * 500 for n in range(50)}
    assert json_document(stripe, what="metadata") == stripe
    assert 3 * MAX_METADATA_BYTES < (1 << 20) // 4


# -- the basket --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            LineItem("Bolts", 10**4290, Money.of("1000000000000000", "XOF")),
            f"line item 'Bolts' needs an int quantity from 1 to {MAX_ITEM_QUANTITY}, not 1000",
        ),
        (LineItem("Bolts", MAX_ITEM_QUANTITY + 1, Money.of("1", "XOF")), "not 1000000001$"),
        (LineItem("Bolts", -(10**5000), Money.of("1", "XOF")), "needs an int quantity from 1 to"),
        (
            LineItem("Bolts", 2, Money.minor(MAX_MINOR_UNITS // 2 + 1, "XOF")),
            f"line item 'Bolts' totals more than {MAX_MINOR_UNITS} minor units \\(2 x 4611686018427387904\\)",
        ),
        (LineItem("Bolts", MAX_ITEM_QUANTITY, Money.minor(10**10, "XOF")), "totals more than"),
    ],
    ids=["huge-quantity", "quantity-one-over", "huge-negative-quantity", "total-one-over", "total-far-over"],
)
async def test_a_line_item_whose_quantity_or_total_is_too_large_is_refused_and_nothing_is_stored_or_sent(
    flow: PaymentFlow, fake: FakeProvider, item: LineItem, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", items=[item])
    assert await flow.list_payments() == []
    assert fake.calls == []


@pytest.mark.parametrize(
    "item",
    [
        LineItem("Grains of rice", MAX_ITEM_QUANTITY, Money.of("1", "XOF")),
        LineItem("Tanker", 1, Money.minor(MAX_MINOR_UNITS, "XOF")),
        LineItem("Half", 2, Money.minor(MAX_MINOR_UNITS // 2, "XOF")),
        LineItem("Gift", MAX_ITEM_QUANTITY, Money.of("0", "XOF")),
    ],
    ids=["largest-quantity", "largest-price", "largest-total", "free"],
)
async def test_a_line_item_at_the_limits_is_kept(flow: PaymentFlow, item: LineItem) -> None:
    assert check_items([item]) == (item,)
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", items=[item])
    assert (await flow.get_payment(checkout.payment.id)).items == (item,)


def basket(lines: int, name_bytes: int) -> list[LineItem]:
    """``lines`` line items whose names take ``name_bytes`` bytes of UTF-8 together (``é`` and ``a``)."""
    each, rest = divmod(name_bytes, lines)
    names = ["é" * (each // 2) + "a" * (each % 2 + (rest if n == 0 else 0)) for n in range(lines)]
    assert sum(len(name.encode()) for name in names) == name_bytes
    return [LineItem(name, 1, Money.of("100", "XOF")) for name in names]


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (basket(MAX_LINE_ITEMS + 1, MAX_LINE_ITEMS + 1), f"at most {MAX_LINE_ITEMS} line items, not 1001"),
        (basket(40, MAX_ITEM_NAME_BYTES + 1), f"may take at most {MAX_ITEM_NAME_BYTES} bytes of UTF-8 together"),
        (basket(1, 2000 * 4), "a line item's name"),  # one name: the length any text may have
    ],
    ids=["one-line-over", "names-one-byte-over", "one-long-name"],
)
async def test_a_basket_too_large_is_refused_saying_the_limit_and_nothing_is_stored_or_sent(
    flow: PaymentFlow, fake: FakeProvider, items: list[LineItem], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", items=items, idempotency_key="k")
    assert await flow.list_payments() == []
    assert fake.calls == []


async def test_a_basket_at_the_limits_is_kept_and_its_payment_and_webhooks_stay_far_below_a_mebibyte(
    flow: PaymentFlow,
) -> None:
    items = basket(MAX_LINE_ITEMS, MAX_ITEM_NAME_BYTES)
    metadata = metadata_of(MAX_METADATA_BYTES, "é")
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", items=items, metadata=metadata)
    kept = await flow.get_payment(checkout.payment.id)
    assert kept.items == tuple(items)
    basket_json = [{"name": i.name, "quantity": i.quantity, "unit_price": i.unit_price.minor_units} for i in items]
    echoed = json.dumps({"items": basket_json, "metadata": metadata}, ensure_ascii=False, separators=(",", ":"))
    assert len(echoed.encode()) < (1 << 20) // 4
