"""``idempotency_required``: a flow that refuses mutating calls made without an idempotency key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paycore import Money, PaymentFlow
from paycore.errors import ConfigurationError, ValidationError
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


async def test_a_call_without_a_key_is_refused_and_changes_nothing(make_flow: Callable[..., PaymentFlow]) -> None:
    async with make_flow(idempotency_required=True) as flow:
        with pytest.raises(ValidationError, match="create_payment needs an idempotency_key"):
            await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T1-0001")
        assert await flow.list_payments() == []
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        assert fake.calls == []


async def test_every_mutating_call_needs_a_key(make_flow: Callable[..., PaymentFlow]) -> None:
    async with make_flow(idempotency_required=True) as flow:
        checkout = await flow.create_payment(
            amount=XOF_5000, provider="fake", order_id="T1-0001", capture=False, idempotency_key="pay-1"
        )
        payment_id = checkout.payment.id
        for name, call in {
            "capture": lambda: flow.capture(payment_id),
            "cancel": lambda: flow.cancel(payment_id),
            "refund": lambda: flow.refund(payment_id),
        }.items():
            with pytest.raises(ValidationError, match=f"{name} needs an idempotency_key"):
                await call()
        captured = await flow.capture(payment_id, idempotency_key="capture-1")
        refund = await flow.refund(payment_id, amount=Money.of("1000", "XOF"), idempotency_key="refund-1")
        assert (captured.captured_amount, refund.amount) == (XOF_5000, Money.of("1000", "XOF"))


async def test_keys_stay_optional_by_default(flow: PaymentFlow) -> None:
    checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T1-0001")
    assert checkout.payment.captured_amount == XOF_5000


@pytest.mark.parametrize("value", ["sometimes", 2, None])
def test_a_setting_that_is_not_a_flag_is_refused(make_flow: Callable[..., PaymentFlow], value: object) -> None:
    with pytest.raises(ConfigurationError, match="idempotency_required must be true or false"):
        make_flow(idempotency_required=value)
