"""The ``cash`` plugin: the cash provider, its drawer-storage hook, ``paycore drawer`` and demo steps."""

from __future__ import annotations

import pluggy

from paycore import hookimpl
from paycore.hookspecs import CommandRegistrar, DemoStepRegistrar, ProviderRegistrar
from paycore_cash import hookspecs
from paycore_cash.provider import CashProvider


@hookimpl
def paycore_addhooks(plugin_manager: pluggy.PluginManager) -> None:
    """Add the ``paycore_cash_drawer_storage`` hook storage adapters answer."""
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register provider type ``cash``."""
    register(CashProvider)


@hookimpl
def paycore_register_commands(register: CommandRegistrar) -> None:
    """Add ``paycore drawer`` (open, pay-in, pay-out, close, report, list)."""
    from paycore_cash import cli

    register("drawer", help=cli.HELP, configure=cli.configure, run=cli.run)


@hookimpl
def paycore_demo_steps(register: DemoStepRegistrar) -> None:
    """Add the cash part of the demo restaurant day."""
    from paycore_cash import demo

    demo.register_steps(register)
