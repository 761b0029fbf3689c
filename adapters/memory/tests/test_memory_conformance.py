"""The memory adapter passes paycore's storage conformance suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.testing import IdempotencyStoreConformance, RepositoryConformance
from paycore_memory import MemoryIdempotencyStore, MemoryRepository


class TestMemoryRepository(RepositoryConformance):
    @pytest.fixture
    async def repository(self) -> AsyncIterator[MemoryRepository]:
        repository = MemoryRepository()
        yield repository
        await repository.aclose()


class TestMemoryIdempotencyStore(IdempotencyStoreConformance):
    says_how_long_results_are_kept = True

    @pytest.fixture
    async def idempotency_store(self) -> AsyncIterator[MemoryIdempotencyStore]:
        store = MemoryIdempotencyStore()
        yield store
        await store.aclose()
