"""The README's example runs as written."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.anyio

README = Path(__file__).parent.parent / "README.md"


async def test_the_readme_example_runs_and_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, object] = {}
    exec("async def example():\n" + textwrap.indent(code, "    "), namespace)
    await namespace["example"]()  # type: ignore[operator]
    printed = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert "Expected in drawer 13 000 XOF" in printed
    assert "Variance -100 XOF (short)" in printed
