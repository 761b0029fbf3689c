"""The provider-boundary rules and the lifetime of idempotency keys on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import paycore_sqlalchemy.plugin
from paycore.testing.boundary_suite import ProviderBoundaryConformance
from paycore.testing.lifetime_suite import KeyLifetimeConformance


class TestProviderBoundaryOnSql(ProviderBoundaryConformance, KeyLifetimeConformance):
    """Every scenario, with payments and keys in SQL (``database_url``: SQLite, then PostgreSQL)."""

    @pytest.fixture
    def storage_config(self, database_url: str) -> Mapping[str, Any]:
        return {"repository": database_url}

    @pytest.fixture
    def storage_plugins(self) -> Sequence[object]:
        return (paycore_sqlalchemy.plugin,)
