"""The provider-boundary rules and the lifetime of idempotency keys with Django storage, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import paycore_django.plugin
from paycore.testing.boundary_suite import ProviderBoundaryConformance
from paycore.testing.lifetime_suite import KeyLifetimeConformance


class TestProviderBoundaryOnDjango(ProviderBoundaryConformance, KeyLifetimeConformance):
    """Every scenario, with payments and keys in the Django ORM (``using``: SQLite, then PostgreSQL)."""

    @pytest.fixture
    def storage_config(self, using: str) -> Mapping[str, Any]:
        return {"repository": {"type": "django", "using": using}}

    @pytest.fixture
    def storage_plugins(self) -> Sequence[object]:
        return (paycore_django.plugin,)
