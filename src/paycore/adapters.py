"""Which installed adapter a configuration means: by name, by URL scheme, or the embedded default.

The core knows no adapter by name. Each adapter declares, when it registers, the
URL schemes it serves and whether it can be the embedded default
(``register(name, factory, url_schemes=("sqlite",), embedded_default=False)``).
:func:`load_config <paycore.config.load_config>` keeps what the user wrote; once the
plugins are loaded, :func:`resolve_config` turns every repository and idempotency
store into a registered type with its settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from attrs import evolve

from paycore.config import AdapterConfig, PaycoreConfig, store_settings, url_scheme
from paycore.errors import ConfigurationError
from paycore.plugins import IDEMPOTENCY_STORE, REPOSITORY, AdapterRegistration, Registry
from paycore.secrets import Settings, kind_of_setting, redact_url, shown_setting

__all__ = ["EMBEDDED_DEFAULT_PACKAGE", "not_installed", "resolve_adapter", "resolve_config"]

EMBEDDED_DEFAULT_PACKAGE = "paycore-memory"
"""The distribution that provides the embedded default, named when no adapter offers one."""

_CONFIG_KEY = {REPOSITORY: "repository", IDEMPOTENCY_STORE: "idempotency"}


def resolve_config(registry: Registry, config: PaycoreConfig) -> PaycoreConfig:
    """``config`` with its repository and idempotency stores resolved against ``registry``.

    The repository is resolved by :func:`resolve_adapter`. No idempotency store
    configured means the repository's adapter as store. A store left without
    settings of the repository's type shares the repository's settings (one
    database); ``[idempotency_settings.TYPE]`` reaches the store of that type,
    even one given by URL. Resolving a resolved config changes nothing.
    :class:`ConfigurationError` names what is wrong and what is installed.
    """
    registered_stores = registry.adapter_types(IDEMPOTENCY_STORE)
    for named in config.idempotency_settings:
        if named not in registered_stores:  # a misspelled table would leave its store on its defaults, silently
            raise ConfigurationError(
                f"[idempotency_settings.{shown_setting(named)}]: no idempotency store of that type is installed "
                f"(installed: {_names(registered_stores)})"
            )
    repository_type = _resolved_type(registry, config.repository, REPOSITORY)
    repository = AdapterConfig(
        repository_type, Settings(config.repository.settings, owner=f"repository {repository_type!r}")
    )
    configured = config.idempotency or (_default_store(registry, repository_type),)
    stores = []
    for store in configured:
        store_type = _resolved_type(registry, store, IDEMPOTENCY_STORE)
        settings = store_settings(store_type, store.settings, config.idempotency_settings)
        if not settings and store_type == repository.type:
            settings = Settings(repository.settings, owner=f"idempotency store {store_type!r}")
        stores.append(AdapterConfig(store_type, settings))
    types = [store.type for store in stores]
    if len(set(types)) != len(types):
        raise ConfigurationError(f"idempotency lists a store twice: {types}")
    return evolve(config, repository=repository, idempotency=tuple(stores))


def resolve_adapter(registry: Registry, adapter: AdapterConfig, kind: str) -> AdapterConfig:
    """The registered adapter of ``kind`` (:data:`~paycore.plugins.REPOSITORY` or
    :data:`~paycore.plugins.IDEMPOTENCY_STORE`) that ``adapter`` means.

    A named type must be installed; a ``url`` setting picks the adapter that
    declared its scheme (``postgresql+psycopg`` is matched whole first, then as
    ``postgresql``); neither picks the embedded default. The settings are kept.
    """
    chosen = _resolved_type(registry, adapter, kind)
    return AdapterConfig(chosen, Settings(adapter.settings, owner=f"{kind} {chosen!r}"))


def _resolved_type(registry: Registry, adapter: AdapterConfig, kind: str) -> str:
    registered = registry.adapter_types(kind)
    key = _CONFIG_KEY[kind]
    if adapter.type is not None:
        if adapter.type not in registered:
            raise ConfigurationError(not_installed(kind, adapter.type, _names(registered)))
        return adapter.type
    url = adapter.settings.get("url")
    if url is None:
        chosen = _embedded_default(registered, kind, key)
    elif isinstance(url, str):
        chosen = _serving(registered, url, kind, key)
    else:
        raise ConfigurationError(f"{key}: the url setting must be a string, not {kind_of_setting(url)}")
    return chosen.name


_PACKAGE_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def not_installed(kind: str, adapter_type: str, installed: str) -> str:
    """Why no ``kind`` (``"repository"``, ``"idempotency store"``) of type ``adapter_type`` can be built, and what
    to do: the type quoted short and without a password (a URL given as the type), ``installed`` listed."""
    if "://" in adapter_type:
        advice = "a URL is given as the 'url' setting, not as the 'type'"
    elif _PACKAGE_NAME.fullmatch(adapter_type):
        advice = f"install the package that provides it, e.g. paycore-{adapter_type}"
    else:
        advice = "install the package that provides it"
    return f"no {kind} type {shown_setting(adapter_type)} is installed (installed: {installed}); {advice}"


def _default_store(registry: Registry, repository_type: str) -> AdapterConfig:
    if repository_type not in registry.idempotency_store_types:
        raise ConfigurationError(
            f"idempotency is not configured and repository type {repository_type!r} registers no idempotency "
            f"store of the same name; set idempotency to one of the installed stores: "
            f"{_names(registry.idempotency_store_types)}"
        )
    return AdapterConfig(repository_type)


def _embedded_default(registered: Mapping[str, AdapterRegistration], kind: str, key: str) -> AdapterRegistration:
    defaults = [registration for registration in registered.values() if registration.embedded_default]
    if not defaults:
        raise ConfigurationError(
            f"no {key} is configured and no installed adapter offers an embedded default {kind}; "
            f"install {EMBEDDED_DEFAULT_PACKAGE} (the embedded default), or configure {key} "
            f"(installed {kind} adapters: {_served(registered)})"
        )
    if len(defaults) > 1:
        offered = ", ".join(f"{r.name!r} (plugin {r.plugin!r})" for r in sorted(defaults, key=lambda r: r.name))
        raise ConfigurationError(
            f"no {key} is configured and several installed adapters offer to be the embedded default {kind}: "
            f"{offered}; name one in the configuration ({key} = {defaults[0].name!r})"
        )
    return defaults[0]


def _serving(registered: Mapping[str, AdapterRegistration], url: str, kind: str, key: str) -> AdapterRegistration:
    scheme = url_scheme(url)
    candidates = [scheme, scheme.split("+", 1)[0]] if "+" in scheme else [scheme]
    for candidate in candidates:
        serving = [r for r in registered.values() if candidate in r.url_schemes]
        if len(serving) > 1:
            both = ", ".join(f"{r.name!r} (plugin {r.plugin!r})" for r in sorted(serving, key=lambda r: r.name))
            raise ConfigurationError(
                f"{key}: URL scheme {candidate!r} of {redact_url(url)!r} is served by several {kind} adapters: "
                f"{both}; choose one with a table: {{ type = {serving[0].name!r}, url = ... }}"
            )
        if serving:
            return serving[0]
    raise ConfigurationError(
        f"{key}: no adapter handles URL scheme {scheme!r} in {redact_url(url)!r} "
        f"(installed {kind} adapters: {_served(registered)})"
    )


def _names(registered: Mapping[str, AdapterRegistration]) -> str:
    return ", ".join(sorted(registered)) or "none"


def _served(registered: Mapping[str, AdapterRegistration]) -> str:
    if not registered:
        return "none"
    described = []
    for name in sorted(registered):
        registration = registered[name]
        schemes = ", ".join(registration.url_schemes) or "no URL schemes"
        default = "; embedded default" if registration.embedded_default else ""
        described.append(f"{name} ({schemes}{default})")
    return "; ".join(described)
