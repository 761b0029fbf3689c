"""``StorageUnderTest``: the fixtures a flow-level conformance suite asks of the storage it runs on.

A suite that proves a rule through a whole :class:`~paycore.flow.PaymentFlow`
(:class:`~paycore.testing.boundary_suite.ProviderBoundaryConformance`,
:class:`~paycore.testing.lifetime_suite.KeyLifetimeConformance`) subclasses it;
a storage package subclasses the suite and overrides the two fixtures below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

__all__ = ["StorageUnderTest"]


class StorageUnderTest:
    """Runs every test under asyncio and trio, on the storage a subclass names."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        """Every scenario runs under asyncio and under trio."""
        return request.param

    @pytest.fixture
    def storage_config(self) -> Mapping[str, Any]:
        """Override: the configuration keys of the storage under test (``{"repository": "..."}``)."""
        raise NotImplementedError("subclasses name their storage")

    @pytest.fixture
    def storage_plugins(self) -> Sequence[object]:
        """Override: plugin modules registering the storage under test (``()`` if entry points find them)."""
        return ()
