"""The ``payment_event`` signal is sent after commit, once per event, in order, to ORM-using receivers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import paycore.testing.fake
from paycore import PaymentFlow
from paycore.money import Money
from paycore.status import Outcome
from paycore.testing.fake import FakeProvider
from paycore_django import models
from paycore_django.signals import payment_event

pytestmark = pytest.mark.anyio

SECRET = "whsec_signals"


@pytest.fixture
def received(using: str) -> Iterator[list[tuple[str, int, int, int]]]:
    """(kind, sequence, version of the event's payment, version stored when the receiver ran) per event."""
    seen: list[tuple[str, int, int, int]] = []

    def receiver(sender: Any, event: Any, payment: Any, **kwargs: Any) -> None:
        stored = models.Payment.objects.using(using).get(pk=payment.id).version
        seen.append((event.kind, event.sequence, payment.version, stored))

    payment_event.connect(receiver, sender=models.Payment, dispatch_uid="test-received")
    yield seen
    payment_event.disconnect(dispatch_uid="test-received", sender=models.Payment)


@pytest.fixture
def broken() -> Iterator[None]:
    def receiver(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("the kitchen printer is offline")

    payment_event.connect(receiver, sender=models.Payment, dispatch_uid="test-broken")
    yield
    payment_event.disconnect(dispatch_uid="test-broken", sender=models.Payment)


def _config(using: str) -> dict[str, Any]:
    return {
        "repository": {"type": "django", "using": using},
        "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
    }


async def test_receivers_see_each_event_once_in_order_after_its_commit(
    using: str, received: list[tuple[str, int, int, int]]
) -> None:
    async with PaymentFlow.from_config(_config(using), plugins=[paycore.testing.fake]) as flow:
        provider = flow.provider("fake")
        assert isinstance(provider, FakeProvider)
        provider.script("initiate", "pending")
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o-1")
        body, headers = provider.webhook(checkout.payment.id, outcome=Outcome.SUCCEEDED)
        await flow.handle_webhook("fake", body, headers)
        await flow.handle_webhook("fake", body, headers)
        events = await flow.repository.list_events(checkout.payment.id)
    assert [(kind, sequence) for kind, sequence, _, _ in received] == [(e.kind, e.sequence) for e in events]
    assert all(stored >= version for _, _, version, stored in received)


async def test_a_failing_receiver_is_logged_and_the_others_still_run(
    using: str, broken: None, received: list[tuple[str, int, int, int]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="paycore_django")
    async with PaymentFlow.from_config(_config(using), plugins=[paycore.testing.fake]) as flow:
        checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="fake", order_id="o-2")
        payment = await flow.get_payment(checkout.payment.id)
    assert len(received) == payment.event_count
    assert "payment_event receiver" in caplog.text
    assert "the kitchen printer is offline" in caplog.text
