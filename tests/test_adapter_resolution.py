"""Adapters declare their URL schemes and the embedded default; the configuration is resolved against them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from paycore import hookimpl
from paycore.adapters import resolve_adapter, resolve_config
from paycore.config import AdapterConfig, PaycoreConfig, load_config
from paycore.errors import ConfigurationError, PluginLoadError
from paycore.plugins import IDEMPOTENCY_STORE, REPOSITORY, Registry, collect_registry, create_plugin_manager
from paycore.secrets import Settings


def _build(context: Any) -> Any:
    raise AssertionError("resolution never builds an adapter")


class ToyAdapter:
    """Registers repository and idempotency store type ``name`` with the given declarations."""

    def __init__(
        self,
        name: str,
        *,
        url_schemes: Iterable[str] = (),
        embedded_default: bool = False,
        store: bool = True,
    ) -> None:
        self.__name__ = f"toy_{name}"
        self.name, self.url_schemes, self.embedded_default, self.store = name, url_schemes, embedded_default, store

    @hookimpl
    def paycore_register_repositories(self, register: Any) -> None:
        register(self.name, _build, url_schemes=self.url_schemes, embedded_default=self.embedded_default)

    @hookimpl
    def paycore_register_idempotency_stores(self, register: Any) -> None:
        if self.store:
            register(self.name, _build, url_schemes=self.url_schemes, embedded_default=self.embedded_default)


def _registry(*adapters: object) -> Registry:
    return collect_registry(create_plugin_manager(list(adapters), entry_points=False))


def _resolve(source: dict[str, Any], *adapters: object) -> PaycoreConfig:
    return resolve_config(_registry(*adapters), load_config(source, environ={}))


EMBEDDED = ToyAdapter("embedded", embedded_default=True)
SQL = ToyAdapter("sql", url_schemes=("sqlite", "postgresql"))
CACHE = ToyAdapter("cache", url_schemes=("cache",), store=False)
CLUSTER = ToyAdapter("cluster", url_schemes=("cache+cluster",), store=False)


# -- load_config keeps what the user wrote ------------------------------------------------


def test_load_config_keeps_a_url_unresolved_until_the_plugins_are_known() -> None:
    config = load_config({"repository": "sqlite:///pos.db", "idempotency": ["cache://h/0"]}, environ={})
    assert config.repository == AdapterConfig(None, Settings({"url": "sqlite:///pos.db"}))
    assert config.idempotency == (AdapterConfig(None, Settings({"url": "cache://h/0"})),)


def test_load_config_leaves_an_absent_repository_to_the_embedded_default() -> None:
    config = load_config({}, environ={})
    assert config.repository == AdapterConfig()
    assert config.idempotency == ()


def test_a_string_that_is_not_a_url_nor_a_name_is_refused_when_loaded() -> None:
    with pytest.raises(ConfigurationError, match="is not a URL with a scheme"):
        load_config({"repository": "2sql://x"}, environ={})


# -- URL schemes --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["sqlite:///pos.db", "postgresql://u@127.0.0.1/pos", "PostgreSQL+psycopg://u@h/pos"])
def test_a_url_selects_the_adapter_that_declared_its_scheme(url: str) -> None:
    config = _resolve({"repository": url}, EMBEDDED, SQL)
    assert config.repository.type == "sql"
    assert config.repository.settings["url"] == url


def test_a_scheme_with_a_plus_is_matched_whole_before_its_first_part() -> None:
    registry = _registry(CACHE, CLUSTER)
    assert resolve_adapter(registry, AdapterConfig(None, Settings({"url": "cache+cluster://h"})), REPOSITORY).type == (
        "cluster"
    )
    assert resolve_adapter(registry, AdapterConfig(None, Settings({"url": "cache+tls://h"})), REPOSITORY).type == (
        "cache"
    )


def test_a_scheme_nobody_serves_names_the_scheme_and_what_each_adapter_serves() -> None:
    with pytest.raises(ConfigurationError) as raised:
        _resolve({"repository": "mongodb://u:hunter2@h/pos"}, EMBEDDED, SQL)
    message = str(raised.value)
    assert "repository: no adapter handles URL scheme 'mongodb' in 'mongodb://u:***@h/pos'" in message
    assert "embedded (no URL schemes; embedded default); sql (sqlite, postgresql)" in message
    assert "hunter2" not in message


def test_a_scheme_two_adapters_serve_is_refused_naming_both() -> None:
    other_sql = ToyAdapter("other_sql", url_schemes=("sqlite",))
    with pytest.raises(ConfigurationError) as raised:
        _resolve({"repository": "sqlite:///pos.db"}, SQL, other_sql)
    message = str(raised.value)
    assert "URL scheme 'sqlite'" in message
    assert "'other_sql' (plugin 'toy_other_sql')" in message
    assert "'sql' (plugin 'toy_sql')" in message
    assert "type = " in message


def test_a_table_with_a_type_chooses_between_adapters_serving_one_scheme() -> None:
    other_sql = ToyAdapter("other_sql", url_schemes=("sqlite",))
    config = _resolve({"repository": {"type": "other_sql", "url": "sqlite:///pos.db"}}, SQL, other_sql)
    assert config.repository.type == "other_sql"


def test_a_named_type_nobody_installed_is_refused_naming_the_installed_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"no repository type 'cassandra' is installed \(installed: embedded"):
        _resolve({"repository": "cassandra"}, EMBEDDED)


# -- the embedded default -----------------------------------------------------------------


def test_no_repository_configured_is_the_embedded_default_for_both() -> None:
    config = _resolve({}, SQL, EMBEDDED)
    assert config.repository.type == "embedded"
    assert [store.type for store in config.idempotency] == ["embedded"]


def test_without_an_embedded_default_installed_the_error_names_the_package_to_install() -> None:
    with pytest.raises(ConfigurationError) as raised:
        _resolve({}, SQL)
    message = str(raised.value)
    assert "no repository is configured and no installed adapter offers an embedded default repository" in message
    assert "install paycore-memory" in message
    assert "sql (sqlite, postgresql)" in message


def test_two_embedded_defaults_are_refused_naming_both() -> None:
    with pytest.raises(ConfigurationError, match="several installed adapters offer to be the embedded default") as e:
        _resolve({}, EMBEDDED, ToyAdapter("other", embedded_default=True))
    assert "'embedded' (plugin 'toy_embedded')" in str(e.value)
    assert "'other' (plugin 'toy_other')" in str(e.value)


# -- idempotency stores -------------------------------------------------------------------


def test_the_store_defaults_to_the_repository_adapter_sharing_its_settings() -> None:
    config = _resolve({"repository": "sqlite:///pos.db"}, EMBEDDED, SQL)
    (store,) = config.idempotency
    assert store.type == "sql"
    assert store.settings["url"] == "sqlite:///pos.db"


def test_a_named_store_of_the_repository_type_shares_a_url_repository_settings() -> None:
    config = _resolve({"repository": "sqlite:///pos.db", "idempotency": ["sql"]}, EMBEDDED, SQL)
    assert config.idempotency[0].settings["url"] == "sqlite:///pos.db"


def test_a_repository_type_without_a_store_needs_the_store_configured() -> None:
    repository_only = ToyAdapter("files", url_schemes=("file",), store=False)
    with pytest.raises(ConfigurationError, match="repository type 'files' registers no idempotency store"):
        _resolve({"repository": "file:///var/pos"}, EMBEDDED, repository_only)
    config = _resolve({"repository": "file:///var/pos", "idempotency": "embedded"}, EMBEDDED, repository_only)
    assert [store.type for store in config.idempotency] == ["embedded"]


def test_idempotency_settings_reach_a_store_given_by_url() -> None:
    cache = ToyAdapter("cache", url_schemes=("cache",))
    config = _resolve(
        {"idempotency": ["cache://h/0", "embedded"], "idempotency_settings": {"cache": {"prefix": "pos:"}}},
        EMBEDDED,
        cache,
    )
    assert [store.type for store in config.idempotency] == ["cache", "embedded"]
    assert dict(config.idempotency[0].settings) == {"prefix": "pos:", "url": "cache://h/0"}


def test_idempotency_settings_of_a_store_type_not_installed_are_refused_not_ignored() -> None:
    """A misspelled ``[idempotency_settings.Cache]`` would leave the cache store on its defaults, silently."""
    cache = ToyAdapter("cache", url_schemes=("cache",))
    with pytest.raises(
        ConfigurationError,
        match=r"\[idempotency_settings\.'Cache'\]: no idempotency store of that type is installed "
        r"\(installed: cache, embedded\)",
    ):
        _resolve({"idempotency": "cache", "idempotency_settings": {"Cache": {"prefix": "pos:"}}}, EMBEDDED, cache)


def test_idempotency_settings_of_an_installed_store_not_in_use_are_accepted() -> None:
    cache = ToyAdapter("cache", url_schemes=("cache",))
    config = _resolve({"idempotency": "embedded", "idempotency_settings": {"cache": {"prefix": "p:"}}}, EMBEDDED, cache)
    assert [store.type for store in config.idempotency] == ["embedded"]


def test_a_store_listed_by_url_and_by_name_is_listed_twice() -> None:
    cache = ToyAdapter("cache", url_schemes=("cache",))
    with pytest.raises(ConfigurationError, match=r"idempotency lists a store twice: \['cache', 'cache'\]"):
        _resolve({"idempotency": ["cache://h/0", "cache"]}, EMBEDDED, cache)


def test_resolving_a_resolved_configuration_changes_nothing() -> None:
    registry = _registry(EMBEDDED, SQL)
    once = resolve_config(registry, load_config({"repository": "sqlite:///pos.db"}, environ={}))
    assert resolve_config(registry, once) == once


# -- declarations at registration ---------------------------------------------------------


def test_a_registration_records_the_declared_schemes_and_default() -> None:
    registry = _registry(EMBEDDED, SQL)
    sql = registry.repository_types["sql"]
    assert (sql.kind, sql.plugin, sql.url_schemes, sql.embedded_default) == (
        REPOSITORY,
        "toy_sql",
        ("sqlite", "postgresql"),
        False,
    )
    assert registry.idempotency_store_types["embedded"].embedded_default
    assert registry.adapter_types(IDEMPOTENCY_STORE) is registry.idempotency_store_types


@pytest.mark.parametrize(
    ("schemes", "message"),
    [
        ("sqlite", r"with url_schemes='sqlite'; give a list of schemes, e.g. \['sqlite'\]"),
        (("SQLite",), "with URL scheme 'SQLite'; a scheme is lowercase letters"),
        (("sqlite://",), "with URL scheme 'sqlite://'"),
        ((3,), "with URL scheme 3"),
    ],
)
def test_a_malformed_scheme_declaration_names_the_plugin(schemes: Any, message: str) -> None:
    with pytest.raises(PluginLoadError, match=rf"plugin 'toy_bad' registered repository 'bad' {message}"):
        _registry(ToyAdapter("bad", url_schemes=schemes))


def test_a_registration_without_declarations_still_works() -> None:
    class OldStyle:
        @hookimpl
        def paycore_register_repositories(self, register: Any) -> None:
            register("old", _build)

    registration = _registry(OldStyle()).repository_types["old"]
    assert (registration.url_schemes, registration.embedded_default) == ((), False)


def test_the_installed_adapters_declare_their_schemes_and_the_memory_default() -> None:
    registry = collect_registry(create_plugin_manager())
    assert registry.repository_types["memory"].embedded_default
    assert registry.idempotency_store_types["memory"].embedded_default
    assert set(registry.repository_types["sqlalchemy"].url_schemes) == {"sqlite", "postgresql", "postgres", "mysql"}
    assert not registry.repository_types["sqlalchemy"].embedded_default
    assert set(registry.idempotency_store_types["redis"].url_schemes) == {"redis", "rediss", "unix", "redis+sentinel"}
    config = resolve_config(registry, load_config({"idempotency": ["redis+sentinel://h/pos", "memory"]}, environ={}))
    assert [store.type for store in config.idempotency] == ["redis", "memory"]


@pytest.mark.parametrize(
    ("store", "match"),
    [
        ({"type": "memory", "bogus": 1}, r"repository 'memory': no setting 'bogus'; it has none"),
        (
            {"type": "sqlalchemy", "url": "sqlite:///:memory:", "pool_szie": 2},
            r"repository 'sqlalchemy': no setting 'pool_szie'; it reads auto_upgrade, max_overflow",
        ),
        (
            {"type": "sqlalchemy", "url": "sqlite:///:memory:", "pool_timeout": "nan"},
            r"pool_timeout must be a positive",
        ),
    ],
    ids=["memory", "sqlalchemy", "sqlalchemy-nan"],
)
def test_a_setting_an_adapter_does_not_read_or_cannot_use_is_refused_naming_it(
    store: dict[str, Any], match: str
) -> None:
    import paycore_memory.plugin
    import paycore_sqlalchemy.plugin
    from paycore.flow import PaymentFlow

    with pytest.raises(ConfigurationError, match=match):
        PaymentFlow.from_config(
            {"repository": store},
            plugins=[paycore_memory.plugin, paycore_sqlalchemy.plugin],
            entry_points=False,
            environ={},
        )
