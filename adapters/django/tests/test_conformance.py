"""The Django repository and idempotency store pass paycore's conformance suites on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.testing import IdempotencyStoreConformance, RepositoryConformance
from paycore_django.storage import DjangoIdempotencyStore, DjangoPaymentRepository


class TestDjangoRepository(RepositoryConformance):
    @pytest.fixture
    async def repository(self, using: str) -> AsyncIterator[DjangoPaymentRepository]:
        repository = DjangoPaymentRepository(using)
        yield repository
        await repository.aclose()

    @pytest.fixture
    async def keys_store(self, using: str) -> AsyncIterator[DjangoIdempotencyStore]:
        """The store on the repository's alias, whose keys the repository completes and claims."""
        store = DjangoIdempotencyStore(using)
        yield store
        await store.aclose()


class TestDjangoIdempotencyStore(IdempotencyStoreConformance):
    says_how_long_results_are_kept = True

    @pytest.fixture
    async def idempotency_store(self, using: str) -> AsyncIterator[DjangoIdempotencyStore]:
        store = DjangoIdempotencyStore(using)
        yield store
        await store.aclose()
