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
