"""A flow configured with ``repository = "django"`` keeps its payments in the Django database,
across restarts, under asyncio and trio, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.money import Money
from paycore.status import Outcome, PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider
from paycore_django import models
from paycore_django.storage import DjangoIdempotencyStore, DjangoPaymentRepository
from paycore_django.units import run_unit

pytestmark = pytest.mark.anyio

SECRET = "whsec_django_flow"


def _config(using: str) -> dict[str, Any]:
    return {
        "repository": {"type": "django", "using": using},
        "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
    }


def _fake(flow: PaymentFlow) -> FakeProvider:
    provider = flow.provider("fake")
    assert isinstance(provider, FakeProvider)
    return provider


async def test_create_webhook_and_refund_are_stored_and_survive_a_restart(using: str) -> None:
    async with PaymentFlow.from_config(_config(using), plugins=[paycore.testing.fake]) as flow:
        assert isinstance(flow.repository, DjangoPaymentRepository)
        assert isinstance(flow.idempotency_store, DjangoIdempotencyStore)
        assert flow.repository.using == flow.idempotency_store.using == using
        _fake(flow).script("initiate", "pending")
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T12-0042", idempotency_key="k1"
        )
        assert checkout.payment.status is PaymentStatus.PROCESSING
        body, headers = _fake(flow).webhook(checkout.payment.id, outcome=Outcome.SUCCEEDED)
        await flow.handle_webhook("fake", body, headers)
        await flow.handle_webhook("fake", body, headers)  # a repeated delivery changes nothing
        refund = await flow.refund(checkout.payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r1")

    async with PaymentFlow.from_config(_config(using), plugins=[paycore.testing.fake]) as flow:
        payment = await flow.get_payment(checkout.payment.id)
        assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
        assert payment.captured_amount == Money.of("5000", "XOF")
        assert [(r.id, r.status) for r in payment.refunds] == [(refund.id, RefundStatus.SUCCEEDED)]
        kinds = [event.kind for event in await flow.repository.list_events(payment.id)]
        assert kinds.count("created") == 1
        assert len(kinds) == payment.event_count
        replayed = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T12-0042", idempotency_key="k1"
        )
        assert replayed.payment.id == checkout.payment.id
        assert _fake(flow).calls == []

    def stored() -> tuple[Any, ...]:
        row = models.Payment.objects.using(using).get(pk=payment.id)
        receipts = models.WebhookReceipt.objects.using(using).filter(payment_id=payment.id).count()
        return row.status, row.amount, row.captured, row.currency, row.version, receipts

    status, amount, captured, currency, version, receipts = await run_unit(using, stored, atomic=False)
    assert (status, amount, captured, currency) == ("partially_refunded", 5000, 5000, "XOF")
    assert version == payment.version
    assert receipts == 1


async def test_a_keyed_request_claims_its_key_with_its_first_read_and_completes_it_with_its_last_write(
    using: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's own ``claim`` and ``complete`` (units of work of their own) are not needed."""
    separately: list[str] = []
    for name in ("claim", "complete"):
        original = getattr(DjangoIdempotencyStore, name)

        async def counted(self: DjangoIdempotencyStore, *, _original: Any = original, **arguments: Any) -> Any:
            separately.append(arguments["key"])
            return await _original(self, **arguments)

        monkeypatch.setattr(DjangoIdempotencyStore, name, counted)
    async with PaymentFlow.from_config(_config(using), plugins=[paycore.testing.fake]) as flow:
        assert isinstance(flow.repository, DjangoPaymentRepository)
        assert flow.repository.completes_keys_of(flow.idempotency_store)
        fake = _fake(flow)
        fake.script("initiate", "pending")
        checkout = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T7", idempotency_key="c7"
        )
        await flow.handle_webhook("fake", *fake.webhook(checkout.payment.id, outcome=Outcome.SUCCEEDED))
        refund = await flow.refund(checkout.payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r7")
        assert separately == []

        def tokens() -> list[Any]:
            rows = models.IdempotencyRecord.objects.using(using).filter(key__in=["c7", "r7"])
            return sorted((row.key, row.token, row.result is not None) for row in rows)

        assert await run_unit(using, tokens, atomic=False) == [("c7", None, True), ("r7", None, True)]
        sent = len(fake.calls)
        replayed = await flow.create_payment(
            amount=Money.of("5000", "XOF"), provider="fake", order_id="T7", idempotency_key="c7"
        )
        assert replayed == checkout
        assert await flow.refund(checkout.payment.id, amount=Money.of("1000", "XOF"), idempotency_key="r7") == refund
        assert len(fake.calls) == sent
