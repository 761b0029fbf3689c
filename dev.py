#!/usr/bin/env python3
"""Development tasks for the paycore workspace, on a machine with only Python and pip.

    python dev.py demo     run a restaurant's day end to end on the embedded default
    python dev.py test     run the whole test suite (installs what it needs first)
    python dev.py lint     ruff and mypy (strict on the core)
    python dev.py docs     build the documentation site (mkdocs build --strict) into site/
    python dev.py bench    the performance table (benchmarks/bench.py), quick mode; --full for the long runs

Each task first makes ``.venv`` (``bench``: see below) and installs into it, editable, what it runs
(skipped when nothing changed since the last install). ``demo`` installs only
the packages the demo runs (paycore, the memory adapter, the cash and dummy
plugins); the other tasks install the whole workspace and its development
tools from ``requirements-dev.txt``. ``test`` also makes sure the servers the tests start are installed:
``redis-server`` and ``chromium`` from Debian's packages (with ``apt-get`` when
run as root), and PostgreSQL's server binaries.

``bench`` measures paycore and its peer, getpaid-core (which needs Python
3.12), side by side in one Python >= 3.12 process: when ``.venv`` runs an
older Python, it makes ``.venv-bench`` with the first Python >= 3.12 it
finds (``python3.12``, ``python3.13`` on PATH, else a pyenv version), installs
into it what ``.venv`` gets, and runs the benchmarks there; with no such
Python they run on ``.venv`` and the table's peer rows say why. The peer itself
(``benchmarks/requirements.txt``) is installed on every run, and a failure to
install it does not stop the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".paycore-installed"
DEMO_STAMP = VENV / ".paycore-demo-installed"
DEMO_PACKAGES = [".", "adapters/memory", "plugins/cash", "plugins/dummy"]
"""What ``paycore demo`` runs: the core, the embedded default storage, and the plugins whose steps it shows."""
INSTALL_INPUTS = [
    "requirements-dev.txt",
    "pyproject.toml",
    *(str(path.relative_to(ROOT)) for path in sorted(ROOT.glob("*/*/pyproject.toml"))),
]
DEBIAN_PACKAGES = {"redis-server": "redis-server", "chromium": "chromium"}
POSTGRES_PACKAGE = "postgresql"
BENCH_REQUIREMENTS = "benchmarks/requirements.txt"
"""The peers ``dev.py bench`` compares paycore with (getpaid-core), installed when the index has them."""
BENCH_VENV = ROOT / ".venv-bench"
BENCH_PYTHON = (3, 12)
"""The oldest Python the peer (getpaid-core 3.x) runs on: ``dev.py bench`` runs the benchmarks on one."""


def run(*command: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def digest_of(names: list[str]) -> str:
    """A digest of the files that decide what an install puts in ``.venv``."""
    digest = hashlib.sha256()
    for name in names:
        path = ROOT / name
        if path.exists():
            digest.update(name.encode() + path.read_bytes())
    return digest.hexdigest()


def has_pip(python: Path) -> bool:
    """Whether ``python`` runs and imports pip (a venv made without ensurepip has a python but no pip)."""
    try:
        done = subprocess.run([str(python), "-c", "import pip"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def has_ensurepip() -> bool:
    """Whether this Python can put pip into a venv (Debian and Ubuntu leave ensurepip to python3-venv)."""
    try:
        return importlib.util.find_spec("ensurepip.__main__") is not None
    except ImportError:
        return False


NO_ENSUREPIP = (
    "dev.py: cannot make {venv} with pip: this Python has no ensurepip; "
    "on Debian or Ubuntu run `apt-get install python3-venv` (as root), then run dev.py again"
)


def make_venv(venv_dir: Path) -> Path:
    """Make ``venv_dir`` with pip unless its python already imports pip; return its python.

    A half-made venv (a python but no pip, as ``python3 -m venv`` leaves on Debian
    without python3-venv) is made again from scratch. When this Python cannot
    give a venv pip (no ensurepip), exit with one line saying what to install.
    """
    python = venv_dir / BIN.name / PYTHON.name
    if python.exists():
        if has_pip(python):
            return python
        print(f"{venv_dir.name} has a python but no pip (made without ensurepip?): making it again", flush=True)
    said = io.StringIO()  # Debian's venv prints a page and exits when ensurepip is missing: one line instead
    try:
        with contextlib.redirect_stdout(said):
            venv.EnvBuilder(clear=True, with_pip=True).create(venv_dir)
    except (subprocess.CalledProcessError, SystemExit) as error:
        if not has_ensurepip():
            sys.exit(NO_ENSUREPIP.format(venv=venv_dir.name))
        print(said.getvalue(), end="", flush=True)
        if isinstance(error, subprocess.CalledProcessError) and error.output:
            print(error.output if isinstance(error.output, str) else error.output.decode(errors="replace"))
        raise
    return python


def ensure_venv(venv_dir: Path = VENV) -> Path:
    """Make ``venv_dir`` (``.venv``) and install the whole workspace with its development tools; its python."""
    python = venv_dir / BIN.name / PYTHON.name
    stamp = venv_dir / STAMP.name
    wanted = digest_of(INSTALL_INPUTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    make_venv(venv_dir)
    run(python, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(python, "-m", "pip", "install", "--quiet", "-r", "requirements-dev.txt")
    stamp.write_text(wanted)
    return python


def ensure_demo_venv() -> None:
    """Make ``.venv`` with only what the demo runs (nothing when the full install is current)."""
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == digest_of(INSTALL_INPUTS):
        return
    wanted = digest_of([f"{package}/pyproject.toml".removeprefix("./") for package in DEMO_PACKAGES])
    if PYTHON.exists() and DEMO_STAMP.exists() and DEMO_STAMP.read_text() == wanted:
        return
    make_venv(VENV)
    editable = [argument for package in DEMO_PACKAGES for argument in ("-e", package)]
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *editable)
    DEMO_STAMP.write_text(wanted)


def postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


def ensure_servers() -> None:
    missing = [package for binary, package in DEBIAN_PACKAGES.items() if not shutil.which(binary)]
    if postgres_bin() is None:
        missing.append(POSTGRES_PACKAGE)
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"the tests need {', '.join(missing)}: install them (Debian: apt-get install {' '.join(missing)})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)
    # The tests start their own servers on loopback; the packaged services are not needed.
    subprocess.run(["service", "redis-server", "stop"], capture_output=True)


def task_demo(args: list[str]) -> None:
    ensure_demo_venv()
    run(BIN / "paycore", "demo", *args)


def task_test(args: list[str]) -> None:
    ensure_venv()
    ensure_servers()
    env = dict(os.environ)
    bindir = postgres_bin()
    if bindir is not None:
        env["PATH"] = f"{env.get('PATH', '')}{os.pathsep}{bindir}"
    run(PYTHON, "-m", "pytest", *args, env=env)


def task_lint(args: list[str]) -> None:
    ensure_venv()
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")


def task_docs(args: list[str]) -> None:
    ensure_venv()
    run(PYTHON, "-m", "mkdocs", "build", "--strict", *args)


def python_version(python: str | Path) -> tuple[int, int] | None:
    """The ``(major, minor)`` version ``python`` really runs, or ``None`` when it does not run.

    A pyenv shim such as ``python3.12`` is on PATH even when no selected pyenv
    version provides it; asking the interpreter is the only sure answer.
    """
    code = "import sys; print(*sys.version_info[:2])"
    try:
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
        major, minor = map(int, done.stdout.split())
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return (major, minor) if done.returncode == 0 else None


def find_bench_python() -> Path | None:
    """A Python >= 3.12 on this machine: ``python3.12`` or ``python3.13`` on PATH, else a pyenv version."""
    on_path = [Path(found) for minor in (12, 13) if (found := shutil.which(f"python3.{minor}"))]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for candidate in [*on_path, *sorted(pyenv.glob("3.*/bin/python3"))]:
        if (python_version(candidate) or (0, 0)) >= BENCH_PYTHON:
            return candidate
    return None


def ensure_bench_venv() -> Path:
    """Make and install the venv the benchmarks run on, on Python >= 3.12 when there is one; return its python.

    ``.venv`` when it runs Python >= 3.12 (before it exists: when ``dev.py``
    does); else ``.venv-bench``, made with :func:`find_bench_python`'s
    interpreter (once: an existing ``.venv-bench`` on Python >= 3.12 with pip is kept);
    else, with no such Python, ``.venv``.
    """
    if (python_version(PYTHON) or sys.version_info[:2]) >= BENCH_PYTHON:
        return ensure_venv()
    made = BENCH_VENV / BIN.name / PYTHON.name
    if (python_version(made) or (0, 0)) < BENCH_PYTHON or not has_pip(made):
        base = find_bench_python()
        if base is None:
            print("(no Python >= 3.12 found: the benchmarks run on .venv, without the peer)", flush=True)
            return ensure_venv()
        run(base, "-m", "venv", "--clear", BENCH_VENV)
    return ensure_venv(BENCH_VENV)


def install_bench_peers(python: Path) -> None:
    """Install the peers the benchmarks compare with, if the package index has them; never fail for it."""
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", BENCH_REQUIREMENTS],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        print(f"(benchmark peers not installed: {reason}; the table's peer rows say so)", flush=True)


def task_bench(args: list[str]) -> None:
    """``benchmarks/bench.py`` (quick mode unless ``--full``) on Python >= 3.12, with the peer and the servers."""
    python = ensure_bench_venv()
    ensure_servers()
    install_bench_peers(python)
    env = dict(os.environ)
    bindir = postgres_bin()
    if bindir is not None:
        env["PATH"] = f"{env.get('PATH', '')}{os.pathsep}{bindir}"
    mode = [] if "--full" in args or "--quick" in args else ["--quick"]
    # The other scripts in benchmarks/ (and */*/benchmarks/) still run on their own: python benchmarks/<name>.py
    run(python, "benchmarks/bench.py", *mode, *args, env=env)


TASKS = {"demo": task_demo, "test": task_test, "lint": task_lint, "docs": task_docs, "bench": task_bench}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    try:
        TASKS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)


if __name__ == "__main__":
    main()
