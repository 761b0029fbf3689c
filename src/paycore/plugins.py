"""The plugin manager: built-in hookspecs, entry points of the ``paycore`` group,
plugins passed in code, and the registry the registration hooks fill.

Order (tox's): create the manager, add the hookspecs, register the plugins given
in code, load the entry points, then ``check_pending()`` so that a misspelt hook
fails loudly. Every failure names the plugin at fault.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Callable, Iterable
from typing import Any, Final

import pluggy
from attrs import define, field, frozen

from paycore import hookspecs
from paycore.errors import DuplicateRegistration, PluginLoadError
from paycore.hookspecs import IdempotencyStoreFactory, RepositoryFactory
from paycore.providers import Provider

__all__ = [
    "ENTRY_POINT_GROUP",
    "Command",
    "PluginInfo",
    "Registry",
    "call_impl",
    "collect_registry",
    "create_plugin_manager",
    "plugin_infos",
]

ENTRY_POINT_GROUP: Final = "paycore"
"""The entry-point group third-party packages declare their plugin module under."""


@frozen
class PluginInfo:
    """A loaded plugin, for ``paycore plugins``."""

    name: str
    distribution: str | None = None
    version: str | None = None


@frozen
class Command:
    """A ``paycore`` subcommand a plugin registered."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]
    plugin: str


@define
class Registry:
    """What the registration hooks registered, by name, with the plugin that did."""

    providers: dict[str, type[Provider]] = field(factory=dict)
    repositories: dict[str, RepositoryFactory] = field(factory=dict)
    idempotency_stores: dict[str, IdempotencyStoreFactory] = field(factory=dict)
    commands: dict[str, Command] = field(factory=dict)
    origins: dict[tuple[str, str], str] = field(factory=dict)
    """``(kind, name) -> plugin name`` for error messages and listings."""

    def _claim(self, kind: str, name: str, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginLoadError(f"plugin {plugin!r} registered a {kind} without a name")
        previous = self.origins.get((kind, name))
        if previous is not None:
            raise DuplicateRegistration(
                f"{kind} {name!r} is registered by both plugin {previous!r} and plugin {plugin!r}; "
                "uninstall one, or block one with PaymentFlow.from_config(..., blocked=[...])"
            )
        self.origins[kind, name] = plugin


def create_plugin_manager(
    plugins: Iterable[object] = (),
    *,
    entry_points: bool = True,
    blocked: Iterable[str] = (),
) -> pluggy.PluginManager:
    """A plugin manager with paycore's hookspecs, ``plugins`` and the installed entry points.

    ``plugins`` are modules or objects with hook implementations registered in
    code; ``blocked`` names entry points not to load.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.hook.paycore_addhooks.call_historic(kwargs={"plugin_manager": manager})
    for name in blocked:
        manager.set_blocked(name)
    for plugin in plugins:
        _register(manager, plugin, name=None, origin=_describe(plugin))
    if entry_points:
        _load_entry_points(manager)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginLoadError(f"plugin {error.plugin!r} implements an unknown hook: {error}") from error
    return manager


def _describe(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _register(manager: pluggy.PluginManager, plugin: object, *, name: str | None, origin: str) -> None:
    if manager.is_registered(plugin):
        return
    try:
        manager.register(plugin, name=name)
    except ValueError as error:
        raise DuplicateRegistration(f"plugin {origin!r} is registered twice: {error}") from error
    except pluggy.PluginValidationError as error:
        raise PluginLoadError(f"plugin {origin!r} has an invalid hook implementation: {error}") from error


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if manager.is_blocked(entry_point.name) or manager.get_plugin(entry_point.name) is not None:
            continue
        distribution = getattr(entry_point, "dist", None)
        where = f"entry point {entry_point.name!r} ({entry_point.value})"
        if distribution is not None:
            where += f" of {distribution.name} {distribution.version}"
        try:
            plugin = entry_point.load()
        except Exception as error:
            raise PluginLoadError(f"{where} failed to load: {type(error).__name__}: {error}") from error
        _register(manager, plugin, name=entry_point.name, origin=where)
        _DISTRIBUTIONS[id(plugin)] = PluginInfo(
            name=entry_point.name,
            distribution=distribution.name if distribution is not None else None,
            version=distribution.version if distribution is not None else None,
        )


_DISTRIBUTIONS: dict[int, PluginInfo] = {}


def plugin_infos(manager: pluggy.PluginManager) -> list[PluginInfo]:
    """The loaded plugins with the distribution and version each came from."""
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is hookspecs:
            continue
        info = _DISTRIBUTIONS.get(id(plugin))
        infos.append(info if info is not None else PluginInfo(name=name))
    return sorted(infos, key=lambda info: info.name)


def collect_registry(manager: pluggy.PluginManager) -> Registry:
    """Call every registration hook, one plugin at a time, and gather what they register."""
    registry = Registry()
    hooks = manager.hook

    for impl in hooks.paycore_register_providers.get_hookimpls():
        plugin = impl.plugin_name

        def register_provider(provider_class: type[Provider], _plugin: str = plugin) -> None:
            if not (isinstance(provider_class, type) and issubclass(provider_class, Provider)):
                raise PluginLoadError(
                    f"plugin {_plugin!r} registered {provider_class!r}, which is not a Provider subclass"
                )
            registry._claim("provider", provider_class.name, _plugin)
            registry.providers[provider_class.name] = provider_class

        call_impl(impl, plugin, register=register_provider)

    for hook, kind, target in (
        (hooks.paycore_register_repositories, "repository", registry.repositories),
        (hooks.paycore_register_idempotency_stores, "idempotency store", registry.idempotency_stores),
    ):
        for impl in hook.get_hookimpls():
            plugin = impl.plugin_name

            def register_adapter(
                name: str, factory: Any, _p: str = plugin, _k: str = kind, _t: dict[str, Any] = target
            ) -> None:
                if not callable(factory):
                    raise PluginLoadError(f"plugin {_p!r} registered {_k} {name!r} with a non-callable factory")
                registry._claim(_k, name, _p)
                _t[name] = factory

            call_impl(impl, plugin, register=register_adapter)

    for impl in hooks.paycore_register_commands.get_hookimpls():
        plugin = impl.plugin_name

        def register_command(
            name: str,
            *,
            help: str,
            configure: Callable[[argparse.ArgumentParser], None],
            run: Callable[[argparse.Namespace], int | None],
            _p: str = plugin,
        ) -> None:
            registry._claim("command", name, _p)
            registry.commands[name] = Command(name, help, configure, run, _p)

        call_impl(impl, plugin, register=register_command)
    return registry


def call_impl(impl: pluggy.HookImpl, plugin: str, **kwargs: Any) -> None:
    """Call one plugin's implementation of a registration hook; failures name the plugin."""
    try:
        impl.function(**{name: kwargs[name] for name in impl.argnames})
    except (DuplicateRegistration, PluginLoadError):
        raise
    except Exception as error:
        raise PluginLoadError(
            f"plugin {plugin!r} failed in {impl.function.__name__}: {type(error).__name__}: {error}"
        ) from error
