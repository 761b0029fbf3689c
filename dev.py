#!/usr/bin/env python3
"""Development tasks for the paycore workspace, on a machine with only Python and pip.

    python dev.py demo     run a restaurant's day end to end on the embedded default
    python dev.py test     run the whole test suite (installs what it needs first)
    python dev.py lint     ruff and mypy (strict on the core)
    python dev.py bench    the benchmarks, quick mode (add --full for the long runs)

Each task first makes ``.venv`` and installs the workspace into it, editable,
from ``requirements-dev.txt`` (skipped when nothing changed since the last
install). ``test`` also makes sure the servers the tests start are installed:
``redis-server`` and ``chromium`` from Debian's packages (with ``apt-get`` when
run as root), and PostgreSQL's server binaries.
"""

from __future__ import annotations

import hashlib
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
INSTALL_INPUTS = [
    "requirements-dev.txt",
    "pyproject.toml",
    *(str(path.relative_to(ROOT)) for path in sorted(ROOT.glob("*/*/pyproject.toml"))),
]
DEBIAN_PACKAGES = {"redis-server": "redis-server", "chromium": "chromium"}
POSTGRES_PACKAGE = "postgresql"


def run(*command: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(c) for c in command), flush=True)
    subprocess.run([str(c) for c in command], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def ensure_venv() -> None:
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        path = ROOT / name
        if path.exists():
            digest.update(name.encode() + path.read_bytes())
    wanted = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-r", "requirements-dev.txt")
    STAMP.write_text(wanted)


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
    ensure_venv()
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


def task_bench(args: list[str]) -> None:
    ensure_venv()
    ensure_servers()
    quick = [] if "--full" in args else ["--quick"]
    scripts = sorted(ROOT.glob("benchmarks/*.py")) + sorted(ROOT.glob("*/*/benchmarks/*.py"))
    for script in scripts:
        run(PYTHON, script, *quick)


TASKS = {"demo": task_demo, "test": task_test, "lint": task_lint, "bench": task_bench}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    try:
        TASKS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as error:
        sys.exit(error.returncode)


if __name__ == "__main__":
    main()
