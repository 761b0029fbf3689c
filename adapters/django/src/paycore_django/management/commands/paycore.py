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
import contextlib
import io
import sys
import threading
from typing import Any, Final

from django.core.management.base import BaseCommand, CommandError, OutputWrapper

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
        """``call_command("paycore", "check")``: a non-zero status, a mistyped option's included, raises
        :class:`CommandError` naming the words it was given.

        Given ``stdout=`` or ``stderr=`` (``call_command(..., stdout=buffer)``), the command writes there: the
        process's ``sys.stdout`` and ``sys.stderr`` point to them while it runs, one such call at a time, so
        what another thread prints meanwhile lands there too. Without them it writes where the process does."""
        words = [*args, *options.get("arguments", [])]
        given = [name for name in ("stdout", "stderr") if options.get(name) is not None]
        try:
            if not given:
                status = run_paycore(words)
            else:
                with _REDIRECTED, contextlib.ExitStack() as redirected:
                    if "stdout" in given:
                        redirected.enter_context(contextlib.redirect_stdout(_Passing(self.stdout)))
                    if "stderr" in given:
                        redirected.enter_context(contextlib.redirect_stderr(_Passing(self.stderr)))
                    status = run_paycore(words)
        except SystemExit as exited:  # argparse's refusal of the words, told on stderr already
            status = exited.code if isinstance(exited.code, int) else 1
        if status:
            raise CommandError(f"paycore {' '.join(words)} exited with status {status}", returncode=status)


_REDIRECTED: Final = threading.Lock()
"""Held while a ``call_command`` points the process's ``sys.stdout``/``sys.stderr`` to its own streams: two such
calls in two threads never interleave their redirections (which left ``sys.stdout`` pointing into a buffer)."""


class _Passing:
    """A text stream that passes what is written to a command's :class:`OutputWrapper` as it is (``print``
    writes a line's text and its ending apart: the wrapper would end each with a line of its own)."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> int:
        """Write ``text`` unchanged."""
        self._wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        """Flush the stream behind the wrapper."""
        self._wrapper.flush()

    def isatty(self) -> bool:
        """Whether the stream behind the wrapper is a terminal."""
        return bool(self._wrapper.isatty())

    def fileno(self) -> int:
        """None to give: a buffer's stream has no file descriptor (:class:`io.UnsupportedOperation`)."""
        raise io.UnsupportedOperation("fileno")
