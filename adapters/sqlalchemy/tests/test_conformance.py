"""The SQL repository and idempotency store pass paycore's conformance suites on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from paycore.testing import IdempotencyStoreConformance, RepositoryConformance
from paycore_sqlalchemy import SqlIdempotencyStore, SqlPaymentRepository


class TestSqlRepository(RepositoryConformance):
    @pytest.fixture
    async def repository(self, database_url: str) -> AsyncIterator[SqlPaymentRepository]:
        repository = SqlPaymentRepository(database_url)
        yield repository
        await repository.aclose()

    @pytest.fixture
    async def keys_store(self, repository: SqlPaymentRepository) -> AsyncIterator[SqlIdempotencyStore]:
        """The store on the repository's database, whose keys the repository completes and claims."""
        store = SqlIdempotencyStore(repository.database)
        yield store
        await store.aclose()


class TestSqlIdempotencyStore(IdempotencyStoreConformance):
    says_how_long_results_are_kept = True

    @pytest.fixture
    async def idempotency_store(self, database_url: str) -> AsyncIterator[SqlIdempotencyStore]:
        store = SqlIdempotencyStore(database_url)
        yield store
        await store.aclose()
