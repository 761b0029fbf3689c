"""System checks of paycore (``manage.py check``), with stable ids.

=========================  ===================================================================
``paycore_django.E001``    ``settings.PAYCORE`` or ``settings.PAYCORE_DJANGO`` is not valid
``paycore_django.E002``    a provider's ``type`` is not provided by any installed plugin
``paycore_django.E003``    a provider that confirms payments by webhook has no webhook secret
                           (unset, empty or only spaces)
``paycore_django.E004``    a provider's settings are refused when the flow builds it (a
                           ``ConfigurationError``: a malformed secret, a missing ``api_key``,
                           neither ``base_url`` nor ``gateway``...)
``paycore_django.W001``    paycore's migrations are not applied (``check --database default``)
=========================  ===================================================================

A bad configuration is reported here, at start-up, rather than at the
first payment. The check reads ``PAYCORE`` as the flow will
(:func:`paycore_django.conf.paycore_config`, the same plugins, adapters resolved
against them) and builds every provider with the code that builds the flow's
(:func:`paycore.assembly.build_providers`), one provider at a time so each
refusal is reported with its tenant and code. Providers open no connection
when built; the repository and idempotency stores are not built (they may
connect to a database or a cache), so providers are built without storage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from attrs import evolve
from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from paycore.adapters import resolve_config
from paycore.assembly import build_providers, mask_declared_secrets
from paycore.config import PaycoreConfig, ProviderConfig
from paycore.errors import PaycoreError
from paycore.plugins import Registry, collect_registry, create_plugin_manager

if TYPE_CHECKING:
    import pluggy

    from paycore.providers import Provider
    from paycore.storage import PaymentRepository

__all__ = ["check_migrations", "check_paycore_settings"]

APP_LABEL = "paycore_django"
WEBHOOK_SECRET_SETTING = "webhook_secret"
"""The setting a webhook provider verifies deliveries with, unless its class names another
(``webhook_secret_setting`` class attribute)."""


log = logging.getLogger("paycore_django.checks")


def _load() -> tuple[PaycoreConfig, Registry, pluggy.PluginManager]:
    """The configuration as the flow reads it, its plugins' registry and manager.

    The plugins are the flow's (:func:`paycore_django.conf.flow_plugins` and
    the entry points), the adapters are resolved against them and the
    providers' declared secrets masked, as :meth:`PaymentFlow.from_config
    <paycore.flow.PaymentFlow.from_config>` does; an :class:`_InvalidSetting`
    names the setting at fault.
    """
    from paycore_django import conf

    try:
        options = conf.django_options()
    except PaycoreError as error:
        raise _InvalidSetting("PAYCORE_DJANGO", "PAYCORE_DJANGO takes the keys of paycore_django.conf") from error
    try:
        config = conf.paycore_config()
        manager = create_plugin_manager(conf.flow_plugins(options), blocked=config.plugins_blocked)
        registry = collect_registry(manager)
        return mask_declared_secrets(resolve_config(registry, config), registry), registry, manager
    except PaycoreError as error:
        raise _InvalidSetting("PAYCORE", "PAYCORE takes the same keys as PaymentFlow.from_config") from error


class _InvalidSetting(Exception):
    """``setting`` is invalid (the cause says how); ``hint`` says what it takes."""

    def __init__(self, setting: str, hint: str) -> None:
        super().__init__(setting)
        self.setting = setting
        self.hint = hint


def _scopes(config: PaycoreConfig) -> Iterable[tuple[str | None, ProviderConfig]]:
    for provider in config.providers.values():
        yield None, provider
    for name, tenant in config.tenants.items():
        for provider in tenant.providers.values():
            yield name, provider


def _where(tenant: str | None, provider: ProviderConfig) -> str:
    scope = "payments without a tenant" if tenant is None else f"tenant {tenant!r}"
    return f"provider {provider.code!r} of {scope}"


def _has_secret(provider: ProviderConfig, setting: str) -> bool:
    """Whether ``setting`` holds a secret: set, and not empty or only spaces (a ``Secret`` is always truthy)."""
    return bool(provider.settings.secret(setting, "").strip())


def _alone(config: PaycoreConfig, tenant: str | None, provider: ProviderConfig) -> PaycoreConfig:
    """``config`` enabling ``provider`` of ``tenant`` and nothing else."""
    if tenant is None:
        return evolve(config, providers={provider.code: provider}, tenants={})
    scope = evolve(config.tenants[tenant], providers={provider.code: provider})
    return evolve(config, providers={}, tenants={tenant: scope})


def _build_refusal(
    config: PaycoreConfig,
    registry: Registry,
    manager: pluggy.PluginManager,
    tenant: str | None,
    provider: ProviderConfig,
    built: list[Provider],
) -> PaycoreError | None:
    """What building ``provider`` as the flow does raises (``None``: it builds, and is added to ``built``)."""
    # Built without storage: the repository is not built here (it may connect), and a
    # provider that keeps data beside it (the cash drawers) finds it when the flow is built.
    no_repository = cast("PaymentRepository", None)
    try:
        instances = build_providers(_alone(config, tenant, provider), registry, manager, no_repository)
    except PaycoreError as error:
        return error
    built.extend(instances.values())
    return None


def _close(providers: list[Provider]) -> None:
    """Close providers built by the check, on a thread of its own (the caller may be inside an event loop)."""
    import anyio

    async def close_all() -> None:
        for provider in providers:
            await provider.aclose()

    def run() -> None:
        try:
            anyio.run(close_all)
        except Exception:  # a provider that cannot close what it never opened changes no check's answer
            log.debug("closing the providers built by the system check failed", exc_info=True)

    thread = threading.Thread(target=run, name="paycore-check-close")
    thread.start()
    thread.join()


@register(Tags.compatibility)
def check_paycore_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E001 invalid ``PAYCORE`` or ``PAYCORE_DJANGO``; E002 unknown provider type; E003 webhook provider
    without a secret; E004 provider settings the flow would refuse."""
    try:
        config, registry, manager = _load()
    except _InvalidSetting as invalid:
        return [
            Error(
                f"settings.{invalid.setting} is invalid: {invalid.__cause__}",
                hint=f"See docs/django.md: {invalid.hint}.",
                id=f"{APP_LABEL}.E001",
            )
        ]
    built: list[Provider] = []
    try:
        return _check_providers(config, registry, manager, built)
    finally:
        if built:
            _close(built)


def _check_providers(
    config: PaycoreConfig, registry: Registry, manager: pluggy.PluginManager, built: list[Provider]
) -> list[CheckMessage]:
    """E002, E003 and E004 for every provider of ``config``; the providers it builds are added to ``built``."""
    found: list[CheckMessage] = []
    for tenant, provider in _scopes(config):
        provider_class = registry.providers.get(provider.type)
        if provider_class is None:
            known = ", ".join(sorted(registry.providers)) or "none"
            found.append(
                Error(
                    f"{_where(tenant, provider)} has type {provider.type!r}, which no installed plugin provides",
                    hint=f"Installed provider types: {known}. Install the package that provides it, "
                    f"e.g. paycore-{provider.type}.",
                    id=f"{APP_LABEL}.E002",
                )
            )
            continue
        secret_setting = getattr(provider_class, "webhook_secret_setting", WEBHOOK_SECRET_SETTING)
        if provider_class.capabilities.webhooks and not _has_secret(provider, secret_setting):
            found.append(
                Error(
                    f"{_where(tenant, provider)} ({provider.type}) confirms payments by webhook "
                    f"but has no {secret_setting!r}",
                    hint=f"Set {secret_setting!r} in its PAYCORE settings (from the environment, not the source).",
                    id=f"{APP_LABEL}.E003",
                )
            )
            continue
        refused = _build_refusal(config, registry, manager, tenant, provider, built)
        if refused is not None:
            found.append(
                Error(
                    f"{_where(tenant, provider)} ({provider.type}) cannot be built from its settings: {refused}",
                    hint="Fix that setting in its PAYCORE settings: the flow refuses it, so the site would fail "
                    "at its first payment.",
                    id=f"{APP_LABEL}.E004",
                )
            )
    return found


@register(Tags.database)
def check_migrations(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: a database paycore uses has migrations of ``paycore_django`` not applied."""
    from django.db import DatabaseError, connections
    from django.db.migrations.executor import MigrationExecutor

    found: list[CheckMessage] = []
    for alias in databases or ():
        try:
            executor = MigrationExecutor(connections[alias])
            targets = [node for node in executor.loader.graph.leaf_nodes() if node[0] == APP_LABEL]
            missing = [
                migration for migration, _ in executor.migration_plan(targets) if migration.app_label == APP_LABEL
            ]
        except DatabaseError:
            continue  # unreachable: Django's own checks say so
        if missing:
            found.append(
                Warning(
                    f"database {alias!r} lacks {len(missing)} migration(s) of paycore_django "
                    f"({', '.join(m.name for m in missing)})",
                    hint=f"Run: python manage.py migrate paycore_django --database {alias}",
                    id=f"{APP_LABEL}.W001",
                )
            )
    return found
