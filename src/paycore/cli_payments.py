"""The operators' commands: ``paycore report`` (a tenant's day) and ``paycore payments ...``.

Each command builds a flow from ``--config PATH`` (or ``PAYCORE_CONFIG``, or
the embedded default), acts within ``--tenant``, prints a readable table or,
with ``--json``, :mod:`paycore.serialization`'s wire format, and closes the flow.
``--backend trio`` runs it under trio instead of asyncio. :mod:`paycore.flow` is
imported only when a command runs, so ``paycore --help`` stays cheap.

* ``paycore report --tenant T --day 2026-12-04 [--timezone Africa/Dakar] [--json]``
* ``paycore payments list [--status S] [--order O] [--from T] [--before T] [--newest] [--limit N] [--after CURSOR]``
* ``paycore payments show|refresh ID``, ``refund ID [--amount A] --reason R [--key K]``,
  ``resolve ID --note N``, ``resolve-refund ID REFUND --outcome succeeded|failed --note N``,
  ``resolve-payment ID --outcome succeeded|authorized|failed [--amount A] --note N``
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import anyio

from paycore.errors import ConfigurationError, ValidationError
from paycore.money import Money
from paycore.records import Payment
from paycore.serialization import unstructure
from paycore.wire import one_line

if TYPE_CHECKING:
    from paycore.flow import PaymentFlow

__all__ = ["configure_payments", "configure_report", "run_on_backend", "run_payments", "run_report"]

_PAYMENT_COLUMNS: Final = ("id", "created", "order", "provider", "amount", "status", "review")


_ANY_TENANT: Final = "the tenant (restaurant) to act within; default: none, any payment by id (list: every tenant's)"
_ONE_TENANT: Final = "the tenant (restaurant) whose day it is; default: the payments and drawers of no tenant"


def _common(parser: argparse.ArgumentParser, tenant_help: str = _ANY_TENANT) -> None:
    parser.add_argument(
        "--config", dest="command_config", metavar="PATH", help="TOML configuration (default: --config before it)"
    )
    parser.add_argument("--tenant", default=None, help=tenant_help)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--backend", choices=["asyncio", "trio"], default="asyncio", help="the async library to run on (asyncio)"
    )


def configure_report(parser: argparse.ArgumentParser) -> None:
    """Add ``paycore report``'s options to ``parser``."""
    _common(parser, _ONE_TENANT)
    parser.add_argument("--day", required=True, help="the day as YYYY-MM-DD")
    parser.add_argument(
        "--timezone", help="where the day is midnight to midnight (default: the tenant's timezone setting, else UTC)"
    )


def configure_payments(parser: argparse.ArgumentParser) -> None:
    """Add ``paycore payments``' actions and their options to ``parser``."""
    actions = parser.add_subparsers(dest="payments_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list payments a page at a time; prints the next page's cursor")
    _common(listing)
    listing.add_argument("--status", help="only payments in this status")
    listing.add_argument("--order", help="only payments of this order id")
    listing.add_argument("--from", dest="created_from", help="created at or after (YYYY-MM-DD or ISO time)")
    listing.add_argument("--before", dest="created_before", help="created before (YYYY-MM-DD or ISO time)")
    listing.add_argument(
        "--timezone", help="time zone of --from/--before without one (default: the tenant's setting, else UTC)"
    )
    listing.add_argument("--newest", action="store_true", help="newest first")
    listing.add_argument("--limit", type=int, default=50, help="payments per page (default 50)")
    listing.add_argument("--after", help="the cursor a previous page printed")
    for name, help in (("show", "a payment with its refunds and events"), ("refresh", "ask the provider again")):
        one = actions.add_parser(name, help=help)
        _common(one)
        one.add_argument("payment_id")
    refund = actions.add_parser("refund", help="refund (part of) a payment")
    _common(refund)
    refund.add_argument("payment_id")
    refund.add_argument("--amount", help="in the payment's currency (default: all that is refundable)")
    refund.add_argument("--reason", required=True)
    refund.add_argument("--key", help="idempotency key: a retry with it refunds nothing more")
    refund.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="for the provider")
    resolve = actions.add_parser("resolve", help="mark a payment's review as done")
    _common(resolve)
    resolve.add_argument("payment_id")
    resolve.add_argument("--note", required=True, help="what the operator found")
    settle = actions.add_parser("resolve-refund", help="settle a refund left pending, as found at the provider")
    _common(settle)
    settle.add_argument("payment_id")
    settle.add_argument("refund_id")
    settle.add_argument("--outcome", required=True, choices=["succeeded", "failed"], help="what the provider shows")
    settle.add_argument("--note", required=True, help="what the operator found")
    paid = actions.add_parser("resolve-payment", help="settle an open payment, as found at the provider")
    _common(paid)
    paid.add_argument("payment_id")
    paid.add_argument(
        "--outcome", required=True, choices=["succeeded", "authorized", "failed"], help="what the provider shows"
    )
    paid.add_argument("--amount", help="what the provider holds, in the payment's currency (default: its amount)")
    paid.add_argument("--note", required=True, help="what the operator found")


def run_on_backend(backend: str, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """``anyio.run(func, *args)`` on ``--backend``; a backend whose library is not installed is a one-line error.

    Raises :class:`~paycore.errors.ConfigurationError` naming the extra to install
    (``paycore: error: --backend trio needs trio: pip install 'paycore[trio]'``)
    rather than anyio's traceback.
    """
    if backend != "asyncio":
        try:
            importlib.import_module(backend)
        except ImportError:
            raise ConfigurationError(f"--backend {backend} needs {backend}: pip install 'paycore[{backend}]'") from None
    return anyio.run(func, *args, backend=backend)


def run_report(args: argparse.Namespace) -> int:
    """Carry out ``paycore report``."""
    return int(run_on_backend(args.backend, _with_flow, args, _report))


def run_payments(args: argparse.Namespace) -> int:
    """Carry out ``paycore payments ACTION``."""
    return int(run_on_backend(args.backend, _with_flow, args, _ACTIONS[args.payments_action]))


async def _with_flow(args: argparse.Namespace, action: Callable[[PaymentFlow, Any], Awaitable[int]]) -> int:
    from paycore.flow import PaymentFlow

    config = args.command_config or getattr(args, "config", None)
    async with PaymentFlow.from_config(config, plugins=getattr(args, "plugins", ())) as flow:
        tenant = getattr(args, "tenant", None)
        if tenant is not None and tenant not in flow.config.tenants:  # a mistyped name reads as an empty day
            raise ValidationError(
                f"tenant {tenant!r} is not configured: check its name ([tenants.NAME] in the configuration)"
            )
        return await action(flow, args)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


async def _report(flow: PaymentFlow, args: argparse.Namespace) -> int:
    from paycore.reports import day_report, day_window

    zone = args.timezone or flow.config.timezone_of(args.tenant)
    day, starts_at, _ = day_window(args.day, zone)
    if starts_at > flow.now():  # a mistyped year reads as an empty day
        today = flow.now().astimezone(starts_at.tzinfo).date()
        raise ValidationError(f"day {day} has not begun yet in {zone} (today is {today}): check the date")
    report = await day_report(flow, tenant=args.tenant, day=day, timezone=zone)
    print(json.dumps(json.loads(report.to_json()), indent=2, sort_keys=True) if args.json else report.render())
    return 0


def _moment(raw: str | None, zone: str, what: str) -> datetime | None:
    """``raw`` (a day or an ISO time) as an aware datetime; one without an offset is in ``zone``."""
    from paycore.reports import time_zone

    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            f"{what} must be a day (2026-12-04) or an ISO time (2026-12-04T12:00); not {raw!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=time_zone(zone))


def _row(payment: Payment) -> tuple[str, ...]:
    review = "" if not payment.needs_review or payment.review_reason is None else payment.review_reason.value
    return (payment.id, payment.created_at.isoformat(timespec="seconds"), payment.order_id, payment.provider,
            payment.amount.display(), payment.status.value, review)  # fmt: skip


async def _list(flow: PaymentFlow, args: argparse.Namespace) -> int:
    from paycore.reports import render_table

    zone = args.timezone or flow.config.timezone_of(args.tenant)
    page = await flow.page_payments(
        tenant=args.tenant,
        status=args.status,
        order_id=args.order,
        created_from=_moment(args.created_from, zone, "--from"),
        created_before=_moment(args.created_before, zone, "--before"),
        newest_first=args.newest,
        limit=args.limit,
        after=args.after,
    )
    if args.json:
        _print_json({"items": [unstructure(p) for p in page.items], "next_cursor": page.next_cursor})
        return 0
    print("\n".join(render_table(_PAYMENT_COLUMNS, [_row(p) for p in page.items], right=(4,))) or "no payments")
    print(f"next cursor: {page.next_cursor}" if page.next_cursor else "no more payments")
    return 0


async def _show(flow: PaymentFlow, args: argparse.Namespace) -> int:
    from paycore.reports import render_table

    payment = await flow.get_payment(args.payment_id, tenant=args.tenant)
    events = await flow.list_events(payment.id, tenant=args.tenant)
    if args.json:
        _print_json({"payment": unstructure(payment), "events": [unstructure(e) for e in events]})
        return 0
    print(_describe(payment))
    refunds = [(r.id, r.created_at.isoformat(timespec="seconds"), r.amount.display(), r.status.value, r.reason)
               for r in payment.refunds]  # fmt: skip
    print(f"\nRefunds ({len(refunds)})")
    print("\n".join(render_table(("id", "created", "amount", "status", "reason"), refunds, right=(2,))) or "  none")
    rows = [(str(e.sequence), e.at.isoformat(timespec="seconds"), e.kind, e.cause,
             f"{e.from_status or ''} -> {e.to_status or ''}" if e.to_status else "",
             "" if e.amount is None else e.amount.display(), e.message) for e in events]  # fmt: skip
    print(f"\nEvents ({len(rows)})")
    print("\n".join(render_table(("#", "at", "kind", "cause", "status", "amount", "message"), rows)) or "  none")
    return 0


def _describe(payment: Payment) -> str:
    captured = "" if payment.captured_amount is None else payment.captured_amount.display()
    held = payment.authorized_amount  # shown when it is not the whole amount: a partial hold
    authorized = f"   authorized {held.display()}" if held is not None and held != payment.amount else ""
    lines = [
        f"payment   {payment.id}",
        f"tenant    {payment.tenant or '(none)'}",
        f"order     {payment.order_id}",
        f"provider  {payment.provider}   external id {payment.external_id or '-'}",
        f"amount    {payment.amount.display()}{authorized}   captured {captured or '-'}   refunded "
        f"{payment.refunded_amount.display()}",
        f"status    {payment.status.value}   fraud {payment.fraud_status.value}",
        f"created   {payment.created_at.isoformat(timespec='seconds')}   "
        f"updated {payment.updated_at.isoformat(timespec='seconds')}",
    ]
    if payment.needs_review:
        reason = payment.review_reason.value if payment.review_reason else ""
        lines.append(f"review    {reason}: {one_line(payment.review_message)}")
    return "\n".join(lines)


async def _refresh(flow: PaymentFlow, args: argparse.Namespace) -> int:
    return _done(await flow.refresh(args.payment_id, tenant=args.tenant), args)


def _done(payment: Payment, args: argparse.Namespace) -> int:
    if args.json:
        _print_json(unstructure(payment))
    else:
        print(_describe(payment))
    return 0


def _metadata(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sign, value = pair.partition("=")
        if not sign or not key:
            raise ValidationError(f"--metadata takes KEY=VALUE (till=T2); not {pair!r}")
        found[key] = value
    return found


async def _refund(flow: PaymentFlow, args: argparse.Namespace) -> int:
    payment = await flow.get_payment(args.payment_id, tenant=args.tenant)
    refund = await flow.refund(
        payment.id,
        amount=None if args.amount is None else Money.typed(args.amount, payment.currency),
        reason=args.reason,
        idempotency_key=args.key,
        tenant=args.tenant,
        metadata=_metadata(args.metadata) or None,
    )
    if args.json:
        _print_json(unstructure(refund))
    else:
        print(f"refund {refund.id} of {refund.amount.display()} on payment {payment.id}: {refund.status.value}")
    return 0


async def _resolve(flow: PaymentFlow, args: argparse.Namespace) -> int:
    before = await flow.get_payment(args.payment_id, tenant=args.tenant)
    resolved = await flow.resolve_review(args.payment_id, note=args.note, tenant=args.tenant)
    events = await flow.list_events(resolved.id, tenant=args.tenant) if resolved.version != before.version else []
    ours = [
        e for e in events if e.sequence > before.event_count and e.kind == "review_resolved" and e.message == args.note
    ]
    if not ours and not args.json:  # its own resolution is not among what changed since it read the payment
        print(f"payment {resolved.id} awaits no review: nothing was changed")
    return _done(resolved, args)


async def _resolve_refund(flow: PaymentFlow, args: argparse.Namespace) -> int:
    resolved = await flow.resolve_refund(
        args.payment_id, args.refund_id, outcome=args.outcome, note=args.note, tenant=args.tenant
    )
    return _done(resolved, args)


async def _resolve_payment(flow: PaymentFlow, args: argparse.Namespace) -> int:
    payment = await flow.get_payment(args.payment_id, tenant=args.tenant)
    amount = None if args.amount is None else Money.typed(args.amount, payment.currency)
    resolved = await flow.resolve_payment(
        payment.id, outcome=args.outcome, amount=amount, note=args.note, tenant=args.tenant
    )
    return _done(resolved, args)


_ACTIONS: Final[dict[str, Callable[[PaymentFlow, Any], Awaitable[int]]]] = {
    "list": _list,
    "show": _show,
    "refresh": _refresh,
    "refund": _refund,
    "resolve": _resolve,
    "resolve-refund": _resolve_refund,
    "resolve-payment": _resolve_payment,
}
