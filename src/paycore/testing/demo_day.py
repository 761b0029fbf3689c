"""The demo's restaurant day as a test fixture: its configuration, its steps, and its exact day report.

Every storage adapter runs the same day and checks the same totals, so a
report that differs on one backend is caught wherever it is run::

    async with PaymentFlow.from_config(demo_config("sqlite:///day.db")) as flow:
        await run_demo_day(flow)
        check_demo_day_report(await day_report(flow, tenant=DEMO_TENANT, day=today, timezone="Africa/Dakar"))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paycore.demo import DEMO_TENANT, DemoContext, collect_demo_steps
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.reports import DayReport

__all__ = ["check_demo_day_report", "demo_config", "run_demo_day"]


def demo_config(repository: str | Mapping[str, Any] = "memory") -> dict[str, Any]:
    """The configuration ``paycore demo`` runs on (every step's providers, the demo tenant) on ``repository``."""
    providers: dict[str, Any] = {}
    for step in collect_demo_steps():
        providers.update({code: dict(table) for code, table in step.providers.items()})
    return {"repository": repository, "tenants": {DEMO_TENANT: {"providers": providers}}}


async def run_demo_day(flow: PaymentFlow) -> None:
    """Every step of ``paycore demo`` on ``flow``, quietly."""
    context = DemoContext(flow=flow, tenant=DEMO_TENANT, echo=lambda line: None)
    for step in collect_demo_steps():
        await step.run(context)


def _xof(amount: str) -> Money:
    return Money.of(amount, "XOF")


def check_demo_day_report(report: DayReport) -> None:
    """Assert the demo day's report to the franc: payments by provider and status, refunds, the till."""
    assert report.payment_count == 9
    assert [(t.provider, t.status, t.count, t.amount) for t in report.by_provider_status] == [
        ("cash", "partially_refunded", 1, _xof("7500")),
        ("cash", "succeeded", 5, _xof("26500")),
        ("wave", "failed", 1, _xof("4001")),
        ("wave", "partially_refunded", 1, _xof("12000")),
        ("wave", "succeeded", 1, _xof("7500")),
    ]
    assert report.captured == (_xof("53500"),)
    assert (report.refund_count, report.refunded) == (2, (_xof("5000"),))
    assert (report.pending_refund_count, report.pending_refunds) == (0, ())
    assert report.late_confirmations == ()
    assert report.waiting_for_review == ()
    (drawers,) = report.sections
    assert (drawers.title, drawers.plugin) == ("Cash drawers", "cash")
    (till,) = drawers.rows
    assert till[0] == "T1"
    assert till[3:] == ("20 000 XOF", "34 000 XOF", "22 500 XOF", "31 500 XOF", "31 000 XOF", "-500 XOF")
