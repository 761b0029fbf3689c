"""Checks that a Django database alias can hold paycore's tables, before anything uses it."""

from __future__ import annotations

__all__ = ["check_database"]


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
