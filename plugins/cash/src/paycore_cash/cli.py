"""paycore drawer: open, fill, empty, close and report on cash drawers from a shell.

Each subcommand builds a flow from ``--config PATH`` (or ``PAYCORE_CONFIG``,
or the embedded default) and acts on the drawers of ``--tenant``. The
embedded default keeps everything in memory and forgets it when the command
ends, so point ``--config`` at a file whose repository is SQLite or another
database to keep drawers from one command to the next. ``close`` and ``report``
take ``--timezone NAME`` to show the report's times in that zone, not UTC.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import anyio

from paycore.errors import PaycoreError, ValidationError
from paycore.money import Money
from paycore.reports import time_zone
from paycore.wire import one_line
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import DrawerNotFound, InvalidCashRequest, NoOpenDrawer
from paycore_cash.records import CashMovement, DrawerSession
from paycore_cash.report import format_money

__all__ = ["HELP", "configure", "run"]

HELP = "cash drawers: open, pay-in, pay-out, close, report, list"

_EPILOG = """\
The embedded default configuration keeps drawers in memory and forgets them
when the command ends: pass --config with a file whose repository keeps data,
for example a paycore.toml holding

    repository = "sqlite:///paycore.db"
    [providers.cash]
    type = "cash"
    currency = "XOF"

Examples:
  paycore drawer open --config paycore.toml --till T1 --float 50000 --currency XOF --by Awa
  paycore drawer pay-out --config paycore.toml --till T1 --amount 20000 --reason "drop to safe" --by Awa
  paycore drawer close --config paycore.toml --till T1 --counted 30000 --by Awa
  paycore drawer report --config paycore.toml --till T1
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``drawer`` subcommands and their options to ``parser``."""
    parser.description = __doc__.split("\n\n")[0] if __doc__ else HELP
    parser.epilog = _EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    actions = parser.add_subparsers(dest="drawer_action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(
            name, help=help, description=help, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        sub.add_argument(
            "--config",
            dest="drawer_config",
            metavar="PATH",
            help="TOML configuration (default: PAYCORE_CONFIG, else in memory, forgotten on exit)",
        )
        sub.add_argument("--tenant", dest="drawer_tenant", default=None, help="the tenant (restaurant)")
        return sub

    opening = action("open", "open a till's drawer with its opening float")
    opening.add_argument("--till", required=True)
    opening.add_argument("--float", dest="amount", required=True, metavar="AMOUNT", help="e.g. 10000")
    opening.add_argument("--currency", help="ISO code (default: the cash provider's currency setting)")
    opening.add_argument("--by", required=True, help="who counted the float in")
    opening.add_argument("--key", help="idempotency key: a retry with it opens nothing new")

    for name, help in (("pay-in", "put cash in (a float top-up)"), ("pay-out", "take cash out (a drop to the safe)")):
        movement = action(name, help)
        movement.add_argument("--till", required=True)
        movement.add_argument("--amount", required=True, help="in the drawer's currency, e.g. 5000")
        movement.add_argument("--reason", required=True)
        movement.add_argument("--by", required=True, help="who handled the cash")
        movement.add_argument("--key", help="idempotency key: a retry with it records nothing new")

    closing = action("close", "count and close a drawer; prints its report")
    target = closing.add_mutually_exclusive_group(required=True)
    target.add_argument("--till")
    target.add_argument("--session", help="a session id")
    closing.add_argument("--counted", required=True, help="the cash counted in the drawer")
    closing.add_argument("--by", required=True, help="who counted it")
    closing.add_argument("--key", help="idempotency key: a retry with it closes nothing new")
    _add_timezone(closing)

    report = action("report", "print a session's report (default: the till's latest session)")
    chosen = report.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--till")
    chosen.add_argument("--session", help="a session id")
    report.add_argument("--json", action="store_true", help="machine-readable output (times in UTC)")
    _add_timezone(report)

    listing = action("list", "list sessions, oldest first")
    listing.add_argument("--till")
    listing.add_argument("--json", action="store_true", help="machine-readable output")


def _add_timezone(parser: argparse.ArgumentParser) -> None:
    """Add ``--timezone NAME`` (the zone the report's times are shown in) to ``parser``."""
    parser.add_argument(
        "--timezone",
        dest="drawer_timezone",
        metavar="NAME",
        help="show times in this IANA time zone, e.g. Africa/Porto-Novo (default: UTC)",
    )


def _time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`InvalidCashRequest` if there is none of that name."""
    try:
        return time_zone(name)
    except ValidationError as error:
        raise InvalidCashRequest(str(error)) from None


def run(args: argparse.Namespace) -> int:
    """Carry out ``paycore drawer ACTION``; 0 on success, 1 when paycore refused, 2 for an unknown ``--timezone``."""
    handler = _HANDLERS[args.drawer_action]
    try:
        name = getattr(args, "drawer_timezone", None)
        args.drawer_zone = None if name is None else _time_zone(name)
    except InvalidCashRequest as error:  # a bad argument, as argparse's own: exit status 2
        print(f"paycore drawer {args.drawer_action}: {error}", file=sys.stderr)
        return 2
    try:
        return anyio.run(_with_drawers, args, handler)
    except PaycoreError as error:
        print(f"paycore drawer {args.drawer_action}: {error}", file=sys.stderr)
        return 1


async def _with_drawers(args: argparse.Namespace, handler: Callable[[CashDrawers, Any], Awaitable[int]]) -> int:
    from paycore.flow import PaymentFlow

    config = args.drawer_config or getattr(args, "config", None)
    async with PaymentFlow.from_config(config, plugins=getattr(args, "plugins", ())) as flow:
        return await handler(CashDrawers(flow, tenant=args.drawer_tenant), args)


def _money(raw: str, currency: str | None, what: str) -> Money:
    if currency is None:
        raise InvalidCashRequest(f"{what}: no currency; pass --currency or set the cash provider's currency")
    return Money.typed(raw, currency)


async def _currency_of(drawers: CashDrawers, till: str) -> str:
    """The currency to read ``till``'s amounts in: its open session's, else the drawers' configured one,
    else its latest session's.

    The till need not be open: a retry under the ``--key`` of a pay-in, pay-out or
    close that went through replays it after the drawer was closed. Whether the
    till is open is the library call's to check (:class:`NoOpenDrawer` if it is
    not, and the call is no replay).
    """
    session = await drawers.current(till)
    if session is not None:
        return session.currency
    if drawers.currency is not None:
        return drawers.currency
    sessions = await drawers.sessions(till)
    if sessions:
        return sessions[-1].currency
    raise NoOpenDrawer(f"till {till!r} has no open cash drawer; open one first (paycore drawer open --till {till})")


async def _open(drawers: CashDrawers, args: argparse.Namespace) -> int:
    currency = (args.currency or drawers.currency or "").upper() or None
    session = await drawers.open(
        till=args.till,
        opening_float=_money(args.amount, currency, "--float"),
        opened_by=args.by,
        idempotency_key=args.key,
    )
    print(f"opened drawer {session.till}: session {session.id}, float {format_money(session.opening_float)}")
    return 0


async def _movement(drawers: CashDrawers, args: argparse.Namespace) -> int:
    amount = _money(args.amount, await _currency_of(drawers, args.till), "--amount")
    pay = drawers.pay_in if args.drawer_action == "pay-in" else drawers.pay_out
    movement: CashMovement = await pay(
        till=args.till, amount=amount, reason=args.reason, actor=args.by, idempotency_key=args.key
    )
    session = await drawers.get(movement.session_id)
    totals = await drawers.totals(session.id)
    print(
        f"{args.drawer_action} {format_money(movement.amount)} at {session.till} ({one_line(movement.reason)}); "
        f"the drawer should hold {format_money(totals.expected)}"
    )
    return 0


async def _close(drawers: CashDrawers, args: argparse.Namespace) -> int:
    if args.session is not None:
        currency = (await drawers.get(args.session)).currency
    else:
        currency = await _currency_of(drawers, args.till)
    session = await drawers.close(
        till=args.till,
        session_id=args.session,
        counted=_money(args.counted, currency, "--counted"),
        closed_by=args.by,
        idempotency_key=args.key,
    )
    print((await drawers.report(session.id)).render(timezone=args.drawer_zone), end="")
    return 0


async def _latest(drawers: CashDrawers, till: str) -> DrawerSession:
    sessions = await drawers.sessions(till)
    if not sessions:
        raise DrawerNotFound(f"till {till!r} has no drawer sessions")
    return sessions[-1]


async def _report(drawers: CashDrawers, args: argparse.Namespace) -> int:
    session_id = args.session if args.session is not None else (await _latest(drawers, args.till)).id
    report = await drawers.report(session_id)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.render(timezone=args.drawer_zone), end="")
    return 0


async def _list(drawers: CashDrawers, args: argparse.Namespace) -> int:
    sessions = await drawers.sessions(args.till)
    if args.json:
        print(json.dumps([(await drawers.report(s.id)).as_dict() for s in sessions], indent=2))
        return 0
    if not sessions:
        print("no drawer sessions")
        return 0
    for session in sessions:
        opened = session.opened_at.strftime("%Y-%m-%d %H:%M")
        line = f"{session.id}  {session.till}  {session.status.value:6}  opened {opened} by {session.opened_by}"
        if session.variance is not None:
            line += f"  variance {format_money(session.variance, signed=True)}"
        print(line)
    return 0


_HANDLERS: dict[str, Callable[[CashDrawers, Any], Awaitable[int]]] = {
    "open": _open,
    "pay-in": _movement,
    "pay-out": _movement,
    "close": _close,
    "report": _report,
    "list": _list,
}
