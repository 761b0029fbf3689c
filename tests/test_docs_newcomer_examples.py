"""Examples of the docs a newcomer copies first: they must run as shown."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paycore.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_configuration_pages_main_example_passes_paycore_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "paycore.toml").write_text(example)
    monkeypatch.chdir(tmp_path)  # its SQLite file is relative
    monkeypatch.delenv("PAYCORE_CONFIG", raising=False)
    assert main(["--config", "paycore.toml", "check"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "configuration OK: paycore.toml" in out
    assert "wave         type dummy" in out


def test_the_sqlalchemy_readme_names_the_next_free_migration_number() -> None:
    versions = ROOT / "adapters" / "sqlalchemy" / "src" / "paycore_sqlalchemy" / "migrations" / "versions"
    last = max(path.name for path in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    readme = (ROOT / "adapters" / "sqlalchemy" / "README.md").read_text()
    following = f"{int(last[:4]) + 1:04d}"
    assert re.findall(r'rev_id="(\d{4})"', readme) == [following], f"the next free rev_id after {last}"
    assert f"(`{following}` while that is `{last}`)" in " ".join(readme.split())
