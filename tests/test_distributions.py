"""Each distribution of the workspace installs on its own: it declares what its modules import, and ships
its licence, its README and its ``py.typed``.

A module that imports a package at its top only through another distribution's dependencies (the
memory adapter importing attrs, which paycore happens to require) breaks the day that other one stops
requiring it. A module of an optional part (``paycore.testing``, the cash plugin's SQL backend) may
import what its extra declares; an import that is guarded (inside a function, a ``try``, or
``if TYPE_CHECKING``) is not checked here.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = [ROOT, *sorted(ROOT.glob("adapters/*/")), *sorted(ROOT.glob("plugins/*/"))]


def _project(directory: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((directory / "pyproject.toml").read_text())["project"]
    return project


def _name(requirement: str) -> str:
    """The distribution a requirement names, normalized as PyPI does (``Django>=5.2`` -> ``django``)."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found is not None, requirement
    return re.sub(r"[-_.]+", "-", found[0]).lower()


def _owners() -> dict[str, set[str]]:
    """Which distributions provide each top-level module: the installed ones, and the workspace's own (an editable
    install does not always say which modules it provides)."""
    owners = {module: {_name(d) for d in dists} for module, dists in packages_distributions().items()}
    for directory in DISTRIBUTIONS:
        for package in (directory / "src").iterdir():
            if (package / "__init__.py").is_file():
                owners[package.name] = {_name(_project(directory)["name"])}
    return owners


def _top_level_imports(path: Path) -> set[str]:
    """The top-level names a module imports unguarded: at its top, outside any ``if``, ``try`` or function."""
    names: set[str] = set()
    for statement in ast.parse(path.read_text(), str(path)).body:
        if isinstance(statement, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom) and statement.level == 0 and statement.module:
            names.add(statement.module.partition(".")[0])
    return names


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda d: d.name if d != ROOT else "paycore")
def test_a_distribution_declares_every_package_its_modules_import(directory: Path) -> None:
    project = _project(directory)
    extras = project.get("optional-dependencies", {}).values()  # an optional part: its extra brings what it needs
    declared = {_name(text) for text in [*project.get("dependencies", []), *(r for extra in extras for r in extra)]}
    own = _name(project["name"])
    owners = _owners()
    missing: dict[str, set[str]] = {}
    for module in sorted((directory / "src").rglob("*.py")):
        for name in _top_level_imports(module) - set(sys.stdlib_module_names) - {"__future__"}:
            dists = owners.get(name) or {_name(name)}  # not installed here (another package's session): its own name
            if own not in dists and not dists & declared:
                missing.setdefault(name, set()).add(str(module.relative_to(ROOT)))
    assert not missing, f"{own} imports packages it does not declare in its dependencies: {missing}"


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=lambda d: d.name if d != ROOT else "paycore")
def test_a_distribution_ships_its_licence_readme_and_type_marker(directory: Path) -> None:
    project = _project(directory)
    assert project.get("license") == "MIT"
    assert (directory / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert project.get("readme") == "README.md"
    assert (directory / "README.md").is_file()
    (package,) = [p for p in (directory / "src").iterdir() if p.is_dir() and (p / "__init__.py").is_file()]
    assert (package / "py.typed").is_file()
