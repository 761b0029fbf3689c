"""The ``cash`` plugin: the cash provider, its storage hooks, ``paycore drawer`` and demo steps."""

from __future__ import annotations

from typing import Any

import pluggy

from paycore import hookimpl
from paycore.hookspecs import CommandRegistrar, DemoStepRegistrar, ProviderRegistrar, ReportSectionRegistrar
from paycore_cash import hookspecs
from paycore_cash.provider import CashProvider


@hookimpl
def paycore_addhooks(plugin_manager: pluggy.PluginManager) -> None:
    """Add ``paycore_cash_drawer_backends``, through which other packages add drawer storage backends."""
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl(optionalhook=True)
def paycore_sqlalchemy_schemas(register: Any) -> None:
    """Give the SQL adapter the drawer tables and their migrations (branch ``cash``).

    Called only when the SQL adapter is installed, so SQLAlchemy is imported only then.
    """
    from paycore_cash.backends.sql_schema import CASH_SCHEMA

    register(CASH_SCHEMA)


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


@hookimpl
def paycore_report_sections(register: ReportSectionRegistrar) -> None:
    """Add the drawer sessions of the day to the day report."""
    from paycore_cash.report_section import register_section

    register_section(register)
