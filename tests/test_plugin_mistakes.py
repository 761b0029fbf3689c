"""A plugin's mistake is caught where it is made, as a clear error of the PaycoreError family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from paycore import Money, hookimpl
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.hookspecs import IdempotencyStoreRegistrar, ProviderRegistrar, RepositoryRegistrar
from paycore.records import Payment, ProviderUpdate, Refund
from paycore.status import PaymentStatus, RefundStatus
from paycore.testing.fake import FakeProvider
from paycore_memory import MemoryIdempotencyStore

from .conftest import base_config

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


class Sloppy(FakeProvider):
    """Answers a create with a dict and a refund with a payment report: a provider's bugs."""

    name = "sloppy"

    async def initiate(self, payment: Payment) -> Any:
        await super().initiate(payment)
        return {"status": "pending"}

    async def refund(self, payment: Payment, refund: Refund) -> Any:
        await super().refund(payment, refund)
        return ProviderUpdate()


class SloppyPlugin:
    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(Sloppy)


@pytest.fixture
async def sloppy(make_flow: Callable[..., PaymentFlow]) -> Any:
    config = {"providers": {"sloppy": {"type": "sloppy", "webhook_secret": "whsec-test"}}}
    async with make_flow(config, plugins=(SloppyPlugin(),)) as flow:
        yield flow


async def test_an_answer_of_the_wrong_type_leaves_the_outcome_unknown_never_a_crash(sloppy: PaymentFlow) -> None:
    checkout = await sloppy.create_payment(amount=XOF_5000, provider="sloppy", order_id="o", idempotency_key="k")
    assert checkout.payment.pending_call is not None
    assert checkout.payment.pending_call.unknown, "sent, and its answer says nothing: settled by asking"
    assert "dict where a ProviderUpdate was due" in checkout.payment.pending_call.reason


async def test_a_refund_answered_with_a_payment_report_stays_pending_with_its_call_unknown(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    config = {"providers": {"sloppy": {"type": "sloppy", "webhook_secret": "whsec-test"}}}
    async with make_flow(config, plugins=(SloppyPlugin(),)) as flow:
        sloppy = flow.provider("sloppy")
        assert isinstance(sloppy, Sloppy)
        sloppy.script("initiate", "approve")
        payment = (await flow.create_payment(amount=XOF_5000, provider="sloppy", order_id="o")).payment
        await flow.refresh(payment.id)
        assert (await flow.get_payment(payment.id)).status is PaymentStatus.SUCCEEDED
        refund = await flow.refund(payment.id, amount=Money.of("1000", "XOF"))
        assert refund.status is RefundStatus.PENDING
        after = await flow.get_payment(payment.id)
        assert after.pending_call is not None
        assert after.pending_call.unknown


class Misbuilt:
    """Registers factories that build the wrong thing."""

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        register("nothing", lambda context: None)
        register("keys-as-payments", lambda context: MemoryIdempotencyStore())

    @hookimpl
    def paycore_register_idempotency_stores(self, register: IdempotencyStoreRegistrar) -> None:
        register("nothing", lambda context: None)


@pytest.mark.parametrize(
    ("config", "told"),
    [
        ({"repository": "nothing", "idempotency": "memory"}, "repository type 'nothing' built a NoneType"),
        ({"repository": "keys-as-payments", "idempotency": "memory"}, "missing: add, get, get_by_external_id"),
        ({"repository": "memory", "idempotency": "nothing"}, "idempotency store type 'nothing' built a NoneType"),
    ],
)
def test_a_factory_that_builds_the_wrong_thing_is_refused_when_the_flow_is_built(
    make_flow: Callable[..., PaymentFlow], config: dict[str, Any], told: str
) -> None:
    with pytest.raises(ConfigurationError, match=told.replace("(", r"\(")):
        make_flow(base_config(**config), plugins=(Misbuilt(),))


class Traced:
    """A repository that delegates every call through ``__getattr__`` (a tracing proxy)."""

    def __init__(self) -> None:
        from paycore_memory import MemoryRepository

        self._inner = MemoryRepository()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TracedPlugin:
    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        register("traced", lambda context: Traced())


async def test_a_repository_that_delegates_through_getattr_is_accepted(make_flow: Callable[..., PaymentFlow]) -> None:
    async with make_flow(base_config(repository="traced", idempotency="memory"), plugins=(TracedPlugin(),)) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o")
        assert checkout.payment.status is PaymentStatus.SUCCEEDED
