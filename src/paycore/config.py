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
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from attrs import field, frozen

from paycore import config_sources, wire
from paycore.config_sources import ENV_PREFIX, apply_environment, deep_copy, read_toml, webhook_url_for
from paycore.errors import ConfigurationError
from paycore.secrets import Settings, kind_of_setting, redact_url, shown_setting

__all__ = [
    "DEFAULT_IDEMPOTENCY_LEASE",
    "DEFAULT_IDEMPOTENCY_TTL",
    "DEFAULT_PAYMENT_TTL",
    "DEFAULT_PROVIDER_TIMEOUT",
    "DEFAULT_WEBHOOK_MAX_BYTES",
    "LEASE_OVER_TIMEOUT",
    "MAX_CODE_LENGTH",
    "MAX_IDEMPOTENCY_LEASE",
    "MAX_IDEMPOTENCY_TTL",
    "MAX_PAYMENT_TTL",
    "MAX_PROVIDER_TIMEOUT",
    "MOST_WEBHOOK_MAX_BYTES",
    "AdapterConfig",
    "PaycoreConfig",
    "ProviderConfig",
    "TenantConfig",
    "is_code",
    "load_config",
    "store_settings",
    "url_scheme",
    "webhook_url_for",
]


DEFAULT_PROVIDER_TIMEOUT: Final = 30.0
"""Seconds a provider call may take by default (``provider_timeout``)."""
DEFAULT_IDEMPOTENCY_LEASE: Final = 120.0
"""Seconds an unfinished request holds its key by default (``idempotency_lease``)."""
LEASE_OVER_TIMEOUT: Final = 1.1
"""``idempotency_lease`` is at least this many times ``provider_timeout``: room to write a call down and send it."""
DEFAULT_IDEMPOTENCY_TTL: Final = 86_400.0
"""Seconds a completed request's result is replayed by default (``idempotency_ttl``)."""
DEFAULT_PAYMENT_TTL: Final = 3_600.0
"""Seconds before an unfinished payment is stale by default (``payment_ttl``)."""
DEFAULT_WEBHOOK_MAX_BYTES: Final = 1_048_576
"""Largest webhook body accepted by default, in bytes (``webhook_max_bytes``)."""
MOST_WEBHOOK_MAX_BYTES: Final = 64 * 1_048_576
"""The highest ``webhook_max_bytes`` may be set (64 MiB): a body is read whole into memory before it is verified."""
MAX_PROVIDER_TIMEOUT: Final = 86_400.0
"""The longest ``provider_timeout``: a day (no single call to a provider should take longer)."""
MAX_IDEMPOTENCY_LEASE: Final = 604_800.0
"""The longest ``idempotency_lease``: a week (a crashed request blocks retries of its key for its whole lease)."""
MAX_IDEMPOTENCY_TTL: Final = 315_360_000.0
"""The longest ``idempotency_ttl``: ten years of 365 days (far within what dates and every store can hold)."""
MAX_PAYMENT_TTL: Final = 315_360_000.0
"""The longest ``payment_ttl``: ten years of 365 days (far within what dates and every store can hold)."""
MAX_CODE_LENGTH: Final = 64
"""The longest tenant name or provider code: every store keeps them in columns of 64 characters."""


@frozen
class AdapterConfig:
    """A repository or idempotency store: its registered type and its settings.

    ``type`` is ``None`` when the configuration gave a URL (``settings["url"]``)
    or nothing at all: which adapter that means is known once the plugins are
    loaded, and :func:`paycore.adapters.resolve_config` fills it in (the adapter
    that serves the URL's scheme; without a URL, the embedded default).
    """

    type: str | None = None
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
    timezone: str | None = None
    """Where its day runs midnight to midnight (an IANA name); ``None``: the configuration's ``timezone``."""


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@frozen
class PaycoreConfig:
    """The whole configuration of a :class:`~paycore.flow.PaymentFlow`."""

    repository: AdapterConfig = field(factory=AdapterConfig)
    """The repository; unresolved (``type=None``) means the embedded default or a URL's adapter."""
    idempotency: tuple[AdapterConfig, ...] = ()
    """The idempotency stores, fastest first; empty means the repository's adapter."""
    providers: Mapping[str, ProviderConfig] = field(factory=dict, converter=_freeze)
    """Providers enabled for payments made without a tenant."""
    tenants: Mapping[str, TenantConfig] = field(factory=dict, converter=_freeze)
    provider_timeout: float = DEFAULT_PROVIDER_TIMEOUT
    """Seconds a provider call may take; past that its outcome is unknown."""
    idempotency_lease: float = DEFAULT_IDEMPOTENCY_LEASE
    """Seconds a key stays held by a request that has not finished (then it may be taken over)."""
    idempotency_ttl: float = DEFAULT_IDEMPOTENCY_TTL
    """Seconds a completed request's result is kept for replay (never shorter than the lease)."""
    payment_ttl: float = DEFAULT_PAYMENT_TTL
    """Seconds after which an unfinished payment is stale for ``expire_stale``."""
    webhook_url: str | None = None
    """Where providers send webhooks: a base URL (``/{tenant}/{code}`` is appended, the
    routes of :mod:`paycore.asgi`) or a template with ``{tenant}`` and ``{code}``."""
    plugins_blocked: tuple[str, ...] = ()
    """Entry points not to load."""
    webhook_max_bytes: int = DEFAULT_WEBHOOK_MAX_BYTES
    """Largest webhook body accepted, in bytes; a larger one is refused unread."""
    idempotency_settings: Mapping[str, Settings] = field(factory=dict, converter=_freeze)
    """Settings of idempotency store types by type name (``[idempotency_settings.redis]``)."""
    idempotency_required: bool = False
    """Refuse every mutating call made without an ``idempotency_key`` (a retried call without
    one would run twice): on for web handlers, off for scripts and tests."""
    timezone: str = "UTC"
    """Where a day runs midnight to midnight (day reports), for payments of no tenant and tenants setting none."""

    def provider_configs(self, tenant: str | None) -> Mapping[str, ProviderConfig]:
        """The providers ``tenant`` enables (``None``: the tenant-less ones)."""
        if tenant is None:
            return self.providers
        found = self.tenants.get(tenant)
        return found.providers if found is not None else {}

    def timezone_of(self, tenant: str | None) -> str:
        """The time zone ``tenant``'s days run in: its own ``timezone``, else the configuration's."""
        found = self.tenants.get(tenant) if tenant is not None else None
        return found.timezone if found is not None and found.timezone is not None else self.timezone

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PaycoreConfig:
        """Build from a mapping shaped like the TOML file; refuse unknown keys."""
        return _parse(data)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> PaycoreConfig:
        """Read a TOML file (``PAYCORE_*`` variables are not applied: see :func:`load_config`)."""
        return _parse(read_toml(path))


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
        data = deep_copy(source)
    else:
        raise ConfigurationError(f"configuration must be a mapping, a TOML path or None, not {type(source).__name__}")
    apply_environment(data, env)
    return _parse(data)


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
    "webhook_max_bytes",
    "plugins_blocked",
    "idempotency_required",
    "timezone",
}

_DURATIONS: Final = {  # each duration setting: its default, its largest value, that value in words
    "provider_timeout": (DEFAULT_PROVIDER_TIMEOUT, MAX_PROVIDER_TIMEOUT, "a day"),
    "idempotency_lease": (DEFAULT_IDEMPOTENCY_LEASE, MAX_IDEMPOTENCY_LEASE, "a week"),
    "idempotency_ttl": (DEFAULT_IDEMPOTENCY_TTL, MAX_IDEMPOTENCY_TTL, "ten years"),
    "payment_ttl": (DEFAULT_PAYMENT_TTL, MAX_PAYMENT_TTL, "ten years"),
}


def _parse(data: Mapping[str, Any]) -> PaycoreConfig:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"configuration must be a table, not {kind_of_setting(data)}")
    unknown = set(data) - _TOP_LEVEL
    if unknown:
        raise ConfigurationError(
            f"unknown configuration key(s) {sorted(unknown, key=str)}; known: {sorted(_TOP_LEVEL)}"
        )
    repository = _adapter(data["repository"], "repository") if "repository" in data else AdapterConfig()
    extra = _store_settings_by_type(data.get("idempotency_settings", {}))
    stores = _stores(data["idempotency"], extra) if "idempotency" in data else ()
    tenants_raw = data.get("tenants", {})
    if not isinstance(tenants_raw, Mapping):
        raise ConfigurationError("tenants must be a table of tenant tables")
    tenants = {}
    for name, tenant in tenants_raw.items():
        _check_code(name, "a tenant name", "tenants")
        if not isinstance(tenant, Mapping) or set(tenant) - {"providers", "timezone"}:
            raise ConfigurationError(f"tenant {name!r} must be a table with only a 'providers' table and a 'timezone'")
        where = f"tenant {name!r}"
        zone = config_sources.read_time_zone(tenant.get("timezone"), where)
        tenants[name] = TenantConfig(name, _providers(tenant.get("providers", {}), where), zone)
    seconds = {key: config_sources.read_seconds(data, key, *limits) for key, limits in _DURATIONS.items()}
    config_sources.check_durations(seconds, lease_over_timeout=LEASE_OVER_TIMEOUT)
    return PaycoreConfig(
        repository=repository,
        idempotency=stores,
        idempotency_settings=extra,
        providers=_providers(data.get("providers", {}), "the default tenant"),
        tenants=tenants,
        provider_timeout=seconds["provider_timeout"],
        idempotency_lease=seconds["idempotency_lease"],
        idempotency_ttl=seconds["idempotency_ttl"],
        payment_ttl=seconds["payment_ttl"],
        webhook_url=config_sources.read_webhook_url(data.get("webhook_url")),
        webhook_max_bytes=config_sources.read_positive_int(
            data, "webhook_max_bytes", DEFAULT_WEBHOOK_MAX_BYTES, most=MOST_WEBHOOK_MAX_BYTES
        ),
        plugins_blocked=config_sources.read_names(data, "plugins_blocked", "entry point names"),
        idempotency_required=config_sources.read_flag(data, "idempotency_required"),
        timezone=config_sources.read_time_zone(data.get("timezone"), "the configuration") or "UTC",
    )


_NOT_ONE_SEGMENT: Final = re.compile(r"[/\\|]|^\.\.?$")
"""What keeps a name from being one segment of a path, or a tenant's name from being only its own: ``|`` parts a
tenant's key spaces (its payments' ``t:NAME``, its cash drawers' ``t:NAME|cash-drawers``)."""


def is_code(value: object) -> bool:
    """True when ``value`` may be a tenant's name or a provider's code: a non-empty ``str`` of at most
    :data:`MAX_CODE_LENGTH` characters without control characters (what every store keeps), that can be one
    segment of a webhook URL's path (no ``/`` or ``\\``, not ``.`` or ``..``), without the ``|`` that parts a
    tenant's key spaces."""
    if not isinstance(value, str) or len(value) > MAX_CODE_LENGTH:
        return False
    return wire.is_id(value) and _NOT_ONE_SEGMENT.search(value) is None


def _check_code(value: object, what: str, where: str) -> None:
    if not is_code(value):
        limits = f"a non-empty string of at most {MAX_CODE_LENGTH} characters without control characters, '/', '\\'"
        limits += " or '|'"
        raise ConfigurationError(
            f"{where}: {shown_setting(value)} is not {what}; it must be {limits}, and not '.' or '..'"
        )


def _adapter(raw: Any, what: str) -> AdapterConfig:
    """An adapter as configured: by name, by URL (type left for resolution), or a table."""
    if isinstance(raw, str):
        if "://" in raw:
            return AdapterConfig(None, Settings({"url": _url(raw, what)}, owner=f"{what} {redact_url(raw)!r}"))
        if not raw or any(character in raw for character in "@:/\\ "):  # not quoted: maybe a URL without its scheme
            raise ConfigurationError(f"{what}: neither an adapter's name (such as 'memory') nor a URL with its scheme")
        return AdapterConfig(raw, Settings(owner=f"{what} {raw!r}"))
    if isinstance(raw, Mapping):
        settings = dict(raw)
        kind = settings.pop("type", None)
        if kind is None and isinstance(settings.get("url"), str):
            url = _url(settings["url"], what)
            return AdapterConfig(None, Settings(settings, owner=f"{what} {redact_url(url)!r}"))
        if kind is None and "url" in settings:
            wrong = kind_of_setting(settings["url"])
            raise ConfigurationError(f"{what}: the url setting must be a string, not {wrong}")
        if not isinstance(kind, str) or not kind:
            raise ConfigurationError(f"{what}: a table needs a 'type' (or a 'url'), got {sorted(raw, key=str)}")
        return AdapterConfig(kind, Settings(settings, owner=f"{what} {shown_setting(kind)}"))
    raise ConfigurationError(f"{what} must be a name, a URL or a table, not {kind_of_setting(raw)}")


def _url(raw: str, what: str) -> str:
    scheme = raw.split("://", 1)[0]
    if not _URL_SCHEME.fullmatch(scheme):
        raise ConfigurationError(
            f"{what}: {redact_url(raw)!r} is not a URL with a scheme (like 'sqlite:///paycore.db'), or an adapter name"
        )
    return raw


_URL_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")


def url_scheme(url: str) -> str:
    """The scheme of an adapter URL, lowercased: ``"postgresql+psycopg"`` for ``postgresql+psycopg://...``."""
    return url.split("://", 1)[0].lower()


def _store_settings_by_type(raw: Any) -> dict[str, Settings]:
    if not isinstance(raw, Mapping) or not all(isinstance(table, Mapping) for table in raw.values()):
        raise ConfigurationError("idempotency_settings must be a table of tables")
    return {name: Settings(table, owner=f"idempotency store {shown_setting(name)}") for name, table in raw.items()}


def _stores(raw: Any, extra: Mapping[str, Settings]) -> tuple[AdapterConfig, ...]:
    if isinstance(raw, (str, Mapping)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise ConfigurationError("idempotency must be a store name, a table, or a non-empty list of them")
    stores = []
    for item in raw:
        store = _adapter(item, "idempotency")
        if store.type is not None:
            store = AdapterConfig(store.type, store_settings(store.type, store.settings, extra))
        stores.append(store)
    named = [store.type for store in stores if store.type is not None]
    if len(set(named)) != len(named):
        raise ConfigurationError(f"idempotency lists a store twice: {named}")
    return tuple(stores)


def store_settings(store_type: str, own: Mapping[str, Any], by_type: Mapping[str, Settings]) -> Settings:
    """The settings of an idempotency store of ``store_type``: ``by_type[store_type]``
    (``[idempotency_settings.TYPE]``) overridden by the store's ``own``."""
    merged = dict(by_type.get(store_type, {}))
    merged.update(own)
    return Settings(merged, owner=f"idempotency store {store_type!r}")


def _providers(raw: Any, owner: str) -> dict[str, ProviderConfig]:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"providers of {owner} must be a table of provider tables")
    providers = {}
    for code, table in raw.items():
        _check_code(code, "a provider code", f"providers of {owner}")
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"provider {code!r} of {owner} must be a table with a 'type'")
        settings = dict(table)
        kind = settings.pop("type", code)
        if not isinstance(kind, str) or not kind:
            raise ConfigurationError(f"provider {code!r} of {owner} has an invalid type {shown_setting(kind)}")
        providers[code] = ProviderConfig(code, kind, Settings(settings, owner=f"provider {code!r} of {owner}"))
    return providers
