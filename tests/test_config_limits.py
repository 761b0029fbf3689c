"""The limits of the configuration: durations, plugins_blocked, webhook_url, TOML files, tenant and provider codes.

A value out of its limits is refused when the configuration is read, with a
:class:`ConfigurationError` naming the setting, never later, and never as a
bare ``OverflowError``, ``TypeError`` or store error.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import paycore.testing.fake
import paycore_memory.plugin
import paycore_sqlalchemy.plugin
from paycore import Money, hookimpl
from paycore.assembly import MAX_LABEL_LENGTH
from paycore.config import (
    MAX_CODE_LENGTH,
    MAX_IDEMPOTENCY_LEASE,
    MAX_IDEMPOTENCY_TTL,
    MAX_PAYMENT_TTL,
    MAX_PROVIDER_TIMEOUT,
    load_config,
)
from paycore.errors import ConfigurationError, PaymentNotFound, ProviderNotEnabled
from paycore.flow import PaymentFlow
from paycore.status import PaymentStatus
from paycore.testing.fake import FakeProvider

from .conftest import SECRET, XOF_5000, Clock

FAKE = {"type": "fake", "webhook_secret": SECRET}
ROOT = Path(__file__).resolve().parent.parent

MOST = {
    "provider_timeout": (MAX_PROVIDER_TIMEOUT, "a day"),
    "idempotency_lease": (MAX_IDEMPOTENCY_LEASE, "a week"),
    "idempotency_ttl": (MAX_IDEMPOTENCY_TTL, "ten years"),
    "payment_ttl": (MAX_PAYMENT_TTL, "ten years"),
}
"""Each duration setting: its largest value, in seconds and in words."""

LONGEST = {
    "provider_timeout": MAX_PROVIDER_TIMEOUT,
    "idempotency_lease": MAX_IDEMPOTENCY_LEASE,
    "idempotency_ttl": MAX_IDEMPOTENCY_TTL,
    "payment_ttl": MAX_PAYMENT_TTL,
}
"""Every duration at its largest, together a valid configuration."""


def _flow(config: dict[str, Any], clock: Clock, repository: str = "memory") -> PaymentFlow:
    return PaymentFlow.from_config(
        {"repository": repository, **config},
        plugins=[paycore.testing.fake, paycore_memory.plugin, paycore_sqlalchemy.plugin],
        entry_points=False,
        environ={},
        clock=clock,
    )


# -- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(MOST))
@pytest.mark.parametrize(
    "raw",
    [
        float("inf"),
        "inf",
        "-inf",
        1e300,
        "1e400",
        pytest.param(10**400, id="10**400"),
        pytest.param(10**5000, id="10**5000"),
    ],
)
def test_a_duration_beyond_its_limit_is_refused_naming_the_setting_and_its_range(key: str, raw: object) -> None:
    most, in_words = MOST[key]
    with pytest.raises(ConfigurationError) as raised:
        load_config({key: raw}, environ={})
    message = str(raised.value)
    assert message.startswith(
        f"{key} must be a positive number of seconds, at least 0.001 and at most {most:.0f} ({in_words}), not "
    )
    assert len(message) < 200


@pytest.mark.parametrize("key", sorted(MOST))
def test_a_duration_beyond_its_limit_is_refused_from_the_environment(key: str) -> None:
    with pytest.raises(
        ConfigurationError, match=f"^{key} must be a positive number of seconds, at least 0.001 and at most"
    ):
        load_config(None, environ={f"PAYCORE_{key.upper()}": "1e400"})


@pytest.mark.parametrize("key", sorted(MOST))
@pytest.mark.parametrize("raw", [1e-7, "5e-7", 0.0009, 1e-300, 5e-324])
def test_a_duration_shorter_than_a_millisecond_is_refused(key: str, raw: object) -> None:
    # It would become no time at all once made a timedelta (a payment_ttl of 1e-7 expired every payment at once).
    with pytest.raises(
        ConfigurationError, match=f"^{key} must be a positive number of seconds, at least 0.001 and at most"
    ):
        load_config({key: raw}, environ={})


def test_a_duration_of_a_millisecond_is_accepted() -> None:
    assert load_config({"payment_ttl": "0.001"}, environ={}).payment_ttl == 0.001


@pytest.mark.parametrize("raw", [True, False, None, [1], {"s": 1}])
def test_a_duration_that_is_not_a_number_is_refused(raw: object) -> None:
    with pytest.raises(
        ConfigurationError, match=f"^payment_ttl must be a number of seconds, not {re.escape(repr(raw))}"
    ):
        load_config({"payment_ttl": raw}, environ={})


@pytest.mark.anyio
@pytest.mark.parametrize("repository", ["memory", "sqlite"])
async def test_every_duration_at_its_limit_is_accepted_and_keyed_calls_work(
    repository: str, clock: Clock, tmp_path: Path
) -> None:
    url = "memory" if repository == "memory" else f"sqlite:///{tmp_path / 'limits.db'}"
    async with _flow({"providers": {"fake": FAKE}, **LONGEST}, clock, url) as flow:
        assert (flow.config.provider_timeout, flow.config.idempotency_ttl) == (86_400.0, 10 * 365 * 86_400.0)
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        fake.script("initiate", "pending")
        first = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1", idempotency_key="k")
        again = await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1", idempotency_key="k")
        assert again.payment.id == first.payment.id
        clock.advance(days=3649)
        assert await flow.expire_stale() == []
        clock.advance(days=2)
        assert [payment.id for payment in await flow.expire_stale()] == [first.payment.id]


# -- plugins_blocked ----------------------------------------------------------------------


def test_the_environment_blocks_plugins_listed_with_commas() -> None:
    config = load_config(None, environ={"PAYCORE_PLUGINS_BLOCKED": "dummy, stripe"})
    assert config.plugins_blocked == ("dummy", "stripe")
    assert load_config(None, environ={"PAYCORE_PLUGINS_BLOCKED": "dummy"}).plugins_blocked == ("dummy",)


def test_a_blocked_plugin_named_in_the_environment_is_not_loaded() -> None:
    flow = PaymentFlow.from_config({}, environ={"PAYCORE_PLUGINS_BLOCKED": "dummy"})
    assert "dummy" not in flow.registry.providers


def test_plugins_blocked_is_a_list_in_a_mapping_or_a_file(tmp_path: Path) -> None:
    assert load_config({"plugins_blocked": ["dummy"]}, environ={}).plugins_blocked == ("dummy",)
    path = tmp_path / "paycore.toml"
    path.write_text('plugins_blocked = ["dummy", "wave"]\n')
    assert load_config(path, environ={}).plugins_blocked == ("dummy", "wave")


@pytest.mark.parametrize("raw", ["dummy", 5, None, [5], [""], {"dummy": True}])
def test_plugins_blocked_of_another_shape_is_refused_naming_the_setting(raw: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^plugins_blocked must be a list of entry point names"):
        load_config({"plugins_blocked": raw}, environ={})


# -- webhook_url --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        5,
        b"https://shop.example/hooks",
        "",
        "shop.example/hooks",
        "ftp://shop.example/hooks",
        "https://shop.example/a b",
    ],
)
def test_a_webhook_url_that_is_not_an_absolute_http_url_is_refused(raw: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^webhook_url must be"):
        load_config({"webhook_url": raw}, environ={})


@pytest.mark.parametrize(
    "raw", ["https://shop.example/hooks/{tenant}", "https://shop.example/{tenant}/{cod}", "https://shop.example/{code"]
)
def test_a_webhook_url_template_needs_code_and_no_other_braces(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^webhook_url '.*': a template holds \{code\}"):
        load_config({"webhook_url": raw}, environ={})


def test_a_webhook_url_from_the_environment_is_checked_too() -> None:
    config = load_config(None, environ={"PAYCORE_WEBHOOK_URL": "https://shop.example/in/{code}"})
    assert config.webhook_url == "https://shop.example/in/{code}"
    with pytest.raises(ConfigurationError, match=r"^webhook_url must be"):
        load_config(None, environ={"PAYCORE_WEBHOOK_URL": "nowhere"})


# -- TOML files ---------------------------------------------------------------------------


def test_a_directory_given_as_the_toml_file_is_refused_by_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"configuration file '{tmp_path}' cannot be read: ")):
        load_config(tmp_path, environ={})
    with pytest.raises(ConfigurationError, match="cannot be read"):
        load_config(None, environ={"PAYCORE_CONFIG": str(tmp_path)})


def test_a_toml_file_that_is_not_utf8_is_refused_by_path(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'webhook_url = "https://caf\xe9.example/hooks"\n')
    with pytest.raises(ConfigurationError, match=re.escape(f"configuration file '{path}' is not UTF-8")):
        load_config(path, environ={})


@pytest.mark.parametrize("nested", ["[" * 5000 + "]" * 5000, "{ a = " * 5000 + "1" + " }" * 5000])
def test_a_toml_file_nested_deeper_than_it_can_be_read_is_refused_by_path(tmp_path: Path, nested: str) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(f"x = {nested}\n")
    refused = re.escape(f"configuration file '{path}' nests arrays or tables too deeply to be read")
    with pytest.raises(ConfigurationError, match=refused):
        load_config(path, environ={})
    with pytest.raises(ConfigurationError, match=refused):
        load_config(None, environ={"PAYCORE_CONFIG": str(path)})


def test_a_toml_file_with_an_integer_of_more_digits_than_python_reads_is_refused_by_path(tmp_path: Path) -> None:
    path = tmp_path / "digits.toml"
    path.write_text(f"webhook_max_bytes = 1{'0' * 5000}\n")
    with pytest.raises(ConfigurationError, match=re.escape(f"configuration file '{path}' is not valid TOML: ")):
        load_config(path, environ={})


def test_a_toml_path_holding_a_nul_is_refused_naming_it() -> None:
    refused = re.escape("configuration file '/etc/paycore\\x00.toml' is no file's name: it holds a NUL character")
    with pytest.raises(ConfigurationError, match=refused):
        load_config("/etc/paycore\x00.toml", environ={})
    with pytest.raises(ConfigurationError, match=refused):
        load_config(None, environ={"PAYCORE_CONFIG": "/etc/paycore\x00.toml"})


def test_tables_given_in_code_nested_deeper_than_python_follows_are_refused() -> None:
    nested: dict[str, Any] = {}
    for _ in range(5000):
        nested = {"a": nested}
    with pytest.raises(ConfigurationError, match="the configuration's tables nest too deeply to be read"):
        load_config({"repository": {"type": "memory", "options": nested}}, environ={})


# -- names of settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"providers": {"till": {"type": "fake", 1: "x"}}}, "provider 'till' of the default tenant"),
        ({"tenants": {"chez-awa": {"providers": {"till": {"type": "fake", b"k": 1}}}}}, "provider 'till' of tenant"),
        ({"repository": {"type": "memory", 1: "x"}}, "repository 'memory'"),
        ({"repository": {"url": "sqlite:///p.db", None: "x"}}, "repository 'sqlite:///p.db'"),
        ({"idempotency_settings": {"memory": {None: "x"}}}, "idempotency store 'memory'"),
        ({"idempotency": {"type": "memory", 2.5: "x"}}, "idempotency 'memory'"),
    ],
    ids=["provider", "tenant's provider", "repository", "repository by url", "idempotency_settings", "idempotency"],
)
def test_a_setting_whose_name_is_not_a_string_is_refused_naming_where(config: dict[Any, Any], where: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{re.escape(where)}.*: a setting's name must be a string, not "):
        load_config(config, environ={})


@pytest.mark.parametrize(
    ("config", "refused"),
    [
        ({"x": 1, 2: 3}, "unknown configuration key(s) [2, 'x']"),
        ({"repository": {"x": 1, 2: 3}}, "repository: a table needs a 'type' (or a 'url'), got [2, 'x']"),
    ],
)
def test_unknown_keys_of_mixed_types_are_refused_by_name(config: dict[Any, Any], refused: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(refused)):
        load_config(config, environ={})


# -- tenant names and provider codes ------------------------------------------------------


def test_a_tenant_name_and_a_provider_code_of_the_longest_length_are_accepted() -> None:
    name, code = "t" * MAX_CODE_LENGTH, "p" * MAX_CODE_LENGTH
    config = load_config({"providers": {code: FAKE}, "tenants": {name: {"providers": {code: FAKE}}}}, environ={})
    assert set(config.provider_configs(name)) == set(config.provider_configs(None)) == {code}


@pytest.mark.parametrize(
    "name", ["t" * (MAX_CODE_LENGTH + 1), "", "chez\nawa", 5, "a/b", "a\\b", ".", "..", "awa|cash-drawers"]
)
def test_a_tenant_name_no_store_or_webhook_path_could_keep_is_refused(name: object) -> None:
    """``awa|cash-drawers`` would name the key space of tenant ``awa``'s cash drawers: its keys would refuse theirs."""
    with pytest.raises(
        ConfigurationError, match=rf"^tenants: .* is not a tenant name; .* {MAX_CODE_LENGTH} characters"
    ):
        load_config({"tenants": {name: {"providers": {"fake": FAKE}}}}, environ={})


@pytest.mark.parametrize("code", ["p" * (MAX_CODE_LENGTH + 1), "", "pa\x00y", 5, "wa/ve", ".."])
def test_a_provider_code_no_store_or_webhook_path_could_keep_is_refused(code: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^providers of the default tenant: .* is not a provider code"):
        load_config({"providers": {code: FAKE}}, environ={})
    with pytest.raises(ConfigurationError, match=r"^providers of tenant 'chez-awa': .* is not a provider code"):
        load_config({"tenants": {"chez-awa": {"providers": {code: FAKE}}}}, environ={})


def test_a_long_tenant_from_the_environment_is_refused() -> None:
    variable = f"PAYCORE_TENANTS__{'T' * (MAX_CODE_LENGTH + 1)}__PROVIDERS__FAKE__TYPE"
    with pytest.raises(ConfigurationError, match=r"^tenants: .* is not a tenant name"):
        load_config(None, environ={variable: "fake"})


@pytest.mark.anyio
async def test_a_call_naming_a_tenant_longer_than_any_stored_finds_nothing_and_changes_nothing(
    make_flow: Callable[..., PaymentFlow],
) -> None:
    long_tenant = "t" * (MAX_CODE_LENGTH + 1)
    async with make_flow() as flow:
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="o-1")).payment
        with pytest.raises(ProviderNotEnabled):
            await flow.create_payment(
                amount=XOF_5000, provider="fake", order_id="o-2", tenant=long_tenant, idempotency_key="k"
            )
        for call in (flow.get_payment, flow.cancel, flow.capture, flow.refund):
            with pytest.raises(PaymentNotFound, match="for that tenant"):
                await call(payment.id, tenant=long_tenant)
        assert await flow.list_payments() == [payment]


@pytest.mark.anyio
@pytest.mark.postgres
async def test_the_longest_tenant_and_provider_code_are_stored_by_postgresql(postgres_url: str, clock: Clock) -> None:
    name, code = "t" * MAX_CODE_LENGTH, "p" * MAX_CODE_LENGTH
    config = {"tenants": {name: {"providers": {code: FAKE}}}}
    async with _flow(config, clock, postgres_url) as flow:
        checkout = await flow.create_payment(
            amount=Money.of("100", "XOF"), provider=code, order_id="o-1", tenant=name, idempotency_key="k"
        )
        assert (await flow.get_payment(checkout.payment.id, tenant=name)).provider == code


def test_the_limit_is_the_size_every_store_keeps_a_tenant_and_a_provider_code_in() -> None:
    """:data:`MAX_CODE_LENGTH` is the stores' column size: the SQL adapter's and the cash drawers' tables,
    the Django models; a key's scope (``"t:" + tenant``) fits its column too."""
    from paycore_cash.backends import sql_schema as cash_schema
    from paycore_sqlalchemy import schema

    tables = [*schema.metadata.tables.values(), *cash_schema.metadata.tables.values()]
    columns = [column for table in tables for column in table.c if column.name in ("tenant", "provider")]
    assert len(columns) >= 8
    assert {column.type.length for column in columns} == {MAX_CODE_LENGTH}  # type: ignore[attr-defined]
    assert schema.idempotency_keys.c.scope.type.length >= len("t:") + MAX_CODE_LENGTH  # type: ignore[attr-defined]
    models = ROOT / "adapters" / "django" / "src" / "paycore_django" / "models.py"
    sizes = {
        node.target.id: ast.literal_eval(node.value)
        for node in ast.parse(models.read_text(encoding="utf-8")).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
    }
    assert sizes["CODE_LENGTH"] == MAX_CODE_LENGTH


@pytest.mark.parametrize(
    "raw",
    [
        "https://pos:hunter2-very-long-secret-" + "x" * 60 + "@shop.example/a b",  # refused, and long enough to be cut
        "https://pos:hunter2-very-long-secret@shop.example/{tenant}",  # a template without {code}
    ],
)
def test_a_refused_webhook_url_never_shows_its_password(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^webhook_url") as refused:
        load_config({"webhook_url": raw}, environ={})
    assert "hunter2" not in str(refused.value)
    assert "pos:***@" in str(refused.value)


# -- settings a provider does not read ----------------------------------------------------------


def test_a_setting_the_provider_does_not_read_is_refused_naming_it_and_those_it_reads() -> None:
    config = {"providers": {"fake": {**FAKE, "webhook_secrt": "whsec-typo"}}}
    with pytest.raises(ConfigurationError, match=r"provider 'fake' \(fake\).*no setting 'webhook_secrt'; it reads"):
        PaymentFlow.from_config(
            config, plugins=[paycore.testing.fake, paycore_memory.plugin], entry_points=False, environ={}
        )


def test_a_label_is_a_setting_of_every_provider() -> None:
    config = {"providers": {"fake": {**FAKE, "label": "Card"}}}
    flow = PaymentFlow.from_config(
        config, plugins=[paycore.testing.fake, paycore_memory.plugin], entry_points=False, environ={}
    )
    assert flow.provider("fake").settings["label"] == "Card"


@pytest.mark.parametrize(
    ("label", "got"),
    [
        (["Espèces"], "a list"),
        ({"fr": "Espèces"}, "a table"),
        (5, "a number"),
        (True, "true or false"),
        ("", "a blank string"),
        (" \t ", "a blank string"),
        ("x" * (MAX_LABEL_LENGTH + 1), f"a string of {MAX_LABEL_LENGTH + 1} characters"),
        ("Espèces\n<b>", "'Espèces\\n<b>'"),
    ],
    ids=["list", "table", "number", "boolean", "empty", "blank", "too-long", "line-break"],
)
def test_a_label_customers_could_not_be_shown_as_written_is_refused_naming_the_provider(label: Any, got: str) -> None:
    """A list was accepted, and the pay form showed customers "['Espèces']"."""
    for settings_names in (frozenset({"webhook_secret"}), None):  # checked whether or not the type says what it reads

        class Labelled(FakeProvider):
            name = "labelled"

        Labelled.settings_names = settings_names

        class Registers:
            @hookimpl
            def paycore_register_providers(self, register: Any) -> None:
                register(Labelled)

        config = {"tenants": {"t": {"providers": {"card": {**FAKE, "type": "labelled", "label": label}}}}}
        with pytest.raises(ConfigurationError) as refused:
            PaymentFlow.from_config(
                config,
                plugins=[paycore.testing.fake, paycore_memory.plugin, Registers()],
                entry_points=False,
                environ={},
            )
        assert str(refused.value).startswith("provider 'card' (labelled) of tenant 't': the setting 'label' must be")
        assert str(refused.value).endswith(f"; got {got}")


def test_a_label_of_the_longest_length_in_any_script_is_taken() -> None:
    for label in ("Espèces", "Carte bancaire (Visa, Mastercard)", "现金", "x" * MAX_LABEL_LENGTH):
        config = {"providers": {"fake": {**FAKE, "label": label}}}
        flow = PaymentFlow.from_config(
            config, plugins=[paycore.testing.fake, paycore_memory.plugin], entry_points=False, environ={}
        )
        assert flow.provider("fake").settings["label"] == label


def test_a_provider_that_does_not_say_which_settings_it_reads_takes_any() -> None:
    class Undeclared(paycore.testing.fake.FakeProvider):
        name = "undeclared"
        settings_names = None

    class Registers:
        @hookimpl
        def paycore_register_providers(self, register: Any) -> None:
            register(Undeclared)

    config = {"providers": {"p": {"type": "undeclared", "webhook_secret": "whsec-x", "anything": 1}}}
    flow = PaymentFlow.from_config(
        config, plugins=[paycore.testing.fake, paycore_memory.plugin, Registers()], entry_points=False, environ={}
    )
    assert flow.provider("p").settings["anything"] == 1


def _raises_here() -> Any:
    raise OSError("no clock source")


@pytest.mark.parametrize(
    ("clock", "refusal"),
    [
        (datetime.now, "it gave a naive datetime"),
        (time.time, "it gave a float"),
        (_raises_here, "the flow's clock failed when read: OSError: no clock source"),
    ],
)
def test_a_clock_giving_no_timezone_aware_time_is_refused_when_the_flow_is_built(
    clock: Callable[[], Any], refusal: str
) -> None:
    """``clock=datetime.now`` was taken: one store refused each payment's time as the caller's bad input, another
    kept it and a listing then failed comparing naive and aware times; ``clock=time.time`` failed each operation
    with a bare TypeError."""
    with pytest.raises(ConfigurationError, match="clock") as refused:
        PaymentFlow.from_config(
            {"providers": {"fake": FAKE}},
            plugins=[paycore.testing.fake, paycore_memory.plugin],
            entry_points=False,
            environ={},
            clock=clock,
        )
    assert refusal in str(refused.value)


class _ParisClock:
    """A clock in Europe/Paris, five minutes after its clocks went forward (03:05 CEST, 01:05 UTC)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 29, 3, 5, tzinfo=ZoneInfo("Europe/Paris"))

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.anyio
@pytest.mark.parametrize("database", [None, "sqlite"])
async def test_a_clock_in_a_local_zone_is_read_in_utc_across_a_daylight_saving_change(
    database: str | None, tmp_path: Path
) -> None:
    """An hour before 03:10 on the night Paris goes forward is 01:10 UTC; as wall-clock arithmetic it was 03:10
    again, so ``expire_stale`` found a five-minute-old checkout an hour old and canceled and expired it."""
    clock = _ParisClock()
    config: dict[str, Any] = {"providers": {"fake": FAKE}}
    if database is not None:
        url = f"sqlite:///{tmp_path / 'pos.db'}"
        config.update(repository=url, idempotency=url)
    async with PaymentFlow.from_config(
        config,
        plugins=[paycore.testing.fake, paycore_memory.plugin, paycore_sqlalchemy.plugin],
        entry_points=False,
        environ={},
        clock=clock,
    ) as flow:
        fake = flow.provider("fake")
        assert isinstance(fake, FakeProvider)
        fake.script("initiate", "pending")
        payment = (await flow.create_payment(amount=XOF_5000, provider="fake", order_id="T-1")).payment
        assert payment.created_at.utcoffset() == timedelta(0)
        assert payment.created_at == clock.now
        clock.now += timedelta(minutes=5)  # 03:10 CEST: the customer is still on the payment page
        assert await flow.expire_stale(timedelta(hours=1)) == []
        assert (await flow.get_payment(payment.id)).status is PaymentStatus.PROCESSING
        assert [operation for operation, _ in fake.calls] == ["initiate"]
