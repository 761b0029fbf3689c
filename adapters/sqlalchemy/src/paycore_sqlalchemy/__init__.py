"""SQLAlchemy 2 storage for paycore: a payment repository, an idempotency store, and migrations.

``repository = "sqlite:///paycore.db"`` or ``"postgresql+psycopg://user@host/db"``
in the configuration selects it; :class:`SqlPaymentRepository` and
:class:`SqlIdempotencyStore` may also be built directly from a URL. SQLite
databases get the packaged Alembic migrations applied on first use; PostgreSQL
databases with ``paycore db upgrade --url URL``.
"""

from paycore_sqlalchemy.database import Database
from paycore_sqlalchemy.errors import DuplicateExternalId, SchemaOutOfDate
from paycore_sqlalchemy.idempotency import SqlIdempotencyStore
from paycore_sqlalchemy.repository import SqlPaymentRepository

__all__ = ["Database", "DuplicateExternalId", "SchemaOutOfDate", "SqlIdempotencyStore", "SqlPaymentRepository"]
