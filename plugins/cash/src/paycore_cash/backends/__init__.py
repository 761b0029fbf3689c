"""Drawer storage for each storage backend: the cash plugin owns its storage, as a Django app owns its models.

A repository says which family it belongs to with a class attribute
``storage_backend`` (``"memory"``, ``"sqlalchemy"``, ``"django"``); the cash
plugin keeps drawer sessions beside it with its own implementation for that
family, imported only when asked for:

============  =======================================================  ==========================
backend       implementation                                           needs
============  =======================================================  ==========================
memory        :mod:`paycore_cash.backends.memory`                      nothing more
sqlalchemy    :mod:`paycore_cash.backends.sql` (tables: ``cash``       ``paycore-cash[sqlalchemy]``
              schema of the SQL adapter)
django        ``paycore_cash.backends.django`` (a Django app)          ``paycore-cash[django]``
============  =======================================================  ==========================

Each entry names a callable that takes the repository and returns its
:class:`~paycore_cash.storage.DrawerStorage`. A package that adds a backend of
its own (a repository on another database) registers one through the cash
plugin's ``paycore_cash_drawer_backends`` hook; no storage adapter imports the
cash plugin.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Final

import pluggy

from paycore.errors import ConfigurationError
from paycore_cash.storage import DrawerStorage

__all__ = ["BUILT_IN", "EXTRAS", "DrawerStorageFactory", "backend_of", "drawer_storage", "registered_backends"]

DrawerStorageFactory = Callable[[Any], DrawerStorage]
"""Builds (or finds) the drawer storage beside a repository of one backend."""

BUILT_IN: Final[dict[str, str]] = {
    "memory": "paycore_cash.backends.memory:storage_for",
    "sqlalchemy": "paycore_cash.backends.sql:storage_for",
    "django": "paycore_cash.backends.django.storage:DjangoDrawerStorage",
}
"""``storage_backend`` -> ``module:callable`` of the cash plugin's own implementation."""

EXTRAS: Final[dict[str, str]] = {"sqlalchemy": "paycore-cash[sqlalchemy]", "django": "paycore-cash[django]"}
"""What to install for a backend whose implementation needs more than the cash plugin."""


def _describe(repository: object) -> str:
    kind = type(repository)
    return f"{kind.__module__}.{kind.__qualname__}"


def backend_of(repository: object) -> str | None:
    """The ``storage_backend`` a repository's class declares (``None`` if it declares none)."""
    backend = getattr(type(repository), "storage_backend", None)
    return backend if isinstance(backend, str) and backend else None


def registered_backends(plugin_manager: pluggy.PluginManager | None) -> dict[str, DrawerStorageFactory]:
    """The backends plugins add through ``paycore_cash_drawer_backends``; a clash is a ConfigurationError."""
    found: dict[str, DrawerStorageFactory] = {}
    hook = None if plugin_manager is None else getattr(plugin_manager.hook, "paycore_cash_drawer_backends", None)
    if hook is None:
        return found

    def register(backend: str, factory: DrawerStorageFactory) -> None:
        if not isinstance(backend, str) or not backend or not callable(factory):
            raise ConfigurationError(
                f"paycore_cash_drawer_backends: register(backend, factory) needs a backend name and a callable, "
                f"not {backend!r} and {factory!r}"
            )
        if backend in BUILT_IN or backend in found:
            raise ConfigurationError(
                f"drawer storage for backend {backend!r} is registered twice; the cash plugin has "
                f"{', '.join(sorted(BUILT_IN))} built in"
            )
        found[backend] = factory

    hook(register=register)
    return found


def _load(backend: str, target: str, repository: object) -> DrawerStorageFactory:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = EXTRAS.get(backend, "paycore-cash")
        raise ConfigurationError(
            f"cash drawers beside the repository {_describe(repository)} (storage_backend {backend!r}) need "
            f"{module_name}, which cannot be imported ({error}); install {extra}"
        ) from error
    factory: DrawerStorageFactory = getattr(module, attribute)
    return factory


_PROTOCOL_METHODS: Final = tuple(sorted(name for name in vars(DrawerStorage) if not name.startswith("_")))
"""The methods of :class:`~paycore_cash.storage.DrawerStorage` a drawer storage must have."""


def drawer_storage(plugin_manager: pluggy.PluginManager | None, repository: object) -> DrawerStorage:
    """The drawer storage beside ``repository``, chosen by its ``storage_backend``.

    :class:`ConfigurationError` (naming the repository) when the repository
    declares no backend, when no implementation is known for its backend, or
    when the implementation needs a package that is not installed.
    """
    if repository is None:
        raise ConfigurationError(
            "cash drawers need the flow's repository; build the cash provider through PaymentFlow, not by hand"
        )
    backend = backend_of(repository)
    extra = registered_backends(plugin_manager)
    if backend is None or (backend not in BUILT_IN and backend not in extra):
        known = ", ".join(sorted({*BUILT_IN, *extra}))
        said = "declares no storage_backend" if backend is None else f"has storage_backend {backend!r}"
        raise ConfigurationError(
            f"no cash-drawer sessions can be kept beside the repository {_describe(repository)}: it {said}; "
            f"the cash plugin keeps drawers beside repositories of the backends {known} "
            "(another backend registers its drawer storage through the paycore_cash_drawer_backends hook)"
        )
    factory = extra[backend] if backend in extra else _load(backend, BUILT_IN[backend], repository)
    storage = factory(repository)
    if not isinstance(storage, DrawerStorage):
        lacking = ", ".join(name for name in _PROTOCOL_METHODS if not callable(getattr(storage, name, None)))
        raise ConfigurationError(
            f"the drawer storage for backend {backend!r} is a {type(storage).__name__}, "
            f"which lacks methods of paycore_cash.storage.DrawerStorage: {lacking}"
        )
    return storage
