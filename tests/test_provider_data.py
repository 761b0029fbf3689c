"""What the core keeps for real gateways: every reference, the provider's own state, declared secrets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import pytest
from attrs import frozen

import paycore_memory.plugin
from paycore import Money, PaymentFlow
from paycore.errors import ConfigurationError, InvalidReport
from paycore.hookspecs import ProviderRegistrar, hookimpl
from paycore.providers import Capabilities, Provider
from paycore.records import NextAction, Payment, ProviderUpdate
from paycore.status import Outcome, PaymentStatus

pytestmark = pytest.mark.anyio


@frozen
class SessionState:
    """What a checkout-session gateway keeps on a payment."""

    session_id: str
    attempt: int = 1


class SessionGateway(Provider):
    """A gateway that starts a checkout session, then reports the payment under a second reference."""

    name = "session"
    capabilities = Capabilities(webhooks=True, polling=True)
    secret_settings: ClassVar[frozenset[str]] = frozenset({"crc_key"})
    state_type = SessionState
    seen_states: ClassVar[list[Any]] = []

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        return ProviderUpdate(
            outcome=Outcome.PENDING,
            external_id="cs_1",
            provider_state=SessionState("cs_1"),
            next_action=NextAction("redirect", url="https://checkout.example.test/cs_1"),
        )

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        self.seen_states.append(self.state(payment))
        return ProviderUpdate(outcome=Outcome.PENDING)

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        return None

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        event = body.decode()
        if event == "session.completed":  # names the session and the payment intent it created
            return [ProviderUpdate(outcome=Outcome.PENDING, external_id="cs_1", references=("pi_2",))]
        return [  # names the payment intent alone
            ProviderUpdate(
                outcome=Outcome.SUCCEEDED, external_id="pi_2", captured=Money.of("5000", "XOF"), provider_event_id=event
            )
        ]


class SessionPlugin:
    """Registers :class:`SessionGateway`."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(SessionGateway)


@pytest.fixture
async def flow() -> AsyncIterator[PaymentFlow]:
    config = {"providers": {"gw": {"type": "session", "crc_key": "c4f3-b4b3", "webhook_secret": "whsec_x"}}}
    async with PaymentFlow.from_config(
        config, plugins=[paycore_memory.plugin, SessionPlugin()], entry_points=False, environ={}
    ) as opened:
        yield opened


async def _start(flow: PaymentFlow) -> Payment:
    checkout = await flow.create_payment(amount=Money.of("5000", "XOF"), provider="gw", order_id="T1-0001")
    return checkout.payment


async def test_a_payment_keeps_every_reference_and_a_webhook_finds_it_by_a_later_one(flow: PaymentFlow) -> None:
    payment = await _start(flow)
    assert (payment.external_id, payment.references) == ("cs_1", ("cs_1",))
    await flow.handle_webhook("gw", b"session.completed", {})
    (paid,) = await flow.handle_webhook("gw", b"intent.succeeded", {})
    assert paid.id == payment.id
    assert paid.status is PaymentStatus.SUCCEEDED
    assert paid.references == ("cs_1", "pi_2")
    assert paid.external_id == "cs_1"


async def test_the_provider_reads_back_its_state_typed(flow: PaymentFlow) -> None:
    payment = await _start(flow)
    assert dict(payment.provider_state) == {"session_id": "cs_1", "attempt": 1}
    await flow.refresh(payment.id)
    assert SessionGateway.seen_states[-1] == SessionState("cs_1")


async def test_a_declared_secret_setting_is_masked_everywhere(flow: PaymentFlow) -> None:
    provider = flow.provider("gw")
    assert "c4f3-b4b3" not in repr(provider.settings)
    assert "c4f3-b4b3" not in repr(flow.config)
    assert provider.settings.secret("crc_key") == "c4f3-b4b3"


@pytest.mark.parametrize(
    "state",
    [{"when": float("nan")}, {"blob": "x" * 9000}, {1: "not a string key"}, ["not", "a", "mapping"], object()],
)
def test_a_provider_state_that_cannot_be_stored_is_refused_where_it_is_built(state: Any) -> None:
    with pytest.raises(InvalidReport):
        ProviderUpdate(provider_state=state)


def test_too_many_references_are_refused() -> None:
    with pytest.raises(InvalidReport, match="at most 16"):
        ProviderUpdate(references=tuple(f"r{i}" for i in range(17)))


class AmountlessGateway(SessionGateway):
    """Notifications without amounts, and no way to ask."""

    name = "amountless"
    capabilities = Capabilities(webhooks=True, webhook_amounts=False)


class AmountlessPlugin:
    """Registers :class:`AmountlessGateway`."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(AmountlessGateway)


def test_a_provider_whose_webhooks_lack_amounts_must_be_pollable() -> None:
    with pytest.raises(ConfigurationError, match="could never confirm"):
        PaymentFlow.from_config(
            {"providers": {"gw": {"type": "amountless"}}},
            plugins=[paycore_memory.plugin, AmountlessPlugin()],
            entry_points=False,
            environ={},
        )
