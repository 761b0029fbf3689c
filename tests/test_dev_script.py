"""``dev.py``, the README's quick start: the venv it makes for ``python3 dev.py demo``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, list[tuple[str, ...]]]:
    """``dev.py`` with its ``.venv`` under ``tmp_path`` and its commands recorded, not run."""
    spec = importlib.util.spec_from_file_location("paycore_dev_script", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    venv_dir = tmp_path / ".venv"
    python = venv_dir / module.BIN.name / module.PYTHON.name
    monkeypatch.setattr(module, "VENV", venv_dir)
    monkeypatch.setattr(module, "PYTHON", python)
    monkeypatch.setattr(module, "STAMP", venv_dir / module.STAMP.name)
    monkeypatch.setattr(module, "DEMO_STAMP", venv_dir / module.DEMO_STAMP.name)
    commands: list[tuple[str, ...]] = []
    monkeypatch.setattr(module, "run", lambda *command, **kwargs: commands.append(tuple(map(str, command))))
    return module, commands


def _imports_pip(python: Path) -> bool:
    return subprocess.run([str(python), "-c", "import pip"], capture_output=True).returncode == 0


def test_a_venv_left_without_pip_is_made_again(
    dev: tuple[ModuleType, list[tuple[str, ...]]], capsys: pytest.CaptureFixture[str]
) -> None:
    module, commands = dev
    venv.EnvBuilder(with_pip=False).create(module.VENV)  # what Debian's venv leaves without python3-venv
    assert not _imports_pip(module.PYTHON)
    module.ensure_demo_venv()
    assert _imports_pip(module.PYTHON)
    assert ".venv has a python but no pip (made without ensurepip?): making it again" in capsys.readouterr().out
    assert commands
    assert commands[0][:4] == (str(module.PYTHON), "-m", "pip", "install")


def test_without_ensurepip_one_line_says_to_install_python3_venv(
    dev: tuple[ModuleType, list[tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module, commands = dev

    def debian_setup_pip(self: venv.EnvBuilder, context: Any) -> None:  # Debian's venv without ensurepip
        print("The virtual environment was not created successfully because ensurepip is not\navailable. ...")
        sys.exit(1)

    monkeypatch.setitem(sys.modules, "ensurepip", None)
    monkeypatch.setattr(venv.EnvBuilder, "_setup_pip", debian_setup_pip)
    with pytest.raises(SystemExit) as exited:
        module.ensure_demo_venv()
    assert exited.value.code == (
        "dev.py: cannot make .venv with pip: this Python has no ensurepip; "
        "on Debian or Ubuntu run `apt-get install python3-venv` (as root), then run dev.py again"
    )
    assert "The virtual environment was not created" not in capsys.readouterr().out
    assert commands == []
