"""``paycore db``: apply the migrations of every SQL schema and ask where a database stands.

::

    paycore db upgrade [--url URL]     # create or upgrade the tables (the adapter's and every plugin's)
    paycore db current [--url URL]     # the schema revisions the database is at
    paycore db check   [--url URL]     # exit 1 if the tables differ from what the code expects

The schemas are this adapter's and those every installed plugin registers
through ``paycore_sqlalchemy_schemas`` (the cash plugin's drawer tables).

Without ``--url``, the URL is the repository of ``--config FILE`` (given to
``paycore`` or to ``db ACTION``) or of the ``PAYCORE_*`` environment (``PAYCORE_REPOSITORY``, ``PAYCORE_CONFIG``), and
failing those the embedded default ``sqlite:///paycore.db``. A repository configured of another type (``memory``,
``django``) is refused: its tables, if it has any, are not this command's.
"""

from __future__ import annotations

import argparse
import sys
from typing import Final

from paycore.errors import ConfigurationError, PaycoreError
from paycore_sqlalchemy.settings import check_database_url

__all__ = ["DEFAULT_URL", "HELP", "check_revision", "configure", "resolve_url", "run"]

HELP: Final = "create or upgrade the SQL tables (the migrations of paycore-sqlalchemy and its plugins)"
DEFAULT_URL: Final = "sqlite:///paycore.db"
"""The embedded default database of the command line and the demo."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``upgrade``, ``current`` and ``check`` with their options."""
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    for name, text in (
        ("upgrade", "apply every migration not applied yet"),
        ("current", "print the schema revisions the database is at"),
        ("check", "compare the database's tables with the code's; exit 1 on any difference"),
    ):
        action = actions.add_parser(name, help=text, description=text)
        action.add_argument("--url", dest="db_url", help=f"database URL (default: configured, or {DEFAULT_URL})")
        action.add_argument("--config", dest="db_config", help="a paycore TOML file to take the repository URL from")
        if name == "upgrade":
            action.add_argument(
                "--revision", dest="db_revision", default="heads", help="target revision (heads: every schema's head)"
            )


def resolve_url(args: argparse.Namespace) -> str:
    """The database URL the command acts on; an empty ``--url`` (an unset ``"$DATABASE_URL"``) is refused."""
    url = getattr(args, "db_url", None)
    if url is not None:
        if not str(url).strip():
            raise ConfigurationError(
                "--url is empty (an unset variable?): give a database URL such as 'sqlite:///paycore.db', "
                "or leave --url out to use the configured repository"
            )
        return check_database_url(str(url), "--url")
    from paycore.config import load_config
    from paycore_sqlalchemy.settings import url_setting

    config = load_config(getattr(args, "db_config", None) or getattr(args, "config", None))
    repository = config.repository
    # A repository given by URL has no type until the plugins resolve it: its URL is the database.
    if repository.type == "sqlalchemy" or (repository.type is None and "url" in repository.settings):
        return check_database_url(url_setting(repository.settings, "repository"), "the configured repository")
    if repository.type is not None:  # another adapter's storage: a SQLite file of its own would be no help
        django = " (paycore's Django tables are migrated by `manage.py migrate`)" if repository.type == "django" else ""
        raise ConfigurationError(
            f"the configured repository is of type {repository.type!r}, which `paycore db` does not migrate"
            f"{django}: give --url to act on a SQL database"
        )
    return DEFAULT_URL


def _revisions(revisions: tuple[str, ...], none: str = "none") -> str:
    return ", ".join(revisions) or none


def check_revision(revision: str) -> None:
    """Refuse, before the database is opened, an upgrade target that no installed schema has.

    A relative target (``+1``, ``0003+1``) is left to Alembic: it is read against the database's revisions.
    """
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from paycore_sqlalchemy import migrate

    if not revision.strip():
        raise ConfigurationError("--revision is empty: give a revision, or 'heads' (every schema's head)")
    if "+" in revision or revision in ("head", "heads"):
        return
    try:
        ScriptDirectory.from_config(migrate.alembic_config()).get_revisions(revision)
    except CommandError as error:
        raise ConfigurationError(
            f"--revision {revision!r} is no revision of the installed schemas ({error}); "
            f"the heads are {_revisions(migrate.head_revisions())}"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Carry out ``paycore db ACTION``; return the exit status."""
    from alembic.util import CommandError

    from paycore_sqlalchemy import migrate
    from paycore_sqlalchemy.engine import safe_url

    try:
        url = resolve_url(args)
        shown = safe_url(url)
        if args.db_action == "upgrade":
            check_revision(args.db_revision)
            before, after = migrate.upgrade(url, args.db_revision)
            if before == after:
                print(f"{shown}: already at revision {_revisions(after)}")
            else:
                print(f"{shown}: upgraded from {_revisions(before, 'empty')} to {_revisions(after)}")
            return 0
        if args.db_action == "current":
            at, ahead = migrate.standing(url)
            heads = migrate.head_revisions()
            current = set(heads) <= set(at)
            state = "up to date" if current else f"behind heads {_revisions(heads)}: run `paycore db upgrade`"
            if ahead:
                current = False
                state = (
                    f"ahead of this code: {_revisions(tuple(ahead))} belong to a newer paycore-sqlalchemy or to a "
                    "plugin not installed here; do not upgrade it with this code"
                )
            print(f"{shown}: revision {_revisions(at, 'none (empty database)')} ({state})")
            return 0 if current else 1
        differences = migrate.drift(url)
        if differences:
            print(f"{shown}: the tables differ from the code:")
            for difference in differences:
                print(f"  {difference}")
            return 1
        print(f"{shown}: tables match the code")
        return 0
    except PaycoreError as error:
        print(f"paycore db: {error}", file=sys.stderr)
        return 2
    except CommandError as error:  # Alembic refused the command (a relative --revision it cannot reach)
        print(f"paycore db: {args.db_action} failed: {error}", file=sys.stderr)
        return 2
