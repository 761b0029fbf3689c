"""The errors of the SQLAlchemy adapter, each under the core class that says how to handle it.

``DuplicateExternalId`` is the core's (:class:`paycore.errors.DuplicateExternalId`),
kept importable from here.
"""

from __future__ import annotations

from paycore.errors import ConfigurationError, DuplicateExternalId

__all__ = ["DuplicateExternalId", "SchemaOutOfDate"]


class SchemaOutOfDate(ConfigurationError):
    """The database's schema is not the one this version of paycore-sqlalchemy needs.

    Run ``paycore db upgrade --url URL`` (SQLite databases are upgraded on first use).
    """
