"""Creating a payment: what the provider says decides the status; bad input stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from paycore import Customer, LineItem, Money, hookimpl
from paycore.errors import (
    CurrencyMismatch,
    InvalidAmount,
    PaymentNotFound,
    UnsupportedCurrency,
    UnsupportedOperation,
    ValidationError,
)
from paycore.flow import PaymentFlow
from paycore.records import Payment, Refund
from paycore.status import PaymentStatus
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def test_an_approved_payment_succeeds_with_its_amount_captured(flow: PaymentFlow, fake: FakeProvider) -> None:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T12-0042")
    payment = checkout.payment
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.captured_amount == XOF_5000
    assert payment.external_id is not None
    assert payment.pending_call is None
    assert fake.calls == [("initiate", payment.id)]
    assert await flow.get_payment(payment.id) == payment


async def test_creating_appends_a_created_event_then_each_status_change(flow: PaymentFlow) -> None:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    events = await flow.list_events(checkout.payment.id)
    assert [(e.kind, e.from_status, e.to_status) for e in events] == [
        ("created", None, "pending"),
        ("status_changed", "pending", "succeeded"),
    ]
    assert events[0].amount == XOF_5000
    assert all(e.cause == "api" for e in events)


async def test_events_are_named_by_their_payment_and_their_place_in_its_history(flow: PaymentFlow) -> None:
    payment = (await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T-1")).payment
    events = await flow.list_events(payment.id)
    suffix = payment.id.removeprefix("pay_")
    assert [event.id for event in events] == [f"evt_{suffix}_{n}" for n in range(1, len(events) + 1)]


async def test_a_payment_awaiting_the_customer_is_processing_with_the_next_action(
    flow: PaymentFlow, fake: FakeProvider
) -> None:
    fake.script("initiate", "pending")
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    assert checkout.payment.status is PaymentStatus.PROCESSING
    assert checkout.action is not None
    assert checkout.action.kind == "redirect"
    assert checkout.action == checkout.payment.next_action


async def test_a_declined_payment_fails(flow: PaymentFlow, fake: FakeProvider) -> None:
    fake.script("initiate", "decline")
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
    assert checkout.payment.status is PaymentStatus.FAILED
    assert checkout.payment.captured_amount is None


async def test_a_payment_created_without_capture_is_authorized(flow: PaymentFlow) -> None:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o", capture=False)
    assert checkout.payment.status is PaymentStatus.AUTHORIZED
    assert checkout.payment.authorized_amount == XOF_5000
    assert checkout.payment.captured_amount is None


async def test_every_detail_given_is_stored(flow: PaymentFlow) -> None:
    items = (LineItem("Thieboudienne", 2, Money.of("2000", "XOF")), LineItem("Bissap", 1, Money.of("1000", "XOF")))
    checkout = await flow.create_payment(
        amount=XOF_5000,
        provider="fake",
        order_id="T12-0042",
        description="Table 12",
        customer=Customer(email="awa@example.test", name="Awa"),
        items=items,
        metadata={"table": 12},
        return_url="https://pos.example.test/done",
    )
    stored = await flow.get_payment(checkout.payment.id)
    assert (stored.order_id, stored.description, stored.return_url) == (
        "T12-0042",
        "Table 12",
        "https://pos.example.test/done",
    )
    assert stored.customer == Customer(email="awa@example.test", name="Awa")
    assert stored.items == items
    assert dict(stored.metadata) == {"table": 12}


async def test_payments_are_listed_by_order_and_status(flow: PaymentFlow, fake: FakeProvider) -> None:
    paid = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="A")).payment
    fake.script("initiate", "decline")
    declined = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="A")).payment
    other = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="B")).payment
    assert [p.id for p in await flow.list_payments(order_id="A")] == [paid.id, declined.id]
    assert [p.id for p in await flow.list_payments(status="failed")] == [declined.id]
    assert [p.id for p in await flow.list_payments(status=PaymentStatus.SUCCEEDED, order_id="B")] == [other.id]


async def test_listing_by_a_status_that_does_not_exist_is_refused(flow: PaymentFlow) -> None:
    with pytest.raises(ValidationError, match=r"status must be one of pending, .*; not 'paid'"):
        await flow.list_payments(status="paid")


async def test_an_unknown_payment_is_not_found(flow: PaymentFlow) -> None:
    with pytest.raises(PaymentNotFound, match="pay_nope"):
        await flow.get_payment("pay_nope")


# -- bad input changes nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"amount": Money.of("0", "XOF")}, InvalidAmount, "must be positive, not 0 XOF"),
        ({"amount": Money.of("-5", "XOF")}, InvalidAmount, "must be positive"),
        ({"amount": 5000}, InvalidAmount, "amount must be a Money, not int"),
        (
            {"amount": Money.of("9223372036854775.808", "KWD")},
            InvalidAmount,
            r"at most 9223372036854775807 minor units, not 9223372036854775808 \(9223372036854775.808 KWD\)",
        ),
        ({"order_id": ""}, ValidationError, "order_id must be a non-empty string"),
        (
            {"items": (LineItem("Menu", 1, Money.of("5", "EUR")),)},
            CurrencyMismatch,
            "line item 'Menu' is priced in EUR, the payment in XOF",
        ),
        ({"provider": "limited", "amount": Money.of("50", "EUR")}, UnsupportedCurrency, "does not accept EUR"),
        ({"provider": "limited", "capture": False}, UnsupportedOperation, "cannot authorize without capturing"),
        ({"idempotency_key": ""}, ValidationError, "idempotency_key must be a printable string"),
        ({"idempotency_key": "k" * 256}, ValidationError, "idempotency_key must be a printable string"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored_or_sent(
    flow: PaymentFlow, fake: FakeProvider, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    request: dict[str, Any] = {"amount": XOF_5000, "provider": "fake", "order_id": "o", **arguments}
    with pytest.raises(error, match=message):
        await flow.create_payment(**request)
    assert await flow.list_payments() == []
    assert fake.calls == []
    assert flow.provider("limited").calls == []  # type: ignore[attr-defined]


class PickyProvider(FakeProvider):
    """Refuses payments above 10 000 XOF and refunds below 100 XOF before anything is stored."""

    name = "picky"

    async def check_payment(self, payment: Payment) -> None:
        if payment.amount > Money.of("10000", "XOF"):
            raise ValidationError(f"{payment.amount} is above this till's limit")

    async def check_refund(self, payment: Payment, refund: Refund) -> None:
        if refund.amount < Money.of("100", "XOF"):
            raise ValidationError(f"refunds below 100 XOF are paid from petty cash, not {refund.amount}")


class PickyPlugin:
    @hookimpl
    def paycore_register_providers(self, register: Any) -> None:
        register(PickyProvider)


async def test_a_payment_the_provider_refuses_up_front_is_never_stored_and_frees_its_key(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    config = {"providers": {"picky": {"type": "picky", "webhook_secret": "whsec-test"}}}
    async with make_flow(config, plugins=(PickyPlugin(),)) as flow:
        request = {"provider": "picky", "order_id": "o", "idempotency_key": "k"}
        with pytest.raises(ValidationError, match="above this till's limit"):
            await flow.create_payment(amount=Money.of("20000", "XOF"), **request)
        assert await flow.list_payments() == []
        checkout = await flow.create_payment(amount=XOF_5000, **request)
        assert checkout.payment.status is PaymentStatus.SUCCEEDED


async def test_a_refund_the_provider_refuses_up_front_changes_nothing(make_flow: Callable[..., PaymentFlow]) -> None:
    config = {"providers": {"picky": {"type": "picky", "webhook_secret": "whsec-test"}}}
    async with make_flow(config, plugins=(PickyPlugin(),)) as flow:
        payment = (await flow.create_payment(amount=XOF_5000, provider="picky", order_id="o")).payment
        with pytest.raises(ValidationError, match="petty cash"):
            await flow.refund(payment.id, amount=Money.of("50", "XOF"))
        assert await flow.get_payment(payment.id) == payment
        assert [op for op, _ in flow.provider("picky").calls] == ["initiate"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("template", "tenant_url", "default_url"),
    [
        ("https://pos.example.test/webhooks", "https://pos.example.test/webhooks/chez-awa/wave",
         "https://pos.example.test/webhooks/fake"),
        ("https://pos.example.test/h/{tenant}/{code}", "https://pos.example.test/h/chez-awa/wave",
         "https://pos.example.test/h/fake"),
    ],
)  # fmt: skip
def test_each_provider_is_told_where_its_webhooks_go(
    make_flow: Callable[..., PaymentFlow], template: str, tenant_url: str, default_url: str
) -> None:
    flow = make_flow(
        webhook_url=template,
        tenants={"chez-awa": {"providers": {"wave": {"type": "fake", "webhook_secret": "whsec-test"}}}},
    )
    assert flow.provider("wave", tenant="chez-awa").context.webhook_url == tenant_url
    assert flow.provider("fake").context.webhook_url == default_url


@pytest.mark.parametrize("field", ["description", "order_id", "return_url", "metadata"])
async def test_an_integer_too_long_to_print_is_refused_like_any_bad_input(
    flow: PaymentFlow, fake: FakeProvider, field: str
) -> None:
    request: dict[str, Any] = {"amount": XOF_5000, "provider": "fake", "order_id": "T-1", field: 10**5000}
    if field == "metadata":
        request[field] = {"table": 10**5000}
    with pytest.raises(ValidationError):
        await flow.create_payment(**request)
    assert await flow.list_payments() == []
    assert fake.calls == []


@pytest.mark.parametrize(
    "customer",
    [
        {"email": "awa.diop@example.sn", "phone": "+221770001122"},
        Customer(email="awa.diop@example.sn\x00", phone="+221770001122"),
        Customer(email="awa.diop@example.sn", phone="+221770001122\x1b"),
    ],
    ids=["not-a-customer", "email-with-a-nul", "phone-with-an-escape"],
)
async def test_a_refused_customer_is_never_quoted_in_the_error(
    flow: PaymentFlow, fake: FakeProvider, customer: Any
) -> None:
    with pytest.raises(ValidationError, match="customer") as refused:
        await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T-1", customer=customer)
    assert "awa.diop" not in str(refused.value)
    assert "770001122" not in str(refused.value)
    assert await flow.list_payments() == []


async def test_a_payment_s_repr_shows_its_customer_only_in_part(flow: PaymentFlow) -> None:
    """A log line, a traceback's locals or an error tracker that prints a payment does not carry who paid."""
    customer = Customer(email="awa.diop@example.sn", name="Awa Diop", phone="+221770001122")
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T-1", customer=customer)
    stored = await flow.get_payment(checkout.payment.id)
    assert stored.customer == customer  # kept whole
    for shown in (repr(checkout), repr(stored), str(stored)):
        assert "awa.diop" not in shown
        assert "770001122" not in shown
        assert "Awa Diop" not in shown
    assert "Customer(email='aw***sn', name='Aw***op', phone='+2***22')" in repr(stored)


async def test_a_slow_policy_check_does_not_use_up_the_lease_of_the_call_it_precedes(
    make_flow: Callable[..., PaymentFlow], clock: Any
) -> None:
    class SlowRiskCheck:
        """A policy that asks a remote risk score: it takes longer than the lease leaves beyond the timeout."""

        @hookimpl
        async def paycore_validate_payment(self, payment: Payment) -> None:
            clock.advance(seconds=2)

    async with make_flow(plugins=(SlowRiskCheck(),), provider_timeout=10, idempotency_lease=11) as flow:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="T-1")
        assert checkout.payment.status is PaymentStatus.SUCCEEDED
