"""The Django app configuration of paycore (app label ``paycore_django``)."""

from __future__ import annotations

import sys
from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

__all__ = ["PaycoreDjangoConfig"]


class PaycoreDjangoConfig(AppConfig):
    """Add ``"paycore_django"`` to ``INSTALLED_APPS``; payments are then kept in the project's database."""

    name = "paycore_django"
    label = "paycore_django"
    verbose_name = _("Payments")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks; forget the process's flow whenever ``PAYCORE`` or
        ``PAYCORE_DJANGO`` settings change (``override_settings`` in tests)."""
        import importlib.util

        from django.core.signals import setting_changed

        if importlib.util.find_spec("paycore_django.checks") is not None:
            import paycore_django.checks  # noqa: F401 (registers the checks)
        setting_changed.connect(_reset_on_setting_change, dispatch_uid="paycore_django.reset_flow")


def _reset_on_setting_change(*, setting: str, **kwargs: Any) -> None:
    """Forget the process's flows when ``PAYCORE`` or ``PAYCORE_DJANGO`` changes (imports the flow only then)."""
    if setting in ("PAYCORE", "PAYCORE_DJANGO") and "paycore_django.conf" in sys.modules:
        from paycore_django.conf import reset

        reset()
