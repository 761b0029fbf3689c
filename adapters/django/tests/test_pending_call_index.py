"""The reaper's listing of the payments that carry a provider call reads a partial index of those alone."""

from __future__ import annotations

from django.db import connections

from paycore_django import models

INDEX = "paycore_payment_calls"


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


def test_the_payments_that_carry_a_call_have_a_partial_index_in_update_order(using: str) -> None:
    definition = _definition(using)
    assert models.Payment._meta.db_table in definition
    assert definition.endswith(" updated_at id where pending_call is not null"), definition
