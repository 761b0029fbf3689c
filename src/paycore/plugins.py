"""The plugin manager: built-in hookspecs, entry points of the ``paycore`` group,
plugins passed in code, and the registry the registration hooks fill.

Order (tox's): create the manager, add the hookspecs, register the plugins given
in code, load the entry points, then ``check_pending()`` so that a misspelt hook
fails loudly. Every failure names the plugin at fault.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

import pluggy
from attrs import define, field, frozen

from paycore import hookspecs
from paycore.errors import DuplicateRegistration, PluginLoadError
from paycore.hookcalls import (
    call_registration_hook,
    close_unawaited,
    current_plugin,
    describe_failure,
    note_distribution,
)
from paycore.hookspecs import IdempotencyStoreFactory, RepositoryFactory
from paycore.installed import declared_entry_points
from paycore.providers import Capabilities, Provider
from paycore.wire import one_line

if TYPE_CHECKING:
    import argparse

__all__ = [
    "ENTRY_POINT_GROUP",
    "IDEMPOTENCY_STORE",
    "REPOSITORY",
    "AdapterRegistration",
    "Command",
    "PluginInfo",
    "Registry",
    "collect_registry",
    "create_plugin_manager",
    "implements_a_hook",
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


REPOSITORY: Final = "repository"
"""The kind of :class:`AdapterRegistration` of a repository type."""
IDEMPOTENCY_STORE: Final = "idempotency store"
"""The kind of :class:`AdapterRegistration` of an idempotency store type."""


@frozen
class AdapterRegistration:
    """A repository or idempotency store type as a plugin registered it.

    ``url_schemes`` are the URL schemes it serves (``"sqlite"``, ``"redis"``);
    ``embedded_default`` says it may be used when the configuration names none.
    """

    kind: str
    """:data:`REPOSITORY` or :data:`IDEMPOTENCY_STORE`."""
    name: str
    plugin: str
    url_schemes: tuple[str, ...] = ()
    embedded_default: bool = False


@define
class Registry:
    """What the registration hooks registered, by name, with the plugin that did."""

    providers: dict[str, type[Provider]] = field(factory=dict)
    repositories: dict[str, RepositoryFactory] = field(factory=dict)
    idempotency_stores: dict[str, IdempotencyStoreFactory] = field(factory=dict)
    repository_types: dict[str, AdapterRegistration] = field(factory=dict)
    """How each repository type registered: its plugin, URL schemes, embedded default."""
    idempotency_store_types: dict[str, AdapterRegistration] = field(factory=dict)
    """How each idempotency store type registered: its plugin, URL schemes, embedded default."""
    commands: dict[str, Command] = field(factory=dict)
    origins: dict[tuple[str, str], str] = field(factory=dict)
    """``(kind, name) -> plugin name`` for error messages and listings."""

    def adapter_types(self, kind: str) -> dict[str, AdapterRegistration]:
        """The registrations of :data:`REPOSITORY` or :data:`IDEMPOTENCY_STORE` types, by name."""
        if kind == REPOSITORY:
            return self.repository_types
        if kind == IDEMPOTENCY_STORE:
            return self.idempotency_store_types
        raise ValueError(f"adapter kind {kind!r} is neither {REPOSITORY!r} nor {IDEMPOTENCY_STORE!r}")

    def _claim(self, kind: str, name: str, plugin: str) -> None:
        if not isinstance(name, str) or not name:
            raise PluginLoadError(f"plugin {plugin!r} registered a {kind} without a name")
        previous = self.origins.get((kind, name))
        if previous is not None:
            raise DuplicateRegistration(
                f"{kind} {name!r} is registered by both plugin {previous!r} and plugin {plugin!r}; "
                "uninstall one, or block one by its entry point name with plugins_blocked = [...] in the configuration"
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
    manager.hook.paycore_addhooks.call_historic(_refuse_awaitable, kwargs={"plugin_manager": manager})
    for name in blocked:
        manager.set_blocked(name)
    for plugin in plugins:
        try:
            named, origin = _name_in_code(manager, plugin), _describe(plugin)
        except Exception as error:  # its name cannot be read, or it cannot be compared (a lazy object, a proxy)
            where = f"a plugin given in code ({type(plugin).__name__})"
            raise PluginLoadError(f"{where} cannot be registered: {describe_failure(error)}") from error
        _register(manager, plugin, name=named, origin=origin)
    if entry_points:
        _load_entry_points(manager)
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:  # its message spreads a signature over several lines
        named = manager.get_name(error.plugin) or repr(error.plugin)
        raise PluginLoadError(f"plugin {named!r} implements an unknown hook: {one_line(str(error))}") from error
    return manager


def _name_in_code(manager: pluggy.PluginManager, plugin: object) -> str | None:
    """The name a plugin given in code is registered under, never its ``id()``: a module's ``__name__``; a
    class's path, an object's own ``__name__`` or its class's path (``shop.policies.Limits``), then ``#2``...
    when that name is taken."""
    if inspect.ismodule(plugin) or manager.is_registered(plugin):
        return None  # a module: pluggy takes its __name__
    own = getattr(plugin, "__name__", None)
    if inspect.isclass(plugin):
        base = f"{plugin.__module__}.{plugin.__qualname__}"
    elif isinstance(own, str) and own:
        base = own  # an object that names itself
    else:
        base = f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    name, number = base, 1
    while manager.get_plugin(name) is not None:
        number += 1
        name = f"{base}#{number}"
    return name


def _describe(plugin: object) -> str:
    return f"plugin {getattr(plugin, '__name__', None) or type(plugin).__name__!r}"


def _refuse_awaitable(result: object) -> None:
    """Result callback of ``paycore_addhooks``: an ``async def`` implementation never runs; refuse it."""
    if inspect.isawaitable(result):
        close_unawaited(result)
        raise PluginLoadError(
            "its paycore_addhooks returned a coroutine; the hook must be a plain function (def, not async def)"
        )


def _raised_in(error: BaseException, function_name: str) -> bool:
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name == function_name:
            return True
        traceback = traceback.tb_next
    return False


def implements_a_hook(plugin: object) -> bool:
    """Whether ``plugin`` (a module, a class, an object) has an attribute marked ``@paycore.hookimpl``.

    Anything else registered as a plugin would do nothing, silently: a package given for its plugin module,
    a tuple, a number."""
    marker = f"{hookspecs.PROJECT_NAME}_impl"
    for name in dir(plugin):
        if name.startswith("__"):
            continue
        try:
            if hasattr(getattr(plugin, name, None), marker):
                return True
        except Exception:  # an attribute that raises when read: no hook
            continue
    return False


def _register(manager: pluggy.PluginManager, plugin: object, *, name: str | None, origin: str) -> None:
    """Register ``plugin`` (which runs its ``paycore_addhooks``); every failure names ``origin``.

    A plugin that implements no paycore hook is refused: it would do nothing. A ``KeyboardInterrupt``
    propagates as is; a ``SystemExit`` is a failure of the plugin.
    """
    try:
        if manager.is_registered(plugin):
            return
        hooked = implements_a_hook(plugin)
    except Exception as error:  # it cannot be compared, or its attributes listed (a lazy object whose setup fails)
        raise PluginLoadError(f"{origin} failed while being registered: {describe_failure(error)}") from error
    if not hooked:
        raise PluginLoadError(
            f"{origin} implements no paycore hook (no attribute marked @paycore.hookimpl): give the module, "
            "class or object that holds the hook implementations"
        )
    # pluggy refuses a name or a plugin registered twice with a ValueError, before running
    # any hook; checked here so that a ValueError a hook raises is not mistaken for one.
    plugin_name = name or manager.get_canonical_name(plugin)
    holder = manager.get_plugin(plugin_name)
    if holder is not None:
        raise DuplicateRegistration(
            f"{origin} is registered under the name {plugin_name!r}, which {_describe(holder)} has"
        )
    try:
        manager.register(plugin, name=name)
    except pluggy.PluginValidationError as error:
        raise PluginLoadError(f"{origin} has an invalid hook implementation: {one_line(str(error))}") from error
    except PluginLoadError as error:  # from _refuse_awaitable
        raise PluginLoadError(f"{origin} cannot be loaded: {error}") from error
    except (Exception, SystemExit) as error:
        where = "in paycore_addhooks" if _raised_in(error, "paycore_addhooks") else "while being registered"
        raise PluginLoadError(f"{origin} failed {where}: {describe_failure(error)}") from error


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    loaded: dict[str, tuple[str, str]] = {}  # entry point name -> (distribution key, where)
    for found in declared_entry_points(ENTRY_POINT_GROUP):
        entry_point, key = found.entry_point, found.key
        where = f"entry point {entry_point.name!r} ({entry_point.value})"
        if found.distribution is not None:
            where += f" of {found.distribution} {found.version}"
        if entry_point.name in loaded:
            first_key, first = loaded[entry_point.name]
            if first_key == key:
                continue  # the same distribution seen twice (a sys.path entry listed twice)
            raise DuplicateRegistration(
                f"{first} and {where} share the entry point name {entry_point.name!r} in group "
                f"{ENTRY_POINT_GROUP!r}; uninstall one of the two distributions"
            )
        if manager.is_blocked(entry_point.name) or manager.get_plugin(entry_point.name) is not None:
            continue  # blocked, or a plugin given in code under that name
        loaded[entry_point.name] = (key, where)
        try:
            plugin = entry_point.load()
        except (Exception, SystemExit) as error:
            raise PluginLoadError(f"{where} failed to load: {describe_failure(error)}") from error
        _register(manager, plugin, name=entry_point.name, origin=where)
        if found.distribution is not None:
            note_distribution(manager, entry_point.name, f"{found.distribution} {found.version}")
        _DISTRIBUTIONS[id(plugin)] = PluginInfo(
            name=entry_point.name, distribution=found.distribution, version=found.version
        )


_DISTRIBUTIONS: dict[int, PluginInfo] = {}


def plugin_infos(manager: pluggy.PluginManager) -> list[PluginInfo]:
    """The loaded plugins with the distribution and version each came from."""
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is hookspecs or plugin is None:  # None: a name blocked (plugins_blocked), nothing loaded
            continue
        info = _DISTRIBUTIONS.get(id(plugin))
        infos.append(info if info is not None else PluginInfo(name=name))
    return sorted(infos, key=lambda info: info.name)


def collect_registry(manager: pluggy.PluginManager) -> Registry:
    """Call every registration hook through the relay and gather what the plugins register.

    A plugin that fails is named (:class:`PluginLoadError`); two plugins
    registering one name are both named (:class:`DuplicateRegistration`).
    """
    registry = Registry()

    def register_provider(provider_class: type[Provider]) -> None:
        plugin = current_plugin()
        if not (isinstance(provider_class, type) and issubclass(provider_class, Provider)):
            raise PluginLoadError(f"plugin {plugin!r} registered {provider_class!r}, which is not a Provider subclass")
        if wrong := _ill_declared(provider_class):
            raise PluginLoadError(f"plugin {plugin!r} registered {provider_class.__name__} whose {wrong}")
        registry._claim("provider", provider_class.name, plugin)
        registry.providers[provider_class.name] = provider_class

    def register_repository(
        name: str, factory: RepositoryFactory, *, url_schemes: Iterable[str] = (), embedded_default: bool = False
    ) -> None:
        registration = _adapter_registration(REPOSITORY, name, factory, url_schemes, embedded_default)
        registry._claim(REPOSITORY, name, registration.plugin)
        registry.repositories[name] = factory
        registry.repository_types[name] = registration

    def register_idempotency_store(
        name: str, factory: IdempotencyStoreFactory, *, url_schemes: Iterable[str] = (), embedded_default: bool = False
    ) -> None:
        registration = _adapter_registration(IDEMPOTENCY_STORE, name, factory, url_schemes, embedded_default)
        registry._claim(IDEMPOTENCY_STORE, name, registration.plugin)
        registry.idempotency_stores[name] = factory
        registry.idempotency_store_types[name] = registration

    def register_command(
        name: str,
        *,
        help: str,
        configure: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], int | None],
    ) -> None:
        plugin = current_plugin()
        registry._claim("command", name, plugin)
        registry.commands[name] = Command(name, help, configure, run, plugin)

    call_registration_hook(manager, "paycore_register_providers", register_provider)
    call_registration_hook(manager, "paycore_register_repositories", register_repository)
    call_registration_hook(manager, "paycore_register_idempotency_stores", register_idempotency_store)
    call_registration_hook(manager, "paycore_register_commands", register_command)
    return registry


_SCHEME: Final = re.compile(r"[a-z][a-z0-9+.\-]*")


def _ill_declared(provider_class: type[Provider]) -> str:
    """What ``provider_class`` declares wrongly (``""``: nothing): the class attributes the flow reads."""
    for attribute, optional in (("currencies", True), ("settings_names", True), ("secret_settings", False)):
        value = getattr(provider_class, attribute)
        if (value is None and optional) or (
            isinstance(value, set | frozenset) and all(isinstance(v, str) for v in value)
        ):
            continue
        return f"{attribute} is {value!r:.60}: a frozenset of names{' or None' if optional else ''}"
    if not isinstance(provider_class.capabilities, Capabilities):
        return f"capabilities is {provider_class.capabilities!r:.60}, not a paycore Capabilities"
    return ""


def _adapter_registration(
    kind: str, name: str, factory: object, url_schemes: Iterable[str], embedded_default: bool
) -> AdapterRegistration:
    plugin = current_plugin()
    if not callable(factory):
        raise PluginLoadError(f"plugin {plugin!r} registered {kind} {name!r} with a non-callable factory")
    if isinstance(url_schemes, str):
        raise PluginLoadError(
            f"plugin {plugin!r} registered {kind} {name!r} with url_schemes={url_schemes!r}; "
            f"give a list of schemes, e.g. [{url_schemes!r}]"
        )
    schemes = tuple(url_schemes)
    for scheme in schemes:
        if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
            raise PluginLoadError(
                f"plugin {plugin!r} registered {kind} {name!r} with URL scheme {scheme!r}; "
                "a scheme is lowercase letters, digits, '+', '-' or '.', starting with a letter (e.g. 'sqlite')"
            )
    if not isinstance(embedded_default, bool):
        raise PluginLoadError(
            f"plugin {plugin!r} registered {kind} {name!r} with embedded_default={embedded_default!r}; "
            "expected True or False"
        )
    return AdapterRegistration(kind, name, plugin, tuple(dict.fromkeys(schemes)), embedded_default)
