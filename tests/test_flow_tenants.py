"""Tenants: a call scoped to a tenant never reads or changes another tenant's payment."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from paycore import Money
from paycore.errors import IdempotencyKeyReused, InvalidSignature, PaymentNotFound, ProviderNotEnabled
from paycore.flow import PaymentFlow
from paycore.records import Payment
from paycore.status import FraudStatus, Outcome, PaymentStatus
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")

TENANTS = {
    "chez-awa": {"providers": {"wave": {"type": "fake", "webhook_secret": "whsec-awa"}}},
    "chez-fatou": {"providers": {"wave": {"type": "fake", "webhook_secret": "whsec-fatou"}}},
}


@pytest.fixture
async def flow(make_flow: Callable[..., PaymentFlow]) -> AsyncIterator[PaymentFlow]:
    async with make_flow(tenants=TENANTS) as opened:
        yield opened


def _wave(flow: PaymentFlow, tenant: str) -> FakeProvider:
    provider = flow.provider("wave", tenant=tenant)
    assert isinstance(provider, FakeProvider)
    return provider


async def _paid(flow: PaymentFlow, tenant: str, order_id: str = "T1") -> Payment:
    checkout = await flow.create_payment(amount=XOF_5000, provider="wave", order_id=order_id, tenant=tenant)
    return checkout.payment


async def _authorized(flow: PaymentFlow, tenant: str) -> Payment:
    checkout = await flow.create_payment(amount=XOF_5000, provider="wave", order_id="T1", tenant=tenant, capture=False)
    return checkout.payment


async def test_each_tenant_has_its_own_provider_instance(flow: PaymentFlow) -> None:
    assert _wave(flow, "chez-awa") is not _wave(flow, "chez-fatou")
    with pytest.raises(ProviderNotEnabled):
        flow.provider("fake", tenant="chez-awa")


async def test_a_payment_is_stored_under_its_tenant(flow: PaymentFlow) -> None:
    payment = await _paid(flow, "chez-awa")
    assert payment.tenant == "chez-awa"
    assert (await flow.get_payment(payment.id, tenant="chez-awa")).id == payment.id


async def test_listing_for_a_tenant_shows_only_its_payments(flow: PaymentFlow) -> None:
    awa = await _paid(flow, "chez-awa")
    fatou = await _paid(flow, "chez-fatou")
    assert [p.id for p in await flow.list_payments(tenant="chez-awa")] == [awa.id]
    assert [p.id for p in await flow.list_payments(tenant="chez-fatou", order_id="T1")] == [fatou.id]
    assert {p.id for p in await flow.list_payments()} == {awa.id, fatou.id}


_SCOPED: dict[str, Callable[[PaymentFlow, str], Any]] = {
    "get_payment": lambda flow, pid: flow.get_payment(pid, tenant="chez-fatou"),
    "list_events": lambda flow, pid: flow.list_events(pid, tenant="chez-fatou"),
    "refund": lambda flow, pid: flow.refund(pid, tenant="chez-fatou"),
    "cancel": lambda flow, pid: flow.cancel(pid, tenant="chez-fatou"),
    "capture": lambda flow, pid: flow.capture(pid, tenant="chez-fatou"),
    "refresh": lambda flow, pid: flow.refresh(pid, tenant="chez-fatou"),
    "set_fraud_status": lambda flow, pid: flow.set_fraud_status(pid, FraudStatus.REVIEW, tenant="chez-fatou"),
    "resolve_review": lambda flow, pid: flow.resolve_review(pid, note="x", tenant="chez-fatou"),
}


@pytest.mark.parametrize("operation", sorted(_SCOPED))
@pytest.mark.parametrize("captured", [True, False], ids=["captured", "authorized"])
async def test_another_tenants_payment_is_not_found_and_not_changed(
    flow: PaymentFlow, operation: str, captured: bool
) -> None:
    payment = await (_paid(flow, "chez-awa") if captured else _authorized(flow, "chez-awa"))
    calls = list(_wave(flow, "chez-awa").calls)
    with pytest.raises(PaymentNotFound, match="chez-fatou"):
        await _SCOPED[operation](flow, payment.id)
    assert await flow.get_payment(payment.id) == payment
    assert _wave(flow, "chez-awa").calls == calls
    assert _wave(flow, "chez-fatou").calls == []


async def test_a_tenant_cannot_use_an_idempotency_key_to_reach_another_tenants_payment(flow: PaymentFlow) -> None:
    awa = await flow.create_payment(
        amount=XOF_5000, provider="wave", order_id="T1", tenant="chez-awa", idempotency_key="order-T1"
    )
    fatou = await flow.create_payment(
        amount=XOF_5000, provider="wave", order_id="T1", tenant="chez-fatou", idempotency_key="order-T1"
    )
    assert awa.payment.id != fatou.payment.id
    assert fatou.payment.tenant == "chez-fatou"
    assert len(_wave(flow, "chez-fatou").calls) == 1


async def _pending_at_awa(flow: PaymentFlow) -> tuple[Payment, bytes, Mapping[str, str]]:
    wave = _wave(flow, "chez-awa")
    wave.script("initiate", "pending")
    payment = (await flow.create_payment(amount=XOF_5000, provider="wave", order_id="T1", tenant="chez-awa")).payment
    wave.settle(payment.id, Outcome.SUCCEEDED)
    body, headers = wave.webhook(payment.id)
    return payment, body, headers


async def test_a_webhook_delivered_to_another_tenant_fails_its_signature(flow: PaymentFlow) -> None:
    payment, body, headers = await _pending_at_awa(flow)
    with pytest.raises(InvalidSignature):
        await flow.handle_webhook("wave", body, headers, tenant="chez-fatou")
    assert await flow.get_payment(payment.id) == payment


async def test_a_validly_signed_webhook_naming_another_tenants_payment_is_not_found(flow: PaymentFlow) -> None:
    payment, _, _ = await _pending_at_awa(flow)
    fatou = _wave(flow, "chez-fatou")
    fatou.ledger[payment.id] = _wave(flow, "chez-awa").ledger[payment.id]
    body, headers = fatou.webhook(payment.id)
    with pytest.raises(PaymentNotFound):
        await flow.handle_webhook("wave", body, headers, tenant="chez-fatou")
    assert await flow.get_payment(payment.id) == payment


async def test_a_webhook_reaches_the_payment_of_its_own_tenant(flow: PaymentFlow) -> None:
    payment, body, headers = await _pending_at_awa(flow)
    (after,) = await flow.handle_webhook("wave", body, headers, tenant="chez-awa")
    assert after.id == payment.id
    assert after.status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-flow", "another-flow"])
async def test_another_tenant_named_with_a_key_it_used_finds_no_payment_not_its_key(
    flow: PaymentFlow, elsewhere: bool
) -> None:
    """A refund of chez-awa's payment naming chez-fatou, under a key chez-fatou used for a refund of its own: the
    payment is not found (as with any other key), and chez-fatou's key is not touched. A flow that has not met the
    payment yet (another process) reads nothing before the key: there, that key is refused as reused."""
    awa, fatou = await _paid(flow, "chez-awa"), await _paid(flow, "chez-fatou", "T2")
    mine = await flow.refund(fatou.id, amount=Money.of("1000", "XOF"), idempotency_key="R1", tenant="chez-fatou")
    asking = _same_storage(flow) if elsewhere else flow
    for key in ("R1", "R2"):
        refused = IdempotencyKeyReused if elsewhere and key == "R1" else PaymentNotFound
        with pytest.raises(refused):
            await asking.refund(awa.id, amount=Money.of("1000", "XOF"), idempotency_key=key, tenant="chez-fatou")
    assert await flow.get_payment(awa.id) == awa
    again = await flow.refund(fatou.id, amount=Money.of("1000", "XOF"), idempotency_key="R1", tenant="chez-fatou")
    assert again == mine


def _same_storage(flow: PaymentFlow) -> PaymentFlow:
    """Another flow on ``flow``'s storage and providers, as another process would be: it has read no payment yet."""
    return PaymentFlow(
        config=flow.config,
        plugin_manager=flow.plugin_manager,
        registry=flow.registry,
        repository=flow.repository,
        idempotency_store=flow.idempotency.store,
    )


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-flow", "another-flow"])
@pytest.mark.parametrize("named_first", [True, False], ids=["tenant-named-first", "tenant-named-on-retry"])
async def test_a_keyed_refund_retried_with_or_without_its_tenant_refunds_once(
    flow: PaymentFlow, named_first: bool, elsewhere: bool
) -> None:
    payment = await _paid(flow, "chez-awa")
    retrying = _same_storage(flow) if elsewhere else flow
    first = await flow.refund(
        payment.id, amount=Money.of("1000", "XOF"), idempotency_key="R1", tenant="chez-awa" if named_first else None
    )
    again = await retrying.refund(
        payment.id, amount=Money.of("1000", "XOF"), idempotency_key="R1", tenant=None if named_first else "chez-awa"
    )
    assert again == first
    assert (await flow.get_payment(payment.id)).refunded_amount == Money.of("1000", "XOF")
    assert [call[0] for call in _wave(flow, "chez-awa").calls].count("refund") == 1


@pytest.mark.parametrize("elsewhere", [False, True], ids=["same-flow", "another-flow"])
async def test_a_key_of_payments_without_a_tenant_does_not_reach_an_unscoped_call_on_a_tenants_payment(
    make_flow: Callable[..., PaymentFlow], elsewhere: bool
) -> None:
    async with make_flow(tenants=TENANTS) as flow:
        plain = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T1")).payment
        awa = await _paid(flow, "chez-awa")
        await flow.refund(plain.id, amount=Money.of("1000", "XOF"), idempotency_key="R1")
        retrying = _same_storage(flow) if elsewhere else flow
        _wave(retrying, "chez-awa").ledger[awa.id] = _wave(flow, "chez-awa").ledger[awa.id]
        refund = await retrying.refund(awa.id, amount=Money.of("2000", "XOF"), idempotency_key="R1")
        assert refund.payment_id == awa.id
        assert (await flow.get_payment(awa.id)).refunded_amount == Money.of("2000", "XOF")
        assert (await flow.get_payment(plain.id)).refunded_amount == Money.of("1000", "XOF")


async def test_a_store_mixing_tenants_key_spaces_never_hands_one_tenant_anothers_payment(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    """A third party's store keying records by ``scope + ":" + key`` answered tenant ``shop:x``'s key ``1`` with
    tenant ``shop``'s payment of key ``x:1``: its customer sent to another restaurant's checkout, nothing stored."""
    from paycore_memory import MemoryIdempotencyStore

    class JoinsScopeAndKey(MemoryIdempotencyStore):
        async def claim(self, *, scope: str, key: str, fingerprint: str, lease_seconds: float) -> Any:
            return await super().claim(
                scope="", key=f"{scope}:{key}", fingerprint=fingerprint, lease_seconds=lease_seconds
            )

        async def complete(self, *, scope: str, key: str, token: str, result: Any, ttl_seconds: float) -> None:
            await super().complete(scope="", key=f"{scope}:{key}", token=token, result=result, ttl_seconds=ttl_seconds)

        async def complete_record(self, *, scope: str, key: str, token: str, record: Any, ttl_seconds: float) -> None:
            await super().complete_record(
                scope="", key=f"{scope}:{key}", token=token, record=record, ttl_seconds=ttl_seconds
            )

    tenants = dict.fromkeys(("shop", "shop:x"), TENANTS["chez-awa"])
    async with make_flow(tenants=tenants) as flow:
        flow.idempotency_store = JoinsScopeAndKey()
        ours = await flow.create_payment(
            amount=XOF_5000, provider="wave", order_id="T1", tenant="shop", idempotency_key="x:1"
        )
        with pytest.raises(IdempotencyKeyReused, match="another tenant"):
            await flow.create_payment(
                amount=XOF_5000, provider="wave", order_id="T1", tenant="shop:x", idempotency_key="1"
            )
        assert await flow.list_payments(tenant="shop:x") == []
        assert [p.id for p in await flow.list_payments(tenant="shop")] == [ours.payment.id]
