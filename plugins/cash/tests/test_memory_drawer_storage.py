"""The in-memory drawer storage keeps the drawer storage contract."""

from __future__ import annotations

import pytest

from paycore_cash.backends.memory import MemoryDrawerStorage
from paycore_cash.testing import DrawerStorageConformance


class TestMemoryDrawerStorage(DrawerStorageConformance):
    @pytest.fixture
    async def drawer_storage(self) -> MemoryDrawerStorage:
        return MemoryDrawerStorage()
