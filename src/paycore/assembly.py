"""Assembling a flow's parts from configuration: plugins, adapters and providers.

:func:`assemble` loads the plugins, builds the repository and the idempotency
store(s) the configuration names (a list of stores is tiered, fastest first)
and one provider instance per (tenant, code). Every failure is a
:class:`~paycore.errors.ConfigurationError` that names what was wrong, never a
password; the parts built before the refused one are disposed of
(:mod:`paycore.disposal`), so a refused configuration leaves nothing open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import pluggy
from attrs import evolve, frozen

from paycore import wire
from paycore.adapters import not_installed, resolve_config
from paycore.config import AdapterConfig, PaycoreConfig, ProviderConfig, webhook_url_for
from paycore.disposal import dispose
from paycore.errors import ConfigurationError, PaycoreError
from paycore.hookcalls import describe_failure
from paycore.plugins import Registry, collect_registry, create_plugin_manager
from paycore.providers import Provider, ProviderContext
from paycore.secrets import Settings, kind_of_setting, redact_url, shown_setting
from paycore.storage import IdempotencyStore, PaymentRepository

if TYPE_CHECKING:
    from paycore.calls import ProviderCall

__all__ = ["MAX_LABEL_LENGTH", "Parts", "assemble", "build_providers", "mask_declared_secrets"]


@frozen
class Parts:
    """What a flow is made of."""

    config: PaycoreConfig
    """The configuration with every adapter resolved to an installed type."""
    plugin_manager: pluggy.PluginManager
    registry: Registry
    repository: PaymentRepository
    idempotency_store: IdempotencyStore

    @contextmanager
    def disposed_on_error(self) -> Iterator[None]:
        """Dispose of the repository and the idempotency store (:mod:`paycore.disposal`) if the block raises:
        the flow built on them was refused (a provider's setting), and nothing else will close them."""
        try:
            yield
        except BaseException:
            dispose(self.idempotency_store, self.repository)
            raise


@frozen
class _AdapterContext:
    settings: Settings
    plugin_manager: pluggy.PluginManager


def assemble(config: PaycoreConfig, *, plugins: Iterable[object] = (), entry_points: bool = True) -> Parts:
    """Load the plugins and build the adapters ``config`` names."""
    manager = create_plugin_manager(plugins, entry_points=entry_points, blocked=config.plugins_blocked)
    registry = collect_registry(manager)
    config = mask_declared_secrets(resolve_config(registry, config), registry)
    repository = _build_adapter(registry, "repository", config.repository, manager)
    stores: list[IdempotencyStore] = []
    try:  # a refused store leaves nothing open: what was built before it is disposed of
        stores += (_build_adapter(registry, "idempotency store", store, manager) for store in config.idempotency)
        if len(stores) == 1:
            store = stores[0]
        else:
            from paycore.tiered import TieredIdempotencyStore

            store = TieredIdempotencyStore(
                stores, names=[str(s.type) for s in config.idempotency], refill_ttl=config.idempotency_ttl
            )
    except BaseException:
        dispose(*reversed(stores), repository)
        raise
    return Parts(
        config=config, plugin_manager=manager, registry=registry, repository=repository, idempotency_store=store
    )


def mask_declared_secrets(config: PaycoreConfig, registry: Registry) -> PaycoreConfig:
    """``config`` with every provider's declared secret settings masked (``Provider.secret_settings``)."""

    def masked(providers: Mapping[str, ProviderConfig]) -> dict[str, ProviderConfig]:
        result = {}
        for code, provider in providers.items():
            provider_class = registry.providers.get(provider.type)
            secret = provider_class.secret_settings if provider_class is not None else frozenset()
            result[code] = evolve(provider, settings=provider.settings.with_secrets(secret))
        return result

    tenants = {name: evolve(tenant, providers=masked(tenant.providers)) for name, tenant in config.tenants.items()}
    return evolve(config, providers=masked(config.providers), tenants=tenants)


def _build_adapter(registry: Registry, what: str, adapter: AdapterConfig, manager: pluggy.PluginManager) -> Any:
    factories: Mapping[str, Any] = registry.repositories if what == "repository" else registry.idempotency_stores
    factory = factories.get(str(adapter.type))
    if factory is None:
        raise ConfigurationError(not_installed(what, str(adapter.type), ", ".join(sorted(factories)) or "none"))
    try:
        built = factory(_AdapterContext(adapter.settings, manager))
    except PaycoreError:
        raise
    except (Exception, SystemExit) as error:  # a sys.exit() too, as at a plugin's import; never a Ctrl-C
        # Not chained: the original exception may show a URL with its password.
        raise ConfigurationError(
            f"{what} {adapter.type!r} could not be built{_by(registry, what, str(adapter.type))}: {_failure(error)}"
        ) from None
    protocol: type = PaymentRepository if what == "repository" else IdempotencyStore
    # Checked now, not at the first payment's AttributeError; by asking for each method, as a proxy that
    # delegates through __getattr__ answers (isinstance looks methods up statically from Python 3.12).
    missing = sorted(name for name in _protocol_methods(protocol) if not callable(getattr(built, name, None)))
    if missing:
        dispose(built)
        raise ConfigurationError(
            f"{what} type {adapter.type!r} built a {type(built).__name__}, which is no {protocol.__name__} "
            f"(missing: {', '.join(missing)}); a plugin bug: report it to the package providing it"
        )
    return built


def _protocol_methods(protocol: type) -> list[str]:
    """The methods a runtime-checkable protocol asks for."""
    return [name for name in dir(protocol) if not name.startswith("_")]


def build_providers(
    config: PaycoreConfig,
    registry: Registry,
    manager: pluggy.PluginManager,
    repository: PaymentRepository,
    *,
    may_still_arrive: Callable[[ProviderCall], bool] | None = None,
) -> dict[tuple[str | None, str], Provider]:
    """One provider instance per tenant and code the configuration enables, told the flow's rule of when a call's
    request ``may_still_arrive`` (:attr:`ProviderContext.may_still_arrive`; default: until its lease ends)."""
    built: dict[tuple[str | None, str], Provider] = {}
    try:
        _build_providers(config, registry, manager, repository, built, may_still_arrive)
    except BaseException:  # the providers built before the refused one are never used: dispose of them
        dispose(*built.values())
        raise
    return built


def _build_providers(
    config: PaycoreConfig,
    registry: Registry,
    manager: pluggy.PluginManager,
    repository: PaymentRepository,
    built: dict[tuple[str | None, str], Provider],
    may_still_arrive: Callable[[ProviderCall], bool] | None,
) -> None:
    scopes: list[tuple[str | None, Mapping[str, Any]]] = [(None, config.providers)]
    scopes += [(name, tenant.providers) for name, tenant in config.tenants.items()]
    for tenant, providers in scopes:
        for code, provider_config in providers.items():
            provider_class = registry.providers.get(provider_config.type)
            if provider_class is None:
                known = ", ".join(sorted(registry.providers)) or "none"
                raise ConfigurationError(
                    f"provider {code!r} of tenant {tenant!r} has type {shown_setting(provider_config.type)}, "
                    f"which no installed plugin provides (installed: {known})"
                )
            _check_setting_names(provider_class, provider_config, tenant)
            _check_label(provider_config, tenant)
            capabilities = provider_class.capabilities
            if capabilities.webhooks and not capabilities.webhook_amounts and not capabilities.polling:
                raise ConfigurationError(
                    f"provider type {provider_config.type!r} sends webhooks without amounts and cannot be polled: "
                    "paycore could never confirm its payments (declare polling, or webhook_amounts)"
                )
            context = ProviderContext(
                code=code,
                tenant=tenant,
                settings=provider_config.settings,
                plugin_manager=manager,
                repository=repository,
                webhook_url=webhook_url_for(config.webhook_url, tenant, code),
                **({} if may_still_arrive is None else {"may_still_arrive": may_still_arrive}),
            )
            try:
                built[tenant, code] = provider_class(context)
            except PaycoreError:
                raise
            except (Exception, SystemExit) as error:  # a sys.exit() too, as at a plugin's import; never a Ctrl-C
                # Not chained, as an adapter's: the original exception may quote a URL or a key with its secret.
                raise ConfigurationError(
                    f"provider {code!r} ({provider_config.type}) of tenant {tenant!r} could not be built"
                    f"{_by(registry, 'provider', provider_config.type)}: {_failure(error)}"
                ) from None


def _by(registry: Registry, kind: str, name: str) -> str:
    """`` by plugin 'NAME'``, the plugin that registered the ``kind`` ``name``, for an error message."""
    plugin = registry.origins.get((kind, name))
    return f" by plugin {plugin!r}" if plugin is not None else ""


def _failure(error: BaseException) -> str:
    """What a plugin's factory or provider class raised, its URLs' passwords hidden: ``"OSError: ..."``, or the
    ``sys.exit()`` it called."""
    return redact_url(describe_failure(error))


_EVERY_PROVIDERS_SETTINGS: Final = frozenset({"label"})
"""Settings any provider may be given: a name to show customers (the framework adapters read it)."""


def _check_setting_names(provider_class: type[Provider], config: ProviderConfig, tenant: str | None) -> None:
    """Refuse a setting the provider type does not read (a misspelling), when the type says which it reads."""
    known = provider_class.settings_names
    if known is None:
        return
    unknown = sorted(set(config.settings) - known - _EVERY_PROVIDERS_SETTINGS)
    if unknown:
        raise ConfigurationError(
            f"provider {config.code!r} ({config.type}) of tenant {tenant!r}: no setting "
            f"{', '.join(map(repr, unknown))}; it reads {', '.join(sorted(known | _EVERY_PROVIDERS_SETTINGS))}"
        )


MAX_LABEL_LENGTH: Final = 100
"""The most characters of a provider's ``label``: a name on one line of a form, not a paragraph."""


def _check_label(config: ProviderConfig, tenant: str | None) -> None:
    """Refuse a ``label`` customers could not be shown as written: not text (a list, a table, a number), blank, too
    long, or holding a control character (a line break)."""
    if "label" not in config.settings:
        return
    label = config.settings["label"]
    if isinstance(label, str) and label.strip() and wire.is_id(label) and len(label) <= MAX_LABEL_LENGTH:
        return
    if not isinstance(label, str):
        wrong = kind_of_setting(label)
    elif len(label) > MAX_LABEL_LENGTH:
        wrong = f"a string of {len(label)} characters"
    else:
        wrong = "a blank string" if not label.strip() else shown_setting(label)
    raise ConfigurationError(
        f"provider {config.code!r} ({config.type}) of tenant {tenant!r}: the setting 'label' must be the name "
        f"customers see, a string of at most {MAX_LABEL_LENGTH} characters, not blank, without control characters "
        f"(leave it out and they see the code {config.code!r}); got {wrong}"
    )
