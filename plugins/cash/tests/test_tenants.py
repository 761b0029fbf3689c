"""Drawers belong to a configured tenant that enables cash: any other tenant name is refused, nothing written.

``""`` must never reach the tenant-less default's drawers (SQL storage keeps
that default as ``''``), a typo must never open drawers of its own, and a
tenant whose configuration has no cash provider has no drawers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import paycore.testing.fake
from paycore.cli import main
from paycore.errors import ProviderNotEnabled, ValidationError
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore.reports import day_report
from paycore_cash.drawers import CashDrawers
from paycore_cash.errors import CashError, CashNotEnabled

pytestmark = pytest.mark.anyio

CASH = {"type": "cash", "currency": "XOF"}
BAD_TENANTS = ["", "chez-awaa", "no-such-restaurant", "le-baobab", " chez-awa", "x" * 65, 5, "chez\x00awa"]
"""An empty name, typos, a tenant without cash (``le-baobab``), names no configuration can hold, not a string."""


def xof(amount: int) -> Money:
    return Money.of(str(amount), "XOF")


def config(repository: str) -> dict[str, Any]:
    """Cash for the default tenant and ``chez-awa``; ``le-baobab`` takes payments but no cash."""
    return {
        "repository": repository,
        "providers": {"cash": dict(CASH)},
        "tenants": {
            "chez-awa": {"providers": {"cash": dict(CASH)}},
            "le-baobab": {"providers": {"online": {"type": "fake", "webhook_secret": "s"}}},
        },
    }


@pytest.fixture
async def flow(repository_url: str) -> AsyncIterator[PaymentFlow]:
    async with PaymentFlow.from_config(config(repository_url), plugins=[paycore.testing.fake]) as built:
        yield built


@pytest.mark.parametrize("tenant", BAD_TENANTS)
async def test_a_tenant_that_is_not_configured_with_cash_is_refused_and_changes_nothing(
    flow: PaymentFlow, tenant: Any
) -> None:
    default, awa = CashDrawers(flow), CashDrawers(flow, tenant="chez-awa")
    session = await default.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    await awa.open(till="T1", opening_float=xof(1_000), opened_by="Awa")
    with pytest.raises(CashNotEnabled) as refused:
        CashDrawers(flow, tenant=tenant)
    assert isinstance(refused.value, ProviderNotEnabled)  # as the flow refuses a provider a tenant lacks
    assert isinstance(refused.value, CashError)
    assert (await default.totals(session.id)).pay_outs == xof(0)
    assert [s.tenant for s in await default.sessions()] == [None]
    assert [s.tenant for s in await awa.sessions()] == ["chez-awa"]


async def test_the_refusal_says_which_tenant_and_why(flow: PaymentFlow) -> None:
    with pytest.raises(CashNotEnabled, match=r"tenant 'chez-awaa' is not configured"):
        CashDrawers(flow, tenant="chez-awaa")
    with pytest.raises(CashNotEnabled, match=r"cash provider is not enabled for tenant 'le-baobab'; enabled: online"):
        CashDrawers(flow, tenant="le-baobab")
    with pytest.raises(CashNotEnabled, match=r"configured tenant .*not ''"):
        CashDrawers(flow, tenant="")


async def test_no_tenant_is_refused_when_only_tenants_enable_cash() -> None:
    config = {"repository": "memory", "tenants": {"chez-awa": {"providers": {"cash": dict(CASH)}}}}
    async with PaymentFlow.from_config(config) as flow:
        with pytest.raises(CashNotEnabled, match=r"no-tenant default has no cash provider.*tenant="):
            CashDrawers(flow)
        awa = CashDrawers(flow, tenant="chez-awa")
        await awa.open(till="T1", opening_float=xof(5_000), opened_by="Awa")
        assert [s.tenant for s in await awa.sessions()] == ["chez-awa"]
        assert await awa.storage.list_sessions(None) == []


async def test_the_default_and_configured_tenants_keep_their_own_drawers(flow: PaymentFlow) -> None:
    await CashDrawers(flow).open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    awa = CashDrawers(flow, tenant="chez-awa")
    assert await awa.current("T1") is None
    await awa.open(till="T1", opening_float=xof(1_000), opened_by="Binta")
    assert (await awa.require_open("T1")).opened_by == "Binta"


@pytest.mark.parametrize("tenant", ["no-such-restaurant", "le-baobab"])
async def test_the_day_report_of_a_tenant_without_drawers_never_shows_anothers(flow: PaymentFlow, tenant: str) -> None:
    opened = await CashDrawers(flow).open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    day = opened.opened_at.date()
    assert [s.title for s in (await day_report(flow, tenant=None, day=day)).sections] == ["Cash drawers"]
    assert (await day_report(flow, tenant=tenant, day=day)).sections == ()


async def test_the_day_report_of_an_empty_tenant_name_is_refused_not_read_as_no_tenant(flow: PaymentFlow) -> None:
    opened = await CashDrawers(flow).open(till="T1", opening_float=xof(5_000), opened_by="Awa")
    with pytest.raises(ValidationError, match="tenant must be"):
        await day_report(flow, tenant="", day=opened.opened_at.date())


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def toml(tmp_path: Path) -> str:
    path = tmp_path / "paycore.toml"
    path.write_text(
        f'repository = "sqlite:///{tmp_path / "paycore.db"}"\n'
        '[providers.cash]\ntype = "cash"\ncurrency = "XOF"\n'
        '[tenants.chez-awa.providers.cash]\ntype = "cash"\ncurrency = "XOF"\n'
    )
    return str(path)


def drawer(toml: str, action: str, *args: str) -> list[str]:
    return ["drawer", action, "--config", toml, *args]


@pytest.mark.parametrize(
    ("action", "args"),
    [
        ("pay-out", ["--tenant", "", "--till", "T1", "--amount", "4000", "--reason", "taken", "--by", "someone"]),
        ("open", ["--tenant", "no-such-restaurant", "--till", "T1", "--float", "5", "--by", "Awa"]),
        ("close", ["--tenant", "", "--till", "T1", "--counted", "5000", "--by", "Awa"]),
        ("list", ["--tenant", "chez-awaa"]),
    ],
)
def test_the_command_line_refuses_a_bad_tenant_with_a_message_and_changes_nothing(
    toml: str, action: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(drawer(toml, "open", "--till", "T1", "--float", "5000", "--by", "Awa")) == 0
    capsys.readouterr()
    assert main(drawer(toml, action, *args)) == 1
    refusal = capsys.readouterr().err
    assert refusal.startswith(f"paycore drawer {action}: ")
    assert "tenant" in refusal
    assert "Traceback" not in refusal
    assert main(drawer(toml, "report", "--till", "T1", "--json")) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["status"], report["expected"]) == ("open", {"amount": "5000", "currency": "XOF"})
    assert main(drawer(toml, "list", "--tenant", "chez-awa")) == 0
    assert capsys.readouterr().out.strip() == "no drawer sessions"


def test_the_command_line_without_a_tenant_is_refused_when_only_tenants_enable_cash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "paycore.toml"
    path.write_text(
        f'repository = "sqlite:///{tmp_path / "paycore.db"}"\n'
        '[tenants.chez-awa.providers.cash]\ntype = "cash"\ncurrency = "XOF"\n'
    )
    toml = str(path)
    assert main(drawer(toml, "open", "--till", "T1", "--float", "5000", "--by", "Awa")) == 1
    refusal = capsys.readouterr().err
    assert refusal.startswith("paycore drawer open: the no-tenant default has no cash provider")
    assert "--tenant" in refusal
    assert main(drawer(toml, "open", "--tenant", "chez-awa", "--till", "T1", "--float", "5000", "--by", "Awa")) == 0
    capsys.readouterr()
    assert main(drawer(toml, "list", "--tenant", "chez-awa")) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
