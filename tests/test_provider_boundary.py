"""The provider-boundary rules and the lifetime of idempotency keys on the memory adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import paycore_memory.plugin
from paycore.testing.boundary_suite import ProviderBoundaryConformance
from paycore.testing.lifetime_suite import KeyLifetimeConformance


class TestProviderBoundaryOnMemory(ProviderBoundaryConformance, KeyLifetimeConformance):
    """Every scenario, with payments and keys in memory."""

    @pytest.fixture
    def storage_config(self) -> Mapping[str, Any]:
        return {"repository": "memory"}

    @pytest.fixture
    def storage_plugins(self) -> Sequence[object]:
        return (paycore_memory.plugin,)
