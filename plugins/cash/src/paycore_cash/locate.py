"""Finding the drawer storage that lives beside a flow's repository.

The configured storage adapter answers the ``paycore_cash_drawer_storage``
hook. The answer is kept per repository object, so the cash provider and
:class:`~paycore_cash.drawers.CashDrawers` share one storage.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

import pluggy

from paycore.errors import ConfigurationError
from paycore.secrets import Settings
from paycore_cash.storage import DrawerStorage

__all__ = ["drawer_storage"]

_CACHE: weakref.WeakKeyDictionary[Any, DrawerStorage] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def drawer_storage(
    plugin_manager: pluggy.PluginManager | None, repository: Any, settings: Settings | None = None
) -> DrawerStorage:
    """The drawer storage beside ``repository``; :class:`ConfigurationError` if no adapter has one."""
    with _LOCK:
        cached = _cached(repository)
        if cached is not None:
            return cached
    if plugin_manager is None or repository is None:
        raise ConfigurationError(
            "cash drawers need the flow's plugin manager and repository; "
            "build the cash provider through PaymentFlow, not by hand"
        )
    hook = getattr(plugin_manager.hook, "paycore_cash_drawer_storage", None)
    storage: DrawerStorage | None = None
    if hook is not None:
        storage = hook(repository=repository, settings=settings or Settings(owner="cash"))
    if storage is None:
        raise ConfigurationError(
            f"no installed adapter keeps cash-drawer sessions beside the repository "
            f"{type(repository).__module__}.{type(repository).__qualname__}; use a repository whose "
            "adapter supports drawers (memory, sqlalchemy, django)"
        )
    with _LOCK:
        cached = _cached(repository)
        if cached is not None:
            return cached
        try:
            _CACHE[repository] = storage
        except TypeError:
            pass  # not weak-referenceable: the adapter's hook must keep its own answer
    return storage


def _cached(repository: Any) -> DrawerStorage | None:
    try:
        return _CACHE.get(repository)
    except TypeError:
        return None
