"""A plugin's settings read through ``Settings``: seconds (timeouts, tolerances) and credentials (API keys)."""

from __future__ import annotations

import pytest

from paycore.errors import ConfigurationError
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


def test_a_credential_is_given_revealed() -> None:
    assert Settings({"api_key": "sk_test_chez_awa"}, owner=OWNER).credential("api_key") == "sk_test_chez_awa"
