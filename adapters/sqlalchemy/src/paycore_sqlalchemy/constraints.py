"""Which constraint a failed statement broke, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import exc

__all__ = ["is_check_violation", "violated"]


def violated(error: exc.IntegrityError) -> str:
    """A lower-case description of the broken constraint: its name (PostgreSQL) or columns (SQLite)."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None) if diag is not None else None
    if name:
        return str(name).lower()
    return str(orig).lower()


def is_check_violation(error: exc.IntegrityError) -> bool:
    """True when a ``CHECK`` constraint (a negative amount) was broken."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None)
    return sqlstate == "23514" or "check constraint failed" in str(orig).lower()
