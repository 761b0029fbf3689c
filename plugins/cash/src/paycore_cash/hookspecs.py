"""The hook the cash plugin adds to paycore (through ``paycore_addhooks``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paycore.hookspecs import hookspec

if TYPE_CHECKING:
    from paycore.secrets import Settings
    from paycore_cash.storage import DrawerStorage

__all__ = ["paycore_cash_drawer_storage"]


@hookspec(firstresult=True)
def paycore_cash_drawer_storage(repository: object, settings: Settings) -> DrawerStorage | None:
    """Return drawer storage living beside ``repository`` (the flow's configured
    repository), or ``None`` if this adapter does not own that repository.

    ``settings`` are the settings of the cash provider that asks (its table
    in the configuration; empty when none is enabled); most adapters ignore
    them. The cash plugin keeps the answer per repository object, so the
    provider and :class:`~paycore_cash.drawers.CashDrawers` share one storage. An adapter implements it without
    importing ``paycore_cash``, so it loads whether or not the cash plugin is
    installed::

        @hookimpl(optionalhook=True)
        def paycore_cash_drawer_storage(repository, settings):
            if not isinstance(repository, MyRepository):
                return None
            from my_adapter.drawers import MyDrawerStorage   # imports paycore_cash lazily
            return MyDrawerStorage(repository)
    """
