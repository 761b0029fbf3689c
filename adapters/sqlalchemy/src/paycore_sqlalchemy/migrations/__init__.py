"""The Alembic migrations of paycore-sqlalchemy (applied with ``paycore db upgrade``)."""
