"""Configuration: which repository, idempotency stores and providers a flow uses.

It comes from a mapping, a TOML file, or ``PAYCORE_*`` environment variables
(which override the others). ``None`` is the embedded default: everything in
memory, no provider enabled. A TOML file looks like this::

    repository = "sqlite:///paycore.db"      # or "memory", or a table with type
    idempotency = ["redis", "sqlalchemy"]    # a list is a tiered store, fastest first

    [idempotency_settings.redis]
    url = "redis://127.0.0.1:6379/0"

    [providers.cash]                         # enabled for payments without a tenant
    type = "cash"

    [tenants.chez-awa.providers.wave]        # tenant "chez-awa" enables "wave"
    type = "dummy"
    webhook_secret = "whsec_..."

Environment variables nest with a double underscore:
``PAYCORE_REPOSITORY=sqlite:///x.db``, ``PAYCORE_IDEMPOTENCY=redis,sqlalchemy``,
``PAYCORE_PROVIDERS__CASH__TYPE=cash``; ``PAYCORE_CONFIG`` names a TOML file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from attrs import field, frozen

from paycore.errors import ConfigurationError
from paycore.secrets import Settings, redact_url

__all__ = [
    "AdapterConfig",
    "PaycoreConfig",
    "ProviderConfig",
    "TenantConfig",
    "load_config",
    "read_toml",
    "webhook_url_for",
]

ENV_PREFIX: Final = "PAYCORE_"

_URL_SCHEMES: Final = {
    "sqlite": "sqlalchemy",
    "postgresql": "sqlalchemy",
    "postgres": "sqlalchemy",
    "mysql": "sqlalchemy",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "redis+sentinel": "redis",
}


@frozen
class AdapterConfig:
    """A repository or idempotency store: its registered type and its settings."""

    type: str
    settings: Settings = field(factory=Settings)


@frozen
class ProviderConfig:
    """A provider enabled under ``code`` (unique per tenant), of registered ``type``."""

    code: str
    type: str
    settings: Settings


@frozen
class TenantConfig:
    """One tenant (a restaurant, a shop) and the providers it enables."""

    name: str
    providers: Mapping[str, ProviderConfig]


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@frozen
class PaycoreConfig:
    """The whole configuration of a :class:`~paycore.flow.PaymentFlow`."""

    repository: AdapterConfig = field(factory=lambda: AdapterConfig("memory"))
    idempotency: tuple[AdapterConfig, ...] = field(factory=lambda: (AdapterConfig("memory"),))
    providers: Mapping[str, ProviderConfig] = field(factory=dict, converter=_freeze)
    """Providers enabled for payments made without a tenant."""
    tenants: Mapping[str, TenantConfig] = field(factory=dict, converter=_freeze)
    provider_timeout: float = 30.0
    """Seconds a provider call may take; past that its outcome is unknown."""
    idempotency_lease: float = 120.0
    """Seconds a key stays held by a request that has not finished (then it may be taken over)."""
    idempotency_ttl: float = 86_400.0
    """Seconds a completed request's result is kept for replay."""
    payment_ttl: float = 3_600.0
    """Seconds after which an unfinished payment is stale for ``expire_stale``."""
    webhook_url: str | None = None
    """Where providers send webhooks: a base URL (``/{tenant}/{code}`` is appended, the
    routes of :mod:`paycore.asgi`) or a template with ``{tenant}`` and ``{code}``."""
    plugins_blocked: tuple[str, ...] = ()
    """Entry points not to load."""

    def provider_configs(self, tenant: str | None) -> Mapping[str, ProviderConfig]:
        """The providers ``tenant`` enables (``None``: the tenant-less ones)."""
        if tenant is None:
            return self.providers
        found = self.tenants.get(tenant)
        return found.providers if found is not None else {}

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PaycoreConfig:
        """Build from a mapping shaped like the TOML file; refuse unknown keys."""
        return _parse(data)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> PaycoreConfig:
        """Read a TOML file (``PAYCORE_*`` variables are not applied: see :func:`load_config`)."""
        return _parse(read_toml(path))


def webhook_url_for(template: str | None, tenant: str | None, code: str) -> str | None:
    """The webhook URL of provider ``code`` of ``tenant`` from a base URL or a template.

    >>> webhook_url_for("https://shop.example/webhooks", "chez-awa", "wave")
    'https://shop.example/webhooks/chez-awa/wave'
    >>> webhook_url_for("https://shop.example/hooks/{tenant}/{code}", None, "wave")
    'https://shop.example/hooks/wave'
    """
    if template is None:
        return None
    if "{" not in template:
        template = template.rstrip("/") + "/{tenant}/{code}"
    if tenant is None:
        template = template.replace("{tenant}/", "").replace("/{tenant}", "")
    return template.replace("{tenant}", tenant or "").replace("{code}", code)


def load_config(
    source: PaycoreConfig | Mapping[str, Any] | str | os.PathLike[str] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> PaycoreConfig:
    """Resolve any accepted configuration source, then apply ``PAYCORE_*`` overrides.

    ``source`` is a ready config (returned as is), a mapping, the path of a TOML
    file, or ``None`` (``PAYCORE_CONFIG`` if set, else the embedded default).
    """
    if isinstance(source, PaycoreConfig):
        return source
    env = os.environ if environ is None else environ
    data: dict[str, Any]
    if source is None:
        path = env.get(f"{ENV_PREFIX}CONFIG")
        data = read_toml(path) if path else {}
    elif isinstance(source, (str, os.PathLike)):
        data = read_toml(source)
    elif isinstance(source, Mapping):
        data = _deep_copy(source)
    else:
        raise ConfigurationError(f"configuration must be a mapping, a TOML path or None, not {type(source).__name__}")
    _apply_environment(data, env)
    return _parse(data)


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A TOML configuration file as a dict; :class:`ConfigurationError` if missing or invalid."""
    try:
        with Path(path).open("rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"configuration file {str(path)!r} is not valid TOML: {error}") from None


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == f"{ENV_PREFIX}CONFIG":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path):
            raise ConfigurationError(f"environment variable {name} has an empty part")
        target = data
        for part in path[:-1]:
            existing = target.get(part)
            if isinstance(existing, str) and part in ("repository",):
                existing = {"type": existing}
            if not isinstance(existing, dict):
                existing = {} if existing is None else existing
                if not isinstance(existing, dict):
                    raise ConfigurationError(f"environment variable {name} sets inside a non-table")
            target[part] = existing
            target = existing
        leaf = path[-1]
        if path == ["idempotency"]:
            target[leaf] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            target[leaf] = value


_TOP_LEVEL: Final = {
    "repository",
    "idempotency",
    "idempotency_settings",
    "providers",
    "tenants",
    "provider_timeout",
    "idempotency_lease",
    "idempotency_ttl",
    "payment_ttl",
    "webhook_url",
    "plugins_blocked",
}


def _parse(data: Mapping[str, Any]) -> PaycoreConfig:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"configuration must be a table, not {type(data).__name__}")
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise ConfigurationError(f"unknown configuration key(s) {sorted(unknown)}; known: {sorted(_TOP_LEVEL)}")
    repository = _adapter(data.get("repository", "memory"), "repository")
    extra = data.get("idempotency_settings", {})
    if not isinstance(extra, Mapping):
        raise ConfigurationError("idempotency_settings must be a table of tables")
    raw_stores = data.get("idempotency", ["memory"] if repository.type == "memory" else [repository.type])
    if isinstance(raw_stores, (str, Mapping)):
        raw_stores = [raw_stores]
    if not isinstance(raw_stores, list) or not raw_stores:
        raise ConfigurationError("idempotency must be a store name, a table, or a non-empty list of them")
    stores = []
    for raw in raw_stores:
        store = _adapter(raw, "idempotency")
        settings = dict(extra.get(store.type, {}))
        if not store.settings and not settings and store.type == repository.type:
            settings = dict(repository.settings)
        settings.update(store.settings)
        stores.append(AdapterConfig(store.type, Settings(settings, owner=f"idempotency store {store.type!r}")))
    if len({s.type for s in stores}) != len(stores):
        raise ConfigurationError(f"idempotency lists a store twice: {[s.type for s in stores]}")
    tenants_raw = data.get("tenants", {})
    if not isinstance(tenants_raw, Mapping):
        raise ConfigurationError("tenants must be a table of tenant tables")
    tenants = {}
    for name, tenant in tenants_raw.items():
        if not isinstance(tenant, Mapping) or set(tenant) - {"providers"}:
            raise ConfigurationError(f"tenant {name!r} must be a table with only a 'providers' table")
        tenants[name] = TenantConfig(name, _providers(tenant.get("providers", {}), f"tenant {name!r}"))
    _check_lease(data)
    return PaycoreConfig(
        repository=repository,
        idempotency=tuple(stores),
        providers=_providers(data.get("providers", {}), "the default tenant"),
        tenants=tenants,
        provider_timeout=_seconds(data, "provider_timeout", 30.0),
        idempotency_lease=_seconds(data, "idempotency_lease", 120.0),
        idempotency_ttl=_seconds(data, "idempotency_ttl", 86_400.0),
        payment_ttl=_seconds(data, "payment_ttl", 3_600.0),
        webhook_url=data.get("webhook_url"),
        plugins_blocked=tuple(data.get("plugins_blocked", ())),
    )


def _check_lease(data: Mapping[str, Any]) -> None:
    timeout = _seconds(data, "provider_timeout", 30.0)
    lease = _seconds(data, "idempotency_lease", 120.0)
    if lease <= timeout:
        raise ConfigurationError(
            f"idempotency_lease ({lease}s) must exceed provider_timeout ({timeout}s), "
            "or a key could be taken over while its request still runs"
        )


def _seconds(data: Mapping[str, Any], key: str, default: float) -> float:
    raw = data.get(key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number of seconds, not {raw!r}") from None
    if not value > 0 or value != value:
        raise ConfigurationError(f"{key} must be a positive number of seconds, not {raw!r}")
    return value


def _adapter(raw: Any, what: str) -> AdapterConfig:
    if isinstance(raw, str):
        if "://" in raw:
            scheme = raw.split("://", 1)[0].split("+", 1)[0].lower()
            scheme = "redis+sentinel" if raw.startswith("redis+sentinel") else scheme
            kind = _URL_SCHEMES.get(scheme)
            if kind is None:
                raise ConfigurationError(f"{what}: no adapter handles URL scheme {scheme!r} in {redact_url(raw)!r}")
            return AdapterConfig(kind, Settings({"url": raw}, owner=f"{what} {kind!r}"))
        if not raw:
            raise ConfigurationError(f"{what}: an empty adapter name")
        return AdapterConfig(raw, Settings(owner=f"{what} {raw!r}"))
    if isinstance(raw, Mapping):
        settings = dict(raw)
        kind = settings.pop("type", None)
        if kind is None and isinstance(settings.get("url"), str):
            return AdapterConfig(
                _adapter(settings["url"], what).type, Settings(settings, owner=f"{what} {redact_url(raw['url'])!r}")
            )
        if not isinstance(kind, str) or not kind:
            raise ConfigurationError(f"{what}: a table needs a 'type' (or a 'url'), got {sorted(raw)}")
        return AdapterConfig(kind, Settings(settings, owner=f"{what} {kind!r}"))
    raise ConfigurationError(f"{what} must be a name, a URL or a table, not {type(raw).__name__}")


def _providers(raw: Any, owner: str) -> dict[str, ProviderConfig]:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"providers of {owner} must be a table of provider tables")
    providers = {}
    for code, table in raw.items():
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"provider {code!r} of {owner} must be a table with a 'type'")
        settings = dict(table)
        kind = settings.pop("type", code)
        if not isinstance(kind, str) or not kind:
            raise ConfigurationError(f"provider {code!r} of {owner} has an invalid type {kind!r}")
        providers[code] = ProviderConfig(code, kind, Settings(settings, owner=f"provider {code!r} of {owner}"))
    return providers
