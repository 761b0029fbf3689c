"""The reaper's listing of the payments holding a pending refund reads a partial index of the pending refunds alone."""

from __future__ import annotations

from django.db import connections

from paycore_django import models

INDEX = "paycore_refund_pending"


def _definition(using: str) -> str:
    """The index's ``CREATE INDEX`` text as the database keeps it, lower case, brackets as spaces."""
    connection = connections[using]
    if connection.vendor == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = %s"
    with connection.cursor() as cursor:
        cursor.execute(query, [INDEX])
        row = cursor.fetchone()
    assert row is not None, f"no index {INDEX}"
    return " ".join(str(row[0]).lower().replace('"', "").replace("(", " ").replace(")", " ").replace(",", " ").split())


def test_the_pending_refunds_have_a_partial_index_in_update_order_naming_their_payment(using: str) -> None:
    definition = _definition(using)
    assert models.Refund._meta.db_table in definition
    assert " updated_at payment_id where status" in definition, definition
    assert definition.endswith("'pending'") or "'pending'::text" in definition, definition
