"""Taking and refunding cash through ``PaymentFlow``: tender, change, split tender, drawer rules."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from attrs import evolve

from paycore.errors import (
    ConfigurationError,
    IdempotencyInProgress,
    RefundExceedsCaptured,
    StorageUnavailable,
    UnsupportedCurrency,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.hookspecs import RepositoryRegistrar, hookimpl
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore_cash.backends.memory import MemoryDrawerStorage
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import (
    CashSaleFailed,
    CashSaleUnsettled,
    DrawerClosed,
    ForeignCurrency,
    InsufficientDrawerCash,
    InsufficientTender,
    InvalidCashRequest,
    NoOpenDrawer,
)
from paycore_cash.hookspecs import DrawerBackendRegistrar
from paycore_cash.records import CashMovement, MovementKind
from paycore_cash.sales import order_balance, take_cash
from paycore_memory import MemoryRepository

from .conftest import cash_config

pytestmark = pytest.mark.anyio

TENANT = "chez-awa"


def xof(amount: str | int) -> Money:
    return Money.of(str(amount), "XOF")


async def open_till(drawers: CashDrawers, float_: int = 10_000) -> str:
    return (await drawers.open(till="T1", opening_float=xof(float_), opened_by="Awa")).id


async def test_a_cash_sale_succeeds_at_once_with_its_change(flow: PaymentFlow, drawers: CashDrawers) -> None:
    session_id = await open_till(drawers)
    sale = await take_cash(
        flow, amount=xof(3_500), tendered=xof(5_000), till="T1", order_id="T1-1", tenant=TENANT, cashier="Awa"
    )
    assert sale.payment.status is PaymentStatus.SUCCEEDED
    assert sale.payment.captured_amount == xof(3_500)
    assert (sale.change, sale.balance_due) == (xof(1_500), xof(0))
    [movement] = await drawers.movements(session_id)
    assert (movement.kind, movement.amount, movement.tendered, movement.change) == (
        MovementKind.SALE,
        xof(3_500),
        xof(5_000),
        xof(1_500),
    )
    assert movement.payment_id == sale.payment.id
    assert sale.payment.external_id == movement.id


async def test_exact_cash_gives_no_change(flow: PaymentFlow, drawers: CashDrawers) -> None:
    await open_till(drawers)
    sale = await take_cash(flow, amount=xof(2_000), tendered=xof(2_000), till="T1", order_id="o", tenant=TENANT)
    assert sale.change == xof(0)


async def test_tendering_less_than_due_is_refused_and_stores_nothing(flow: PaymentFlow, drawers: CashDrawers) -> None:
    session_id = await open_till(drawers)
    with pytest.raises(InsufficientTender, match="4000 XOF"):
        await take_cash(flow, amount=xof(5_000), tendered=xof(4_000), till="T1", order_id="o", tenant=TENANT)
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session_id) == []


async def test_a_payment_made_directly_with_too_little_tender_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    session_id = await open_till(drawers)
    with pytest.raises(InsufficientTender):
        await flow.create_payment(
            amount=xof(5_000),
            provider="cash",
            order_id="o",
            tenant=TENANT,
            metadata={"till": "T1", "tendered": "4000"},
        )
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session_id) == []


async def test_split_tender_pays_part_and_leaves_the_rest_due(flow: PaymentFlow, drawers: CashDrawers) -> None:
    await open_till(drawers)
    total = xof(12_000)
    first = await take_cash(
        flow, amount=total, tendered=xof(5_000), till="T1", order_id="T1-9", tenant=TENANT, split_tender=True
    )
    assert (first.payment.amount, first.change, first.balance_due) == (xof(5_000), xof(0), xof(7_000))
    due = await order_balance(flow, order_id="T1-9", total=total, tenant=TENANT)
    assert due == xof(7_000)
    second = await take_cash(
        flow, amount=due, tendered=xof(10_000), till="T1", order_id="T1-9", tenant=TENANT, split_tender=True
    )
    assert (second.payment.amount, second.change, second.balance_due) == (xof(7_000), xof(3_000), xof(0))
    assert await order_balance(flow, order_id="T1-9", total=total, tenant=TENANT) == xof(0)


@pytest.mark.parametrize("split_tender", ["no", "False", 1, 0, None])
async def test_a_split_tender_that_is_not_true_or_false_is_refused_and_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers, split_tender: Any
) -> None:
    session_id = await open_till(drawers)
    with pytest.raises(InvalidCashRequest, match="split_tender must be True or False"):
        await take_cash(
            flow,
            amount=xof(1_000),
            tendered=xof(400),
            till="T1",
            order_id="o",
            tenant=TENANT,
            split_tender=split_tender,
        )
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session_id) == []


async def test_taking_cash_with_no_open_drawer_is_refused_and_stores_nothing(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    with pytest.raises(NoOpenDrawer, match="'T1'"):
        await take_cash(flow, amount=xof(1_000), tendered=xof(1_000), till="T1", order_id="o", tenant=TENANT)
    assert await flow.list_payments(tenant=TENANT) == []


async def test_taking_cash_after_the_drawer_closed_is_refused_and_changes_nothing(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    session_id = await open_till(drawers)
    closed = await drawers.close(till="T1", counted=xof(10_000), closed_by="Awa")
    with pytest.raises(NoOpenDrawer):
        await take_cash(flow, amount=xof(1_000), tendered=xof(1_000), till="T1", order_id="o", tenant=TENANT)
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session_id) == []
    assert await drawers.get(session_id) == closed


async def test_a_payment_in_another_currency_than_the_providers_is_refused(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    await open_till(drawers)
    with pytest.raises(UnsupportedCurrency, match="does not accept EUR; it accepts XOF"):
        await flow.create_payment(
            amount=Money.of("10", "EUR"), provider="cash", order_id="o", tenant=TENANT, metadata={"till": "T1"}
        )
    assert await flow.list_payments(tenant=TENANT) == []


async def test_the_currency_setting_is_the_providers_one_currency_as_every_listing_reads_it(flow: PaymentFlow) -> None:
    # a pay page lists the providers of an order's currency from this: an XOF till is no button on a EUR order
    assert flow.provider("cash", tenant=TENANT).currencies == frozenset({"XOF"})
    async with PaymentFlow.from_config(cash_config()) as any_currency:
        assert any_currency.provider("cash", tenant=TENANT).currencies is None


async def test_a_payment_in_another_currency_than_the_drawer_is_refused() -> None:
    async with PaymentFlow.from_config(cash_config()) as flow:  # no currency setting: the drawer's decides
        await open_till(CashDrawers(flow, tenant=TENANT))
        with pytest.raises(ForeignCurrency, match="holds XOF"):
            await flow.create_payment(
                amount=Money.of("10", "EUR"), provider="cash", order_id="o", tenant=TENANT, metadata={"till": "T1"}
            )
        assert await flow.list_payments(tenant=TENANT) == []


async def test_a_drawer_opened_in_another_currency_before_the_setting_takes_no_sale_in_it(sqlite_url: str) -> None:
    """A shop that fixed its cash currency after a till was opened in another: that drawer takes no sale, since
    the provider takes cash in its currency only."""
    async with PaymentFlow.from_config(cash_config() | {"repository": sqlite_url}) as flow:
        euros = await CashDrawers(flow, tenant=TENANT).open(
            till="T1", opening_float=Money.of("50", "EUR"), opened_by="Awa"
        )
    async with PaymentFlow.from_config(cash_config(currency="XOF") | {"repository": sqlite_url}) as flow:
        with pytest.raises(UnsupportedCurrency, match="does not accept EUR; it accepts XOF"):
            await take_cash(
                flow,
                amount=Money.of("10", "EUR"),
                tendered=Money.of("10", "EUR"),
                till="T1",
                order_id="o",
                tenant=TENANT,
            )
        assert await flow.list_payments(tenant=TENANT) == []
        assert await CashDrawers(flow, tenant=TENANT).movements(euros.id) == []


async def test_a_drawer_opened_in_another_currency_before_the_setting_is_emptied_and_closed_in_its_own(
    sqlite_url: str,
) -> None:
    """Its count was refused for not being in the configured currency, and a count in that currency for not being
    in the drawer's: the till could never be closed, nor opened again, until the setting was taken back."""
    async with PaymentFlow.from_config(cash_config() | {"repository": sqlite_url}) as flow:
        await CashDrawers(flow, tenant=TENANT).open(till="T1", opening_float=Money.of("50", "EUR"), opened_by="Awa")
    async with PaymentFlow.from_config(cash_config(currency="XOF") | {"repository": sqlite_url}) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        with pytest.raises(ForeignCurrency, match="not in the drawer's currency EUR"):
            await drawers.pay_out(till="T1", amount=Money.of("20", "XOF"), reason="to the safe", actor="Awa")
        await drawers.pay_out(till="T1", amount=Money.of("20", "EUR"), reason="to the safe", actor="Awa")
        with pytest.raises(ForeignCurrency, match="not in the drawer's currency EUR"):
            await drawers.close(till="T1", counted=Money.of("0", "XOF"), closed_by="Awa")
        closed = await drawers.close(till="T1", counted=Money.of("30", "EUR"), closed_by="Awa")
        assert (closed.expected, closed.variance) == (Money.of("30", "EUR"), Money.of("0", "EUR"))
        reopened = await drawers.open(till="T1", opening_float=Money.of("0", "XOF"), opened_by="Awa")
        assert reopened.currency == "XOF"


async def test_drawers_in_another_currency_than_the_cash_providers_are_refused(flow: PaymentFlow) -> None:
    with pytest.raises(ForeignCurrency, match="hold XOF, the currency its cash provider takes, not EUR"):
        CashDrawers(flow, tenant=TENANT, currency="EUR")
    assert CashDrawers(flow, tenant=TENANT, currency="XOF").currency == "XOF"


async def test_two_cash_providers_of_one_tenant_must_name_one_currency() -> None:
    config = cash_config(currency="XOF")
    config["tenants"][TENANT]["providers"]["cash-2"] = {"type": "cash", "currency": "EUR"}
    async with PaymentFlow.from_config(config) as flow:
        with pytest.raises(ConfigurationError, match=r"tenant 'chez-awa' enables cash providers 'cash' \(XOF\)"):
            CashDrawers(flow, tenant=TENANT)
        CashDrawers(flow, tenant="chez-binta")  # another tenant's one cash provider is not in question


@pytest.mark.parametrize("tips", [{"currency": "XOF"}, {}], ids=["same-currency", "no-currency"])
@pytest.mark.parametrize("listed_first", [False, True])
async def test_two_cash_providers_of_one_tenant_in_one_currency_share_its_drawers(
    tips: dict[str, str], listed_first: bool
) -> None:
    config = cash_config(currency="XOF")
    providers = {"cash-tips": {"type": "cash", **tips}}
    mine = config["tenants"][TENANT]["providers"]
    config["tenants"][TENANT]["providers"] = {**providers, **mine} if listed_first else {**mine, **providers}
    async with PaymentFlow.from_config(config) as flow:
        assert CashDrawers(flow, tenant=TENANT).currency == "XOF"  # the one set, whichever is listed first
        await open_till(CashDrawers(flow, tenant=TENANT))
        sale = await take_cash(
            flow, amount=xof(500), tendered=xof(500), till="T1", order_id="o", tenant=TENANT, provider="cash-tips"
        )
        assert sale.payment.status is PaymentStatus.SUCCEEDED


async def test_a_cash_payment_without_a_till_is_refused(flow: PaymentFlow) -> None:
    with pytest.raises(InvalidCashRequest, match="till"):
        await flow.create_payment(amount=xof(1_000), provider="cash", order_id="o", tenant=TENANT)
    assert await flow.list_payments(tenant=TENANT) == []


async def test_a_cash_refund_pays_out_of_the_drawer(flow: PaymentFlow, drawers: CashDrawers) -> None:
    session_id = await open_till(drawers)
    sale = await take_cash(flow, amount=xof(4_000), tendered=xof(5_000), till="T1", order_id="o", tenant=TENANT)
    refund = await flow.refund(sale.payment.id, amount=xof(1_500), reason="cold soup", tenant=TENANT)
    assert refund.status is RefundStatus.SUCCEEDED
    payment = await flow.get_payment(sale.payment.id)
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
    movements = await drawers.movements(session_id)
    assert [(m.kind, m.amount, m.refund_id) for m in movements][1] == (MovementKind.REFUND, xof(1_500), refund.id)
    assert (await drawers.totals(session_id)).expected == xof(10_000 + 4_000 - 1_500)


async def test_a_refund_larger_than_the_cash_taken_is_refused_and_changes_nothing(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    session_id = await open_till(drawers)
    sale = await take_cash(flow, amount=xof(4_000), tendered=xof(5_000), till="T1", order_id="o", tenant=TENANT)
    before = await flow.get_payment(sale.payment.id)
    with pytest.raises(RefundExceedsCaptured):
        await flow.refund(sale.payment.id, amount=xof(4_001), tenant=TENANT)
    assert await flow.get_payment(sale.payment.id) == before
    assert [m.kind for m in await drawers.movements(session_id)] == [MovementKind.SALE]


async def test_a_refund_larger_than_the_drawer_holds_pays_nothing_out(flow: PaymentFlow, drawers: CashDrawers) -> None:
    session_id = await open_till(drawers, float_=0)
    sale = await take_cash(flow, amount=xof(4_000), tendered=xof(4_000), till="T1", order_id="o", tenant=TENANT)
    await drawers.pay_out(till="T1", amount=xof(3_000), reason="drop to the safe", actor="Awa")
    before = await flow.get_payment(sale.payment.id)
    with pytest.raises(InsufficientDrawerCash, match="1000 XOF"):
        await flow.refund(sale.payment.id, amount=xof(2_000), tenant=TENANT)
    payment = await flow.get_payment(sale.payment.id)
    assert payment == before, "a refused refund leaves no refund record and no new version"
    assert payment.refunded_amount == xof(0)
    assert payment.refundable_amount == xof(4_000)
    assert (await drawers.totals(session_id)).refunds == xof(0)


async def test_a_refund_with_the_drawer_closed_is_refused(flow: PaymentFlow, drawers: CashDrawers) -> None:
    await open_till(drawers)
    sale = await take_cash(flow, amount=xof(4_000), tendered=xof(4_000), till="T1", order_id="o", tenant=TENANT)
    await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa")
    with pytest.raises(NoOpenDrawer):
        await flow.refund(sale.payment.id, amount=xof(1_000), tenant=TENANT)
    assert (await flow.get_payment(sale.payment.id)).refundable_amount == xof(4_000)


async def test_a_refund_is_paid_from_the_tills_current_session(flow: PaymentFlow, drawers: CashDrawers) -> None:
    await open_till(drawers)
    sale = await take_cash(flow, amount=xof(4_000), tendered=xof(4_000), till="T1", order_id="o", tenant=TENANT)
    await drawers.close(till="T1", counted=xof(14_000), closed_by="Awa")
    next_day = await open_till(drawers, float_=5_000)
    await flow.refund(sale.payment.id, amount=xof(1_000), tenant=TENANT)
    assert (await drawers.totals(next_day)).expected == xof(4_000)


class _LosesAnswers(MemoryDrawerStorage):
    """Drawer storage that stores a movement, then fails as if the answer was lost (or fails before storing it)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next = False
        self.fail_next = False

    async def add_movement(
        self, movement: CashMovement, *, expected_version: int | None = None, payment_version: int | None = None
    ) -> CashMovement:
        if self.fail_next:
            self.fail_next = False
            raise StorageUnavailable("database is locked")
        stored = await super().add_movement(
            movement, expected_version=expected_version, payment_version=payment_version
        )
        if self.lose_next:
            self.lose_next = False
            raise StorageUnavailable("connection reset after commit")
        return stored


class _LossyRepository(MemoryRepository):
    storage_backend = "lossy"


class _LossyPlugin:
    """A storage backend of its own: memory payments, drawers that lose answers."""

    def __init__(self) -> None:
        self.storage = _LosesAnswers()

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        register("lossy", lambda context: _LossyRepository())

    @hookimpl
    def paycore_cash_drawer_backends(self, register: DrawerBackendRegistrar) -> None:
        register("lossy", lambda repository: self.storage)


def _lossy_config(cash_config: Any) -> dict[str, Any]:
    return {**cash_config(currency="XOF"), "repository": "lossy"}


async def test_a_sale_whose_answer_was_lost_is_settled_by_polling_the_drawer(cash_config: Any) -> None:
    plugin = _LossyPlugin()
    async with PaymentFlow.from_config(_lossy_config(cash_config), plugins=[plugin]) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        await open_till(drawers)
        plugin.storage.lose_next = True
        checkout = await flow.create_payment(
            amount=xof(3_000), provider="cash", order_id="o", tenant=TENANT, metadata={"till": "T1"}
        )
        assert checkout.payment.status is PaymentStatus.PROCESSING
        assert checkout.payment.pending_call is not None
        assert checkout.payment.pending_call.unknown
        settled = await flow.refresh(checkout.payment.id, tenant=TENANT)
    assert settled.status is PaymentStatus.SUCCEEDED
    assert settled.captured_amount == xof(3_000)
    assert settled.pending_call is None


@pytest.mark.parametrize("stored", [True, False], ids=["recorded, answer lost", "never recorded"])
async def test_a_sale_the_drawer_did_not_confirm_gives_no_change_until_it_is_settled(
    cash_config: Any, stored: bool
) -> None:
    plugin = _LossyPlugin()
    async with PaymentFlow.from_config(_lossy_config(cash_config), plugins=[plugin]) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        await open_till(drawers)
        sale = {"amount": xof(9_000), "tendered": xof(10_000), "till": "T1", "order_id": "o", "tenant": TENANT}
        if stored:
            plugin.storage.lose_next = True
        else:
            plugin.storage.fail_next = True
        with pytest.raises(CashSaleUnsettled) as unsettled:
            await take_cash(flow, **sale, idempotency_key="sale-1")
        assert await order_balance(flow, order_id="o", total=xof(9_000), tenant=TENANT) == xof(9_000)
        await flow.refresh(unsettled.value.payment_id, tenant=TENANT)
        if stored:
            taken = await take_cash(flow, **sale, idempotency_key="sale-1")  # the same sale, now settled
            assert (taken.payment.status, taken.change, taken.balance_due) == (
                PaymentStatus.SUCCEEDED,
                xof(1_000),
                xof(0),
            )
        else:
            with pytest.raises(CashSaleFailed):
                await take_cash(flow, **sale, idempotency_key="sale-1")
            taken = await take_cash(flow, **sale, idempotency_key="sale-2")
            assert taken.change == xof(1_000)
        assert await order_balance(flow, order_id="o", total=xof(9_000), tenant=TENANT) == xof(0)


async def test_a_refund_whose_answer_was_lost_is_settled_without_paying_twice(cash_config: Any) -> None:
    plugin = _LossyPlugin()
    async with PaymentFlow.from_config(_lossy_config(cash_config), plugins=[plugin]) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        session_id = await open_till(drawers)
        sale = await take_cash(flow, amount=xof(4_000), tendered=xof(4_000), till="T1", order_id="o", tenant=TENANT)
        plugin.storage.lose_next = True
        lost = await flow.refund(sale.payment.id, amount=xof(1_000), tenant=TENANT)
        assert lost.status is RefundStatus.PENDING
        settled = await flow.refresh(sale.payment.id, tenant=TENANT)
        totals = await drawers.totals(session_id)
    assert [r.status for r in settled.refunds] == [RefundStatus.SUCCEEDED]
    assert (totals.refunds, totals.refund_count) == (xof(1_000), 1)


async def test_polling_a_sale_that_never_reached_the_drawer_fails_it(flow: PaymentFlow) -> None:
    provider = flow.provider("cash", tenant=TENANT)
    drawers = CashDrawers(flow, tenant=TENANT)
    await open_till(drawers)
    sale = await take_cash(flow, amount=xof(1_000), tendered=xof(1_000), till="T1", order_id="o", tenant=TENANT)
    ghost = evolve(sale.payment, id="pay_never_recorded")
    update = await provider.check_status(ghost)
    assert update.outcome is Outcome.FAILED


async def test_the_same_sale_sent_at_once_from_two_terminals_is_taken_once(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    session_id = await open_till(drawers)
    payment_ids: list[str] = []
    busy = 0

    async def sell() -> None:
        nonlocal busy
        try:
            sale = await take_cash(
                flow,
                amount=xof(2_500),
                tendered=xof(5_000),
                till="T1",
                order_id="T1-7",
                tenant=TENANT,
                idempotency_key="sale-7",
            )
        except IdempotencyInProgress:
            busy += 1
        else:
            payment_ids.append(sale.payment.id)

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(sell)
    await sell()
    assert len(payment_ids) + busy == 9
    assert len(set(payment_ids)) == 1
    totals = await drawers.totals(session_id)
    assert (totals.sale_count, totals.sales) == (1, xof(2_500))


# -- found by test_drawer_fuzz.py ----------------------------------------------------------------


async def test_a_tender_past_a_bigint_is_refused_before_anything_is_stored(
    flow: PaymentFlow, drawers: CashDrawers
) -> None:
    """It was taken, and on SQL the sale's movement then failed with OverflowError: the payment's outcome unknown."""
    session_id = await open_till(drawers)
    with pytest.raises(InvalidCashRequest, match="at most"):
        await flow.create_payment(
            amount=xof(1_000),
            provider="cash",
            order_id="o",
            tenant=TENANT,
            metadata={"till": "T1", "tendered": "1e25"},
        )
    with pytest.raises(InvalidCashRequest, match="at most"):
        await take_cash(
            flow,
            amount=xof(1_000),
            tendered=Money.minor(MAX_MINOR_UNITS + 1, "XOF"),
            till="T1",
            order_id="o",
            tenant=TENANT,
        )
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session_id) == []


@pytest.mark.parametrize(
    "metadata",
    [
        {"till": "T1\ud800"},
        {"till": "T1\n"},
        {"till": "T" * 65},
        {"till": "T1", "cashier": "Awa\ud800"},
        {"till": "T1", "cashier": "Awa\x00"},
    ],
)
async def test_a_till_or_cashier_no_storage_can_keep_is_refused_before_anything_is_stored(
    flow: PaymentFlow, drawers: CashDrawers, metadata: dict[str, Any]
) -> None:
    """On SQL these raised UnicodeEncodeError (a till: from the check; a cashier: from the sale's movement,
    leaving the payment's outcome unknown). The cash provider refuses them (InvalidCashRequest), if the core
    has not refused the metadata first."""
    session_id = await open_till(drawers)
    with pytest.raises(ValidationError):
        await flow.create_payment(amount=xof(1_000), provider="cash", order_id="o", tenant=TENANT, metadata=metadata)
    assert await flow.list_payments(tenant=TENANT) == []
    assert await drawers.movements(session_id) == []


async def test_an_order_paid_in_part_in_another_currency_has_no_balance_in_its_totals(cash_config: Any) -> None:
    """15.24 EUR paid of a 10 000 XOF order cannot be counted in francs: the till is told so, never asked for the
    whole total again as if nothing had been paid."""
    import paycore.testing.fake
    from paycore.errors import CurrencyMismatch

    config = cash_config(currency="XOF")
    config["tenants"][TENANT]["providers"]["card"] = {"type": "fake", "webhook_secret": "whsec-test"}
    async with PaymentFlow.from_config(config, plugins=[paycore.testing.fake]) as flow:
        card = await flow.create_payment(
            amount=Money.of("15.24", "EUR"), provider="card", order_id="T1-7", tenant=TENANT
        )
        assert card.payment.status is PaymentStatus.SUCCEEDED
        with pytest.raises(CurrencyMismatch, match=rf"order 'T1-7' .* {card.payment.id} \(15.24 EUR\)"):
            await order_balance(flow, order_id="T1-7", total=xof(10_000), tenant=TENANT)
        assert await order_balance(flow, order_id="T1-8", total=xof(10_000), tenant=TENANT) == xof(10_000)
        await flow.refund(card.payment.id, amount=Money.of("5.00", "EUR"), tenant=TENANT)
        with pytest.raises(CurrencyMismatch, match=r"\(15\.24 EUR\)"):  # 10.24 EUR of it still kept for the order
            await order_balance(flow, order_id="T1-7", total=xof(10_000), tenant=TENANT)
        await flow.refund(card.payment.id, tenant=TENANT)  # given back in full: it paid nothing
        assert await order_balance(flow, order_id="T1-7", total=xof(10_000), tenant=TENANT) == xof(10_000)


@pytest.mark.parametrize("by_session", [False, True])
async def test_a_keyed_count_in_a_foreign_currency_of_a_closed_drawer_is_refused_without_taking_its_key(
    by_session: bool,
) -> None:
    """Refused for its currency before its key is claimed, as any foreign amount is: the count corrected under the
    same key is refused for what it is (the drawer is closed), not as the key's reuse."""
    async with PaymentFlow.from_config(cash_config(currency="XOF")) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        session = await drawers.open(till="T1", opening_float=Money.of("0", "XOF"), opened_by="Awa")
        await drawers.close(till="T1", counted=Money.of("0", "XOF"), closed_by="Awa")
        where: dict[str, Any] = {"session_id": session.id} if by_session else {"till": "T1"}
        with pytest.raises(ForeignCurrency, match=r"counted cash 5\.00 EUR is not in the drawer's currency XOF"):
            await drawers.close(counted=Money.of("5", "EUR"), closed_by="Awa", idempotency_key="count-1", **where)
        with pytest.raises(DrawerClosed, match="closed already"):
            await drawers.close(counted=Money.of("5", "XOF"), closed_by="Awa", idempotency_key="count-1", **where)


async def test_keyed_changes_of_a_drawer_opened_in_another_currency_replay_after_it_closed(sqlite_url: str) -> None:
    """A retry whose first answer was lost replays what its key stored: it was refused for its currency once the
    drawer it changed had closed, since no drawer open at the till held that currency any more."""
    async with PaymentFlow.from_config(cash_config() | {"repository": sqlite_url}) as flow:
        await CashDrawers(flow, tenant=TENANT).open(till="T1", opening_float=Money.of("50", "EUR"), opened_by="Awa")
    async with PaymentFlow.from_config(cash_config(currency="XOF") | {"repository": sqlite_url}) as flow:
        drawers = CashDrawers(flow, tenant=TENANT)
        top_up = {"till": "T1", "amount": Money.of("10", "EUR"), "reason": "float", "actor": "Awa"}
        count = {"till": "T1", "counted": Money.of("60", "EUR"), "closed_by": "Awa"}
        paid_in = await drawers.pay_in(**top_up, idempotency_key="top-up-1")
        closed = await drawers.close(**count, idempotency_key="count-1")
        assert await drawers.pay_in(**top_up, idempotency_key="top-up-1") == paid_in
        assert await drawers.close(**count, idempotency_key="count-1") == closed
        await drawers.open(till="T1", opening_float=Money.of("0", "XOF"), opened_by="Awa")
        assert await drawers.close(**count, idempotency_key="count-1") == closed
