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
