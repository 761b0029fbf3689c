"""The ``paycore`` command: plugins, configuration checks, the demo, and plugin subcommands."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import anyio

from paycore import __version__, cli_payments, fsm
from paycore.config import PaycoreConfig, load_config
from paycore.errors import PaycoreError, PluginLoadError
from paycore.hookcalls import describe_failure
from paycore.plugins import Registry, collect_registry, create_plugin_manager, plugin_infos

__all__ = ["OWN_CONFIG_COMMANDS", "build_parser", "main"]


def _plugins(args: argparse.Namespace) -> int:
    manager, registry = args.plugin_manager, args.registry  # what the command line itself loaded
    print(f"paycore {__version__}")
    for info in plugin_infos(manager):
        origin = f"{info.distribution} {info.version}" if info.distribution else "registered in code"
        provided = sorted(f"{kind} {name}" for (kind, name), plugin in registry.origins.items() if plugin == info.name)
        print(f"  {info.name:<12} {origin:<32} {', '.join(provided)}")
    return 0


def _origin(config: object) -> str:
    """Where the configuration came from, never its contents (they may hold secrets): a file, or code."""
    if config is None:
        path = os.environ.get("PAYCORE_CONFIG")  # what load_config reads when no configuration is given
        return f"{path} (PAYCORE_CONFIG; PAYCORE_* applied)" if path else "embedded default (PAYCORE_* applied)"
    return str(config) if isinstance(config, str | os.PathLike) else "the configuration given in code"


def _check(args: argparse.Namespace) -> int:
    from paycore.flow import PaymentFlow

    flow = PaymentFlow.from_config(args.config, plugins=getattr(args, "plugins", ()))
    config = flow.config
    print(f"configuration OK: {getattr(args, 'config_origin', None) or _origin(args.config)}")
    print(f"  repository   {config.repository.type} {config.repository.settings!r}")
    for store in config.idempotency:
        print(f"  idempotency  {store.type} {store.settings!r}")
    scopes = [(None, config.providers)] + [(name, t.providers) for name, t in config.tenants.items()]
    for tenant, providers in scopes:
        if not providers and tenant is None:
            continue
        print(f"  tenant {tenant or '(none)'}:")
        for code, provider in providers.items():
            print(f"    {code:<12} type {provider.type:<10} {provider.settings!r}")
    anyio.run(flow.aclose)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from paycore.config_sources import read_toml
    from paycore.demo import run_demo

    mapping = args.config if isinstance(args.config, Mapping) else read_toml(args.config) if args.config else None
    return int(cli_payments.run_on_backend(args.backend, run_demo, mapping))


def _states(args: argparse.Namespace) -> int:
    print(fsm.mermaid(), end="")
    return 0


def build_parser(registry: Registry) -> argparse.ArgumentParser:
    """The argument parser, with every plugin's subcommands."""
    parser = argparse.ArgumentParser(prog="paycore", description="paycore: payments for any Python application.")
    parser.add_argument("--version", action="version", version=f"paycore {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", default=None, help="a TOML configuration (default: PAYCORE_CONFIG or in-memory)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help, run in (
        ("plugins", "list installed plugins and what they provide", _plugins),
        ("check", "check a configuration and show what it enables", _check),
        ("states", "print the payment state machine (Mermaid)", _states),
    ):
        _config_option(commands.add_parser(name, help=help)).set_defaults(run=run)
    demo = _config_option(commands.add_parser("demo", help="run a restaurant's day end to end on the embedded default"))
    demo.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    demo.set_defaults(run=_demo)
    report = commands.add_parser("report", help="a tenant's day: payments, refunds, reviews, drawers")
    cli_payments.configure_report(report)
    report.set_defaults(run=cli_payments.run_report)
    payments = commands.add_parser("payments", help="list, show, refresh, refund and resolve payments")
    cli_payments.configure_payments(payments)
    payments.set_defaults(run=cli_payments.run_payments)
    for command in registry.commands.values():
        said = io.StringIO()  # what argparse prints when the plugin calls parser.error() while configuring
        try:
            with contextlib.redirect_stderr(said):
                sub = commands.add_parser(command.name, help=f"{command.help} [{command.plugin}]")
                command.configure(sub)
            with contextlib.suppress(argparse.ArgumentError):  # a plugin's own --config is the command's to read
                _config_option(sub)
        except (Exception, SystemExit) as error:  # a name taken, a clashing option, a configure that fails or exits
            lines = said.getvalue().strip().splitlines()
            raise PluginLoadError(
                f"plugin {command.plugin!r} registered the command {command.name!r}, which cannot be set up: "
                f"{lines[-1] if lines else describe_failure(error)}; block the plugin with plugins_blocked = [...] "
                "in the configuration"
            ) from error
        sys.stderr.write(said.getvalue())
        sub.set_defaults(run=command.run)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` (a subcommand's) given ``--config`` after the subcommand, as ``paycore payments list`` has it:
    :func:`main` puts it in ``args.config``, where it overrides a ``--config`` before the subcommand."""
    parser.add_argument(
        "--config", dest="command_config", metavar="PATH", help="TOML configuration (default: --config before it)"
    )
    return parser


Source = PaycoreConfig | Mapping[str, Any] | str | None
"""A configuration as the command line is given it: ready, a mapping, a TOML file's path, or none."""


def _chosen(argv: Sequence[str] | None, config: Source) -> Source:
    """The configuration the command runs on, as given: ``--config`` anywhere in ``argv``, else ``config``, else the
    file ``PAYCORE_CONFIG`` names (``None``: the embedded default). Read before any plugin loads."""
    given = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    given.add_argument("--config", default=None)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # a mistake in the arguments is the command's to tell
            found, _ = given.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    except (argparse.ArgumentError, SystemExit):
        found = argparse.Namespace(config=None)
    if found.config is not None:
        return str(found.config)
    return config if config is not None else os.environ.get("PAYCORE_CONFIG") or None


def _read_once(chosen: Source) -> dict[str, Any] | None:
    """A configuration file that is not a regular file (a pipe: ``--config <(...)``) read now, once: read a second
    time it would be empty, and the command would run on the embedded default. ``None`` for any other source."""
    if not isinstance(chosen, str) or not os.path.exists(chosen) or os.path.isfile(chosen):
        return None
    if os.path.isdir(chosen):
        return None  # the command says what is wrong with it
    from paycore.config_sources import read_toml

    return read_toml(chosen)


def _blocked(source: Source) -> tuple[tuple[str, ...], str | None]:
    """The entry points blocked (``plugins_blocked``) by the configuration ``source``, read before any plugin loads,
    so that a plugin that breaks every command can be blocked as the error says; with what is wrong with that
    configuration when it cannot be read (the command says it again, if a plugin does not fail first)."""
    try:
        return load_config(source).plugins_blocked, None
    except PaycoreError as error:
        return (), str(error)


OWN_CONFIG_COMMANDS: Final = frozenset({"demo"})
"""Subcommands that run on a configuration of their own, never on one given to :func:`main`."""


def main(
    argv: Sequence[str] | None = None,
    *,
    config: PaycoreConfig | Mapping[str, Any] | str | None = None,
    plugins: Iterable[object] = (),
    prog: str = "paycore",
) -> int:
    """Run the command line; return its exit status.

    A framework embeds the command with its own configuration and plugins:
    ``config`` is used when ``--config`` is not given (``manage.py paycore``
    passes the project's ``PAYCORE``), and ``plugins`` are registered beside
    the installed ones; subcommands find them as ``args.config`` and ``args.plugins``.
    """
    extra = tuple(plugins)
    try:
        chosen = _chosen(argv, config)
        piped = _read_once(chosen)
        blocked, unreadable = _blocked(chosen if piped is None else piped)
        try:
            manager = create_plugin_manager(extra, blocked=blocked)
        except PluginLoadError as error:
            if unreadable is None:
                raise
            raise PluginLoadError(f"{error} (and the configuration could not be read: {unreadable})") from error
        registry = collect_registry(manager)
        parser = build_parser(registry)
        parser.prog = prog
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            parser.print_help()
            return 2
        if getattr(args, "command_config", None) is not None:  # --config after the subcommand: the one that counts
            args.config = args.command_config
        if args.config is None and config is not None and args.command not in OWN_CONFIG_COMMANDS:
            args.config = config
        from_environment = args.config is None and config is None and args.command not in OWN_CONFIG_COMMANDS
        if piped is not None and (args.config == chosen or from_environment):
            origin = _origin(args.config)  # the pipe's name; its contents, read once, stand in for it
            args.config = piped
            for name, value in list(vars(args).items()):  # a subcommand's own --config naming it too (a plugin's):
                if value == chosen:  # the pipe read a second time is empty, and would run on the embedded default
                    setattr(args, name, piped)
            args.config_origin = origin  # set after: the name, never the contents (secrets and all), is shown
        args.plugins, args.plugin_manager, args.registry = extra, manager, registry
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # here, where a reader that stopped early (``| head``) is caught, not at exit
        return status
    except PaycoreError as error:
        print(f"paycore: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _quiet_stdout()
        return SIGPIPE_STATUS


SIGPIPE_STATUS: Final = 141
"""The exit status when the reader of the output went away: a shell's for a command ended by SIGPIPE."""


def _quiet_stdout() -> None:
    """Point standard output at the null device, so flushing what is left at exit raises nothing more."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # not a file (a caller's buffer): nothing to flush at exit
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
