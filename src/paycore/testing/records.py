"""Record builders for tests: a full payment, with every field set, in one call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import evolve

from paycore.calls import CallOperation, CallState, ProviderCall
from paycore.money import Money
from paycore.records import (
    Customer,
    LineItem,
    NextAction,
    Payment,
    PaymentEvent,
    Refund,
    WebhookReceipt,
    new_id,
)
from paycore.status import FraudStatus, PaymentStatus, RefundStatus, ReviewReason

__all__ = ["BASE_TIME", "make_event", "make_payment", "make_receipt", "next_version", "rich_payment", "tied_with"]

BASE_TIME = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
"""A fixed instant tests build times from."""


def make_payment(**fields: Any) -> Payment:
    """A stored-looking payment (version 1) with sensible defaults, overridden by ``fields``."""
    defaults: dict[str, Any] = {
        "id": new_id("pay"),
        "provider": "fake",
        "order_id": "order-1",
        "amount": Money.of("5000", "XOF"),
        "version": 1,
        "event_count": 1,
        "created_at": BASE_TIME,
        "updated_at": BASE_TIME,
    }
    defaults.update(fields)
    return Payment(**defaults)


def rich_payment(**fields: Any) -> Payment:
    """A payment with every optional field set, to prove a repository stores them all."""
    payment_id = fields.pop("id", new_id("pay"))
    amount = Money.of("12.500", "KWD")
    payment = make_payment(
        id=payment_id,
        tenant="chez-awa",
        amount=amount,
        status=PaymentStatus.PARTIALLY_REFUNDED,
        authorized_amount=amount,
        captured_amount=amount,
        refunds=(
            Refund(id="re_a", payment_id=payment_id, amount=Money.of("2.250", "KWD"), status=RefundStatus.SUCCEEDED,
                   reason="cold soup", external_id="ext-r1", metadata={"till": "T2", "cashier": "Awa"},
                   created_at=BASE_TIME,
                   updated_at=BASE_TIME + timedelta(seconds=1)),
            Refund(id="re_b", payment_id=payment_id, amount=Money.of("1.001", "KWD"), status=RefundStatus.PENDING,
                   created_at=BASE_TIME, updated_at=BASE_TIME),
        ),
        external_id="ext-123",
        references=("ext-123", "ext-pi-9"),
        provider_state={"session": "cs_9", "attempt": 2, "nested": {"ok": True}},
        capture=False,
        description="Dîner — table 4",
        customer=Customer(email="awa@example.test", name="Awa Ndiaye", phone="+221700000000"),
        items=(LineItem("Thieboudienne", 2, Money.of("5.000", "KWD")), LineItem("Bissap", 1, Money.of("2.500", "KWD"))),
        metadata={"table": 4, "tags": ["vip", "terrace"], "nested": {"a": None}},
        return_url="https://shop.example.test/return",
        next_action=NextAction("form_post", url="https://gw.example.test/pay", method="POST", fields={"t": "1"}),
        fraud_status=FraudStatus.REVIEW,
        fraud_message="velocity",
        needs_review=True,
        review_reason=ReviewReason.AMOUNT_MISMATCH,
        review_message="underpaid",
        pending_call=ProviderCall(id="call_b", operation=CallOperation.REFUND, started_at=BASE_TIME,
                                  lease_until=BASE_TIME + timedelta(minutes=2), amount=Money.of("1.001", "KWD"),
                                  refund_id="re_b", state=CallState.UNKNOWN, reason="timed out"),
        event_count=7,
    )  # fmt: skip
    return evolve(payment, **fields)


def make_event(payment: Payment, sequence: int, kind: str = "status_changed", **fields: Any) -> PaymentEvent:
    """An event of ``payment`` with ``sequence``."""
    defaults: dict[str, Any] = {
        "id": new_id("evt"),
        "payment_id": payment.id,
        "sequence": sequence,
        "kind": kind,
        "cause": "api",
        "tenant": payment.tenant,
        "at": BASE_TIME + timedelta(seconds=sequence),
    }
    defaults.update(fields)
    return PaymentEvent(**defaults)


def make_receipt(payment: Payment, event_id: str, provider: str | None = None) -> WebhookReceipt:
    """A webhook receipt for ``payment``."""
    return WebhookReceipt(
        provider=provider or payment.provider,
        event_id=event_id,
        payment_id=payment.id,
        tenant=payment.tenant,
        received_at=BASE_TIME,
    )


def next_version(payment: Payment, **fields: Any) -> Payment:
    """``payment`` as its next stored version, with ``fields`` changed."""
    return evolve(payment, version=payment.version + 1, **fields)


def tied_with(payment: Payment) -> tuple[Payment, Payment]:
    """Two payments of ``payment``'s tenant made at its very time: the first's id sorts before its id, the
    second's after, as Python compares them (ids are random: they are drawn until both sides have one). A store
    whose collation orders ids otherwise may put both on one side: the paging test reads which from the store."""
    before: Payment | None = None
    after: Payment | None = None
    while before is None or after is None:
        drawn = make_payment(tenant=payment.tenant, created_at=payment.created_at)
        if drawn.id < payment.id:
            before = before or drawn
        else:
            after = after or drawn
    return before, after
