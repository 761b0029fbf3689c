"""Alembic revisions of the cash plugin's SQL tables (branch ``cash``)."""
