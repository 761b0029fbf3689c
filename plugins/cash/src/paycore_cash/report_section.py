"""The cash plugin's section of the day report: each drawer session opened that day.

One row per session (till, who opened it, opening float, cash in, cash out,
expected, counted, variance), from :meth:`CashDrawers.report`. A session still
open shows what it should hold now, and no count or variance. A tenant with
no cash drawers (one that does not enable the cash provider, or that the
configuration does not name: a typo, ``""``) has no section, as the day report
of such a tenant reports nothing; it never shows another tenant's drawers.
"""

from __future__ import annotations

from typing import Any

from paycore.config import is_code
from paycore.reports import ReportScope, ReportSection
from paycore_cash.drawers import CashDrawers
from paycore_cash.report import format_money
from paycore_cash.validation import enables_cash

__all__ = ["COLUMNS", "drawer_section", "register_section"]

COLUMNS = ("till", "opened", "by", "float", "cash in", "cash out", "expected", "counted", "variance")
"""The section's columns."""


async def drawer_section(scope: ReportScope) -> ReportSection | None:
    """The drawer sessions of ``scope``'s tenant opened during its day; ``None`` when there are none."""
    tenant = scope.tenant
    if tenant is not None and not (is_code(tenant) and tenant in scope.flow.config.tenants):
        return None  # not a configured tenant: it has no drawers (CashDrawers would refuse it)
    if not enables_cash(scope.flow.config, tenant):
        return None
    drawers = CashDrawers(scope.flow, tenant=scope.tenant)
    rows: list[tuple[str, ...]] = []
    for session in await drawers.sessions():
        if not scope.starts_at <= session.opened_at < scope.ends_at:
            continue
        report = await drawers.report(session.id)
        totals = report.totals
        counted, variance = report.session.counted, report.session.variance
        opened = session.opened_at.astimezone(scope.starts_at.tzinfo).strftime("%H:%M")
        rows.append((
            session.till, opened, session.opened_by, format_money(totals.opening_float),
            format_money(totals.cash_in), format_money(totals.cash_out), format_money(report.expected),
            "" if counted is None else format_money(counted),
            "" if variance is None else format_money(variance, signed=True),
        ))  # fmt: skip
    if not rows:
        return None
    return ReportSection(title="Cash drawers", columns=COLUMNS, rows=tuple(rows))


def register_section(register: Any) -> None:
    """Register :func:`drawer_section` with ``paycore_report_sections``' ``register``."""
    register("cash-drawers", build=drawer_section, order=10)
