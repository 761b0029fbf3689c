"""The cash plugin as installed: its provider, its hooks, and a clear error without drawer storage."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from paycore.config import PaycoreConfig
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.hookspecs import RepositoryRegistrar, hookimpl
from paycore.plugins import collect_registry, create_plugin_manager
from paycore_cash.drawers import CashDrawers
from paycore_cash.provider import CashProvider
from paycore_memory.repository import MemoryRepository

pytestmark = pytest.mark.anyio


def test_the_cash_provider_is_registered_through_the_entry_point() -> None:
    registry = collect_registry(create_plugin_manager())
    assert registry.providers["cash"] is CashProvider
    assert "drawer" in registry.commands


def test_cash_refunds_and_polls_but_neither_authorizes_nor_sends_webhooks() -> None:
    capabilities = CashProvider.capabilities
    assert (capabilities.refund, capabilities.partial_refund, capabilities.polling) == (True, True, True)
    assert (capabilities.authorize_capture, capabilities.webhooks, capabilities.cancel) == (False, False, False)
    assert CashProvider.currencies is None


def test_the_plugin_adds_the_drawer_backend_hook_and_no_adapter_answers_it() -> None:
    manager = create_plugin_manager()
    assert manager.hook.paycore_cash_drawer_backends.get_hookimpls() == []


def test_the_plugin_registers_its_drawer_tables_with_the_sql_adapter() -> None:
    from paycore_cash.backends.sql_schema import CASH_SCHEMA
    from paycore_sqlalchemy.schemas import registered_schemas

    schemas = registered_schemas(create_plugin_manager())
    assert CASH_SCHEMA in schemas
    assert CASH_SCHEMA.tables == {
        "paycore_cash_drawer_sessions",
        "paycore_cash_movements",
        "paycore_cash_refund_claims",
    }


class _ForeignRepository:
    """A repository no installed adapter keeps drawers beside."""

    def __init__(self) -> None:
        self._inner = MemoryRepository()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _ForeignPlugin:
    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        register("foreign", lambda context: _ForeignRepository())


async def test_drawers_without_a_storage_adapter_fail_with_a_clear_error() -> None:
    config = {"repository": "foreign", "idempotency": "memory"}
    async with PaymentFlow.from_config(config, plugins=[_ForeignPlugin()]) as flow:
        # A flow enabling cash on such a repository is refused when built (below): a flow-like of another make.
        with_cash = SimpleNamespace(
            repository=flow.repository,
            idempotency_store=flow.idempotency_store,
            plugin_manager=flow.plugin_manager,
            config=PaycoreConfig.from_mapping({**config, "providers": {"cash": {"type": "cash"}}}),
            now=flow.now,
        )
        with pytest.raises(ConfigurationError, match="_ForeignRepository"):
            CashDrawers(with_cash)


def test_a_flow_with_cash_but_no_drawer_storage_fails_when_built() -> None:
    config = {"repository": "foreign", "idempotency": "memory", "providers": {"cash": {"type": "cash"}}}
    with pytest.raises(ConfigurationError, match="cash-drawer sessions"):
        PaymentFlow.from_config(config, plugins=[_ForeignPlugin()])


async def test_one_flow_shares_its_drawers_between_provider_and_service(flow: PaymentFlow) -> None:
    provider = flow.provider("cash", tenant="chez-awa")
    assert isinstance(provider, CashProvider)
    assert provider.storage is CashDrawers(flow, tenant="chez-awa").storage


@pytest.mark.parametrize("currency", ["XYZ", "xof", ["XOF"], 5])
def test_a_drawer_currency_setting_that_is_not_a_currency_code_is_refused_when_the_flow_is_built(
    currency: Any,
) -> None:
    config = {
        "repository": "memory",
        "tenants": {"chez-awa": {"providers": {"till": {"type": "cash", "currency": currency}}}},
    }
    with pytest.raises(ConfigurationError, match=r"provider 'till' of tenant 'chez-awa': .*'currency'") as refused:
        PaymentFlow.from_config(config)
    assert repr(currency) in str(refused.value)


def test_a_url_under_the_currency_setting_is_quoted_without_its_password() -> None:
    with pytest.raises(ConfigurationError, match=r"redis://:\*\*\*@h/0") as refused:
        PaymentFlow.from_config({"providers": {"cash": {"type": "cash", "currency": "redis://:Zx9Pw@h/0"}}}, environ={})
    assert "Zx9Pw" not in str(refused.value)
