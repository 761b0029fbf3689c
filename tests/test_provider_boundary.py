"""The provider-boundary rules and the lifetime of idempotency keys on the memory adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

import paycore
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


@pytest.mark.anyio
async def test_storage_found_by_entry_points_serves_the_suites_flow() -> None:
    # A third party's suite gives no storage plugins when entry points find them; the flow looked at none.
    from paycore.testing.late_answers import ledger_flow
    from paycore_memory import MemoryRepository

    async with ledger_flow({"repository": "memory"}, (), provider_timeout=1, lease=2) as flow:
        assert isinstance(flow.repository, MemoryRepository)


class _Uncounted:
    """A repository that offers only what every repository must: it cannot list the payments that carry a call."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name == "list_with_calls":
            raise AttributeError(name)
        return getattr(self._inner, name)


class _UncountedPlugin:
    @paycore.hookimpl
    def paycore_register_repositories(self, register: Any) -> None:
        from paycore_memory import MemoryRepository

        register("uncounted", lambda settings: _Uncounted(MemoryRepository()))


@pytest.mark.anyio
async def test_the_reapers_lost_answer_scenario_is_skipped_for_a_repository_that_cannot_list_calls() -> None:
    # Optional (docs/storage.md): it failed a correct repository with a bare KeyError.
    from paycore.testing.late_answers import LateAnswerScenarios

    scenarios = LateAnswerScenarios()
    storage = {"repository": "uncounted", "idempotency": "memory"}
    with pytest.raises(pytest.skip.Exception, match="cannot list the payments that carry a call"):
        await scenarios.test_the_reaper_settles_answers_lost_on_payments_no_longer_open_once_their_lease_ran_out(
            storage, (_UncountedPlugin(), paycore_memory.plugin)
        )
