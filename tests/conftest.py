"""Fixtures for the core's tests: a flow on the memory adapter with ``FakeProvider``.

``flow`` enables the fake provider as ``"fake"`` (no tenant) with the webhook
secret :data:`SECRET`, and a deliberately limited provider as ``"limited"``
(XOF only, no polling, no authorize/capture, no partial refund, no cancel).
Its clock is :class:`Clock`, which tests move forward by hand.

``postgres_url`` is a new PostgreSQL database of one test, on a server of the
session (:mod:`paycore.testing.postgres`, loopback only) started by the first
test that asks for it; tests using it are marked ``postgres``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money, hookimpl
from paycore.flow import PaymentFlow
from paycore.hookspecs import ProviderRegistrar
from paycore.providers import Capabilities
from paycore.records import Payment, ProviderUpdate
from paycore.status import Outcome
from paycore.testing.fake import FakeProvider
from paycore.testing.postgres import PostgresServer, scratch_databases, session_server

SECRET = "whsec-test"
"""The fake provider's webhook secret; no repr, event, log line or error may contain it."""

XOF_5000 = Money.of("5000", "XOF")

POSTGRES_TEMPLATE = "paycore_template"
"""The session's migrated database each test's PostgreSQL database is copied from."""


class Clock:
    """A settable UTC clock that moves one millisecond each time it is read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the clock forward by ``timedelta(**delta)``."""
        self.now += timedelta(**delta)


class LimitedProvider(FakeProvider):
    """A fake provider that can do little: XOF only, capture at once, full refunds, webhooks."""

    name = "limited"
    currencies = frozenset({"XOF"})
    capabilities = Capabilities(refund=True, webhooks=True)


class LimitedPlugin:
    """Registers :class:`LimitedProvider` (type ``"limited"``)."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register(LimitedProvider)


def base_config(**extra: Any) -> dict[str, Any]:
    """The tests' configuration mapping, with ``extra`` top-level keys."""
    config: dict[str, Any] = {
        "providers": {
            "fake": {"type": "fake", "webhook_secret": SECRET},
            "limited": {"type": "limited", "webhook_secret": SECRET},
        },
    }
    config.update(extra)
    return config


@pytest.fixture
def clock() -> Clock:
    """The flow's clock."""
    return Clock()


@pytest.fixture
def make_flow(clock: Clock) -> Callable[..., PaymentFlow]:
    """Build a flow from ``base_config(**extra)`` (or ``config=``) and extra ``plugins``."""

    def build(
        config: Mapping[str, Any] | None = None, *, plugins: tuple[object, ...] = (), **extra: Any
    ) -> PaymentFlow:
        return PaymentFlow.from_config(
            config if config is not None else base_config(**extra),
            plugins=[paycore.testing.fake, paycore_memory.plugin, LimitedPlugin(), *plugins],
            entry_points=False,
            environ={},
            clock=clock,
        )

    return build


@pytest.fixture
async def flow(make_flow: Callable[..., PaymentFlow]) -> AsyncIterator[PaymentFlow]:
    """An open flow on the memory adapter with ``fake`` and ``limited`` enabled."""
    async with make_flow() as opened:
        yield opened


@pytest.fixture
def fake(flow: PaymentFlow) -> FakeProvider:
    """The flow's ``"fake"`` provider."""
    provider = flow.provider("fake")
    assert isinstance(provider, FakeProvider)
    return provider


@pytest.fixture
def pay(flow: PaymentFlow, fake: FakeProvider) -> Callable[..., Any]:
    """``await pay(...)``: a payment the customer completed (pending, then a signed webhook)."""

    async def paid(amount: Money = XOF_5000, *, order_id: str = "order-1", **kwargs: Any) -> Payment:
        fake.script("initiate", "pending")
        checkout = await flow.create_payment(amount=amount, provider="fake", order_id=order_id, **kwargs)
        fake.settle(checkout.payment.id, Outcome.SUCCEEDED)
        body, headers = fake.webhook(checkout.payment.id)
        (payment,) = await flow.handle_webhook("fake", body, headers)
        return payment

    return paid


@pytest.fixture
def authorized(flow: PaymentFlow) -> Callable[..., Any]:
    """``await authorized(...)``: a payment authorized (not captured) at the fake provider."""

    async def build(amount: Money = XOF_5000, *, order_id: str = "order-1", **kwargs: Any) -> Payment:
        checkout = await flow.create_payment(amount=amount, provider="fake", order_id=order_id, capture=False, **kwargs)
        return checkout.payment

    return build


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test session on 127.0.0.1, with a migrated template database.

    The template holds every installed SQL schema (the SQL adapter's and its
    plugins', such as the cash drawers'). No PostgreSQL binaries: the test fails
    saying how to install them, it is never skipped.
    """
    from paycore_sqlalchemy import migrate

    with session_server(template=POSTGRES_TEMPLATE, prepare=migrate.upgrade) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, migrated PostgreSQL database of this test only; dropped afterwards."""
    with scratch_databases(postgres_server, template=POSTGRES_TEMPLATE) as make:
        yield make()


def alter_reports(
    fake: FakeProvider, monkeypatch: pytest.MonkeyPatch, alter: Callable[[ProviderUpdate], ProviderUpdate]
) -> None:
    """Make ``fake``'s webhooks and polls report what ``alter`` makes of each of their reports: a provider that says
    more (a dispute), or names another object at it (a second checkout)."""
    parse, check_status = fake.parse_webhook, fake.check_status

    async def delivered(body: bytes, headers: Any) -> list[ProviderUpdate]:
        return [alter(report) for report in await parse(body, headers)]

    async def polled(payment: Payment) -> ProviderUpdate:
        return alter(await check_status(payment))

    monkeypatch.setattr(fake, "parse_webhook", delivered)
    monkeypatch.setattr(fake, "check_status", polled)


SuiteOutcomes = dict[tuple[str, str], set[str]]
"""``{(class, test): outcomes}`` of a run of a conformance suite's copy, parametrized cases together."""


def run_suite_copy(pytester: pytest.Pytester, source: str, selection: str) -> tuple[SuiteOutcomes, str]:
    """Run the tests of the module ``source`` (a conformance suite beside genuine and broken implementations)
    that ``selection`` (``-k``) picks; their outcomes and the failures' text."""
    from pathlib import Path

    pytester.syspathinsert(Path(__file__).parent)
    pytester.makepyfile(test_suite_copy=source)
    recorder = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:django", "-k", selection)
    outcomes: SuiteOutcomes = {}
    failures: list[str] = []
    for report in recorder.getreports("pytest_runtest_logreport"):
        if report.when == "call" or report.outcome != "passed":
            _, klass, test = report.nodeid.split("::")
            outcomes.setdefault((klass, test.partition("[")[0]), set()).add(report.outcome)
        if report.failed:
            failures.append(report.longreprtext)
    return outcomes, "\n".join(failures)
