"""The ``paycore`` command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from paycore import fsm
from paycore.cli import main


def test_plugins_lists_installed_plugins_with_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "memory" in out
    assert "paycore-memory 0.1.0" in out
    assert "repository memory" in out


def test_check_accepts_a_valid_configuration_and_hides_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\n[tenants.chez-awa.providers.till]\ntype = "cash"\n'
                      'api_key = "sk-live-do-not-print"\n')  # fmt: skip
    assert main(["--config", str(config), "check"]) == 0
    out = capsys.readouterr().out
    assert "chez-awa" in out
    assert "till" in out
    assert "sk-live-do-not-print" not in out


def test_check_of_a_configuration_given_in_code_never_prints_its_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "repository": "memory",
        "providers": {"till": {"type": "cash", "api_key": "sk-live-do-not-print"}},
    }
    assert main(["check"], config=config) == 0
    out = capsys.readouterr().out
    assert "configuration OK: the configuration given in code" in out
    assert "sk-live-do-not-print" not in out


def test_check_refuses_a_broken_configuration_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\nprovider_timout = 3\n')
    assert main(["--config", str(config), "check"]) == 1
    assert "unknown configuration key(s) ['provider_timout']" in capsys.readouterr().err


def test_states_prints_the_state_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["states"]) == 0
    assert capsys.readouterr().out == fsm.mermaid()


def test_the_states_page_of_the_docs_matches_the_machine() -> None:
    page = (Path(__file__).parents[1] / "docs" / "states.md").read_text()
    assert fsm.mermaid() in page, "regenerate docs/states.md with `paycore states`"
