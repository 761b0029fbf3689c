"""``DrawerReport``: one session at a glance, as a cashier reads it at closing time.

Opening float, each movement, then expected, counted and variance. Amounts are
written in their currency with thousands grouped: ``1 500 XOF``, ``12.50 EUR``.
Times are shown as stored (UTC), or in the time zone the reader asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from attrs import frozen

from paycore.money import Money
from paycore.wire import one_line, shown
from paycore_cash.errors import InvalidCashRequest
from paycore_cash.records import CashMovement, DrawerSession, MovementKind
from paycore_cash.totals import DrawerTotals, drawer_totals
from paycore_cash.validation import check_flag

__all__ = ["DrawerReport", "format_money"]

_KIND_LABELS = {
    MovementKind.SALE: "sale",
    MovementKind.REFUND: "refund",
    MovementKind.PAY_IN: "pay-in",
    MovementKind.PAY_OUT: "pay-out",
}


def format_money(amount: Money, *, signed: bool = False) -> str:
    """``amount`` as a cashier writes it (:meth:`Money.display`): ``1 500 XOF``, ``+200 XOF`` if ``signed``.

    ``signed`` must be ``True`` or ``False`` (anything else: :class:`~paycore_cash.errors.InvalidCashRequest`).
    """
    return amount.display(signed=check_flag(signed, "signed"))


def _check_timezone(value: Any) -> tzinfo | None:
    """Return ``value`` if it is ``None`` or a :class:`datetime.tzinfo`; :class:`InvalidCashRequest` otherwise."""
    if value is not None and not isinstance(value, tzinfo):
        raise InvalidCashRequest(
            "timezone must be a datetime.tzinfo such as ZoneInfo('Africa/Porto-Novo'), or None for the stored UTC, "
            f"not {type(value).__name__} {shown(value)}"
        )
    return value


def _local(moment: datetime, zone: tzinfo | None) -> datetime:
    """``moment`` in ``zone``; as stored when ``zone`` is ``None``."""
    return moment if zone is None else moment.astimezone(zone)


def _when(moment: datetime | None, zone: tzinfo | None) -> str:
    """``moment`` as a date and time naming its zone (``2026-03-02 08:30 WAT``); ``""`` for ``None``."""
    return "" if moment is None else _local(moment, zone).strftime("%Y-%m-%d %H:%M %Z").rstrip()


@frozen
class DrawerReport:
    """A drawer session with its movements and totals; :meth:`render` gives the text."""

    session: DrawerSession
    movements: tuple[CashMovement, ...]
    totals: DrawerTotals

    @classmethod
    def build(cls, session: DrawerSession, movements: Sequence[CashMovement]) -> DrawerReport:
        """The report of ``session`` from its stored movements."""
        return cls(session, tuple(movements), drawer_totals(session, movements))

    @property
    def expected(self) -> Money:
        """The cash the drawer should hold (as stored at closing, once closed)."""
        return self.session.expected if self.session.expected is not None else self.totals.expected

    @property
    def counted(self) -> Money | None:
        """The cash counted at closing; ``None`` while open."""
        return self.session.counted

    @property
    def variance(self) -> Money | None:
        """Counted minus expected (negative: cash is missing); ``None`` while open."""
        return self.session.variance

    def render(self, *, timezone: tzinfo | None = None) -> str:
        """The report as plain text, one movement a line.

        Times are shown as stored (UTC) unless ``timezone`` is given (``ZoneInfo("Africa/Porto-Novo")``):
        then the opening, the closing and each movement are shown in that zone, and the opening and
        closing lines name it (``WAT``). Anything but a :class:`datetime.tzinfo` or ``None`` is refused
        with :class:`~paycore_cash.errors.InvalidCashRequest`.
        """
        zone = _check_timezone(timezone)
        session = self.session
        tenant = f" ({session.tenant})" if session.tenant else ""
        opened = _when(session.opened_at, zone)
        lines = [
            f"Cash drawer {session.till}{tenant}, session {session.id}",
            f"Opened {opened} by {session.opened_by}, float {format_money(session.opening_float)}",
        ]
        if session.is_open:
            lines.append("Still open")
        else:
            lines.append(f"Closed {_when(session.closed_at, zone)} by {session.closed_by}")
        lines.append("")
        rows = [("#", "time", "kind", "amount", "by", "note")]
        for number, movement in enumerate(self.movements, start=1):
            rows.append(
                (
                    str(number),
                    _local(movement.at, zone).strftime("%H:%M"),
                    _KIND_LABELS[movement.kind],
                    format_money(movement.signed_amount, signed=True),
                    movement.actor,
                    _note(movement),
                )
            )
        if len(rows) == 1:
            lines.append("No cash movements.")
        else:
            widths = [max(len(row[i]) for row in rows) for i in range(5)]
            for row in rows:
                cells = [
                    row[0].rjust(widths[0]),
                    row[1].ljust(widths[1]),
                    row[2].ljust(widths[2]),
                    row[3].rjust(widths[3]),
                    row[4].ljust(widths[4]),
                    row[5],
                ]
                lines.append("  ".join(cells).rstrip())
        lines.append("")
        totals = self.totals
        summary = [
            ("Opening float", format_money(totals.opening_float)),
            (f"Cash sales ({totals.sale_count})", format_money(totals.sales, signed=True)),
            (f"Refunds ({totals.refund_count})", format_money(-totals.refunds)),
            ("Pay-ins", format_money(totals.pay_ins, signed=True)),
            ("Pay-outs", format_money(-totals.pay_outs)),
            ("Expected in drawer", format_money(self.expected)),
        ]
        if self.counted is not None and self.variance is not None:
            summary.append(("Counted", format_money(self.counted)))
            summary.append(("Variance", format_money(self.variance, signed=True) + _verdict(self.variance)))
        label_width = max(len(label) for label, _ in summary)
        amount_width = max(len(amount.split("  ")[0]) for _, amount in summary)
        for label, amount in summary:
            figure, _, verdict = amount.partition("  ")
            line = f"{label.ljust(label_width)}  {figure.rjust(amount_width)}"
            lines.append(f"{line}  {verdict}" if verdict else line)
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (amounts as decimal strings with their currency)."""
        session = self.session

        def money(value: Money | None) -> dict[str, str] | None:
            return None if value is None else {"amount": f"{value.amount:f}", "currency": value.currency}

        return {
            "session_id": session.id,
            "tenant": session.tenant,
            "till": session.till,
            "status": str(session.status),
            "opened_by": session.opened_by,
            "opened_at": session.opened_at.isoformat(),
            "closed_by": session.closed_by,
            "closed_at": session.closed_at.isoformat() if session.closed_at else None,
            "opening_float": money(session.opening_float),
            "movements": [
                {
                    "id": m.id,
                    "kind": str(m.kind),
                    "amount": money(m.amount),
                    "at": m.at.isoformat(),
                    "actor": m.actor,
                    "reason": m.reason,
                    "payment_id": m.payment_id,
                    "refund_id": m.refund_id,
                    "tendered": money(m.tendered),
                    "change": money(m.change),
                }
                for m in self.movements
            ],
            "sales": money(self.totals.sales),
            "refunds": money(self.totals.refunds),
            "pay_ins": money(self.totals.pay_ins),
            "pay_outs": money(self.totals.pay_outs),
            "expected": money(self.expected),
            "counted": money(self.counted),
            "variance": money(self.variance),
        }


def _verdict(variance: Money) -> str:
    if variance.is_zero():
        return "  (balanced)"
    return "  (over)" if variance.is_positive() else "  (short)"


def _note(movement: CashMovement) -> str:
    """The movement's reason and tendered cash, on one line: a reason given with line breaks (a refund's, from
    any door) never prints lines of its own in the table, such as a forged summary."""
    parts = [one_line(movement.reason)] if movement.reason else []
    if movement.tendered is not None:
        parts.append(f"tendered {format_money(movement.tendered)}")
    if movement.change is not None and movement.change.is_positive():
        parts.append(f"change {format_money(movement.change)}")
    return ", ".join(parts)
