"""System checks of the cash drawers' Django app (``manage.py check``), with stable ids.

=========================  ===================================================================
``paycore_cash.W001``      the drawers' migrations are not applied (``check --database default``)
=========================  ===================================================================

Registered when the app is ready (:class:`~paycore_cash.backends.django.apps.PaycoreCashConfig`).
A project that enables the cash provider without this app in ``INSTALLED_APPS``
is told by the Django adapter's ``paycore_django.E005``, which builds the
providers beside the flow's Django repository as the flow does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from django.apps import AppConfig
from django.core.checks import CheckMessage, Tags, register

from paycore_django.checks import migration_warnings

__all__ = ["APP_LABEL", "check_migrations"]

APP_LABEL: Final = "paycore_cash"
"""The app label of the cash drawers' Django app."""


@register(Tags.database)
def check_migrations(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W001: a database of the check lacks migrations of ``paycore_cash`` (the drawers' tables)."""
    return migration_warnings(APP_LABEL, databases, f"{APP_LABEL}.W001")
