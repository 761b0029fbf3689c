"""paycore plugin module: the ``dummy`` provider type, ``paycore dummy serve`` and demo steps."""

from __future__ import annotations

from paycore.hookspecs import CommandRegistrar, DemoStepRegistrar, ProviderRegistrar, hookimpl
from paycore_dummy.provider import DummyProvider

__all__ = ["paycore_demo_steps", "paycore_register_commands", "paycore_register_providers"]


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register :class:`DummyProvider` as provider type ``dummy``."""
    register(DummyProvider)


@hookimpl
def paycore_register_commands(register: CommandRegistrar) -> None:
    """Add ``paycore dummy serve``."""
    from paycore_dummy import cli

    register("dummy", help="the simulated online gateway (paycore dummy serve)", configure=cli.configure, run=cli.run)


@hookimpl
def paycore_demo_steps(register: DemoStepRegistrar) -> None:
    """Add the online orders of the restaurant's day: paid through the in-process gateway."""
    from paycore_dummy.demo import register_steps

    register_steps(register)
