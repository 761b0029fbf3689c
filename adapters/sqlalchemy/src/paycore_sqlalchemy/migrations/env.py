"""Alembic environment: runs the migrations of every schema on the connection it is given.

``paycore db upgrade`` passes an open connection and the schemas (the adapter's
and the plugins') in ``config.attributes``; the plain ``alembic`` command may
instead set ``sqlalchemy.url`` (and then sees the adapter's schema only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from paycore_sqlalchemy.migrate import VERSION_TABLE
from paycore_sqlalchemy.schemas import ADAPTER_SCHEMA


def _run(connection: sa.Connection) -> None:
    schemas = context.config.attributes.get("schemas") or (ADAPTER_SCHEMA,)
    context.configure(
        connection=connection,
        target_metadata=[schema.metadata for schema in schemas],
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url, or run `paycore db upgrade --url URL`")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


_main()
