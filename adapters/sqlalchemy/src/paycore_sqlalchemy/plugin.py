"""The ``sqlalchemy`` plugin: repository and idempotency store type ``sqlalchemy``, ``paycore db``,
and the ``paycore_sqlalchemy_schemas`` hook through which plugins add their tables and migrations.

Configuration by URL (``repository = "sqlite:///paycore.db"`` selects it), or a
table: ``{type = "sqlalchemy", url = "...", auto_upgrade = false, pool_size = 10}``.
The repository and the idempotency store of one flow share one engine.
"""

from __future__ import annotations

import pluggy

from paycore import hookimpl
from paycore.hookspecs import AdapterContext, CommandRegistrar, IdempotencyStoreRegistrar, RepositoryRegistrar
from paycore_sqlalchemy import hookspecs
from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.idempotency import SqlIdempotencyStore
from paycore_sqlalchemy.repository import SqlPaymentRepository
from paycore_sqlalchemy.schemas import registered_schemas
from paycore_sqlalchemy.settings import (
    URL_SCHEMES,
    auto_upgrade_setting,
    check_setting_names,
    engine_options,
    url_setting,
)


def _database(context: AdapterContext, owner: str) -> Database:
    settings = context.settings
    check_setting_names(settings, owner)
    return Database(
        url_setting(settings, owner),
        auto_upgrade=auto_upgrade_setting(settings),
        engine_options=engine_options(settings),
        schemas=registered_schemas(context.plugin_manager),
    )


def _repository(context: AdapterContext) -> SqlPaymentRepository:
    return SqlPaymentRepository(_database(context, "repository 'sqlalchemy'"), owns_database=True)


def _idempotency_store(context: AdapterContext) -> SqlIdempotencyStore:
    return SqlIdempotencyStore(_database(context, "idempotency store 'sqlalchemy'"), owns_database=True)


@hookimpl
def paycore_addhooks(plugin_manager: pluggy.PluginManager) -> None:
    """Add ``paycore_sqlalchemy_schemas``, through which plugins register their tables and migrations."""
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def paycore_register_repositories(register: RepositoryRegistrar) -> None:
    """Register repository type ``sqlalchemy``."""
    register("sqlalchemy", _repository, url_schemes=URL_SCHEMES)


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``sqlalchemy``."""
    register("sqlalchemy", _idempotency_store, url_schemes=URL_SCHEMES)


@hookimpl
def paycore_register_commands(register: CommandRegistrar) -> None:
    """Add ``paycore db`` (upgrade, current, check)."""
    from paycore_sqlalchemy import cli

    register("db", help=cli.HELP, configure=cli.configure, run=cli.run)
