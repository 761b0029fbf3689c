"""A configuration refused while a flow is built leaves nothing open: what was built before is disposed of.

The repository and the idempotency stores are built before the providers; a
store or a provider refused afterwards means no flow will ever use or close
them. Each part that holds something (a database engine's share, a pool)
offers ``dispose()`` (:mod:`paycore.disposal`), and the build calls it before
its ``ConfigurationError`` reaches the caller.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

import paycore.testing.fake
import paycore_memory.plugin
from paycore import hookimpl
from paycore.blocking import BlockingPaymentFlow
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.hookspecs import IdempotencyStoreRegistrar, ProviderRegistrar, RepositoryRegistrar
from paycore.providers import ProviderContext
from paycore.testing.fake import FakeProvider
from paycore_memory import MemoryIdempotencyStore, MemoryRepository

from .conftest import SECRET

pytestmark = pytest.mark.anyio

FAKE = {"type": "fake", "webhook_secret": SECRET}
NOT_INSTALLED = {"type": "nowhere"}
"""A provider no plugin provides: refused after the repository and the stores were built."""


class Holding:
    """Registers a repository, an idempotency store and a provider type ``holding`` that note their lifecycle."""

    def __init__(self) -> None:
        self.built: list[str] = []
        self.disposed: list[str] = []
        self.closed: list[str] = []
        self.failing_dispose: set[str] = set()

    def _note(self, what: str) -> None:
        self.disposed.append(what)
        if what in self.failing_dispose:
            raise RuntimeError(f"{what} could not be disposed of")

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        holding = self

        class HoldingRepository(MemoryRepository):
            def dispose(self) -> None:
                holding._note("repository")

            async def aclose(self) -> None:
                holding.closed.append("repository")

        def build(context: Any) -> HoldingRepository:
            self.built.append("repository")
            return HoldingRepository()

        register("holding", build)

    @hookimpl
    def paycore_register_idempotency_stores(self, register: IdempotencyStoreRegistrar) -> None:
        holding = self

        class HoldingStore(MemoryIdempotencyStore):
            def dispose(self) -> None:
                holding._note("idempotency store")

            async def aclose(self) -> None:
                holding.closed.append("idempotency store")

        def build(context: Any) -> HoldingStore:
            self.built.append("idempotency store")
            return HoldingStore()

        def refuse(context: Any) -> Any:
            raise ConfigurationError("idempotency store 'refusing': no such server")

        register("holding", build)
        register("refusing", refuse)

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        holding = self

        class HoldingProvider(FakeProvider):
            name = "holding"

            def __init__(self, context: ProviderContext) -> None:
                super().__init__(context)
                holding.built.append(f"provider {context.code}")

            def dispose(self) -> None:
                holding._note(f"provider {self.code}")

        register(HoldingProvider)


def _build(holding: Holding, config: dict[str, Any]) -> PaymentFlow:
    return PaymentFlow.from_config(
        config, plugins=[paycore.testing.fake, paycore_memory.plugin, holding], entry_points=False, environ={}
    )


def test_a_refused_provider_disposes_of_the_repository_and_the_store_built_for_the_flow() -> None:
    holding = Holding()
    config = {"repository": "holding", "idempotency": "holding", "providers": {"till": NOT_INSTALLED}}
    with pytest.raises(ConfigurationError, match="provider 'till' of tenant None has type 'nowhere'"):
        _build(holding, config)
    assert holding.built == ["repository", "idempotency store"]
    assert holding.disposed == ["idempotency store", "repository"]


def test_a_refused_store_disposes_of_the_repository_and_the_stores_built_before_it() -> None:
    holding = Holding()
    with pytest.raises(ConfigurationError, match="no such server"):
        _build(holding, {"repository": "holding", "idempotency": ["holding", "refusing"]})
    assert holding.disposed == ["idempotency store", "repository"]


def test_a_refused_provider_disposes_of_every_tier_of_a_tiered_store() -> None:
    holding = Holding()
    config = {"repository": "holding", "idempotency": ["holding", "memory"], "providers": {"till": NOT_INSTALLED}}
    with pytest.raises(ConfigurationError, match="'nowhere'"):
        _build(holding, config)
    assert holding.disposed == ["idempotency store", "repository"]


def test_the_providers_built_before_a_refused_one_are_disposed_of() -> None:
    holding = Holding()
    providers = {"first": {"type": "holding", "webhook_secret": SECRET}, "second": NOT_INSTALLED}
    with pytest.raises(ConfigurationError, match="provider 'second'"):
        _build(holding, {"repository": "holding", "idempotency": "holding", "providers": providers})
    assert holding.disposed == ["provider first", "idempotency store", "repository"]


class Exiting:
    """A provider type and an idempotency store type whose construction calls ``sys.exit()`` (a vendor SDK that exits
    on a bad licence), and a provider type whose construction is interrupted (Ctrl-C)."""

    @hookimpl
    def paycore_register_providers(self, register: ProviderRegistrar) -> None:
        class ExitingProvider(FakeProvider):
            name = "exiting"

            def __init__(self, context: ProviderContext) -> None:
                super().__init__(context)
                sys.exit("no licence key")

        class InterruptedProvider(FakeProvider):
            name = "interrupted"

            def __init__(self, context: ProviderContext) -> None:
                raise KeyboardInterrupt

        register(ExitingProvider)
        register(InterruptedProvider)

    @hookimpl
    def paycore_register_idempotency_stores(self, register: IdempotencyStoreRegistrar) -> None:
        register("exiting", lambda context: sys.exit(6))


def _build_exiting(holding: Holding, config: dict[str, Any]) -> PaymentFlow:
    return PaymentFlow.from_config(
        config,
        plugins=[paycore.testing.fake, paycore_memory.plugin, holding, Exiting()],
        entry_points=False,
        environ={},
    )


def test_a_provider_calling_sys_exit_while_built_is_refused_naming_it_and_its_plugin_and_leaves_nothing() -> None:
    """A SystemExit escaped from_config raw (``paycore check`` ended with status 4, saying nothing), though at a
    plugin's import or in a registration hook it is a PluginLoadError naming the plugin."""
    holding = Holding()
    providers = {"first": {"type": "holding", "webhook_secret": SECRET}, "second": {**FAKE, "type": "exiting"}}
    with pytest.raises(ConfigurationError) as refused:
        _build_exiting(holding, {"repository": "holding", "idempotency": "holding", "providers": providers})
    assert str(refused.value).startswith("provider 'second' (exiting) of tenant None could not be built by plugin '")
    assert "Exiting'" in str(refused.value)
    assert str(refused.value).endswith("SystemExit: the plugin called sys.exit('no licence key')")
    assert holding.disposed == ["provider first", "idempotency store", "repository"]


def test_an_idempotency_store_calling_sys_exit_while_built_is_refused_naming_it_and_leaves_nothing() -> None:
    holding = Holding()
    with pytest.raises(ConfigurationError) as refused:
        _build_exiting(holding, {"repository": "holding", "idempotency": ["holding", "exiting"]})
    assert str(refused.value).startswith("idempotency store 'exiting' could not be built by plugin '")
    assert str(refused.value).endswith("SystemExit: the plugin called sys.exit(6)")
    assert holding.disposed == ["idempotency store", "repository"]


def test_a_ctrl_c_while_a_provider_is_built_is_no_configuration_error_but_leaves_nothing() -> None:
    holding = Holding()
    config = {"repository": "holding", "idempotency": "holding", "providers": {"till": {**FAKE, "type": "interrupted"}}}
    with pytest.raises(KeyboardInterrupt):
        _build_exiting(holding, config)
    assert holding.disposed == ["idempotency store", "repository"]


def test_a_part_that_fails_to_be_disposed_of_hides_neither_the_error_nor_the_other_parts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holding = Holding()
    holding.failing_dispose.add("idempotency store")
    config = {"repository": "holding", "idempotency": "holding", "providers": {"till": NOT_INSTALLED}}
    with pytest.raises(ConfigurationError, match="'nowhere'"):
        _build(holding, config)
    assert holding.disposed == ["idempotency store", "repository"]
    assert "could not be disposed of: RuntimeError" in caplog.text


async def test_after_a_refused_build_every_part_built_is_given_back_once() -> None:
    """The audit's case: a refused flow, then a good one on the same database; closing the good one used to leave
    the refused one's engine shares taken, so the database stayed open for ever."""
    holding = Holding()
    refused = {"repository": "holding", "idempotency": "holding", "providers": {"till": NOT_INSTALLED}}
    with pytest.raises(ConfigurationError, match="'nowhere'"):
        _build(holding, refused)
    async with _build(holding, {**refused, "providers": {"fake": FAKE}}) as flow:
        assert await flow.list_payments() == []
    assert holding.built == ["repository", "idempotency store"] * 2
    assert holding.disposed == ["idempotency store", "repository"], "the refused flow's parts"
    assert holding.closed == ["idempotency store", "repository"], "the good flow's, closed with it, never disposed"


def test_a_refused_backend_of_the_blocking_flow_builds_nothing() -> None:
    holding = Holding()
    with pytest.raises(ConfigurationError, match="backend must be 'asyncio' or 'trio', not 'curio'"):
        BlockingPaymentFlow.from_config(
            {"repository": "holding", "idempotency": "holding"},
            plugins=[paycore_memory.plugin, holding],
            entry_points=False,
            environ={},
            backend="curio",
        )
    assert holding.built == []
