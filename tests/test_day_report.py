"""The day report of the demo's restaurant: exact totals, on memory and SQLite, under asyncio and trio."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paycore.demo import DEMO_TENANT, DemoContext, collect_demo_steps
from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.records import utcnow
from paycore.reports import DayReport, day_report

pytestmark = pytest.mark.anyio


def demo_config(repository: str = "memory") -> dict[str, Any]:
    """The configuration ``paycore demo`` runs on: every demo step's providers for the demo tenant."""
    providers: dict[str, Any] = {}
    for step in collect_demo_steps():
        providers.update({code: dict(table) for code, table in step.providers.items()})
    return {"repository": repository, "tenants": {DEMO_TENANT: {"providers": providers}}}


async def run_demo_day(flow: PaymentFlow) -> None:
    """Every step of ``paycore demo`` on ``flow``, quietly."""
    context = DemoContext(flow=flow, tenant=DEMO_TENANT, echo=lambda line: None)
    for step in collect_demo_steps():
        await step.run(context)


@pytest.fixture(params=["memory", "sqlite"])
async def demo_flow(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PaymentFlow]:
    """A flow that ran the demo's restaurant day, on the embedded memory store or a SQLite file."""
    repository = "memory" if request.param == "memory" else f"sqlite:///{tmp_path / 'day.db'}"
    async with PaymentFlow.from_config(demo_config(repository)) as flow:
        await run_demo_day(flow)
        yield flow


def xof(amount: str) -> Money:
    return Money.of(amount, "XOF")


async def test_the_demo_days_report_has_exact_totals(demo_flow: PaymentFlow) -> None:
    report = await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date(), timezone="Africa/Dakar")
    assert report.payment_count == 9
    assert [(t.provider, t.status, t.count, t.amount) for t in report.by_provider_status] == [
        ("cash", "partially_refunded", 1, xof("7500")),
        ("cash", "succeeded", 5, xof("26500")),
        ("wave", "failed", 1, xof("4001")),
        ("wave", "partially_refunded", 1, xof("12000")),
        ("wave", "succeeded", 1, xof("7500")),
    ]
    assert report.captured == (xof("53500"),)
    assert (report.refund_count, report.refunded) == (2, (xof("5000"),))
    assert (report.pending_refund_count, report.pending_refunds) == (0, ())
    assert report.late_confirmations == ()
    assert report.waiting_for_review == ()
    (drawers,) = report.sections
    assert (drawers.title, drawers.plugin) == ("Cash drawers", "cash")
    (till,) = drawers.rows
    assert till[0] == "T1"
    assert till[3:] == ("20 000 XOF", "34 000 XOF", "22 500 XOF", "31 500 XOF", "31 000 XOF", "-500 XOF")


async def test_another_day_or_another_tenant_reports_nothing(demo_flow: PaymentFlow) -> None:
    yesterday = utcnow().date() - timedelta(days=1)
    for report in (
        await day_report(demo_flow, tenant=DEMO_TENANT, day=yesterday),
        await day_report(demo_flow, tenant="le-baobab", day=utcnow().date()),
    ):
        assert (report.payment_count, report.by_provider_status, report.captured) == (0, (), ())
        assert report.sections == ()


async def test_the_report_renders_as_a_table_and_as_json(demo_flow: PaymentFlow) -> None:
    report = await day_report(demo_flow, tenant=DEMO_TENANT, day=utcnow().date())
    text = report.render()
    assert "Captured: 53 500 XOF" in text
    assert "Refunded (2): 5 000 XOF" in text
    assert "cash      succeeded               5  26 500 XOF" in text
    data = json.loads(report.to_json())
    assert data["day"] == utcnow().date().isoformat()
    assert data["captured"] == [{"currency": "XOF", "minor_units": 53500}]
    assert data["sections"][0]["rows"][0][0] == "T1"
    assert isinstance(report, DayReport)


@pytest.mark.parametrize(
    ("day", "zone", "wrong"), [("04/12/2026", "UTC", "04/12/2026"), ("2026-12-04", "Mars/Base", "Mars/Base")]
)
async def test_a_bad_day_or_time_zone_is_refused_naming_it(
    demo_flow: PaymentFlow, day: str, zone: str, wrong: str
) -> None:
    with pytest.raises(ValidationError, match=wrong):
        await day_report(demo_flow, tenant=DEMO_TENANT, day=day, timezone=zone)
