"""The demo's restaurant day on the Django adapter, and its day report: the same exact totals as on
memory, SQLite and PostgreSQL through SQLAlchemy (``tests/test_day_report.py``), under asyncio and trio,
on Django's SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import pytest

from paycore import PaymentFlow
from paycore.demo import DEMO_TENANT
from paycore.records import utcnow
from paycore.reports import day_report
from paycore.testing.demo_day import check_demo_day_report, demo_config, run_demo_day
from paycore_django.storage import DjangoPaymentRepository

pytestmark = pytest.mark.anyio

CASH_APP: Final = "paycore_cash.backends.django"
"""The cash plugin's Django app: the demo's drawer is kept in its tables, beside the payments."""


@pytest.fixture
def cash_app(using: str) -> Iterator[None]:
    """The cash plugin's Django app installed, its tables in ``using``'s test database.

    Run with the cash plugin's tests, their conftest installed the app for the whole
    session and its tables are in every test database. Run alone, the adapter's
    project lacks it: it is installed for this test, its tables created, then dropped.
    """
    from django.apps import apps
    from django.conf import settings
    from django.core.management import call_command

    if apps.is_installed(CASH_APP):
        yield
        return
    apps.set_installed_apps([*settings.INSTALLED_APPS, CASH_APP])
    try:
        call_command("migrate", "paycore_cash", database=using, interactive=False, verbosity=0)
        try:
            yield
        finally:
            call_command("migrate", "paycore_cash", "zero", database=using, interactive=False, verbosity=0)
    finally:
        apps.unset_installed_apps()


@pytest.mark.usefixtures("cash_app")
async def test_the_demo_days_report_on_django_has_exact_totals(using: str) -> None:
    async with PaymentFlow.from_config(demo_config({"type": "django", "using": using})) as flow:
        assert isinstance(flow.repository, DjangoPaymentRepository)
        await run_demo_day(flow)
        report = await day_report(flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone="Africa/Dakar")
        other_tenant = await day_report(flow, tenant="le-baobab", day=utcnow().date())

    check_demo_day_report(report)
    assert "Captured: 53 500 XOF" in report.render()
    assert (other_tenant.payment_count, other_tenant.refund_count, other_tenant.sections) == (0, 0, ())
