"""Print, as a Markdown table, the versions the compatibility sessions actually installed.

    nox -s lowest newest django
    python tools/resolved_versions.py            # the table for docs/compatibility.md

Each nox session of the matrix writes what it installed to ``.nox/resolved/<session>.txt``
(one ``name==version`` a line); this reads them back and shows the packages the
workspace declares, one column per session.
"""

from __future__ import annotations

import sys
from pathlib import Path

RESOLVED = Path(__file__).resolve().parent.parent / ".nox" / "resolved"
DECLARED = (
    "pluggy",
    "attrs",
    "cattrs",
    "transitions",
    "anyio",
    "trio",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "redis",
    "django",
    "pytest-django",
    "httpx",
    "uvicorn",
    "hypercorn",
    "stripe",
    "standardwebhooks",
    "playwright",
    "pytest",
)


def read_pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of one session's file, by lower-cased name."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[name.strip().lower()] = version.strip()
    return pins


def table(sessions: dict[str, dict[str, str]]) -> str:
    """A Markdown table: a row per declared package, a column per session (``-`` where not installed)."""
    names = sorted(sessions)
    lines = ["| package | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for package in DECLARED:
        row = [sessions[name].get(package, "-") for name in names]
        if any(version != "-" for version in row):
            lines.append(f"| {package} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the table of the sessions whose names start with one of ``argv`` (all when none is given)."""
    files = sorted(RESOLVED.glob("*.txt")) if RESOLVED.is_dir() else []
    chosen = {path.stem: read_pins(path) for path in files if not argv or path.stem.startswith(tuple(argv))}
    if not chosen:
        print(f"no resolved versions in {RESOLVED}: run the nox sessions first", file=sys.stderr)
        return 1
    print(table(chosen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
