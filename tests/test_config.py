"""Configuration: mapping, TOML and ``PAYCORE_*`` environment; refusals; masked secrets."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import paycore.testing.fake
import paycore_memory.plugin
from paycore import Money, hookimpl
from paycore.adapters import resolve_config
from paycore.config import (
    DEFAULT_IDEMPOTENCY_LEASE,
    DEFAULT_IDEMPOTENCY_TTL,
    DEFAULT_PAYMENT_TTL,
    DEFAULT_PROVIDER_TIMEOUT,
    DEFAULT_WEBHOOK_MAX_BYTES,
    PaycoreConfig,
    load_config,
)
from paycore.errors import ConfigurationError, ProviderNotEnabled
from paycore.flow import PaymentFlow
from paycore.plugins import collect_registry, create_plugin_manager
from paycore.secrets import Secret, Settings

SECRET = "whsec-config-0123456789"

TOML = f"""
repository = "memory"
provider_timeout = 10
idempotency_lease = 60

[providers.fake]
type = "fake"
webhook_secret = "{SECRET}"

[tenants.chez-awa.providers.wave]
type = "fake"
webhook_secret = "{SECRET}"
"""


def _resolved(source: Any, environ: dict[str, str] | None = None) -> PaycoreConfig:
    """``source`` loaded, then resolved against the installed adapters."""
    return resolve_config(collect_registry(create_plugin_manager()), load_config(source, environ=environ or {}))


def _flow(config: Any, environ: dict[str, str] | None = None) -> PaymentFlow:
    return PaymentFlow.from_config(
        config,
        plugins=[paycore.testing.fake, paycore_memory.plugin],
        entry_points=False,
        environ=environ or {},
    )


# -- sources ------------------------------------------------------------------------------


def test_none_is_everything_in_memory_with_no_provider() -> None:
    config = _resolved(None)
    assert config.repository.type == "memory"
    assert [store.type for store in config.idempotency] == ["memory"]
    assert dict(config.providers) == {}


def test_a_mapping_is_read() -> None:
    config = load_config(
        {"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}, "provider_timeout": 5},
        environ={},
    )
    assert config.providers["fake"].type == "fake"
    assert config.provider_timeout == 5.0


def test_a_provider_table_without_type_takes_its_code_as_type() -> None:
    config = load_config({"providers": {"cash": {}}}, environ={})
    assert config.providers["cash"].type == "cash"


def test_a_toml_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "paycore.toml"
    path.write_text(TOML)
    config = load_config(str(path), environ={})
    assert config.provider_timeout == 10.0
    assert config.idempotency_lease == 60.0
    assert config.providers["fake"].settings.secret("webhook_secret") == SECRET
    assert config.provider_configs("chez-awa")["wave"].type == "fake"


def test_paycore_config_names_the_toml_file_when_no_source_is_given(tmp_path: Path) -> None:
    path = tmp_path / "paycore.toml"
    path.write_text(TOML)
    config = load_config(None, environ={"PAYCORE_CONFIG": str(path)})
    assert set(config.providers) == {"fake"}


def test_a_missing_toml_file_is_refused_by_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_config(str(missing), environ={})


def test_invalid_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("repository = [unclosed")
    with pytest.raises(ConfigurationError, match="is not valid TOML"):
        load_config(path, environ={})


def test_environment_variables_override_the_mapping() -> None:
    config = load_config(
        {"provider_timeout": 10, "idempotency_lease": 60},
        environ={"PAYCORE_PROVIDER_TIMEOUT": "20", "OTHER_PROVIDER_TIMEOUT": "1"},
    )
    assert config.provider_timeout == 20.0
    assert config.idempotency_lease == 60.0


def test_double_underscores_nest_environment_variables() -> None:
    config = load_config(
        None,
        environ={"PAYCORE_PROVIDERS__CASH__TYPE": "cash", "PAYCORE_TENANTS__CHEZ_AWA__PROVIDERS__WAVE__TYPE": "dummy"},
    )
    assert config.providers["cash"].type == "cash"
    assert config.provider_configs("chez_awa")["wave"].type == "dummy"


def test_an_environment_variable_reaches_a_tenant_or_provider_named_in_another_case() -> None:
    tenants = {"ChezAwa": {"providers": {"Cash": {"type": "cash", "currency": "XOF"}}}}
    config = load_config({"tenants": tenants}, environ={"PAYCORE_TENANTS__CHEZAWA__PROVIDERS__CASH__CURRENCY": "EUR"})
    assert set(config.tenants) == {"ChezAwa"}, "no second tenant spelled otherwise"
    assert config.provider_configs("ChezAwa")["Cash"].settings["currency"] == "EUR"


def test_an_environment_variable_naming_keys_that_differ_only_in_case_is_refused() -> None:
    tenants = {"ChezAwa": {"providers": {}}, "CHEZAWA": {"providers": {}}}
    with pytest.raises(ConfigurationError, match=r"PAYCORE_TENANTS__CHEZAWA__PROVIDERS__CASH__TYPE .*ambiguous"):
        load_config({"tenants": tenants}, environ={"PAYCORE_TENANTS__CHEZAWA__PROVIDERS__CASH__TYPE": "cash"})


def test_environment_lists_idempotency_stores_separated_by_commas() -> None:
    config = load_config(None, environ={"PAYCORE_IDEMPOTENCY": "redis, sqlalchemy"})
    assert [store.type for store in config.idempotency] == ["redis", "sqlalchemy"]


def test_environment_sets_a_url_shorthand_repository() -> None:
    config = _resolved(None, environ={"PAYCORE_REPOSITORY": "sqlite:///x.db"})
    assert config.repository.type == "sqlalchemy"
    assert config.repository.settings["url"] == "sqlite:///x.db"


def test_the_environment_is_applied_by_from_config() -> None:
    flow = _flow(
        {"providers": {"fake": {"type": "fake", "webhook_secret": SECRET}}},
        environ={"PAYCORE_PROVIDER_TIMEOUT": "3"},
    )
    assert flow.config.provider_timeout == 3.0


# -- URL shorthands -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("sqlite:///paycore.db", "sqlalchemy"),
        ("postgresql+psycopg://u@127.0.0.1/db", "sqlalchemy"),
        ("mysql://u@127.0.0.1/db", "sqlalchemy"),
    ],
)
def test_a_database_url_selects_the_sqlalchemy_repository(url: str, kind: str) -> None:
    config = _resolved({"repository": url})
    assert config.repository.type == kind
    assert config.repository.settings["url"] == url


def test_the_idempotency_store_defaults_to_the_repository_adapter_with_its_settings() -> None:
    config = _resolved({"repository": "sqlite:///paycore.db"})
    (store,) = config.idempotency
    assert store.type == "sqlalchemy"
    assert store.settings["url"] == "sqlite:///paycore.db"


def test_a_redis_url_selects_the_redis_store_in_front_of_sql() -> None:
    config = _resolved(
        {"repository": "sqlite:///paycore.db", "idempotency": ["redis://127.0.0.1:6379/0", "sqlalchemy"]}
    )
    assert [s.type for s in config.idempotency] == ["redis", "sqlalchemy"]
    assert config.idempotency[0].settings["url"] == "redis://127.0.0.1:6379/0"


def test_idempotency_settings_reach_their_store() -> None:
    config = load_config(
        {"idempotency": ["redis"], "idempotency_settings": {"redis": {"url": "redis://127.0.0.1/1"}}},
        environ={},
    )
    assert config.idempotency[0].settings["url"] == "redis://127.0.0.1/1"


def test_a_url_scheme_no_adapter_handles_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no adapter handles URL scheme 'ftp'"):
        _resolved({"repository": "ftp://example.test/x"})


# -- tenants ------------------------------------------------------------------------------


def test_each_tenant_enables_its_own_providers() -> None:
    config = load_config(
        {
            "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
            "tenants": {"chez-awa": {"providers": {"wave": {"type": "fake", "webhook_secret": SECRET}}}},
        },
        environ={},
    )
    assert set(config.provider_configs(None)) == {"fake"}
    assert set(config.provider_configs("chez-awa")) == {"wave"}
    assert dict(config.provider_configs("nobody")) == {}


def test_a_provider_not_enabled_for_a_tenant_is_refused_naming_what_is() -> None:
    flow = _flow(
        {
            "providers": {"fake": {"type": "fake", "webhook_secret": SECRET}},
            "tenants": {"chez-awa": {"providers": {"wave": {"type": "fake", "webhook_secret": SECRET}}}},
        }
    )
    assert flow.provider("wave", tenant="chez-awa") is not flow.provider("fake")
    with pytest.raises(ProviderNotEnabled, match="provider 'fake' is not enabled for tenant 'chez-awa'; enabled: wave"):
        flow.provider("fake", tenant="chez-awa")
    with pytest.raises(ProviderNotEnabled, match="payments without a tenant"):
        flow.provider("wave")


@pytest.mark.anyio
async def test_creating_a_payment_with_a_provider_the_tenant_lacks_stores_nothing() -> None:
    async with _flow(
        {"tenants": {"chez-awa": {"providers": {"wave": {"type": "fake", "webhook_secret": SECRET}}}}}
    ) as flow:
        with pytest.raises(ProviderNotEnabled):
            await flow.create_payment(amount=Money.of("100", "XOF"), provider="fake", order_id="o", tenant="chez-awa")
        assert await flow.list_payments() == []


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"repositry": "memory"}, r"unknown configuration key\(s\) \['repositry'\]"),
        ({"provider_timeout": "soon"}, "provider_timeout must be a number of seconds, not 'soon'"),
        ({"provider_timeout": -1}, "provider_timeout must be a positive number"),
        ({"payment_ttl": float("nan")}, "payment_ttl must be a positive number"),
        ({"tenants": ["chez-awa"]}, "tenants must be a table"),
        ({"tenants": {"chez-awa": {"providers": {}, "colour": "red"}}}, "tenant 'chez-awa' must be a table"),
        ({"providers": ["fake"]}, "providers of the default tenant must be a table"),
        ({"providers": {"fake": "fake"}}, "provider 'fake' of the default tenant must be a table"),
        ({"providers": {"fake": {"type": 3}}}, "provider 'fake' of the default tenant has an invalid type 3"),
        ({"repository": 3}, "repository must be a name, a URL or a table, not a number"),
        ({"repository": ["sqlite:///pos.db"]}, "repository must be a name, a URL or a table, not a list"),
        ({"repository": {"url": 5}}, "repository: the url setting must be a string, not a number"),
        ({"repository": {"path": "x"}}, "repository: a table needs a 'type'"),
        ({"idempotency": []}, "idempotency must be a store name"),
        ({"idempotency": ["memory", "memory"]}, "idempotency lists a store twice"),
        ({"idempotency_settings": "redis"}, "idempotency_settings must be a table of tables"),
    ],
)
def test_a_malformed_configuration_is_refused_saying_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_config(config, environ={})


@pytest.mark.parametrize(("timeout", "lease"), [(30, 30), (30, 10), (30, 30.01), (30, 32.9)])
def test_a_lease_not_longer_than_the_provider_timeout_is_refused(timeout: int, lease: int) -> None:
    with pytest.raises(ConfigurationError, match=r"idempotency_lease .* must exceed provider_timeout"):
        load_config({"provider_timeout": timeout, "idempotency_lease": lease}, environ={})


@pytest.mark.parametrize("timeout", [*range(1, 121), 0.5, 2.5, 7.7, 12.25])
def test_a_lease_a_tenth_longer_than_the_provider_timeout_is_accepted(timeout: float) -> None:
    lease = float(Decimal(repr(float(timeout))) * Decimal("1.1"))  # as a person writes it: 3.3 for 3
    config = load_config({"provider_timeout": timeout, "idempotency_lease": lease}, environ={})
    assert (config.provider_timeout, config.idempotency_lease) == (timeout, lease)


def test_a_lease_just_short_of_a_tenth_longer_is_refused_saying_the_least_as_written() -> None:
    with pytest.raises(ConfigurationError, match=r"\(3\.299s\) must exceed provider_timeout \(3s\) .* \(>= 3\.3s\)"):
        load_config({"provider_timeout": 3, "idempotency_lease": 3.299}, environ={})


@pytest.mark.parametrize(("lease", "ttl"), [(120, 60), (600, 599.5)])
def test_a_result_ttl_shorter_than_the_lease_is_refused_naming_both(lease: float, ttl: float) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_config({"idempotency_lease": lease, "idempotency_ttl": ttl}, environ={})
    assert f"idempotency_ttl ({ttl:g}s) must be at least idempotency_lease ({lease:g}s)" in str(raised.value)


def test_a_result_ttl_equal_to_the_lease_is_accepted() -> None:
    config = load_config({"idempotency_lease": 300, "idempotency_ttl": 300}, environ={})
    assert config.idempotency_ttl == config.idempotency_lease == 300.0


def test_defaults_are_the_config_modules_named_constants() -> None:
    config = load_config(None, environ={})
    assert config.provider_timeout == DEFAULT_PROVIDER_TIMEOUT == 30.0
    assert config.idempotency_lease == DEFAULT_IDEMPOTENCY_LEASE == 120.0
    assert config.idempotency_ttl == DEFAULT_IDEMPOTENCY_TTL == 86_400.0
    assert config.payment_ttl == DEFAULT_PAYMENT_TTL == 3_600.0
    assert config.webhook_max_bytes == DEFAULT_WEBHOOK_MAX_BYTES == 1_048_576
    assert PaycoreConfig() == config


def test_webhook_max_bytes_is_read_from_the_mapping_and_the_environment() -> None:
    assert load_config({"webhook_max_bytes": 4096}, environ={}).webhook_max_bytes == 4096
    assert load_config(None, environ={"PAYCORE_WEBHOOK_MAX_BYTES": "65536"}).webhook_max_bytes == 65536


@pytest.mark.parametrize("raw", [0, -1, 1.5, "lots", True, "", None])
def test_webhook_max_bytes_must_be_a_positive_whole_number(raw: object) -> None:
    with pytest.raises(ConfigurationError, match=f"webhook_max_bytes must be a positive whole number, not {raw!r}"):
        load_config({"webhook_max_bytes": raw}, environ={})


def test_a_source_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="configuration must be a mapping, a TOML path or None, not int"):
        load_config(42, environ={})  # type: ignore[arg-type]


def test_a_provider_type_nobody_registered_is_refused_by_name() -> None:
    with pytest.raises(
        ConfigurationError, match=r"type 'stripe-ish', which no installed plugin provides \(installed: fake\)"
    ):
        _flow({"providers": {"card": {"type": "stripe-ish"}}})


def test_a_repository_type_nobody_registered_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="no repository type 'cassandra' is installed"):
        _flow({"repository": "cassandra"})


def test_a_ready_config_is_used_as_is() -> None:
    ready = PaycoreConfig()
    assert load_config(ready, environ={"PAYCORE_PROVIDER_TIMEOUT": "1"}) is ready


# -- secrets ------------------------------------------------------------------------------


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret(SECRET)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", format(secret, "")):
        assert SECRET not in shown
        assert "***" in shown
    assert secret.reveal() == SECRET


def test_secret_named_settings_are_masked_in_their_repr() -> None:
    settings = Settings(
        {"webhook_secret": SECRET, "api_key": SECRET, "password": SECRET, "url": "https://gw.test"},
        owner="provider 'x'",
    )
    assert SECRET not in repr(settings)
    assert "https://gw.test" in repr(settings)
    assert isinstance(settings["api_key"], Secret)
    assert settings.secret("password") == SECRET


def test_a_missing_required_setting_is_refused_naming_its_owner() -> None:
    with pytest.raises(ConfigurationError, match="provider 'x': missing required setting 'merchant'"):
        Settings({}, owner="provider 'x'").require("merchant")
    with pytest.raises(ConfigurationError, match="provider 'x': missing required secret 'api_key'"):
        Settings({}, owner="provider 'x'").secret("api_key")


def test_the_whole_configuration_repr_hides_provider_secrets(tmp_path: Path) -> None:
    path = tmp_path / "paycore.toml"
    path.write_text(TOML)
    config = load_config(path, environ={"PAYCORE_PROVIDERS__FAKE__API_TOKEN": SECRET})
    assert SECRET not in repr(config)
    assert config.providers["fake"].settings.secret("api_token") == SECRET


def test_a_flow_and_its_providers_hide_their_secrets(make_flow: Callable[..., PaymentFlow]) -> None:
    flow = make_flow()
    shown = [repr(flow), repr(flow.config), repr(flow.provider("fake")), repr(flow.provider("fake").settings)]
    assert all("whsec-test" not in text for text in shown)


def test_a_password_in_an_adapter_url_is_masked_in_reprs_but_reaches_the_adapter() -> None:
    config = load_config(
        {"repository": "postgresql://paycore:s3cret-db@127.0.0.1/paycore", "idempotency": ["redis://:s3cret-r@h/0"]},
        environ={},
    )
    assert "s3cret" not in repr(config)
    assert "postgresql://paycore:***@127.0.0.1/paycore" in repr(config)
    assert config.repository.settings["url"] == "postgresql://paycore:s3cret-db@127.0.0.1/paycore"


def test_a_password_in_a_refused_url_is_masked_in_the_error() -> None:
    with pytest.raises(ConfigurationError) as raised:
        _resolved({"repository": "ftp://paycore:s3cret@example.test/x"})
    assert "s3cret" not in str(raised.value)


def test_an_adapter_that_fails_to_build_never_shows_its_url_password() -> None:
    class Refusing:
        @hookimpl
        def paycore_register_repositories(self, register: Any) -> None:
            def build(context: Any) -> Any:
                raise OSError(f"cannot connect to {context.settings['url']}")

            register("refusing", build)

    with pytest.raises(ConfigurationError, match="repository 'refusing' could not be built") as raised:
        PaymentFlow.from_config(
            {"repository": {"type": "refusing", "url": "postgresql://u:s3cret@127.0.0.1/db"}, "idempotency": "memory"},
            plugins=[paycore_memory.plugin, Refusing()],
            entry_points=False,
            environ={},
        )
    assert "s3cret" not in str(raised.value)


def test_webhook_max_bytes_has_a_ceiling_since_a_body_is_read_whole() -> None:
    most = 64 * 1_048_576
    assert load_config({"webhook_max_bytes": most}, environ={}).webhook_max_bytes == most
    for raw in (most + 1, str(10**30)):
        with pytest.raises(ConfigurationError, match=f"webhook_max_bytes must be at most {most}"):
            load_config({"webhook_max_bytes": raw}, environ={})


# -- time zones ---------------------------------------------------------------------------


def test_a_tenants_time_zone_is_its_own_else_the_configurations_else_utc() -> None:
    config = load_config(
        {
            "timezone": "Africa/Abidjan",
            "tenants": {"bogota": {"timezone": "America/Bogota"}, "dakar": {}},
        },
        environ={"PAYCORE_TENANTS__DAKAR__TIMEZONE": "Africa/Dakar"},
    )
    assert [config.timezone_of(t) for t in ("bogota", "dakar", None, "unknown")] == [
        "America/Bogota",
        "Africa/Dakar",
        "Africa/Abidjan",
        "Africa/Abidjan",
    ]
    assert load_config({}, environ={}).timezone_of(None) == "UTC"


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        ({"timezone": "Mars/Olympus"}, "the configuration: unknown time zone 'Mars/Olympus'"),
        ({"timezone": 1}, "the configuration: timezone must be an IANA name such as Africa/Dakar, not 1"),
        ({"tenants": {"t": {"timezone": "Africa"}}}, "tenant 't': unknown time zone 'Africa'"),
        ({"tenants": {"t": {"timezone": ["UTC"]}}}, "tenant 't': timezone must be an IANA name"),
        ({"tenants": {"t": {"zone": "UTC"}}}, "tenant 't' must be a table with only a 'providers' table and a"),
    ],
)
def test_an_unknown_time_zone_is_refused_naming_where(data: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_config(data, environ={})
    assert refusal in str(refused.value)
