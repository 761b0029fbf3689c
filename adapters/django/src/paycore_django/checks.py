"""System checks of paycore (``manage.py check``), with stable ids.

=========================  ===================================================================
``paycore_django.E001``    ``settings.PAYCORE`` or ``settings.PAYCORE_DJANGO`` is not valid
                           (among them, a ``django`` repository or idempotency store
                           whose ``using`` is no alias of ``DATABASES``)
``paycore_django.E002``    a provider's ``type`` is not provided by any installed plugin
``paycore_django.E003``    a provider that confirms payments by webhook has no webhook secret
                           (unset, empty or only spaces)
``paycore_django.E004``    a provider's settings are refused when the flow builds it (a
                           ``ConfigurationError``: a malformed secret, a missing ``api_key``,
                           neither ``base_url`` nor ``gateway``...)
``paycore_django.E005``    a provider cannot keep its data beside the flow's Django repository
                           (a Django app it needs is not in ``INSTALLED_APPS``: the cash
                           drawers' ``paycore_cash.backends.django``)
``paycore_django.W001``    paycore's migrations are not applied (``check --database default``;
                           not while ``migrate`` applies them)
``paycore_django.W002``    a SQLite database paycore writes to has ``ATOMIC_REQUESTS`` with
                           ``transaction_mode`` ``IMMEDIATE`` (or ``EXCLUSIVE``): every request
                           holds its write lock, so your views that call paycore fail
``paycore_django.W003``    a SQLite database paycore writes to keeps SQLite's default
                           (deferred) ``transaction_mode``: concurrent writers fail at once
                           with "database is locked" instead of waiting their turn
``paycore_django.W004``    ``DATABASE_ROUTERS`` will not migrate paycore's models on the
                           database paycore keeps them on: ``migrate`` records paycore's
                           migrations there without creating its tables (so W001 is silent)
``paycore_django.W005``    ``DATABASE_ROUTERS`` send paycore's models to another database than
                           the one paycore writes to (``PAYCORE['repository']``'s ``using``)
=========================  ===================================================================

A bad configuration is reported here, at start-up, rather than at the
first payment. The check reads ``PAYCORE`` as the flow will
(:func:`paycore_django.conf.paycore_config`, the same plugins, adapters resolved
against them) and builds every provider with the code that builds the flow's
(:func:`paycore.assembly.build_providers`), one provider at a time so each
refusal is reported with its tenant and code. Providers open no connection
when built. Of the storage, only the repository and the idempotency stores of
this adapter's own type ``django`` are built, as the flow builds them (they
open no connection either), so settings the flow would refuse (an unknown
``using`` alias, ``USE_TZ`` off) are E001 now, not an error at the first
payment; and the providers are built beside that repository as the flow builds
them: a provider that keeps data of its own there (the cash drawers, in a
Django app of the cash plugin) says so now. Repositories and idempotency stores
of other types are not built (they may connect to a database or a cache);
providers are then built without storage.

:func:`migration_warnings` is the W001 of any app: the cash plugin's Django app
reports its own unapplied migrations with it (``paycore_cash.W001``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from attrs import evolve, frozen
from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from paycore.adapters import resolve_config
from paycore.assembly import build_providers, mask_declared_secrets
from paycore.config import PaycoreConfig, ProviderConfig
from paycore.errors import ConfigurationError, PaycoreError
from paycore.logs import guarded_logger
from paycore.plugins import Registry, collect_registry, create_plugin_manager
from paycore.secrets import Settings

if TYPE_CHECKING:
    import pluggy

    from paycore.providers import Provider
    from paycore.storage import PaymentRepository

__all__ = [
    "check_atomic_requests",
    "check_database_routers",
    "check_migrations",
    "check_paycore_settings",
    "check_sqlite_transaction_mode",
    "migration_warnings",
]

APP_LABEL = "paycore_django"
DJANGO_STORAGE = "django"
"""The repository and idempotency store type of this adapter."""
LOCKING_TRANSACTION_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})
"""SQLite ``transaction_mode`` values that take the database's write lock at ``BEGIN``."""
WEBHOOK_SECRET_SETTING = "webhook_secret"
"""The setting a webhook provider verifies deliveries with, unless its class names another
(``webhook_secret_setting`` class attribute)."""


log = guarded_logger("paycore_django.checks")  # a handler that raises never changes what this module answers


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


@frozen
class _AdapterContext:
    """What a repository factory is called with (:class:`paycore.hookspecs.AdapterContext`)."""

    settings: Settings
    plugin_manager: pluggy.PluginManager


def _django_repository(
    config: PaycoreConfig, registry: Registry, manager: pluggy.PluginManager
) -> PaymentRepository | None:
    """The flow's repository if it is this adapter's (built as the flow builds it; it opens no connection).

    ``None`` for any other type, which may connect when built. An
    :class:`_InvalidSetting` when the flow would refuse its settings (an unknown
    ``using`` alias, ``USE_TZ`` off...).
    """
    factory = registry.repositories.get(DJANGO_STORAGE)
    if config.repository.type != DJANGO_STORAGE or factory is None:
        return None
    try:
        repository: PaymentRepository = factory(_AdapterContext(config.repository.settings, manager))
    except PaycoreError as error:
        raise _InvalidSetting("PAYCORE", "its repository 'django' takes 'using', an alias of DATABASES") from error
    return repository


def _check_django_stores(config: PaycoreConfig, registry: Registry, manager: pluggy.PluginManager) -> None:
    """Build the flow's idempotency stores of this adapter's type as the flow builds them (they open no connection).

    Stores of any other type are not built: they may connect when built. An
    :class:`_InvalidSetting` when the flow would refuse the settings of one (an
    unknown ``using`` alias, ``USE_TZ`` off...).
    """
    factory = registry.idempotency_stores.get(DJANGO_STORAGE)
    if factory is None:
        return
    for store in config.idempotency:
        if store.type != DJANGO_STORAGE:
            continue
        try:
            factory(_AdapterContext(store.settings, manager))
        except PaycoreError as error:
            raise _InvalidSetting(
                "PAYCORE",
                "the idempotency store 'django' of PAYCORE['idempotency'] takes 'using' (there, or in "
                "PAYCORE['idempotency_settings']['django']), an alias of DATABASES",
            ) from error


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
    """Whether ``setting`` holds a secret: set, and not empty or only spaces (a ``Secret`` is always truthy).

    A value that is not text counts as set: building the provider refuses it (E004), saying why."""
    try:
        return bool(provider.settings.secret(setting, "").strip())
    except ConfigurationError:
        return True


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
    repository: PaymentRepository | None,
    built: list[Provider],
) -> PaycoreError | None:
    """What building ``provider`` beside ``repository`` as the flow does raises (``None``: it builds, and
    is added to ``built``).

    Without a repository (``None``: the flow's is not built by the check), a
    provider that keeps data beside it (the cash drawers) finds it when the flow is built.
    """
    beside = cast("PaymentRepository", repository)
    try:
        instances = build_providers(_alone(config, tenant, provider), registry, manager, beside)
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
    """E001 invalid ``PAYCORE`` or ``PAYCORE_DJANGO`` (its ``django`` repository and idempotency stores included);
    E002 unknown provider type; E003 webhook provider without a secret; E004 provider settings the flow would
    refuse; E005 a provider that cannot keep its data beside the flow's Django repository."""
    try:
        config, registry, manager = _load()
        repository = _django_repository(config, registry, manager)
        _check_django_stores(config, registry, manager)
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
        return _check_providers(config, registry, manager, repository, built)
    finally:
        if built:
            _close(built)


def _check_providers(
    config: PaycoreConfig,
    registry: Registry,
    manager: pluggy.PluginManager,
    repository: PaymentRepository | None,
    built: list[Provider],
) -> list[CheckMessage]:
    """E002 to E005 for every provider of ``config``; the providers it builds are added to ``built``."""
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
        refused = _build_refusal(config, registry, manager, tenant, provider, repository, built)
        if refused is not None:
            found.append(_refusal(config, registry, manager, tenant, provider, repository, refused, built))
    return found


def _refusal(
    config: PaycoreConfig,
    registry: Registry,
    manager: pluggy.PluginManager,
    tenant: str | None,
    provider: ProviderConfig,
    repository: PaymentRepository | None,
    refused: PaycoreError,
    built: list[Provider],
) -> CheckMessage:
    """E004 if ``provider`` is refused even without storage (its settings), else E005 (the storage beside it)."""
    alone = refused if repository is None else _build_refusal(config, registry, manager, tenant, provider, None, built)
    if alone is not None:
        return Error(
            f"{_where(tenant, provider)} ({provider.type}) cannot be built from its settings: {alone}",
            hint="Fix that setting in its PAYCORE settings: the flow refuses it, so the site would fail "
            "at its first payment.",
            id=f"{APP_LABEL}.E004",
        )
    return Error(
        f"{_where(tenant, provider)} ({provider.type}) cannot keep its data beside the flow's Django "
        f"repository: {refused}",
        hint="Add the Django app it names to INSTALLED_APPS and run migrate: the flow is built with every "
        "provider, so until then no payment can be taken, whatever its provider.",
        id=f"{APP_LABEL}.E005",
    )


@register(Tags.database)
def check_migrations(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: a database paycore uses has migrations of ``paycore_django`` not applied."""
    return migration_warnings(APP_LABEL, databases, f"{APP_LABEL}.W001")


def migration_warnings(app_label: str, databases: Sequence[str] | None, check_id: str) -> list[CheckMessage]:
    """A Warning ``check_id`` for each of ``databases`` that lacks migrations of app ``app_label``.

    A database that cannot be reached is skipped: Django's own checks say so. None is given while Django's
    ``migrate`` runs its checks: the migrations the warning would ask for are the ones it is about to apply.
    """
    if _inside_migrate():
        return []
    from django.db import DatabaseError, connections
    from django.db.migrations.executor import MigrationExecutor

    found: list[CheckMessage] = []
    for alias in databases or ():
        try:
            executor = MigrationExecutor(connections[alias])
            targets = [node for node in executor.loader.graph.leaf_nodes() if node[0] == app_label]
            missing = [
                migration for migration, _ in executor.migration_plan(targets) if migration.app_label == app_label
            ]
        except DatabaseError:
            continue
        if missing:
            found.append(
                Warning(
                    f"database {alias!r} lacks {len(missing)} migration(s) of {app_label} "
                    f"({', '.join(m.name for m in missing)})",
                    hint=f"Run: python manage.py migrate {app_label} --database {alias}",
                    id=check_id,
                )
            )
    return found


def _inside_migrate() -> bool:
    """True when Django's ``migrate`` command (or a command built on it) runs the checks: a frame of the
    command's own methods, or of :class:`~django.core.management.base.BaseCommand`'s run for it, is on the stack."""
    from django.core.management.commands.migrate import Command as MigrateCommand

    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        try:  # the type only: a lazy object or a proxy in ``self`` is never evaluated
            if issubclass(type(frame.f_locals["self"]), MigrateCommand):
                return True
        except Exception:  # no ``self`` there, or locals that are no mapping (code run by exec)
            pass
        frame = frame.f_back
    return False


# -- ATOMIC_REQUESTS on SQLite -----------------------------------------------------------------


def _paycore_aliases(config: PaycoreConfig) -> set[str]:
    """The database aliases paycore writes to: those of its ``django`` repository and idempotency stores."""
    adapters = (config.repository, *config.idempotency)
    return {str(adapter.settings.get("using", "default")) for adapter in adapters if adapter.type == DJANGO_STORAGE}


def _sqlite_file(alias: str) -> str | None:
    """The database file of ``alias`` when it is a SQLite database (``None`` otherwise, or unknown)."""
    from django.conf import settings
    from django.db import connections

    if alias not in settings.DATABASES or connections[alias].vendor != "sqlite":
        return None
    return str(settings.DATABASES[alias].get("NAME"))


def _locks_every_request(alias: str) -> str | None:
    """The ``transaction_mode`` of ``alias`` when it has ``ATOMIC_REQUESTS`` and that mode locks at ``BEGIN``."""
    from django.conf import settings

    mode = _transaction_mode(alias)
    return mode if settings.DATABASES[alias].get("ATOMIC_REQUESTS") and mode in LOCKING_TRANSACTION_MODES else None


def _transaction_mode(alias: str) -> str:
    """The ``transaction_mode`` option of database ``alias``, upper case (``""``: SQLite's default, deferred)."""
    from django.conf import settings

    return str((settings.DATABASES[alias].get("OPTIONS") or {}).get("transaction_mode") or "").upper()


@register(Tags.compatibility)
def check_atomic_requests(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W002: a SQLite database paycore writes to is locked by every request (``ATOMIC_REQUESTS``, ``IMMEDIATE``).

    A unit of work of paycore runs on a worker thread, on a connection of its
    own: it waits for the request's lock until SQLite's timeout, then fails
    ("database is locked"). paycore's views and its admin are exempt on every
    database (:func:`~paycore_django.databases.non_atomic_requests`); the
    project's own views that call paycore are not: the hint names the alias
    to give ``transaction.non_atomic_requests(using=...)``, which without it
    exempts ``default`` only.
    """
    from django.conf import settings

    try:
        config, _, _ = _load()
    except _InvalidSetting:
        return []  # E001 says so
    files = {_sqlite_file(alias) for alias in _paycore_aliases(config)} - {None}
    found: list[CheckMessage] = []
    for alias in settings.DATABASES:
        mode = _locks_every_request(alias) if _sqlite_file(alias) in files else None
        if mode is not None:
            found.append(
                Warning(
                    f"database {alias!r} is SQLite with ATOMIC_REQUESTS and transaction_mode {mode!r}: every "
                    "request holds its write lock from its start, so paycore, which writes on a connection of "
                    "its own, waits for it and fails with 'database is locked' (in your views that call "
                    "paycore)",
                    hint=f"Set ATOMIC_REQUESTS = False for {alias!r} and wrap the views that need it in "
                    "transaction.atomic(), or mark each view that calls paycore with "
                    f"@transaction.non_atomic_requests(using={alias!r}) (paycore's own views and admin are "
                    "exempt on every database). See docs/django.md.",
                    id=f"{APP_LABEL}.W002",
                )
            )
    return found


@register(Tags.compatibility)
def check_sqlite_transaction_mode(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W003: a SQLite database paycore writes to begins its transactions deferred (SQLite's default).

    A deferred transaction reads first and asks for the write lock only at its
    first write; two such writers each holding a read cannot both upgrade, and
    SQLite fails one at once ("database is locked", its ``timeout`` does not
    apply). A payment written so is left with its outcome unknown until it is
    refreshed. ``IMMEDIATE`` takes the write lock at ``BEGIN``, so concurrent
    writers wait for each other instead.
    """

    try:
        config, _, _ = _load()
    except _InvalidSetting:
        return []  # E001 says so
    found: list[CheckMessage] = []
    for alias in sorted(_paycore_aliases(config)):
        if _sqlite_file(alias) is None:
            continue
        mode = _transaction_mode(alias)
        if mode not in LOCKING_TRANSACTION_MODES:
            found.append(
                Warning(
                    f"database {alias!r} is SQLite with transaction_mode {mode or 'DEFERRED'!r}: paycore's "
                    "concurrent writes (two tills, a webhook during a sale) fail at once with 'database is "
                    "locked', leaving payments whose outcome is unknown",
                    hint=f'Set DATABASES[{alias!r}]["OPTIONS"]["transaction_mode"] = "IMMEDIATE" (and a '
                    '"timeout" of some seconds). See docs/django.md.',
                    id=f"{APP_LABEL}.W003",
                )
            )
    return found


# -- DATABASE_ROUTERS --------------------------------------------------------------------------


def _kept_models(config: PaycoreConfig) -> dict[str, list[type[Any]]]:
    """paycore's models by the database alias paycore keeps them on: the payments' on its ``django``
    repository's, the idempotency keys' on its ``django`` idempotency stores'."""
    from paycore_django import models

    kept: dict[str, list[type[Any]]] = {}
    if config.repository.type == DJANGO_STORAGE:
        alias = str(config.repository.settings.get("using", "default"))
        kept.setdefault(alias, []).extend(
            [models.Payment, models.PaymentReference, models.Refund, models.PaymentEvent, models.WebhookReceipt]
        )
    for store in config.idempotency:
        if store.type == DJANGO_STORAGE:
            alias = str(store.settings.get("using", "default"))
            if models.IdempotencyRecord not in kept.setdefault(alias, []):
                kept[alias].append(models.IdempotencyRecord)
    return kept


def _routed_write(model: type[Any]) -> str | None:
    """The alias the first router of ``DATABASE_ROUTERS`` with an opinion sends writes of ``model`` to (as
    ``router.db_for_write`` asks them); ``None`` when none has one (Django then falls back to ``default``,
    which paycore does not use: it names its alias in every query)."""
    from django.db import router

    for each in router.routers:
        method = getattr(each, "db_for_write", None)
        chosen = method(model) if method is not None else None
        if chosen:
            return str(chosen)
    return None


@register(Tags.compatibility)
def check_database_routers(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W004: a router will not migrate paycore's models on the alias paycore keeps them on; W005: a router sends
    writes of paycore's payments to another alias than its repository's.

    ``migrate --database <alias>`` records paycore's migrations on an alias whose router refuses them, without
    creating a table: W001 is then silent, and every call of paycore fails (``StorageUnavailable``, "lacks
    paycore's tables"). A router that sends paycore's models elsewhere is usually meant to keep them on that
    other database, which is not where paycore writes (it names its alias in every query).
    """
    from django.conf import settings
    from django.db import router

    from paycore_django.models import Payment

    try:
        config, _, _ = _load()
    except _InvalidSetting:
        return []  # E001 says so
    found: list[CheckMessage] = []
    kept = _kept_models(config)
    for alias in sorted(kept):
        if alias not in settings.DATABASES:
            continue  # E001 says so
        refused = [model.__name__ for model in kept[alias] if not router.allow_migrate_model(alias, model)]
        if refused:
            found.append(
                Warning(
                    f"DATABASE_ROUTERS will not migrate paycore's models {', '.join(refused)} on database "
                    f"{alias!r}, where paycore keeps them: migrate records paycore's migrations there without "
                    "creating its tables, and every payment fails",
                    hint=f"Make your router's allow_migrate() answer True for app 'paycore_django' on {alias!r}, "
                    f"then run: python manage.py migrate paycore_django --database {alias}; or point "
                    "PAYCORE['repository'] ({'type': 'django', 'using': ...}) at the database the router "
                    "migrates them on. See docs/django.md.",
                    id=f"{APP_LABEL}.W004",
                )
            )
    if config.repository.type == DJANGO_STORAGE:
        alias = str(config.repository.settings.get("using", "default"))
        routed = _routed_write(Payment)
        if routed is not None and routed != alias:
            found.append(
                Warning(
                    f"DATABASE_ROUTERS send writes of paycore's payments to database {routed!r}, but paycore "
                    f"writes them to {alias!r} (PAYCORE['repository']): what your code reads with "
                    "Payment.objects, and what migrate creates, is on another database than paycore's payments",
                    hint=f"Set PAYCORE['repository'] = {{'type': 'django', 'using': {routed!r}}}, or make your "
                    f"router send app 'paycore_django' to {alias!r}. See docs/django.md.",
                    id=f"{APP_LABEL}.W005",
                )
            )
    return found
