"""The Django app configuration of the cash drawers (app label ``paycore_cash``)."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["PaycoreCashConfig"]


class PaycoreCashConfig(AppConfig):  # type: ignore[misc]
    """Add ``"paycore_cash.backends.django"`` to ``INSTALLED_APPS``: drawers are then kept in the project's database."""

    name = "paycore_cash.backends.django"
    label = "paycore_cash"
    verbose_name = "Cash drawers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks (:mod:`paycore_cash.backends.django.checks`)."""
        from paycore_cash.backends.django import checks  # noqa: F401 (registers the checks)
