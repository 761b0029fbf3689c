"""The hook the cash plugin adds to paycore (through ``paycore_addhooks``), for storage backends of other packages.

The cash plugin keeps drawers beside repositories of the backends it knows
(:mod:`paycore_cash.backends`). A package that brings another backend (a
repository whose class says ``storage_backend = "mongo"``) and wants cash
drawers beside it implements this hook; storage adapters never do, and never
import the cash plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from paycore.hookspecs import hookspec

if TYPE_CHECKING:
    from paycore_cash.storage import DrawerStorage

__all__ = ["DrawerBackendRegistrar", "paycore_cash_drawer_backends"]


class DrawerBackendRegistrar(Protocol):
    """The ``register`` given to :func:`paycore_cash_drawer_backends`."""

    def __call__(self, backend: str, factory: Callable[[Any], DrawerStorage]) -> None:
        """Keep drawers beside repositories whose ``storage_backend`` is ``backend``.

        ``factory(repository)`` returns the :class:`~paycore_cash.storage.DrawerStorage`
        beside that repository; it should return the same storage for the same
        repository object, so the cash provider and ``CashDrawers`` share it.
        """


@hookspec
def paycore_cash_drawer_backends(register: DrawerBackendRegistrar) -> None:
    """Register drawer storage for a storage backend the cash plugin does not know.

    Called each time drawer storage is looked up for a repository (when a flow
    with the cash provider is built, and by ``CashDrawers``). A backend the
    cash plugin has built in (memory, sqlalchemy, django) cannot be replaced::

        @hookimpl(optionalhook=True)
        def paycore_cash_drawer_backends(register):
            from my_adapter_cash.storage import MongoDrawerStorage
            register("mongo", MongoDrawerStorage.for_repository)

    :class:`paycore_cash.testing.DrawerStorageConformance` is the contract.
    """
