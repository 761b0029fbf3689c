"""``manage.py paycore ...``: the ``paycore`` command with the project's ``PAYCORE`` settings.

Every subcommand of ``paycore`` (``check``, ``plugins``, ``states``, and those
plugins add, such as ``drawer`` or ``dummy serve``) runs as it would from the
shell, except that without ``--config`` the configuration is the Django
project's ``settings.PAYCORE``, so payments are read from and written to the
project's database::

    python manage.py paycore check
    python manage.py paycore drawer report --till T1
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from paycore.cli import main
from paycore.errors import PaycoreError

__all__ = ["Command", "run_paycore"]


def run_paycore(argv: list[str]) -> int:
    """Run ``paycore`` with ``argv``, on ``settings.PAYCORE`` unless ``--config`` is given; its exit status."""
    from paycore_django import conf

    try:
        config = conf.paycore_config()
        plugins = conf.django_options().plugins
    except PaycoreError as error:
        print(f"paycore: error: {error}", file=sys.stderr)
        return 1
    return main(argv, config=config, plugins=plugins, prog="manage.py paycore")


class Command(BaseCommand):
    """``paycore`` as a management command; its arguments are the ``paycore`` command's."""

    help = "Run the paycore command (check, plugins, states, plugin commands) on settings.PAYCORE."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Everything after ``paycore`` goes to paycore's own parser."""
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="paycore's subcommand and its options")

    def run_from_argv(self, argv: list[str]) -> None:
        """``manage.py paycore ARGS``: hand ARGS to paycore untouched, exit with its status."""
        status = run_paycore(list(argv[2:]))
        if status:
            sys.exit(status)

    def handle(self, *args: Any, **options: Any) -> None:
        """``call_command("paycore", "check")``: raise :class:`CommandError` on a non-zero status."""
        status = run_paycore([*args, *options.get("arguments", [])])
        if status:
            raise CommandError(f"paycore {' '.join(args)} exited with status {status}", returncode=status)
