"""The ``redis`` plugin: found by entry point, builds the store from its configuration."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest
from attrs import frozen

from paycore.config import load_config
from paycore.errors import ConfigurationError
from paycore.plugins import collect_registry, create_plugin_manager
from paycore.secrets import Settings
from paycore_redis import RedisIdempotencyStore


@frozen
class Context:
    """What the flow hands an idempotency store factory."""

    settings: Settings
    plugin_manager: Any = None


def _factory() -> Any:
    return collect_registry(create_plugin_manager()).idempotency_stores["redis"]


def test_the_installed_plugin_registers_store_type_redis() -> None:
    manager: pluggy.PluginManager = create_plugin_manager()
    registry = collect_registry(manager)
    assert registry.origins["idempotency store", "redis"] == "redis"


def test_the_factory_builds_a_store_from_the_configured_settings() -> None:
    config = load_config(
        {
            "idempotency": ["redis", "memory"],
            "idempotency_settings": {"redis": {"url": "redis://cache:6380/2", "prefix": "pos:"}},
        },
        environ={},
    )
    store = _factory()(Context(config.idempotency[0].settings))
    assert isinstance(store, RedisIdempotencyStore)
    assert (store.settings.url, store.settings.prefix) == ("redis://cache:6380/2", "pos:")


def test_a_redis_url_in_the_idempotency_list_selects_the_redis_store() -> None:
    config = load_config({"idempotency": ["redis://cache:6379/0", "memory"]}, environ={})
    store = _factory()(Context(config.idempotency[0].settings))
    assert store.settings.url == "redis://cache:6379/0"


def test_a_misspelt_setting_fails_when_the_store_is_built() -> None:
    with pytest.raises(ConfigurationError, match="unknown setting"):
        _factory()(Context(Settings({"url": "redis://cache/0", "prefx": "pos:"})))
