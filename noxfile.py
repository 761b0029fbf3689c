"""The compatibility matrix: tests on every supported Python, lint, and strict types on the core.

    nox                      # everything
    nox -s tests-3.12        # one Python
    nox -s lint types

Interpreters are found on PATH, or in pyenv's versions when pyenv has them.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]
nox.options.sessions = ["tests", "lint", "types"]
nox.options.reuse_existing_virtualenvs = True


def _add_pyenv_interpreters() -> None:
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    extra = [str(path) for python in PYTHONS for path in sorted(versions.glob(f"{python}.*/bin"))]
    if extra:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *extra])


_add_pyenv_interpreters()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole test suite (servers must be installed: see dev.py)."""
    session.install("-r", "requirements-dev.txt")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHONS[0])
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS[0])
def types(session: nox.Session) -> None:
    """mypy --strict on the core."""
    session.install("-e", ".[test]", "mypy")
    session.run("mypy")
