"""The day (Z) report of one tenant: what was taken, refunded and left to check, per day.

A day is midnight to midnight in a time zone (default UTC). The report reads the
tenant's listing by creation time (:meth:`PaymentFlow.page_payments`), a page
at a time: the payments created that day, and for refunds also the payments of
the :data:`REFUND_LOOKBACK` before it (a refund made today of yesterday's
lunch counts today; one of a payment created before that window is not in the
report). It never reads the whole table.

* payments of the day by provider code and status: count and amount asked;
* captured: what the day's payments captured;
* refunded: the refunds that succeeded that day (asked that day or before: one
  asked at 23:50 and confirmed at 00:10 counts the next day, once, whenever the
  report is printed); pending refunds: those still pending (asked by the day's end);
* late confirmations (payments of the day a provider confirmed after they
  expired or were canceled here) and payments waiting for an operator's review
  (of those read: one flagged later, as a chargeback months after, is not listed);
* sections contributed by plugins through ``paycore_report_sections`` (the cash
  plugin's drawer sessions).

:meth:`DayReport.render` gives a text table; :meth:`DayReport.to_json` the
:mod:`paycore.serialization` wire format.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from attrs import evolve, frozen

from paycore.changes import flagged_for
from paycore.errors import ValidationError
from paycore.flow import PaymentFlow
from paycore.hookcalls import call_registration_hook, current_plugin
from paycore.money import Money
from paycore.records import Payment
from paycore.serialization import unstructure
from paycore.status import RefundStatus, ReviewReason
from paycore.wire import one_line

__all__ = [
    "REFUND_LOOKBACK",
    "DayReport",
    "ReportScope",
    "ReportSection",
    "ReviewItem",
    "SectionBuilder",
    "StatusTotal",
    "collect_report_sections",
    "day_report",
    "day_window",
    "render_table",
    "time_zone",
    "zone_name",
]

REFUND_LOOKBACK: Final = timedelta(days=31)
"""How far before the day the report looks for payments whose refunds succeeded that day.

The window starts this long before the day's first instant (inclusive): a refund
that succeeded on the day of a payment created earlier than that is not counted.
A month: a refund a gateway holds pending for days (a bank's) still counts on
the day it is confirmed.
"""

_FIRST_DAY: Final = date.min + REFUND_LOOKBACK + timedelta(days=2)
_LAST_DAY: Final = date.max - timedelta(days=2)
"""The days a report covers: its window, in any time zone, and its refund lookback stay within datetime's range."""

_PAGE: Final = 200


@frozen
class StatusTotal:
    """How many payments of one provider code ended the day in one status, and their amount."""

    provider: str
    status: str
    count: int
    amount: Money


@frozen
class ReviewItem:
    """A payment an operator should look at, and why."""

    payment_id: str
    order_id: str
    provider: str
    amount: Money
    reason: str
    message: str
    resolved: bool = False
    """An operator resolved the payment's review since it was last flagged for this (``resolve_review``); still
    listed, the fact being the day's."""


@frozen
class ReportSection:
    """A table a plugin adds to the report: a title, column names and rows of text."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    plugin: str = ""
    """The plugin that contributed it (filled in by the report)."""


@frozen
class ReportScope:
    """What a section builder is given: the flow, the tenant and the day with its bounds."""

    flow: PaymentFlow
    tenant: str | None
    day: date
    timezone: str
    starts_at: datetime
    """The day's first instant (inclusive), in the day's time zone."""
    ends_at: datetime
    """The next day's first instant (exclusive)."""


@frozen
class DayReport:
    """One tenant's day; amounts are summed per currency (one :class:`Money` each)."""

    tenant: str | None
    day: date
    timezone: str
    starts_at: datetime
    ends_at: datetime
    payment_count: int
    by_provider_status: tuple[StatusTotal, ...]
    captured: tuple[Money, ...]
    refunded: tuple[Money, ...]
    refund_count: int
    pending_refunds: tuple[Money, ...]
    pending_refund_count: int
    late_confirmations: tuple[ReviewItem, ...]
    waiting_for_review: tuple[ReviewItem, ...]
    sections: tuple[ReportSection, ...] = ()

    def to_json(self) -> str:
        """The report as JSON in :mod:`paycore.serialization`'s wire format (the day as ``YYYY-MM-DD``)."""
        return json.dumps({**unstructure(self), "day": self.day.isoformat()}, separators=(",", ":"), sort_keys=True)

    def render(self) -> str:
        """The report as a text table, as an operator reads it at closing time."""
        lines = [
            f"Day report: {self.tenant or '(no tenant)'}, {self.day.isoformat()} ({self.timezone})",
            f"from {self.starts_at.isoformat()} to {self.ends_at.isoformat()}",
            "",
            f"Payments ({self.payment_count})",
        ]
        rows = [(t.provider, t.status, str(t.count), t.amount.display()) for t in self.by_provider_status]
        lines += render_table(("provider", "status", "count", "amount"), rows, right=(2, 3)) or ["  none"]
        lines += [
            "",
            f"Captured: {_amounts(self.captured)}",
            f"Refunded ({self.refund_count}): {_amounts(self.refunded)}",
            f"Pending refunds ({self.pending_refund_count}): {_amounts(self.pending_refunds)}",
        ]
        for title, items in (("Late confirmations", self.late_confirmations),
                             ("Waiting for review", self.waiting_for_review)):  # fmt: skip
            lines += ["", f"{title} ({len(items)})"]
            review_rows = [(i.payment_id, i.order_id, i.provider, i.amount.display(),
                            f"{i.reason} (resolved)" if i.resolved else i.reason, i.message)
                           for i in items]  # fmt: skip
            columns = ("payment", "order", "provider", "amount", "reason", "message")
            lines += render_table(columns, review_rows, right=(3,)) or ["  none"]
        for section in self.sections:
            lines += ["", f"{section.title} ({section.plugin})" if section.plugin else section.title]
            lines += render_table(section.columns, section.rows) or ["  none"]
        return "\n".join(lines)


def _amounts(amounts: tuple[Money, ...]) -> str:
    return ", ".join(amount.display() for amount in amounts) if amounts else "0"


def render_table(
    columns: tuple[str, ...], rows: Iterable[tuple[str, ...]], *, right: tuple[int, ...] = ()
) -> list[str]:
    """``rows`` under ``columns`` as aligned text lines (columns in ``right`` right-aligned), each cell on one
    line (:func:`paycore.wire.one_line`); none: ``[]``."""
    rows = [tuple(one_line(str(cell)) for cell in row) for row in rows]
    if not rows:
        return []
    widths = [max(len(str(cell)) for cell in column) for column in zip(columns, *rows, strict=False)]

    def line(cells: tuple[str, ...]) -> str:
        shown = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return ("  " + "  ".join(shown)).rstrip()

    return [line(columns), *(line(row) for row in rows)]


def time_zone(name: str | tzinfo) -> tzinfo:
    """The IANA time zone ``name`` (a ``tzinfo`` is taken as it is); :class:`ValidationError` if there is none."""
    if isinstance(name, tzinfo):
        try:
            usable = isinstance(name.utcoffset(datetime(2000, 1, 1, tzinfo=name)), timedelta)
        except Exception:  # a tzinfo's own code: any failure means it cannot place a day
            usable = False
        if not usable:
            raise ValidationError(
                f"time zone {name!r:.60} gives no offset from UTC; use an IANA name such as Africa/Dakar"
            )
        return name
    if not isinstance(name, str):
        raise ValidationError(
            f"a time zone is an IANA name such as Africa/Dakar, or a tzinfo; not a {type(name).__name__}"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder ("Africa"), a name too long
        raise ValidationError(f"unknown time zone {name!r}; use an IANA name such as Africa/Dakar or UTC") from None


def zone_name(moment: datetime) -> str:
    """The name of ``moment``'s time zone, for a report: its IANA key, else its abbreviation or offset there."""
    zone = moment.tzinfo
    key = getattr(zone, "key", None)
    return key if isinstance(key, str) and key else moment.tzname() or moment.strftime("UTC%z")


def day_window(day: date | str, timezone: str | tzinfo = "UTC") -> tuple[date, datetime, datetime]:
    """``day`` (a date or ``YYYY-MM-DD``) and its first instant and the next day's, in ``timezone``.

    Raises :class:`ValidationError` for a day that is not a date (a ``datetime`` included) or an unknown time zone.
    """
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise ValidationError(f"day must be a date as YYYY-MM-DD (2026-12-04); not {day!r}") from None
    if isinstance(day, datetime):  # a date too, and not comparable with one: which day it is depends on its zone
        raise ValidationError(f"day must be a date, not a datetime ({day}): give the day in the report's time zone")
    if not isinstance(day, date) or not _FIRST_DAY <= day <= _LAST_DAY:
        raise ValidationError(f"day must be a date from {_FIRST_DAY} to {_LAST_DAY}; not {day}")
    zone = time_zone(timezone)
    starts_at = datetime.combine(day, time(), tzinfo=zone)
    ends_at = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)
    return day, starts_at, ends_at


def _totals(amounts: Iterable[Money]) -> tuple[Money, ...]:
    sums: dict[str, Money] = {}
    for amount in amounts:
        sums[amount.currency] = sums.get(amount.currency, Money.zero(amount.currency)) + amount
    return tuple(sums[currency] for currency in sorted(sums))


def _review_item(payment: Payment) -> ReviewItem:
    reason = "" if payment.review_reason is None else ReviewReason(payment.review_reason).value
    return ReviewItem(payment.id, payment.order_id, payment.provider, payment.amount, reason, payment.review_message)


async def _late_confirmations(flow: PaymentFlow, payments: Iterable[Payment]) -> tuple[ReviewItem, ...]:
    """The payments a provider confirmed after they had closed here, from their histories: once flagged for it,
    whether or not the review is resolved since or a more pressing review holds the payment meanwhile. Only a
    payment ever flagged (a review message kept) has its events read."""
    found = []
    for payment in payments:
        if not payment.review_message:
            continue
        told: list[str] = []
        resolved = False  # since the last of them
        for event in await flow.repository.list_events(payment.id):
            fact = flagged_for(event, ReviewReason.LATE_CONFIRMATION)
            if fact is not None:
                told.append(fact)
                resolved = False
            elif event.kind == "review_resolved":
                resolved = True
        if told:
            late = ReviewReason.LATE_CONFIRMATION.value
            found.append(evolve(_review_item(payment), reason=late, message="; ".join(told), resolved=resolved))
    return tuple(found)


SectionBuilder = Callable[[ReportScope], Awaitable[ReportSection | None]]


def collect_report_sections(flow: PaymentFlow) -> list[tuple[str, SectionBuilder]]:
    """Every section builder the flow's plugins register, in order, with the plugin's name.

    ``paycore_report_sections`` is a registration hook
    (:func:`~paycore.hookcalls.call_registration_hook`): a plugin that fails
    raises :class:`~paycore.errors.PluginLoadError` naming it.
    """
    found: list[tuple[int, str, str, SectionBuilder]] = []

    def register(name: str, *, build: SectionBuilder, order: int = 100) -> None:
        found.append((order, name, current_plugin(), build))

    call_registration_hook(flow.plugin_manager, "paycore_report_sections", register)
    return [(plugin, build) for _order, _name, plugin, build in sorted(found, key=lambda f: (f[0], f[1]))]


async def day_report(
    flow: PaymentFlow, *, tenant: str | None, day: date | str, timezone: str | tzinfo | None = None
) -> DayReport:
    """The day report of ``tenant`` for ``day`` (midnight to midnight in ``timezone``: an IANA name or a tzinfo;
    by default the tenant's ``timezone`` setting, else the configuration's, else UTC)."""
    if timezone is None:
        timezone = flow.config.timezone_of(tenant)
    day, starts_at, ends_at = day_window(day, timezone)
    timezone = timezone if isinstance(timezone, str) else zone_name(starts_at)
    of_day: list[Payment] = []
    refunds_window: list[Payment] = []
    cursor: str | None = None
    while True:
        page = await flow.page_payments(
            tenant=tenant, created_from=starts_at - REFUND_LOOKBACK, created_before=ends_at, limit=_PAGE, after=cursor
        )
        for payment in page.items:
            if payment.tenant != tenant:  # tenant=None lists every tenant's; the report is of no tenant's
                continue
            refunds_window.append(payment)
            if payment.created_at >= starts_at:
                of_day.append(payment)
        cursor = page.next_cursor
        if cursor is None:
            break
    groups: dict[tuple[str, str, str], list[Payment]] = {}
    for payment in of_day:
        groups.setdefault((payment.provider, payment.status.value, payment.currency), []).append(payment)
    by_status = tuple(
        StatusTotal(provider, status, len(found), Money.sum((p.amount for p in found), currency))
        for (provider, status, currency), found in sorted(groups.items())
    )
    refunds = [refund for payment in refunds_window for refund in payment.refunds]
    # A refund's updated_at is when its status last changed: for a succeeded one, when it succeeded.
    refunded = [r for r in refunds if r.status is RefundStatus.SUCCEEDED and starts_at <= r.updated_at < ends_at]
    pending = [r for r in refunds if r.status is RefundStatus.PENDING and r.created_at < ends_at]
    scope = ReportScope(flow=flow, tenant=tenant, day=day, timezone=timezone, starts_at=starts_at, ends_at=ends_at)
    sections: list[ReportSection] = []
    for plugin, build in collect_report_sections(flow):
        section = await build(scope)
        if section is not None:
            sections.append(
                ReportSection(section.title, tuple(section.columns), tuple(map(tuple, section.rows)), plugin)
            )
    return DayReport(
        tenant=tenant,
        day=day,
        timezone=timezone,
        starts_at=starts_at,
        ends_at=ends_at,
        payment_count=len(of_day),
        by_provider_status=by_status,
        captured=_totals(p.captured_amount for p in of_day if p.captured_amount is not None),
        refunded=_totals(r.amount for r in refunded),
        refund_count=len(refunded),
        pending_refunds=_totals(r.amount for r in pending),
        pending_refund_count=len(pending),
        late_confirmations=await _late_confirmations(flow, of_day),
        waiting_for_review=tuple(_review_item(p) for p in refunds_window if p.needs_review),
        sections=tuple(sections),
    )
