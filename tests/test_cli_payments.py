"""``paycore report`` and ``paycore payments``: an operator's back office from a shell, on SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from paycore.cli import main
from paycore.demo import DEMO_TENANT
from paycore.flow import PaymentFlow
from paycore.records import utcnow
from tests.test_day_report import demo_config, run_demo_day


@pytest.fixture
def day_config(tmp_path: Path) -> dict[str, Any]:
    """A SQLite database holding the demo's restaurant day, and the configuration reaching it."""
    config = demo_config(f"sqlite:///{tmp_path / 'day.db'}")

    async def day() -> None:
        async with PaymentFlow.from_config(config) as flow:
            await run_demo_day(flow)

    anyio.run(day)
    return config


def run(config: dict[str, Any], *argv: str) -> int:
    return main(list(argv), config=config)


def test_report_prints_the_tenants_day(day_config: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    today = utcnow().date().isoformat()
    assert run(day_config, "report", "--tenant", DEMO_TENANT, "--day", today, "--timezone", "Africa/Dakar") == 0
    out = capsys.readouterr().out
    assert f"Day report: {DEMO_TENANT}, {today} (Africa/Dakar)" in out
    assert "Captured: 53 500 XOF" in out
    assert "Cash drawers (cash)" in out
    assert run(day_config, "report", "--tenant", DEMO_TENANT, "--day", today, "--json") == 0
    assert json.loads(capsys.readouterr().out)["payment_count"] == 9


def test_payments_list_pages_with_the_printed_cursor(
    day_config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(day_config, "payments", "list", "--tenant", DEMO_TENANT, "--limit", "5", "--newest", "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert len(first["items"]) == 5
    argv = ["payments", "list", "--tenant", DEMO_TENANT, "--limit", "5", "--newest", "--after", first["next_cursor"]]
    assert run(day_config, *argv) == 0
    out = capsys.readouterr().out
    assert "no more payments" in out
    ids = {item["id"] for item in first["items"]}
    shown = [line.split()[0] for line in out.splitlines()[1:] if line.strip().startswith("pay_")]
    assert len(shown) == 4
    assert ids.isdisjoint(shown)


def test_payments_list_filters_by_status(day_config: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(day_config, "payments", "list", "--tenant", DEMO_TENANT, "--status", "failed", "--json") == 0
    (failed,) = json.loads(capsys.readouterr().out)["items"]
    assert failed["status"] == "failed"


def test_payments_show_refund_and_resolve(day_config: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(day_config, "payments", "list", "--tenant", DEMO_TENANT, "--status", "succeeded", "--json") == 0
    cash = next(p for p in json.loads(capsys.readouterr().out)["items"] if p["provider"] == "cash")
    argv = [
        "payments",
        "refund",
        cash["id"],
        "--tenant",
        DEMO_TENANT,
        "--amount",
        "500",
        "--reason",
        "cold",
        "--key",
        "k1",
    ]
    assert run(day_config, *argv, "--metadata", "till=T9") == 1
    assert "paycore: error:" in capsys.readouterr().err
    assert run(day_config, "payments", "show", cash["id"], "--tenant", DEMO_TENANT) == 0
    out = capsys.readouterr().out
    assert f"payment   {cash['id']}" in out
    assert "Events (" in out
    assert run(day_config, "payments", "resolve", cash["id"], "--tenant", DEMO_TENANT, "--note", "checked") == 0


def test_a_payment_of_another_tenant_is_not_found_without_a_traceback(
    day_config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(day_config, "payments", "list", "--tenant", DEMO_TENANT, "--limit", "1", "--json") == 0
    payment = json.loads(capsys.readouterr().out)["items"][0]
    assert run(day_config, "payments", "show", payment["id"], "--tenant", "le-baobab") == 1
    err = capsys.readouterr().err
    assert err.startswith("paycore: error:")
    assert "Traceback" not in err


def test_an_edited_cursor_is_an_error_naming_the_cursor(
    day_config: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(day_config, "payments", "list", "--tenant", DEMO_TENANT, "--after", "abc.def") == 1
    assert "cursor 'abc.def'" in capsys.readouterr().err
