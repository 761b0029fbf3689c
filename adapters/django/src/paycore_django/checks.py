"""System checks of paycore (``manage.py check``), with stable ids.

=========================  ===================================================================
``paycore_django.E001``    ``settings.PAYCORE`` or ``settings.PAYCORE_DJANGO`` is not valid
``paycore_django.E002``    a provider's ``type`` is not provided by any installed plugin
``paycore_django.E003``    a provider that confirms payments by webhook has no webhook secret
``paycore_django.W001``    paycore's migrations are not applied (``check --database default``)
=========================  ===================================================================

A bad configuration is reported here, at start-up, rather than at the
first payment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from paycore.config import PaycoreConfig, ProviderConfig
from paycore.errors import PaycoreError
from paycore.plugins import Registry, collect_registry, create_plugin_manager

__all__ = ["check_migrations", "check_paycore_settings"]

APP_LABEL = "paycore_django"
WEBHOOK_SECRET_SETTING = "webhook_secret"
"""The setting a webhook provider verifies deliveries with, unless its class names another
(``webhook_secret_setting`` class attribute)."""


def _load() -> tuple[PaycoreConfig, Registry]:
    """The configuration and its plugins' registry; a :class:`PaycoreError` names the setting at fault."""
    from paycore_django import conf

    try:
        options = conf.django_options()
    except PaycoreError as error:
        raise _InvalidSetting("PAYCORE_DJANGO", "PAYCORE_DJANGO takes the keys of paycore_django.conf") from error
    try:
        config = conf.paycore_config()
        manager = create_plugin_manager(options.plugins, blocked=config.plugins_blocked)
        return config, collect_registry(manager)
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


@register(Tags.compatibility)
def check_paycore_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E001 invalid ``PAYCORE`` or ``PAYCORE_DJANGO``; E002 unknown provider type; E003 webhook provider
    without a secret."""
    try:
        config, registry = _load()
    except _InvalidSetting as invalid:
        return [
            Error(
                f"settings.{invalid.setting} is invalid: {invalid.__cause__}",
                hint=f"See docs/django.md: {invalid.hint}.",
                id=f"{APP_LABEL}.E001",
            )
        ]
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
        if provider_class.capabilities.webhooks and not provider.settings.get(secret_setting):
            found.append(
                Error(
                    f"{_where(tenant, provider)} ({provider.type}) confirms payments by webhook "
                    f"but has no {secret_setting!r}",
                    hint=f"Set {secret_setting!r} in its PAYCORE settings (from the environment, not the source).",
                    id=f"{APP_LABEL}.E003",
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
