"""``paycore report`` and ``paycore payments``: an operator's back office from a shell.

Each test runs on the demo's restaurant day kept in memory, in a SQLite file and in
PostgreSQL, with the commands (``--backend``) and the setup under asyncio and trio.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from attrs import frozen

from paycore import hookimpl
from paycore.cli import main
from paycore.demo import DEMO_TENANT
from paycore.flow import PaymentFlow
from paycore.hookspecs import AdapterContext, IdempotencyStoreRegistrar, RepositoryRegistrar
from paycore.money import Money
from paycore.records import utcnow
from paycore.testing.demo_day import demo_config, run_demo_day
from paycore_cash.drawers import CashDrawers
from paycore_dummy.gateway import DummyGateway
from paycore_dummy.inprocess import register_gateway, unregister_gateway
from paycore_dummy.signing import generate_secret
from paycore_memory.idempotency import MemoryIdempotencyStore
from paycore_memory.repository import MemoryRepository

T = TypeVar("T")

GATEWAY = "cli-tests-gateway"
"""The in-process dummy gateway behind the tenant's ``online`` provider."""
_API_KEY = "sk_test_cli_payments"
_WEBHOOK_SECRET = generate_secret()


class KeptMemory:
    """The memory adapter as type ``kept-memory``: one store for every flow, as in one long-lived process.

    Each command builds a flow of its own; an application embedding ``paycore``'s
    command (``main(config=..., plugins=...)``) keeps its memory store between them.
    """

    __name__ = "kept-memory"

    def __init__(self) -> None:
        self.repository = MemoryRepository()
        self.idempotency = MemoryIdempotencyStore()

    def _repository(self, context: AdapterContext) -> MemoryRepository:
        return self.repository

    def _idempotency(self, context: AdapterContext) -> MemoryIdempotencyStore:
        return self.idempotency

    @hookimpl
    def paycore_register_repositories(self, register: RepositoryRegistrar) -> None:
        register("kept-memory", self._repository)

    @hookimpl
    def paycore_register_idempotency_stores(self, register: IdempotencyStoreRegistrar) -> None:
        register("kept-memory", self._idempotency)


@frozen
class Shop:
    """The restaurant's configuration and plugins, and the async library its commands run on."""

    config: dict[str, Any]
    plugins: tuple[object, ...]
    backend: str

    def run(self, *argv: str) -> int:
        """``paycore ARGV --backend BACKEND`` on the shop's configuration; the exit status."""
        return main([*argv, "--backend", self.backend], config=self.config, plugins=self.plugins)

    def flow(self) -> PaymentFlow:
        """A flow on the shop's storage (to set a test up as the restaurant's application would)."""
        return PaymentFlow.from_config(self.config, plugins=self.plugins)

    def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """``function()`` run to the end under the shop's async library."""
        return anyio.run(function, backend=self.backend)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> Shop:
    """The demo's restaurant day stored in memory, a SQLite file or PostgreSQL; an ``online`` provider too."""
    plugins: tuple[object, ...] = ()
    if request.param == "memory":
        plugins, repository = (KeptMemory(),), "kept-memory"
    elif request.param == "sqlite":
        repository = f"sqlite:///{tmp_path / 'day.db'}"
    else:
        repository = str(request.getfixturevalue("postgres_url"))
    config = demo_config(repository)
    config["tenants"][DEMO_TENANT]["providers"]["online"] = {
        "type": "dummy",
        "gateway": GATEWAY,
        "api_key": _API_KEY,
        "webhook_secret": _WEBHOOK_SECRET,
        "method": "mobile_money",
    }
    config["tenants"]["le-baobab"] = {"providers": {"online": config["tenants"][DEMO_TENANT]["providers"]["online"]}}
    shop = Shop(config, plugins, anyio_backend)

    async def day() -> None:
        async with shop.flow() as flow:
            await run_demo_day(flow)

    shop.call(day)
    return shop


@pytest.fixture
def gateway() -> Iterator[DummyGateway]:
    """The dummy gateway the ``online`` provider reaches in process; it sends no webhooks (no URL)."""
    gateway = DummyGateway(api_key=_API_KEY, webhook_secrets=_WEBHOOK_SECRET)
    register_gateway(GATEWAY, gateway)
    yield gateway
    unregister_gateway(GATEWAY)


def xof(amount: str) -> Money:
    return Money.of(amount, "XOF")


def json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def payment_of_order(shop: Shop, order: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one payment of ``order``, as ``paycore payments list --json`` shows it."""
    assert shop.run("payments", "list", "--tenant", DEMO_TENANT, "--order", order, "--json") == 0
    (payment,) = json_out(capsys)["items"]
    return dict(payment)


def shown(shop: Shop, payment_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``paycore payments show ID --json``: the payment and its events."""
    assert shop.run("payments", "show", payment_id, "--tenant", DEMO_TENANT, "--json") == 0
    return dict(json_out(capsys))


def open_till(shop: Shop, till: str = "T1") -> None:
    """Awa opens ``till``'s drawer again, with 10 000 XOF, so that it can pay refunds out."""

    async def opening() -> None:
        async with shop.flow() as flow:
            drawers = CashDrawers(flow, tenant=DEMO_TENANT, currency="XOF")
            await drawers.open(till=till, opening_float=xof("10000"), opened_by="Awa")

    shop.call(opening)


def test_report_prints_the_tenants_day(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    today = utcnow().date().isoformat()
    assert shop.run("report", "--tenant", DEMO_TENANT, "--day", today, "--timezone", "Africa/Dakar") == 0
    out = capsys.readouterr().out
    assert f"Day report: {DEMO_TENANT}, {today} (Africa/Dakar)" in out
    assert "Captured: 53 500 XOF" in out
    assert "Refunded (2): 5 000 XOF" in out
    assert "Cash drawers (cash)" in out
    assert shop.run("report", "--tenant", DEMO_TENANT, "--day", today, "--json") == 0
    data = json_out(capsys)
    assert (data["payment_count"], data["refund_count"]) == (9, 2)
    assert data["captured"] == [{"currency": "XOF", "minor_units": 53500}]


def test_report_of_a_day_not_begun_yet_is_refused_as_a_mistyped_date(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--day 2062-03-10`` (for 2026) printed an empty day and exited 0: the operator was told nothing."""
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    assert shop.run("report", "--tenant", DEMO_TENANT, "--day", tomorrow, "--timezone", "Etc/GMT+12") == 1
    err = capsys.readouterr().err
    assert err.startswith(f"paycore: error: day {tomorrow} has not begun yet in Etc/GMT+12 (today is ")
    assert "check the date" in err
    far_east = (utcnow() + timedelta(hours=14)).date().isoformat()  # already today at UTC+14
    assert shop.run("report", "--tenant", DEMO_TENANT, "--day", far_east, "--timezone", "Pacific/Kiritimati") == 0


def test_payments_list_pages_with_the_printed_cursor(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    assert shop.run("payments", "list", "--tenant", DEMO_TENANT, "--limit", "5", "--newest", "--json") == 0
    first = json_out(capsys)
    assert len(first["items"]) == 5
    argv = ["payments", "list", "--tenant", DEMO_TENANT, "--limit", "5", "--newest", "--after", first["next_cursor"]]
    assert shop.run(*argv) == 0
    out = capsys.readouterr().out
    assert "no more payments" in out
    ids = {item["id"] for item in first["items"]}
    listed = [line.split()[0] for line in out.splitlines()[1:] if line.strip().startswith("pay_")]
    assert len(listed) == 4
    assert ids.isdisjoint(listed)


def test_payments_list_filters_by_status(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    assert shop.run("payments", "list", "--tenant", DEMO_TENANT, "--status", "failed", "--json") == 0
    (failed,) = json_out(capsys)["items"]
    assert (failed["status"], failed["order_id"]) == ("failed", "W-0003")


def test_payments_show_refund_and_resolve(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    cash = payment_of_order(shop, "T1-0001", capsys)
    argv = ["payments", "refund", cash["id"], "--tenant", DEMO_TENANT, "--amount", "500", "--reason", "cold"]
    assert shop.run(*argv, "--key", "k1", "--metadata", "till=T9") == 1  # no drawer is open at till T9
    assert "paycore: error:" in capsys.readouterr().err
    assert shop.run("payments", "show", cash["id"], "--tenant", DEMO_TENANT) == 0
    out = capsys.readouterr().out
    assert f"payment   {cash['id']}" in out
    assert "Refunds (0)" in out
    assert "Events (" in out
    assert shop.run("payments", "resolve", cash["id"], "--tenant", DEMO_TENANT, "--note", "checked") == 0
    assert f"payment {cash['id']} awaits no review: nothing was changed" in capsys.readouterr().out


def test_resolve_says_nothing_was_changed_only_when_nothing_was(
    shop: Shop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cash = payment_of_order(shop, "T1-0003", capsys)
    resolve = PaymentFlow.resolve_review

    async def flagged_meanwhile(flow: PaymentFlow, payment_id: str, *, note: str, tenant: str | None = None) -> Any:
        """A fraud check flags the payment between the command's read and its resolve."""
        await flow.set_fraud_status(payment_id, "review", message="card seen at two tills", tenant=tenant)
        return await resolve(flow, payment_id, note=note, tenant=tenant)

    monkeypatch.setattr(PaymentFlow, "resolve_review", flagged_meanwhile)
    assert shop.run("payments", "resolve", cash["id"], "--tenant", DEMO_TENANT, "--note", "checked") == 0
    out = capsys.readouterr().out
    assert "nothing was changed" not in out
    assert (shown(shop, cash["id"], capsys)["events"][-1]["kind"]) == "review_resolved"


def test_resolve_says_nothing_was_changed_when_another_operator_resolved_it_first(
    shop: Shop, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cash = payment_of_order(shop, "T1-0003", capsys)

    async def flagged() -> None:
        async with shop.flow() as flow:
            await flow.set_fraud_status(cash["id"], "review", message="card seen at two tills", tenant=DEMO_TENANT)

    shop.call(flagged)
    resolve = PaymentFlow.resolve_review

    async def resolved_first(flow: PaymentFlow, payment_id: str, *, note: str, tenant: str | None = None) -> Any:
        """Operator A resolves it between operator B's read and B's resolve."""
        await resolve(flow, payment_id, note="A: refunded by phone", tenant=tenant)
        return await resolve(flow, payment_id, note=note, tenant=tenant)

    monkeypatch.setattr(PaymentFlow, "resolve_review", resolved_first)
    assert shop.run("payments", "resolve", cash["id"], "--tenant", DEMO_TENANT, "--note", "B: checked") == 0
    assert f"payment {cash['id']} awaits no review: nothing was changed" in capsys.readouterr().out
    notes = [e["message"] for e in shown(shop, cash["id"], capsys)["events"] if e["kind"] == "review_resolved"]
    assert notes == ["A: refunded by phone"]


FORGED = "\n\nCaptured: 999 999 XOF\nRefunded (0): 0\n\nEvents (0)\n  none"
"""Text with line breaks that, printed as it is, would read as a report's own lines."""


def test_stored_text_with_line_breaks_never_prints_lines_of_its_own(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    cash = payment_of_order(shop, "T1-0002", capsys)
    open_till(shop)
    argv = ["payments", "refund", cash["id"], "--tenant", DEMO_TENANT, "--amount", "500", "--metadata", "till=T1"]
    assert shop.run(*argv, "--reason", f"cold soup{FORGED}") == 0

    async def flagged() -> None:
        async with shop.flow() as flow:
            await flow.set_fraud_status(cash["id"], "review", message=f"card ok{FORGED}", tenant=DEMO_TENANT)

    shop.call(flagged)
    capsys.readouterr()
    assert shop.run("payments", "show", cash["id"], "--tenant", DEMO_TENANT) == 0
    assert shop.run("report", "--tenant", DEMO_TENANT, "--day", utcnow().date().isoformat()) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not [line for line in lines if "999 999" in line and "card ok" not in line and "cold soup" not in line]
    assert "cold soup Captured: 999 999 XOF Refunded (0): 0 Events (0) none" in out  # the reason, on its row
    assert f"review    fraud: card ok {' '.join(FORGED.split())}" in lines
    assert "Events (0)" not in lines


def test_a_refund_is_stored_shown_and_replayed_under_its_key(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    cash = payment_of_order(shop, "T1-0002", capsys)
    assert (cash["status"], cash["amount"]["minor_units"]) == ("succeeded", 12000)
    open_till(shop)
    argv = ["payments", "refund", cash["id"], "--tenant", DEMO_TENANT, "--amount", "1500", "--reason", "cold soup"]

    assert shop.run(*argv, "--key", "r-17") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("refund re_")
    assert f"of 1 500 XOF on payment {cash['id']}: succeeded" in printed
    refund_id = printed.split()[1]

    assert shop.run("payments", "show", cash["id"], "--tenant", DEMO_TENANT) == 0
    out = capsys.readouterr().out
    assert "refunded 1 500 XOF" in out
    assert "status    partially_refunded" in out
    assert "Refunds (1)" in out
    (row,) = [line for line in out.splitlines() if line.strip().startswith(refund_id)]
    assert row.split()[2:] == ["1", "500", "XOF", "succeeded", "cold", "soup"]

    assert shop.run(*argv, "--key", "r-17", "--json") == 0  # the operator runs it again: a replay
    replayed = json_out(capsys)
    assert (replayed["id"], replayed["status"], replayed["reason"]) == (refund_id, "succeeded", "cold soup")
    assert replayed["amount"] == {"currency": "XOF", "minor_units": 1500}

    payment = shown(shop, cash["id"], capsys)["payment"]
    assert payment["status"] == "partially_refunded"
    assert [(r["id"], r["amount"]["minor_units"]) for r in payment["refunds"]] == [(refund_id, 1500)]
    assert shop.run("report", "--tenant", DEMO_TENANT, "--day", utcnow().date().isoformat()) == 0
    assert "Refunded (3): 6 500 XOF" in capsys.readouterr().out  # the demo's two refunds and this one


def test_a_refund_over_what_was_captured_is_refused_and_changes_nothing(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    cash = payment_of_order(shop, "T1-0003", capsys)  # 7 500 XOF, 2 500 of it refunded by the demo
    open_till(shop)
    before = shown(shop, cash["id"], capsys)
    argv = ["payments", "refund", cash["id"], "--tenant", DEMO_TENANT, "--amount", "5001", "--reason", "all of it"]
    assert shop.run(*argv, "--key", "r-18") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"paycore: error: cannot refund 5001 XOF of payment {cash['id']}")
    assert "only 5000 XOF remains refundable" in captured.err
    assert "Traceback" not in captured.err
    assert shown(shop, cash["id"], capsys) == before
    assert shop.run(*argv[:3], "--tenant", DEMO_TENANT, "--amount", "5000", "--reason", "all of it") == 0
    assert "of 5 000 XOF" in capsys.readouterr().out  # what does remain can still be refunded
    assert shown(shop, cash["id"], capsys)["payment"]["status"] == "refunded"


@pytest.mark.parametrize("typed", ["1e3", "+1000", "\u0661\u0660\u0660\u0660"])
def test_a_refund_amount_no_one_types_is_refused_and_changes_nothing(
    shop: Shop, typed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--amount 1e3`` refunded 1 000 XOF; Arabic-Indic digits were read as their value."""
    cash = payment_of_order(shop, "T1-0003", capsys)
    open_till(shop)
    before = shown(shop, cash["id"], capsys)
    argv = ["payments", "refund", cash["id"], "--tenant", DEMO_TENANT, "--amount", typed, "--reason", "typo"]
    assert shop.run(*argv) == 1
    assert "not digits with at most one" in capsys.readouterr().err
    assert shown(shop, cash["id"], capsys) == before


def online_order(shop: Shop, gateway: DummyGateway, order_id: str, amount: str, **options: Any) -> str:
    """The id of a payment of ``amount`` XOF made at the dummy gateway and left processing: no webhook comes.
    ``approved``: the customer approved it at the gateway (on the phone)."""
    approved = options.pop("approved", False)

    async def create() -> str:
        async with gateway, shop.flow() as flow:
            checkout = await flow.create_payment(
                amount=xof(amount), provider="online", order_id=order_id, tenant=DEMO_TENANT, **options
            )
            if approved:
                assert checkout.payment.external_id is not None
                gateway.customer_action(checkout.payment.external_id, "approve")
            return checkout.payment.id

    return shop.call(create)


def test_refresh_applies_what_the_provider_says_now(
    shop: Shop, gateway: DummyGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    payment_id = online_order(shop, gateway, "W-0100", "6500", idempotency_key="W-0100", approved=True)
    assert shown(shop, payment_id, capsys)["payment"]["status"] == "processing"

    assert shop.run("payments", "refresh", payment_id, "--tenant", DEMO_TENANT) == 0
    out = capsys.readouterr().out
    assert f"payment   {payment_id}" in out
    assert "status    succeeded" in out
    assert "captured 6 500 XOF" in out

    assert shop.run("payments", "refresh", payment_id, "--tenant", DEMO_TENANT, "--json") == 0
    refreshed = json_out(capsys)
    assert (refreshed["status"], refreshed["captured_amount"]["minor_units"]) == ("succeeded", 6500)
    events = shown(shop, payment_id, capsys)["events"]
    assert [e["to_status"] for e in events if e["to_status"]][-1] == "succeeded"
    assert shop.run("payments", "list", "--tenant", DEMO_TENANT, "--status", "succeeded", "--json") == 0
    assert payment_id in {p["id"] for p in json_out(capsys)["items"]}


def test_a_payment_of_another_tenant_is_not_found_without_a_traceback(
    shop: Shop, capsys: pytest.CaptureFixture[str]
) -> None:
    assert shop.run("payments", "list", "--tenant", DEMO_TENANT, "--limit", "1", "--json") == 0
    payment = json_out(capsys)["items"][0]
    assert shop.run("payments", "show", payment["id"], "--tenant", "le-baobab") == 1
    err = capsys.readouterr().err
    assert err == f"paycore: error: no payment {payment['id']!r} for tenant 'le-baobab'\n"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "command",
    [
        ("report", "--day", "2026-12-04"),
        ("payments", "list"),
        ("payments", "show", "pay_x"),
    ],
    ids=["report", "list", "show"],
)
def test_a_tenant_not_configured_is_an_error_not_an_empty_day(
    shop: Shop, capsys: pytest.CaptureFixture[str], command: tuple[str, ...]
) -> None:
    assert shop.run(*command, "--tenant", "chez-aw") == 1  # a mistyped chez-awa
    captured = capsys.readouterr()
    assert captured.err.startswith("paycore: error: tenant 'chez-aw' is not configured")
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_an_edited_cursor_is_an_error_naming_the_cursor(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    assert shop.run("payments", "list", "--tenant", DEMO_TENANT, "--after", "abc.def") == 1
    assert "cursor 'abc.def'" in capsys.readouterr().err


def test_resolve_refund_settles_only_a_pending_refund(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    cash = payment_of_order(shop, "T1-0002", capsys)
    open_till(shop)
    argv = ["payments", "refund", cash["id"], "--tenant", DEMO_TENANT, "--amount", "1500", "--reason", "cold soup"]
    assert shop.run(*argv) == 0
    refund_id = capsys.readouterr().out.split()[1]
    settle = ["payments", "resolve-refund", cash["id"], refund_id, "--tenant", DEMO_TENANT, "--note", "seen"]
    assert shop.run(*settle, "--outcome", "failed") == 1
    assert f"refund {refund_id} is succeeded: only a pending one is resolved" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        shop.run(*settle, "--outcome", "refunded")
    assert usage.value.code == 2
    assert shop.run("payments", "show", cash["id"], "--tenant", DEMO_TENANT) == 0
    assert "status    partially_refunded" in capsys.readouterr().out, "nothing changed"


def test_resolve_payment_records_what_the_operator_found_at_the_provider(
    shop: Shop, gateway: DummyGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    payment_id = online_order(shop, gateway, "W-0101", "6500", idempotency_key="W-0101")
    settle = ["payments", "resolve-payment", payment_id, "--tenant", DEMO_TENANT, "--note", "5 000 sent by phone"]
    assert shop.run(*settle, "--outcome", "failed", "--amount", "5000") == 1
    assert "an amount is given only with outcome succeeded or authorized" in capsys.readouterr().err
    assert shop.run(*settle, "--outcome", "succeeded", "--amount", "6501") == 1
    assert "cannot record 6501 XOF held on a payment of 6500 XOF" in capsys.readouterr().err
    assert shown(shop, payment_id, capsys)["payment"]["status"] == "processing", "nothing changed"
    assert shop.run("payments", "show", payment_id, "--tenant", DEMO_TENANT) == 0
    assert "amount    6 500 XOF   captured -   refunded 0 XOF" in capsys.readouterr().out, "no hold yet"
    assert shop.run(*settle, "--outcome", "succeeded", "--amount", "5000", "--json") == 0
    resolved = json_out(capsys)
    assert (resolved["status"], resolved["captured_amount"]["minor_units"]) == ("succeeded", 5000)
    assert shop.run(*settle, "--outcome", "succeeded") == 1
    assert "only a pending or processing payment is resolved" in capsys.readouterr().err


def test_show_tells_a_partial_hold_an_operator_recorded(
    shop: Shop, gateway: DummyGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    payment_id = online_order(shop, gateway, "W-0102", "9900", capture=False)
    settle = ["payments", "resolve-payment", payment_id, "--tenant", DEMO_TENANT, "--note", "5 000 held, seen"]
    assert shop.run(*settle, "--outcome", "authorized", "--amount", "5000") == 0
    assert "amount    9 900 XOF   authorized 5 000 XOF   captured -" in capsys.readouterr().out
    assert shop.run("payments", "show", payment_id, "--tenant", DEMO_TENANT) == 0
    assert "amount    9 900 XOF   authorized 5 000 XOF   captured -" in capsys.readouterr().out
