"""The ``sqlalchemy`` plugin: repository and idempotency store type ``sqlalchemy``, ``paycore db``,
and the cash plugin's drawer storage beside a SQL repository.

Configuration by URL (``repository = "sqlite:///paycore.db"`` selects it), or a
table: ``{type = "sqlalchemy", url = "...", auto_upgrade = false, pool_size = 10}``.
The repository and the idempotency store of one flow share one engine.
"""

from __future__ import annotations

from typing import Any

from paycore import hookimpl
from paycore.hookspecs import AdapterContext, CommandRegistrar, IdempotencyStoreRegistrar, RepositoryRegistrar
from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.idempotency import SqlIdempotencyStore
from paycore_sqlalchemy.repository import SqlPaymentRepository
from paycore_sqlalchemy.settings import auto_upgrade_setting, engine_options, url_setting


def _database(context: AdapterContext, owner: str) -> Database:
    settings = context.settings
    return Database(
        url_setting(settings, owner),
        auto_upgrade=auto_upgrade_setting(settings),
        engine_options=engine_options(settings),
    )


def _repository(context: AdapterContext) -> SqlPaymentRepository:
    return SqlPaymentRepository(_database(context, "repository 'sqlalchemy'"), owns_database=True)


def _idempotency_store(context: AdapterContext) -> SqlIdempotencyStore:
    return SqlIdempotencyStore(_database(context, "idempotency store 'sqlalchemy'"), owns_database=True)


@hookimpl
def paycore_register_repositories(register: RepositoryRegistrar) -> None:
    """Register repository type ``sqlalchemy``."""
    register("sqlalchemy", _repository)


@hookimpl
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store type ``sqlalchemy``."""
    register("sqlalchemy", _idempotency_store)


@hookimpl
def paycore_register_commands(register: CommandRegistrar) -> None:
    """Add ``paycore db`` (upgrade, current, check)."""
    from paycore_sqlalchemy import cli

    register("db", help=cli.HELP, configure=cli.configure, run=cli.run)


@hookimpl(optionalhook=True)
def paycore_cash_drawer_storage(repository: object, settings: Any) -> object | None:
    """Drawer storage in the same database as a :class:`SqlPaymentRepository`.

    Imports the cash plugin's records only when the cash plugin asks.
    """
    if not isinstance(repository, SqlPaymentRepository):
        return None
    from paycore_sqlalchemy.drawers import SqlDrawerStorage

    return SqlDrawerStorage(repository.database)
