"""A listing's time bounds mean one instant on every store, and one no store can hold is refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import paycore_sqlalchemy.plugin
from paycore import Money
from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.listing import MAX_LIMIT

from .conftest import base_config

pytestmark = pytest.mark.anyio


def _flow(make_flow: Callable[..., PaymentFlow], store: str, tmp_path: Path) -> PaymentFlow:
    if store == "memory":
        return make_flow()
    config = base_config(repository=f"sqlite:///{tmp_path}/shop.db", idempotency="memory")
    return make_flow(config, plugins=(paycore_sqlalchemy.plugin,))


STORES = ["memory", "sqlite"]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(
    "bound",
    [
        {"created_from": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))},
        {"created_before": datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12)))},
    ],
    ids=["from-before-year-1-in-utc", "before-after-year-9999-in-utc"],
)
async def test_a_bound_out_of_range_once_in_utc_is_refused_on_every_store(
    make_flow: Callable[..., PaymentFlow], tmp_path: Path, store: str, bound: dict[str, Any]
) -> None:
    async with _flow(make_flow, store, tmp_path) as flow:
        with pytest.raises(ValidationError, match="out of range once in UTC"):
            await flow.page_payments(**bound)
        with pytest.raises(ValidationError, match="out of range once in UTC"):
            await flow.list_payments(**bound)


@pytest.mark.parametrize("store", STORES)
async def test_a_bound_in_another_zone_is_the_same_instant_on_every_store(
    make_flow: Callable[..., PaymentFlow], tmp_path: Path, store: str
) -> None:
    async with _flow(make_flow, store, tmp_path) as flow:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o")
        created = checkout.payment.created_at.astimezone(timezone(timedelta(hours=1)))  # Cotonou's clock
        assert [p.id for p in await flow.list_payments(created_from=created)] == [checkout.payment.id]
        assert await flow.list_payments(created_before=created) == []


@pytest.mark.parametrize("store", STORES)
async def test_the_largest_page_limit_is_taken_and_one_more_is_refused_naming_it(
    make_flow: Callable[..., PaymentFlow], tmp_path: Path, store: str
) -> None:
    """A page asks its store for one payment more than its limit: at MAX_LIMIT that was one too many, and the
    largest limit the error names was refused with a number the caller never gave."""
    async with _flow(make_flow, store, tmp_path) as flow:
        made = [
            (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id=f"o-{n}")).payment
            for n in range(2)
        ]
        page = await flow.page_payments(limit=MAX_LIMIT)
        assert ([p.id for p in page.items], page.next_cursor) == ([p.id for p in made], None)
        assert [p.id for p in await flow.list_payments(limit=MAX_LIMIT)] == [p.id for p in made]
        with pytest.raises(ValidationError, match=f"from 1 to {MAX_LIMIT}; not {MAX_LIMIT + 1}$"):
            await flow.page_payments(limit=MAX_LIMIT + 1)
