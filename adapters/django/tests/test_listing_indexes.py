"""A back office's listings by status, alone or within a tenant, read an index of the payments table."""

from __future__ import annotations

from django.db import connections

from paycore_django import models


def _indexed_columns(using: str) -> list[list[str]]:
    """The column lists of every index of the payments table, as the database reports them."""
    connection = connections[using]
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, models.Payment._meta.db_table)
    return [list(spec["columns"]) for spec in found.values() if spec["index"]]


def test_listing_by_status_in_creation_order_has_an_index(using: str) -> None:
    assert ["status", "created_at", "id"] in _indexed_columns(using)


def test_listing_by_tenant_and_status_in_creation_order_has_an_index(using: str) -> None:
    assert ["tenant", "status", "created_at", "id"] in _indexed_columns(using)
