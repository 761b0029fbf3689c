"""The hook the SQL adapter adds to paycore (through ``paycore_addhooks``): plugins register their tables.

A plugin that keeps rows of its own in the SQL database (the cash plugin's
drawer sessions) implements it with ``@hookimpl(optionalhook=True)``, so the
plugin loads whether or not this adapter is installed, and imports
SQLAlchemy only inside the hook::

    @hookimpl(optionalhook=True)
    def paycore_sqlalchemy_schemas(register):
        from my_plugin.sql_schema import SCHEMA   # an SqlSchema
        register(SCHEMA)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paycore.hookspecs import hookspec

if TYPE_CHECKING:
    from paycore_sqlalchemy.schemas import SchemaRegistrar

__all__ = ["paycore_sqlalchemy_schemas"]


@hookspec
def paycore_sqlalchemy_schemas(register: SchemaRegistrar) -> None:
    """Register the tables and migrations a plugin keeps in the SQL database.

    Called whenever the adapter collects the schemas of a plugin manager: when
    it builds a repository or an idempotency store of a flow, and in ``paycore
    db``. ``register`` takes one :class:`~paycore_sqlalchemy.schemas.SqlSchema`
    (its ``name`` is the Alembic branch label of its migrations). Every
    registered schema is upgraded by ``paycore db upgrade`` (and on a SQLite
    database's first use), checked by ``paycore db check``, and required at
    its head before a flow uses the database.
    """
