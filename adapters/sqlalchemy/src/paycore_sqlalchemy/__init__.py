"""SQLAlchemy 2 storage for paycore: a payment repository, an idempotency store, and migrations.

``repository = "sqlite:///paycore.db"`` or ``"postgresql+psycopg://user@host/db"``
in the configuration selects it; :class:`SqlPaymentRepository` and
:class:`SqlIdempotencyStore` may also be built directly from a URL. SQLite
databases get the Alembic migrations applied on first use; PostgreSQL
databases with ``paycore db upgrade --url URL``. Plugins keep tables of their
own in the same database: they register an :class:`SqlSchema` through the
``paycore_sqlalchemy_schemas`` hook and work through :meth:`Database.run`.
"""

from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.errors import DuplicateExternalId, SchemaOutOfDate
from paycore_sqlalchemy.idempotency import SqlIdempotencyStore
from paycore_sqlalchemy.repository import SqlPaymentRepository
from paycore_sqlalchemy.schemas import SqlSchema

__all__ = [
    "Database",
    "DuplicateExternalId",
    "SchemaOutOfDate",
    "SqlIdempotencyStore",
    "SqlPaymentRepository",
    "SqlSchema",
]
