"""Plugins: entry points, loud failures naming the culprit, validation and event hooks."""

from __future__ import annotations

import decimal
import gc
import importlib.metadata
import logging
import os
import re
import sys
import types
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import paycore.testing.fake
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


def _entry_points(monkeypatch: pytest.MonkeyPatch, *points: tuple[str, str] | importlib.metadata.EntryPoint) -> None:
    found = [
        point
        if isinstance(point, importlib.metadata.EntryPoint)
        else importlib.metadata.EntryPoint(*point, ENTRY_POINT_GROUP)
        for point in points
    ]

    def entry_points(**selection: str) -> list[importlib.metadata.EntryPoint]:
        assert selection == {"group": ENTRY_POINT_GROUP}
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def _distribution(root: Path, name: str, **points: str) -> list[importlib.metadata.EntryPoint]:
    """The ``paycore`` entry points of an installed distribution ``name`` 1.0 (a dist-info under ``root``)."""
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{entry} = {value}\n" for entry, value in points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    return list(importlib.metadata.PathDistribution(info).entry_points)


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
    with pytest.raises(PluginLoadError, match="plugin 'typo_plugin' implements an unknown hook") as raised:
        create_plugin_manager([plugin], entry_points=False)
    assert "\n" not in str(raised.value)


def test_a_hook_with_a_wrong_argument_names_the_plugin() -> None:
    @hookimpl
    def paycore_register_providers(registrar: ProviderRegistrar) -> None:
        raise AssertionError("never called")

    plugin = types.ModuleType("wrong_args")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match="plugin 'wrong_args' has an invalid hook implementation") as raised:
        create_plugin_manager([plugin], entry_points=False)
    assert "\n" not in str(raised.value), "one line, as the command line prints it"


def test_registering_something_that_is_not_a_provider_is_refused() -> None:
    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        register(object)  # type: ignore[arg-type]

    plugin = types.ModuleType("not_a_provider")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match=r"plugin 'not_a_provider' registered .* not a Provider subclass"):
        collect_registry(create_plugin_manager([plugin], entry_points=False))


@pytest.mark.parametrize(
    ("declared", "said"),
    [
        ({"settings_names": ["region"]}, "settings_names is ['region']: a frozenset of names or None"),
        ({"settings_names": "region"}, "settings_names is 'region'"),
        ({"secret_settings": None}, "secret_settings is None: a frozenset of names"),
        ({"currencies": frozenset({978})}, "currencies is frozenset({978})"),
        ({"capabilities": {"refunds": True}}, "capabilities is {'refunds': True}, not a paycore Capabilities"),
    ],
)
def test_a_provider_class_declaring_its_attributes_wrongly_is_refused_naming_the_plugin(
    declared: dict[str, object], said: str
) -> None:
    """The flow reads these when it builds the provider: a wrong one would fail there, as a bare TypeError."""
    provider = type("Misdeclared", (paycore.testing.fake.FakeProvider,), {"name": "misdeclared", **declared})

    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        register(provider)

    plugin = types.ModuleType("misdeclaring")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match=re.escape(f"plugin 'misdeclaring' registered Misdeclared whose {said}")):
        collect_registry(create_plugin_manager([plugin], entry_points=False))


@pytest.mark.parametrize(
    ("plugin", "named"),
    [
        (decimal, "decimal"),  # a module with no hook: a package given for its plugin module
        (decimal.Decimal, "Decimal"),
        (("paycore.testing.fake",), "tuple"),
        (None, "NoneType"),
        (3, "int"),
    ],
)
def test_a_plugin_given_in_code_that_implements_no_hook_is_refused(plugin: object, named: str) -> None:
    """It would be registered doing nothing: the payments it was meant to serve would fail far from the slip."""
    with pytest.raises(PluginLoadError, match=rf"plugin '{named}' implements no paycore hook"):
        create_plugin_manager([plugin], entry_points=False)


def test_a_plugin_whose_attributes_cannot_be_listed_is_a_load_error_naming_it() -> None:
    class Lazy:
        def __dir__(self) -> list[str]:
            raise RuntimeError("lazy plugin setup failed: settings not configured")

    with pytest.raises(PluginLoadError, match=r"plugin 'Lazy' failed while being registered: .*settings not config"):
        create_plugin_manager([Lazy()], entry_points=False)


class _NamelessProxy:
    """A proxy whose set-up fails at the first attribute read, even its name."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError("setup failed reading " + name)


class _Incomparable:
    @hookimpl
    def paycore_validate_payment(self, payment: Payment) -> None:
        """Refuses nothing."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("cannot compare")

    __hash__ = object.__hash__


@pytest.mark.parametrize("plugin", [_NamelessProxy(), _Incomparable()], ids=["nameless", "incomparable"])
def test_a_plugin_given_in_code_that_breaks_when_read_is_a_load_error(plugin: object) -> None:
    with pytest.raises(PluginLoadError, match=r"cannot be registered: RuntimeError"):
        create_plugin_manager([paycore.testing.fake, plugin], entry_points=False)


def test_an_entry_point_naming_a_module_without_hooks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _module(monkeypatch, "acme_pay_package")
    _entry_points(monkeypatch, ("acme", "acme_pay_package"))
    with pytest.raises(PluginLoadError, match=r"entry point 'acme' \(acme_pay_package\) implements no paycore hook"):
        create_plugin_manager()


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


def test_two_distributions_declaring_one_entry_point_name_are_both_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    _module(monkeypatch, "zeta_pay", paycore_register_providers=_registering(_provider_named("zeta")))
    _entry_points(
        monkeypatch,
        *_distribution(tmp_path / "a", "acme-pay", pay="acme_pay"),
        *_distribution(tmp_path / "z", "zeta-pay", pay="zeta_pay"),
    )
    with pytest.raises(DuplicateRegistration, match="share the entry point name 'pay'") as raised:
        create_plugin_manager()
    assert "acme-pay 1.0" in str(raised.value)
    assert "zeta-pay 1.0" in str(raised.value)


def test_one_distribution_seen_twice_is_loaded_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    _entry_points(  # a sys.path entry listed twice, or an editable install beside a built one
        monkeypatch,
        *_distribution(tmp_path / "site", "acme-pay", acme="acme_pay"),
        *_distribution(tmp_path / "src", "acme_pay", acme="acme_pay"),
    )
    registry = collect_registry(create_plugin_manager())
    assert registry.origins["provider", "acme"] == "acme"


@pytest.mark.parametrize("error", [RuntimeError("no config dir"), ValueError("bad default")])
def test_an_addhooks_that_raises_names_the_entry_point_and_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception
) -> None:
    @hookimpl
    def paycore_addhooks(plugin_manager: object) -> None:
        raise error

    _module(monkeypatch, "acme_pay", paycore_addhooks=paycore_addhooks)
    _entry_points(monkeypatch, *_distribution(tmp_path, "acme-pay", acme="acme_pay"))
    with pytest.raises(PluginLoadError) as raised:  # a ValueError is no "registered twice"
        create_plugin_manager()
    assert str(raised.value) == (
        f"entry point 'acme' (acme_pay) of acme-pay 1.0 failed in paycore_addhooks: {type(error).__name__}: {error}"
    )


def test_a_plugin_registered_twice_under_one_name_is_a_duplicate() -> None:
    first, second = types.ModuleType("twin_plugin"), types.ModuleType("twin_plugin")
    for twin in (first, second):
        twin.paycore_register_providers = _registering(_provider_named("twin"))  # type: ignore[attr-defined]
    with pytest.raises(DuplicateRegistration, match="under the name 'twin_plugin', which plugin 'twin_plugin' has"):
        create_plugin_manager([first, second], entry_points=False)


@pytest.mark.parametrize("hook_name", ["paycore_addhooks", "paycore_register_providers"])
def test_an_async_hook_is_refused_naming_the_plugin_and_never_warns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hook_name: str
) -> None:
    @hookimpl
    async def paycore_addhooks(plugin_manager: object) -> None:
        raise AssertionError("never run")

    @hookimpl
    async def paycore_register_providers(register: ProviderRegistrar) -> None:
        register(_provider_named("acme"))

    hooks = {"paycore_addhooks": paycore_addhooks, "paycore_register_providers": paycore_register_providers}
    _module(monkeypatch, "acme_pay", **{hook_name: hooks[hook_name]})
    _entry_points(monkeypatch, *_distribution(tmp_path, "acme-pay", acme="acme_pay"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(PluginLoadError, match=r"plain function \(def, not async def\)") as raised:
            collect_registry(create_plugin_manager())
        gc.collect()
    assert "'acme'" in str(raised.value)
    assert "acme-pay 1.0" in str(raised.value)
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []


def test_a_registration_hook_that_raises_names_the_distribution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        raise KeyError("api_key")

    _module(monkeypatch, "acme_pay", paycore_register_providers=paycore_register_providers)
    _entry_points(monkeypatch, *_distribution(tmp_path, "acme-pay", acme="acme_pay"))
    with pytest.raises(
        PluginLoadError, match=r"plugin 'acme' \(acme-pay 1.0\) failed in paycore_register_providers: KeyError"
    ):
        collect_registry(create_plugin_manager())


def test_a_plugin_calling_sys_exit_at_import_is_a_load_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "exiting_plugin_xyz.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _entry_points(monkeypatch, ("exiting", "exiting_plugin_xyz"))
    with pytest.raises(PluginLoadError, match=r"entry point 'exiting' .* failed to load: SystemExit: .*sys.exit\(3\)"):
        create_plugin_manager()


def test_a_registration_hook_calling_sys_exit_is_a_load_error() -> None:
    @hookimpl
    def paycore_register_providers(register: ProviderRegistrar) -> None:
        sys.exit("no licence")

    plugin = types.ModuleType("quitter")
    plugin.paycore_register_providers = paycore_register_providers  # type: ignore[attr-defined]
    with pytest.raises(PluginLoadError, match="plugin 'quitter' failed in paycore_register_providers: SystemExit"):
        collect_registry(create_plugin_manager([plugin], entry_points=False))


def test_ctrl_c_while_a_plugin_imports_stays_a_keyboard_interrupt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "interrupted_plugin_xyz.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _entry_points(monkeypatch, ("interrupted", "interrupted_plugin_xyz"))
    with pytest.raises(KeyboardInterrupt):
        create_plugin_manager()


# -- reading what is installed once -----------------------------------------------------


def _counting_entry_points(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the scans of installed distributions (the real ones) from now on."""
    scans: list[str] = []
    real = importlib.metadata.entry_points

    def entry_points(**selection: str) -> Any:
        scans.append(selection["group"])
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return scans


def test_flows_built_one_after_another_read_the_installed_distributions_once(monkeypatch: pytest.MonkeyPatch) -> None:
    scans = _counting_entry_points(monkeypatch)
    first = collect_registry(create_plugin_manager())
    second = collect_registry(create_plugin_manager())
    assert scans == [ENTRY_POINT_GROUP]
    assert set(second.providers) == set(first.providers)
    assert "memory" in second.repositories


def test_a_distribution_installed_or_uninstalled_later_is_seen_by_the_next_flow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    scans = _counting_entry_points(monkeypatch)
    assert "acme" not in collect_registry(create_plugin_manager()).providers

    _distribution(site, "acme-pay", acme="acme_pay")  # pip install acme-pay
    assert "acme" in collect_registry(create_plugin_manager()).providers
    assert "acme" in collect_registry(create_plugin_manager()).providers

    for item in (site / "acme_pay-1.0.dist-info").iterdir():  # pip uninstall acme-pay
        item.unlink()
    (site / "acme_pay-1.0.dist-info").rmdir()
    assert "acme" not in collect_registry(create_plugin_manager()).providers
    assert len(scans) == 3


def test_other_files_coming_and_going_on_the_path_do_not_read_the_distributions_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))  # the project's folder, beside manage.py
    scans = _counting_entry_points(monkeypatch)
    collect_registry(create_plugin_manager())
    journal = tmp_path / "db.sqlite3-journal"  # SQLite writes one beside its database on every write
    journal.write_bytes(b"x")
    collect_registry(create_plugin_manager())
    journal.unlink()
    collect_registry(create_plugin_manager())
    assert scans == [ENTRY_POINT_GROUP]


def test_a_legacy_editable_installs_entry_points_rewritten_in_place_are_read_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    _module(monkeypatch, "acme_pay_two", paycore_register_providers=_registering(_provider_named("acme2")))
    info = tmp_path / "acme_pay.egg-info"  # setup.py develop: the metadata beside the sources
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: acme-pay\nVersion: 1.0\n")
    points = info / "entry_points.txt"
    points.write_text(f"[{ENTRY_POINT_GROUP}]\nacme = acme_pay\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "acme" in collect_registry(create_plugin_manager()).providers
    folder_time = tmp_path.stat().st_mtime_ns
    points.write_text(f"[{ENTRY_POINT_GROUP}]\nacme = acme_pay_two\n")  # setup.py egg_info again
    later = points.stat().st_mtime_ns + 1_000_000_000
    os.utime(points, ns=(later, later))  # a second later, whatever the file system's clock granularity
    os.utime(tmp_path, ns=(folder_time, folder_time))  # the folder itself unchanged
    providers = collect_registry(create_plugin_manager()).providers
    assert ("acme2" in providers, "acme" in providers) == (True, False)


def test_a_zip_on_the_path_replaced_is_read_again(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    _module(monkeypatch, "acme_pay_two", paycore_register_providers=_registering(_provider_named("acme2")))
    archive = tmp_path / "plugins.zip"

    def zipped(value: str, version: str) -> None:
        with zipfile.ZipFile(archive, "w") as written:
            written.writestr(
                "acme_pay-1.0.dist-info/METADATA", f"Metadata-Version: 2.1\nName: acme-pay\nVersion: {version}\n"
            )
            written.writestr("acme_pay-1.0.dist-info/entry_points.txt", f"[{ENTRY_POINT_GROUP}]\nacme = {value}\n")

    zipped("acme_pay", "1.0")
    monkeypatch.syspath_prepend(str(archive))
    assert "acme" in collect_registry(create_plugin_manager()).providers
    before = archive.stat().st_mtime_ns
    zipped("acme_pay_two", "1.1")
    os.utime(archive, ns=(before + 1_000_000_000, before + 1_000_000_000))
    providers = collect_registry(create_plugin_manager()).providers
    assert ("acme2" in providers, "acme" in providers) == (True, False)


def test_a_folder_added_to_the_path_later_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _module(monkeypatch, "acme_pay", paycore_register_providers=_registering(_provider_named("acme")))
    _distribution(tmp_path, "acme-pay", acme="acme_pay")
    assert "acme" not in collect_registry(create_plugin_manager()).providers
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "acme" in collect_registry(create_plugin_manager()).providers


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


class SlowRecorder(Recorder):
    """An async observer slower than its caller's patience."""

    @hookimpl
    async def paycore_payment_event(self, event: PaymentEvent, payment: Payment) -> None:
        await anyio.sleep(0.02)
        self.seen.append((event.sequence, event.kind, payment.version))


async def test_a_caller_cancelled_while_an_observer_runs_still_has_every_committed_event_told(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    recorder, plain = SlowRecorder(), SyncRecorder()
    async with make_flow(plugins=(recorder, plain)) as flow:
        recorder.flow = flow
        with anyio.move_on_after(0.01) as waited:  # lands in the observer of the first committed write
            await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1")
        assert waited.cancel_called
        (payment,) = await flow.list_payments()
        committed = [(e.sequence, e.kind) for e in await flow.list_events(payment.id)]
    assert committed, "the create's first write committed its events"
    assert [(seq, kind) for seq, kind, _ in recorder.seen] == committed
    assert [(seq, kind) for seq, kind, _ in plain.seen] == committed


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


class NotAProvider:
    """A plugin object given in code that registers something that is not a Provider."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        register("p1")  # type: ignore[arg-type]


def test_a_plugin_object_given_in_code_is_named_by_its_class_never_its_id() -> None:
    with pytest.raises(PluginLoadError) as raised:
        collect_registry(create_plugin_manager([NotAProvider(), NotAProvider()], entry_points=False))
    named = f"{__name__}.NotAProvider"
    assert named in str(raised.value)
    manager = create_plugin_manager([NotAProvider(), NotAProvider()], entry_points=False)
    assert {name for name, _ in manager.list_name_plugin()} >= {named, f"{named}#2"}


def test_two_plugin_classes_of_one_name_from_two_modules_both_register() -> None:
    @hookimpl
    def paycore_validate_payment(payment: Payment) -> None:
        """Refuses nothing."""

    def policies(module: str) -> type:
        return type(
            "Policies", (), {"__module__": module, "paycore_validate_payment": staticmethod(paycore_validate_payment)}
        )

    manager = create_plugin_manager([policies("shop_a.policies"), policies("shop_b.policies")], entry_points=False)
    names = {name for name, _ in manager.list_name_plugin()}
    assert {"shop_a.policies.Policies", "shop_b.policies.Policies"} <= names


# -- the command line: plugins it must get past ------------------------------------------------


def test_the_command_line_obeys_the_plugins_blocked_by_its_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken plugin breaks every command; the error says to block it in the configuration, which then works."""
    from paycore.cli import main

    _entry_points(monkeypatch, ("memory", "paycore_memory.plugin"), ("broken", "paycore_no_such_module_xyz"))
    monkeypatch.delenv("PAYCORE_CONFIG", raising=False)
    assert main(["plugins"]) == 1
    assert "entry point 'broken'" in capsys.readouterr().err
    blocking = tmp_path / "paycore.toml"
    blocking.write_text('plugins_blocked = ["broken"]\n')
    assert main(["--config", str(blocking), "plugins"]) == 0
    listed = capsys.readouterr().out
    assert "memory" in listed
    assert "broken" not in listed, "a blocked plugin is not listed as one registered in code"
    assert main(["report", "--day", "2026-12-06", "--config", str(blocking)]) == 0  # a command's own --config
    monkeypatch.setenv("PAYCORE_PLUGINS_BLOCKED", "broken")
    assert main(["plugins"]) == 0


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd (a pipe named by path, as a shell's <(...))")
@pytest.mark.parametrize("given", ["--config", "PAYCORE_CONFIG"])
def test_a_configuration_given_as_a_pipe_blocks_its_plugins_and_is_read_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """``--config <(decrypt paycore.toml)``: its plugins_blocked is obeyed, and the command runs on what it says."""
    import os

    from paycore.cli import main

    _entry_points(monkeypatch, ("memory", "paycore_memory.plugin"), ("broken", "paycore_no_such_module_xyz"))
    reading, writing = os.pipe()
    os.write(writing, b'plugins_blocked = ["broken"]\nrepository = "memory"\n[providers.till]\ntype = "memory-fake"\n')
    os.close(writing)
    argv = ["check"]
    if given == "--config":
        monkeypatch.delenv("PAYCORE_CONFIG", raising=False)
        argv = ["--config", f"/dev/fd/{reading}", "check"]
    else:
        monkeypatch.setenv("PAYCORE_CONFIG", f"/dev/fd/{reading}")
    try:
        assert main(argv) == 1  # its provider's type is no installed plugin's: the pipe's contents were read
    finally:
        os.close(reading)
    error = capsys.readouterr().err
    assert "memory-fake" in error
    assert "broken" not in error


def test_a_broken_plugin_blocked_in_a_configuration_that_cannot_be_read_says_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from paycore.cli import main

    _entry_points(monkeypatch, ("memory", "paycore_memory.plugin"), ("broken", "paycore_no_such_module_xyz"))
    assert main(["--config", str(tmp_path / "missing.toml"), "check"]) == 1
    error = capsys.readouterr().err
    assert "entry point 'broken'" in error
    assert "(and the configuration could not be read: configuration file" in error
    assert "missing.toml' does not exist)" in error


def test_a_plugin_command_that_cannot_be_set_up_is_one_line_naming_the_plugin(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from paycore.cli import main

    class TakesReport:
        @hookimpl
        def paycore_register_commands(self, register: Any) -> None:
            register("report", help="our own report", configure=lambda parser: None, run=lambda args: 0)

    class FailsToConfigure:
        @hookimpl
        def paycore_register_commands(self, register: Any) -> None:
            register("till", help="tills", configure=lambda parser: parser.add_argument("-h"), run=lambda args: 0)

    class ExitsInConfigure:
        @hookimpl
        def paycore_register_commands(self, register: Any) -> None:
            register("safe", help="the safe", configure=lambda parser: parser.error("nope"), run=lambda args: 0)

    cases = ((TakesReport(), "report"), (FailsToConfigure(), "till"), (ExitsInConfigure(), "safe"))
    for plugin, command in cases:
        assert main(["--help"], plugins=[plugin]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1, error
        assert f"{type(plugin).__name__}' registered the command {command!r}, which cannot be set up" in error
        assert "plugins_blocked" in error


def test_a_config_option_without_its_path_is_told_by_the_command_itself(capsys: pytest.CaptureFixture[str]) -> None:
    from paycore.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["payments", "list", "--config"])
    assert exited.value.code == 2
    assert "paycore payments list: error: argument --config: expected one argument" in capsys.readouterr().err
