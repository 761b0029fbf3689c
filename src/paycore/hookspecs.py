"""Every hook paycore calls, in one place. Plugins implement them with :data:`hookimpl`.

Registration hooks receive a ``register`` callable and call it once for each
thing they provide; the core keeps the registry. pluggy calls hooks
synchronously: a hook registers objects or returns a value; the async work
happens on the registered objects. ``paycore_payment_event`` and
``paycore_validate_payment`` may return an awaitable, which the flow awaits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import argparse

    from paycore.providers import Provider
    from paycore.records import Payment, PaymentEvent
    from paycore.secrets import Settings
    from paycore.storage import IdempotencyStore, PaymentRepository

__all__ = [
    "AdapterContext",
    "CommandRegistrar",
    "DemoStepRegistrar",
    "IdempotencyStoreFactory",
    "IdempotencyStoreRegistrar",
    "ProviderRegistrar",
    "ReportSectionRegistrar",
    "RepositoryFactory",
    "RepositoryRegistrar",
    "hookimpl",
    "hookspec",
]

PROJECT_NAME = "paycore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks a hook specification of the ``paycore`` project."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marks a plugin's implementation of a paycore hook: ``@paycore.hookimpl``."""


class AdapterContext(Protocol):
    """What a repository or store factory is called with."""

    @property
    def settings(self) -> Settings:
        """The adapter's settings from the configuration (``url``, ``prefix``...)."""
        ...

    @property
    def plugin_manager(self) -> pluggy.PluginManager:
        """The flow's plugin manager (to call an optional hook of another plugin)."""
        ...


RepositoryFactory = Callable[["AdapterContext"], "PaymentRepository"]
"""Builds a repository from its configuration."""
IdempotencyStoreFactory = Callable[["AdapterContext"], "IdempotencyStore"]
"""Builds an idempotency store from its configuration."""


class ProviderRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_register_providers`."""

    def __call__(self, provider_class: type[Provider]) -> None:
        """Register a ``Provider`` subclass under its ``name``."""


class RepositoryRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_register_repositories`."""

    def __call__(
        self,
        name: str,
        factory: RepositoryFactory,
        *,
        url_schemes: Iterable[str] = (),
        embedded_default: bool = False,
    ) -> None:
        """Register ``factory`` as repository type ``name`` (``"memory"``, ``"sqlalchemy"``).

        ``url_schemes`` are the URL schemes it serves: ``repository = "sqlite:///x.db"``
        selects the adapter that declared ``"sqlite"`` (a scheme with a driver,
        ``postgresql+psycopg``, is matched whole first, then by the part before ``+``).
        ``embedded_default=True`` offers it as the repository used when the
        configuration names none.
        """


class IdempotencyStoreRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_register_idempotency_stores`."""

    def __call__(
        self,
        name: str,
        factory: IdempotencyStoreFactory,
        *,
        url_schemes: Iterable[str] = (),
        embedded_default: bool = False,
    ) -> None:
        """Register ``factory`` as idempotency store type ``name``.

        ``url_schemes`` and ``embedded_default`` mean what they mean for
        :class:`RepositoryRegistrar`, for idempotency stores.
        """


class CommandRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_register_commands`."""

    def __call__(
        self,
        name: str,
        *,
        help: str,
        configure: Callable[[argparse.ArgumentParser], None],
        run: Callable[[argparse.Namespace], int | None],
    ) -> None:
        """Add ``paycore NAME``: ``configure`` adds its arguments, ``run`` carries it out."""


@hookspec
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register provider classes: call ``register(ProviderClass)`` for each.

    Called once when a flow's plugins are loaded. Two plugins registering the
    same provider ``name`` is an error that names both.
    """


@hookspec
def paycore_register_repositories(register: RepositoryRegistrar) -> None:
    """Register repository types: call ``register(name, factory, url_schemes=...)`` for each.

    Called once when a flow's plugins are loaded. An adapter declares here the URL
    schemes it serves and whether it can be the embedded default; the core knows
    no adapter by name.
    """


@hookspec
def paycore_register_idempotency_stores(register: IdempotencyStoreRegistrar) -> None:
    """Register idempotency store types: call ``register(name, factory, url_schemes=...)`` for each."""


@hookspec
def paycore_register_commands(register: CommandRegistrar) -> None:
    """Add subcommands to the ``paycore`` command line (``paycore drawer``, ``paycore db``)."""


@hookspec
def paycore_payment_event(event: PaymentEvent, payment: Payment) -> Awaitable[None] | None:
    """Observe a change to a payment, after it is committed.

    ``event`` is the appended :class:`~paycore.records.PaymentEvent` and
    ``payment`` the payment as committed. Called once per event, in sequence
    order. May return an awaitable. An exception (raised, or raised by the
    awaitable) is logged naming the plugin; it does not undo the change (it is
    committed already) nor keep the other observers from running.
    ``@hookimpl(wrapper=True)`` wraps the other observers' calls. A returned
    awaitable runs to its end even if the caller is cancelled; under asyncio in
    a task of its own, with a copy of the caller's context.
    """


@hookspec
def paycore_validate_payment(payment: Payment) -> Awaitable[None] | None:
    """Check a payment before it is created: amount limits, currencies, tenant rules.

    Raise :class:`~paycore.errors.PaymentRejected` (or another
    :class:`~paycore.errors.ValidationError`) to refuse it; nothing is stored
    then. Return ``None`` or ``True`` (or an awaitable of it) to let it through. Fail
    closed: any other exception, or any other value returned (``False``, a
    reason as text, an error instance), refuses the payment with a
    :class:`~paycore.errors.PaymentRejected` naming the plugin.
    """


@hookspec(historic=True)
def paycore_addhooks(plugin_manager: pluggy.PluginManager) -> None:
    """Add a plugin's own hookspecs: ``plugin_manager.add_hookspecs(my_hookspecs)``.

    Historic: a plugin registered later is still called. The SQL adapter adds
    ``paycore_sqlalchemy_schemas`` this way (plugins register their tables and
    migrations through it) and the cash plugin ``paycore_cash_drawer_backends``.
    Implement another plugin's hook with ``@hookimpl(optionalhook=True)``, so
    your plugin loads whether or not that plugin is installed.
    """


class DemoStepRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_demo_steps`."""

    def __call__(
        self,
        name: str,
        *,
        order: int,
        run: Callable[[Any], Awaitable[None]],
        providers: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Add a step to ``paycore demo``.

        Steps run by ascending ``order`` on one flow for the demo tenant;
        ``providers`` are provider tables (code -> settings with ``type``) the
        step needs enabled; ``run`` is awaited with a
        :class:`paycore.demo.DemoContext`.
        """


@hookspec
def paycore_demo_steps(register: DemoStepRegistrar) -> None:
    """Contribute steps to ``paycore demo`` (a restaurant's day on the embedded default)."""


class ReportSectionRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_report_sections`."""

    def __call__(self, name: str, *, build: Callable[[Any], Awaitable[Any]], order: int = 100) -> None:
        """Add a section to the day report (``paycore report``).

        ``build`` is awaited with a :class:`paycore.reports.ReportScope` (the
        flow, the tenant, the day and its bounds) and returns a
        :class:`paycore.reports.ReportSection`, or ``None`` when it has nothing
        to show that day. Sections appear by ascending ``order``, then ``name``.
        """


@hookspec
def paycore_report_sections(register: ReportSectionRegistrar) -> None:
    """Contribute sections to the day report (the cash plugin adds its drawer sessions)."""
