"""``paycore demo``: a restaurant's day with every installed demo step, again and again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paycore.demo import run_demo


@pytest.mark.anyio
async def test_the_whole_demo_runs_again_on_storage_that_keeps_the_last_run(tmp_path: Path) -> None:
    config = {"repository": f"sqlite:///{tmp_path / 'pos.db'}"}
    for run in (1, 2):
        lines: list[str] = []
        assert await run_demo(config, echo=lines.append) == 0, f"run {run}:\n" + "\n".join(lines[-20:])
        text = "\n".join(lines)
        assert re.search(r"^W-0001 +wave +7 500 XOF +succeeded ", text, re.MULTILINE), f"run {run}"
        assert "net taken by cash" in text, f"run {run}"


@pytest.mark.anyio
async def test_the_demo_never_writes_to_the_database_the_environment_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shop's ``PAYCORE_REPOSITORY`` set in the shell: the demo's invented day stays out of its real database."""
    shop = tmp_path / "shop.db"
    monkeypatch.setenv("PAYCORE_REPOSITORY", f"sqlite:///{shop}")
    lines: list[str] = []
    assert await run_demo(echo=lines.append) == 0, "\n".join(lines[-20:])
    assert str(shop) not in "\n".join(lines)
    assert not shop.exists()
