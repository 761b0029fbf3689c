"""Database aliases: checking one can hold paycore's tables, and keeping paycore's views out of request transactions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["EveryAlias", "check_database", "non_atomic_requests"]

View = TypeVar("View", bound=Callable[..., Any])


def check_database(using: object, owner: str) -> str:
    """Return ``using`` if it names a database paycore can use; raise :class:`ConfigurationError` if not.

    Django must be set up with ``paycore_django`` installed, ``using`` must be
    an alias of ``settings.DATABASES``, and ``USE_TZ`` must be on (paycore's
    times are timezone-aware UTC).
    """
    from django.apps import apps
    from django.conf import settings

    from paycore.errors import ConfigurationError

    if not settings.configured or not apps.ready:
        raise ConfigurationError(
            f"{owner}: Django is not set up; build it inside a Django project (after django.setup())"
        )
    if not apps.is_installed("paycore_django"):
        raise ConfigurationError(f"{owner}: add 'paycore_django' to INSTALLED_APPS and run migrate")
    if not isinstance(using, str) or using not in settings.DATABASES:
        known = ", ".join(repr(alias) for alias in settings.DATABASES) or "none"
        raise ConfigurationError(
            f"{owner}: 'using' must name a database of settings.DATABASES ({known}), not {using!r}"
        )
    if not settings.USE_TZ:
        raise ConfigurationError(f"{owner}: paycore stores timezone-aware times; set USE_TZ = True in your settings")
    return using


class EveryAlias(set[str]):
    """The database aliases a view is exempt from ``ATOMIC_REQUESTS`` on: every one, whatever ``DATABASES`` holds.

    Django asks ``alias in view._non_atomic_requests`` for each database with
    ``ATOMIC_REQUESTS``, when the request comes; this answers yes for any alias,
    including one added to ``settings.DATABASES`` after the view was decorated.
    ``add`` (what ``transaction.non_atomic_requests(using=...)`` calls on top) still works.
    """

    def __contains__(self, alias: object) -> bool:
        """Every alias is exempt."""
        return True

    def __repr__(self) -> str:
        return "EveryAlias()"


def non_atomic_requests(view: View) -> View:
    """Mark ``view`` to run outside any request-wide transaction, on every database (``ATOMIC_REQUESTS``).

    A bare ``@transaction.non_atomic_requests`` exempts the ``default``
    database only: an async view would be refused ("You cannot use
    ATOMIC_REQUESTS with async views") when another database has
    ``ATOMIC_REQUESTS``, and a sync one would run inside its transaction.
    """
    setattr(view, "_non_atomic_requests", EveryAlias())  # noqa: B010 (the attribute Django reads)
    return view
