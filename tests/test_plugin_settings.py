"""A plugin's settings read through ``Settings``: seconds (timeouts, tolerances) and credentials (API keys)."""

from __future__ import annotations

import os

import pytest

from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore.secrets import Settings

OWNER = "provider 'wave' of tenant 'chez-awa'"


@pytest.mark.parametrize("value", ["nan", float("nan"), float("inf"), "inf", -1, 0, True, "soon", None, [5], 86_401])
def test_a_setting_of_seconds_out_of_range_or_not_a_number_is_refused_by_name(value: object) -> None:
    settings = Settings({"webhook_tolerance": value}, owner=OWNER)
    with pytest.raises(
        ConfigurationError, match=f"^{OWNER}: 'webhook_tolerance' must be a (positive )?number of seconds"
    ):
        settings.seconds("webhook_tolerance", 300)


@pytest.mark.parametrize(
    ("value", "seconds"), [(300, 300.0), (2.5, 2.5), ("45", 45.0), (" 1.5 ", 1.5), (86_400, 86_400.0)]
)
def test_a_setting_of_seconds_reads_a_number_or_its_text(value: object, seconds: float) -> None:
    assert Settings({"timeout": value}, owner=OWNER).seconds("timeout", 10) == seconds


def test_an_unset_setting_of_seconds_is_its_default_and_a_bound_can_be_lowered() -> None:
    assert Settings({}, owner=OWNER).seconds("timeout", 10) == 10.0
    with pytest.raises(ConfigurationError, match="at most 3600"):
        Settings({"timeout": 7200}, owner=OWNER).seconds("timeout", 30, most=3600)


@pytest.mark.parametrize(
    "key", ["sk_test_chez_awa\n", " sk_test_chez_awa", "sk_test chez_awa", "sk_test_\x00awa", "", "   "]
)
def test_a_credential_with_a_space_a_line_break_or_a_control_character_is_refused_unshown(key: str) -> None:
    settings = Settings({"api_key": key}, owner=OWNER)
    with pytest.raises(ConfigurationError, match=f"^{OWNER}: secret 'api_key' must be a non-empty string") as refused:
        settings.credential("api_key")
    assert "chez_awa" not in str(refused.value)


@pytest.mark.parametrize(
    "key",
    ["sk_test_caf\u00e9_chez_awa", "sk_test_chez_awa\u00a0", os.fsdecode(b"sk_test_chez_awa\xe9"), "sk_\u2028chez_awa"],
    ids=["accented letter", "no-break space", "non-UTF-8 byte of an environment variable", "line separator"],
)
def test_a_credential_with_a_character_that_is_not_ascii_is_refused_unshown(key: str) -> None:
    settings = Settings({"api_key": key}, owner=OWNER)
    with pytest.raises(
        ConfigurationError, match=f"^{OWNER}: secret 'api_key' must be a non-empty string of ASCII .* is not ASCII"
    ) as refused:
        settings.credential("api_key")
    assert "chez_awa" not in str(refused.value)


def test_a_provider_given_an_api_key_that_is_not_ascii_is_refused_when_the_flow_is_built() -> None:
    provider = {"type": "dummy", "base_url": "http://127.0.0.1:9", "api_key": "sk_test_caf\u00e9_chez_awa",
                "webhook_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"secret 'api_key' .* is not ASCII") as refused:
        PaymentFlow.from_config({"providers": {"till": provider}}, environ={})
    assert "chez_awa" not in str(refused.value)


def test_a_credential_is_given_revealed() -> None:
    assert Settings({"api_key": "sk_test_chez_awa"}, owner=OWNER).credential("api_key") == "sk_test_chez_awa"


def test_a_url_setting_is_an_absolute_http_url_or_unset() -> None:
    settings = Settings({"base_url": "http://127.0.0.1:8765", "success_url": "https://shop.example/paid"})
    assert settings.url("base_url") == "http://127.0.0.1:8765"
    assert settings.url("success_url") == "https://shop.example/paid"
    assert settings.url("error_url") is None


@pytest.mark.parametrize("value", [123, ["https://x.example"], "", "x.example/paid", "ftp://x.example", "https://a b"])
def test_a_url_setting_of_another_kind_is_refused_by_name(value: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^provider 'pay': 'base_url' must be an absolute http\(s\) URL"):
        Settings({"base_url": value}, owner="provider 'pay'").url("base_url")


def test_a_refused_url_setting_never_shows_a_password_in_it() -> None:
    with pytest.raises(ConfigurationError, match="'base_url'") as refused:
        Settings({"base_url": "https://m:hunter2@x.example/ a"}, owner="provider 'pay'").url("base_url")
    assert "hunter2" not in str(refused.value)
