"""The compatibility matrix: every distribution on its oldest and newest dependencies, Django's series, lint, types.

    nox                                  # everything (slow: run it on demand, not in CI)
    nox -s tests-3.12                    # the whole workspace, newest releases, one Python
    nox -s lowest newest                 # every distribution on its declared minimums / newest releases
    nox -k "lowest and sqlalchemy"       # one distribution on the lowest versions it declares, on 3.11 and 3.13
    nox -s "django(6.0-py3.12)"          # the Django adapter and cash on the newest Django 6.0, Python 3.12
    nox -s lint types
    nox -l                               # the sessions, by name

``lowest`` installs each distribution, with its test extras, at the lowest version
its ``pyproject.toml`` allows for every direct requirement (uv's
``--resolution lowest-direct``; transitive requirements resolve to their newest),
on the oldest supported Python and on the newest (a floor must import on both).
``newest`` installs the newest releases on the newest Python. Each session runs that
distribution's own tests (``tests/`` for the core, ``<package>/tests`` for the
others); the tests start their own PostgreSQL and
Redis servers, and Chromium for the browser tests (see dev.py for installing them).

The sessions need ``uv`` (``pip install uv``, or ``nox[uv]``). Interpreters are found
on PATH, or in pyenv's versions when pyenv has them; none is ever downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import nox

PYTHONS = ["3.11", "3.12", "3.13"]
OLDEST_PYTHON = PYTHONS[0]
NEWEST_PYTHON = PYTHONS[-1]
# Django series tested with the newest release of each, and the Pythons each supports.
DJANGO_SERIES = {"5.2": PYTHONS, "6.0": ["3.12", "3.13"], "6.1": ["3.12", "3.13"]}
ROOT = Path(__file__).resolve().parent
RESOLVED = ROOT / ".nox" / "resolved"

nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = True


@dataclass(frozen=True)
class Distribution:
    """One installable distribution of the workspace, as its matrix sessions install and test it."""

    local: tuple[str, ...]
    """Workspace distributions installed editable (with extras), the tested one last."""
    tests: str
    """The tests of the distribution, relative to the workspace root."""
    requirements: tuple[str, ...] = ()
    """What its tests need beyond the declared extras (resolved lowest too in ``lowest``)."""
    tools: tuple[str, ...] = ()
    """Programs its tests drive (the docs builder, a browser driver): their newest release in every session."""


CORE = ".[test]"
DOCS_TOOLS = ("mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26")
BROWSER_DRIVER = ("playwright>=1.48",)
CASH_DJANGO_TESTS = "plugins/cash/tests/test_django_drawer_storage.py"
DISTRIBUTIONS = {
    "paycore": Distribution(
        # The core's tests run the docs' examples, which use the cash plugin, the dummy gateway's server,
        # and the SQL and Redis adapters; the operators' commands and the day report run on PostgreSQL too.
        local=(
            "adapters/memory",
            "adapters/sqlalchemy[postgresql]",
            "adapters/redis",
            "plugins/cash",
            "plugins/dummy[serve]",
            CORE,
        ),
        tests="tests",
        tools=DOCS_TOOLS,
    ),
    "memory": Distribution(local=(CORE, "adapters/memory"), tests="adapters/memory/tests"),
    "sqlalchemy": Distribution(
        local=(CORE, "adapters/memory", "adapters/sqlalchemy[test]"), tests="adapters/sqlalchemy/tests"
    ),
    "redis": Distribution(
        local=(CORE, "adapters/memory", "adapters/sqlalchemy", "adapters/redis"), tests="adapters/redis/tests"
    ),
    "django": Distribution(
        # Its tests check settings that name the cash and dummy providers, and flows on the embedded default.
        local=(
            CORE,
            "adapters/memory",
            "adapters/sqlalchemy",
            "plugins/cash",
            "plugins/dummy",
            "adapters/django[test]",
        ),
        tests="adapters/django/tests",
        tools=BROWSER_DRIVER,
    ),
    "cash": Distribution(
        local=(CORE, "adapters/memory", "adapters/sqlalchemy", "adapters/django", "plugins/cash[test]"),
        tests="plugins/cash/tests",
    ),
    "dummy": Distribution(
        local=(CORE, "adapters/memory", "plugins/dummy[test]"), tests="plugins/dummy/tests", tools=BROWSER_DRIVER
    ),
    "stripe": Distribution(local=(CORE, "adapters/memory", "plugins/stripe[test]"), tests="plugins/stripe/tests"),
    "wave": Distribution(local=(CORE, "adapters/memory", "plugins/wave[test]"), tests="plugins/wave/tests"),
}


def _add_pyenv_interpreters() -> None:
    versions = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    extra = [str(path) for python in PYTHONS for path in sorted(versions.glob(f"{python}.*/bin"))]
    if extra:
        os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), *extra])


_add_pyenv_interpreters()
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def _editable(paths: tuple[str, ...]) -> list[str]:
    return [argument for path in paths for argument in ("-e", path)]


def _record_resolution(session: nox.Session) -> None:
    """Log the versions installed, and keep them in ``.nox/resolved/<session>.txt``."""
    frozen = session.run("uv", "pip", "freeze", "--exclude-editable", silent=True, stderr=None)
    pins = [line for line in str(frozen).splitlines() if "==" in line]
    RESOLVED.mkdir(parents=True, exist_ok=True)
    (RESOLVED / f"{session.name}.txt").write_text("".join(f"{pin}\n" for pin in pins))
    session.log("resolved: " + " ".join(pins))


def _install_and_test(session: nox.Session, package: str, *resolution: str) -> None:
    distribution = DISTRIBUTIONS[package]
    session.install(*resolution, *_editable(distribution.local), *distribution.requirements)
    if distribution.tools:
        session.install(*distribution.tools)
    _record_resolution(session)
    session.run("python", "-m", "pytest", distribution.tests, *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole workspace on the newest releases (what CI runs); servers must be installed: see dev.py."""
    session.install("-r", "requirements-dev.txt")
    _record_resolution(session)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=[OLDEST_PYTHON, NEWEST_PYTHON], reuse_venv=False)
@nox.parametrize("package", list(DISTRIBUTIONS), ids=list(DISTRIBUTIONS))
def lowest(session: nox.Session, package: str) -> None:
    """One distribution's tests on the lowest versions its pyproject.toml declares, on the oldest Python and on the
    newest (a floor must import on every Python supported: SQLAlchemy 2.0.30 does not on 3.13)."""
    _install_and_test(session, package, "--resolution", "lowest-direct")


@nox.session(python=NEWEST_PYTHON, reuse_venv=False)
@nox.parametrize("package", list(DISTRIBUTIONS), ids=list(DISTRIBUTIONS))
def newest(session: nox.Session, package: str) -> None:
    """One distribution's tests on the newest releases, on the newest Python."""
    _install_and_test(session, package, "--resolution", "highest")


@nox.session(reuse_venv=False)
@nox.parametrize(
    ("python", "series"),
    [(python, series) for series, pythons in DJANGO_SERIES.items() for python in pythons],
    ids=[f"{series}-py{python}" for series, pythons in DJANGO_SERIES.items() for python in pythons],
)
def django(session: nox.Session, series: str) -> None:
    """The Django adapter's tests, and the cash plugin's Django drawer storage, on the newest release of a series."""
    adapter, cash = DISTRIBUTIONS["django"], DISTRIBUTIONS["cash"]
    local = tuple(dict.fromkeys(adapter.local + cash.local))
    session.install(f"Django~={series}.0", *_editable(local), *adapter.requirements, *cash.requirements)
    session.install(*adapter.tools)
    _record_resolution(session)
    session.run("python", "-m", "pytest", adapter.tests, CASH_DJANGO_TESTS, *session.posargs)


@nox.session(python=OLDEST_PYTHON)
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=OLDEST_PYTHON)
def types(session: nox.Session) -> None:
    """mypy --strict on the core."""
    session.install("-e", CORE, "mypy")
    session.run("mypy")
