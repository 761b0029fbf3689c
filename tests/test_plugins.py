"""Plugins: entry points, loud failures naming the culprit, validation and event hooks."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import types
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from paycore import Money, hookimpl
from paycore.errors import DuplicateRegistration, PaymentRejected, PluginLoadError
from paycore.flow import PaymentFlow
from paycore.hookspecs import ProviderRegistrar
from paycore.plugins import ENTRY_POINT_GROUP, collect_registry, create_plugin_manager
from paycore.providers import Provider
from paycore.records import Payment, PaymentEvent
from paycore.testing.fake import FakeProvider

pytestmark = pytest.mark.anyio

XOF_5000 = Money.of("5000", "XOF")


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)
    return module


def _entry_points(monkeypatch: pytest.MonkeyPatch, *points: tuple[str, str]) -> None:
    found = [importlib.metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in points]

    def entry_points(**selection: str) -> list[importlib.metadata.EntryPoint]:
        assert selection == {"group": ENTRY_POINT_GROUP}
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def _provider_named(name: str) -> type[Provider]:
    return type(f"Provider_{name}", (FakeProvider,), {"name": name})


def _registering(provider_class: type[Provider]) -> Callable[[ProviderRegistrar], None]:
    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        register(provider_class)

    return paycore_register_providers


# -- loading ------------------------------------------------------------------------------


def test_installed_entry_points_register_the_memory_adapter() -> None:
    registry = collect_registry(create_plugin_manager())
    assert "memory" in registry.repositories
    assert "memory" in registry.idempotency_stores
    assert registry.origins["repository", "memory"] == "memory"


def test_an_entry_point_plugin_registers_under_its_entry_point_name(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    _entry_points(monkeypatch, ("acme", "acme_pay"))
    registry = collect_registry(create_plugin_manager())
    assert registry.providers["acme"].name == "acme"
    assert registry.origins["provider", "acme"] == "acme"


def test_a_plugin_that_fails_to_import_names_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    _entry_points(monkeypatch, ("broken", "paycore_no_such_module_xyz"))
    with pytest.raises(PluginLoadError, match=r"entry point 'broken' \(paycore_no_such_module_xyz\) failed to load"):
        create_plugin_manager()


def test_a_plugin_that_raises_on_import_names_its_entry_point_and_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "half_written")
    _entry_points(monkeypatch, ("half", "half_written:missing_attribute"))
    with pytest.raises(PluginLoadError, match=r"entry point 'half' .* failed to load: AttributeError"):
        create_plugin_manager()


def test_a_blocked_entry_point_is_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    _entry_points(monkeypatch, ("broken", "paycore_no_such_module_xyz"))
    manager = create_plugin_manager(blocked=["broken"])
    assert manager.get_plugin("broken") is None


def test_two_plugins_registering_one_provider_name_are_both_named(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "alpha_pay", paycore_register_providers=_registering(_provider_named("twin")))
    _module(monkeypatch, "beta_pay", paycore_register_providers=_registering(_provider_named("twin")))
    _entry_points(monkeypatch, ("alpha", "alpha_pay"), ("beta", "beta_pay"))
    manager = create_plugin_manager()
    with pytest.raises(
        DuplicateRegistration, match=r"provider 'twin' is registered by both plugin '.*' and plugin '.*'"
    ) as raised:
        collect_registry(manager)
    assert "alpha" in str(raised.value)
    assert "beta" in str(raised.value)


def test_two_plugins_registering_one_repository_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    @hookimpl
    def paycore_register_repositories(register: Any) -> None:
        register("memory", lambda context: None)

    _module(monkeypatch, "copycat", paycore_register_repositories=paycore_register_repositories)
    _entry_points(monkeypatch, ("copycat", "copycat"))
    import paycore_memory.plugin

    manager = create_plugin_manager([paycore_memory.plugin])
    with pytest.raises(DuplicateRegistration, match="repository 'memory' is registered by both"):
        collect_registry(manager)


def test_a_misspelt_hook_fails_loudly() -> None:
    @hookimpl
    def paycore_register_provider(register: ProviderRegistrar) -> None:  # missing the final s
        raise AssertionError("never called")

    plugin = types.ModuleType("typo_plugin")
    plugin.paycore_register_provider = paycore_register_provider  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match="unknown hook"):
        create_plugin_manager([plugin], entry_points=False)


def test_a_hook_with_a_wrong_argument_names_the_plugin() -> None:
    @hookimpl
    def paycore_register_providers(registrar: ProviderRegistrar) -> None:
        raise AssertionError("never called")

    plugin = types.ModuleType("wrong_args")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match="plugin 'wrong_args' has an invalid hook implementation"):
        create_plugin_manager([plugin], entry_points=False)


def test_registering_something_that_is_not_a_provider_is_refused() -> None:
    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        register(object)  # type: ignore[arg-type]

    plugin = types.ModuleType("not_a_provider")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match=r"plugin 'not_a_provider' registered .* not a Provider subclass"):
        collect_registry(create_plugin_manager([plugin], entry_points=False))


def test_a_registration_hook_that_raises_names_the_plugin() -> None:
    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        raise RuntimeError("boom")

    plugin = types.ModuleType("exploding")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(
        PluginLoadError, match="plugin 'exploding' failed in paycore_register_providers: RuntimeError: boom"
    ):
        collect_registry(create_plugin_manager([plugin], entry_points=False))


# -- paycore_validate_payment ------------------------------------------------------------


class Limit:
    """Refuses payments above ``maximum``."""

    def __init__(self, maximum: Money) -> None:
        self.maximum = maximum

    @hookimpl
    def paycore_validate_payment(self, payment: Payment) -> None:
        if payment.amount > self.maximum:
            raise PaymentRejected(f"{payment.amount} is above the limit of {self.maximum}")


class AsyncLimit(Limit):
    """The same policy, implemented as a coroutine."""

    @hookimpl
    async def paycore_validate_payment(self, payment: Payment) -> None:  # type: ignore[override]
        await anyio.lowlevel.checkpoint()
        super().paycore_validate_payment(payment)


@pytest.mark.parametrize("policy", [Limit, AsyncLimit])
async def test_a_validation_hook_refuses_a_payment_and_nothing_is_stored(
    make_flow: Callable[..., PaymentFlow], policy: type[Limit]
) -> None:
    async with make_flow(plugins=(policy(Money.of("1000", "XOF")),)) as flow:
        with pytest.raises(PaymentRejected, match="above the limit of 1000 XOF"):
            await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1", idempotency_key="k")
        assert await flow.list_payments() == []
        assert flow.provider("fake").calls == []  # type: ignore[attr-defined]
        accepted = await flow.create_payment(
            amount=Money.of("1000", "XOF"), provider="fake", order_id="o-1", idempotency_key="k"
        )
        assert accepted.payment.amount == Money.of("1000", "XOF")


# -- paycore_payment_event ---------------------------------------------------------------


class Recorder:
    """Records every event with the payment as then stored in the repository."""

    def __init__(self) -> None:
        self.flow: PaymentFlow | None = None
        self.seen: list[tuple[int, str, int]] = []

    async def stored_version(self, payment: Payment) -> int:
        assert self.flow is not None
        return (await self.flow.repository.get(payment.id)).version


class SyncRecorder(Recorder):
    @hookimpl
    def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        self.seen.append((event.sequence, event.kind, payment.version))


class AsyncRecorder(Recorder):
    @hookimpl
    async def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        await anyio.lowlevel.checkpoint()
        assert await self.stored_version(payment) >= payment.version  # committed before we hear of it
        self.seen.append((event.sequence, event.kind, payment.version))


@pytest.mark.parametrize("recorder_class", [SyncRecorder, AsyncRecorder])
async def test_event_hooks_hear_every_event_in_order_after_commit(
    make_flow: Callable[..., PaymentFlow], recorder_class: type[Recorder]
) -> None:
    recorder = recorder_class()
    async with make_flow(plugins=(recorder,)) as flow:
        recorder.flow = flow
        checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1")
        await flow.refund(checkout.payment.id, amount=Money.of("1000", "XOF"))
        events = await flow.list_events(checkout.payment.id)
    assert [(seq, kind) for seq, kind, _ in recorder.seen] == [(e.sequence, e.kind) for e in events]
    assert [seq for seq, _, _ in recorder.seen] == list(range(1, len(events) + 1))


class Failing:
    @hookimpl
    def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        raise RuntimeError("the audit log is down")


async def test_a_failing_event_hook_does_not_undo_the_change(
    make_flow: Callable[..., PaymentFlow], caplog: pytest.LogCaptureFixture
) -> None:
    after = SyncRecorder()
    async with make_flow(plugins=(Failing(), after)) as flow:
        with caplog.at_level(logging.ERROR, logger="paycore.flow"):
            checkout = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1")
        stored = await flow.get_payment(checkout.payment.id)
    assert stored.status == "succeeded"
    assert len(after.seen) == stored.event_count  # the other plugin still heard every event
    assert "the audit log is down" in caplog.text


class _CrashingPolicy:
    @hookimpl
    def paycore_validate_payment(self, payment: object) -> None:
        raise RuntimeError("limits service unreachable")


@pytest.mark.anyio
async def test_a_crashing_validation_plugin_refuses_the_payment_and_frees_the_key() -> None:
    import paycore_memory.plugin
    from paycore.testing import fake

    policy = _CrashingPolicy()
    flow = PaymentFlow.from_config(
        {"providers": {"fake": {"type": "fake", "webhook_secret": "s"}}},
        plugins=[fake, paycore_memory.plugin, policy],
        entry_points=False,
    )
    async with flow:
        with pytest.raises(PaymentRejected, match=r"failed \(RuntimeError\); payment refused"):
            await flow.create_payment(amount=Money.of("100", "XOF"), provider="fake", order_id="o", idempotency_key="k")
        assert await flow.list_payments() == []
        flow.plugin_manager.unregister(policy)
        checkout = await flow.create_payment(
            amount=Money.of("100", "XOF"), provider="fake", order_id="o", idempotency_key="k"
        )
        assert checkout.payment.status.value == "succeeded"
