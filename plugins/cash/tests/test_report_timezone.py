"""A drawer report read in the restaurant's time zone, from code and from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from paycore.cli import main
from paycore.money import Money
from paycore_cash.errors import InvalidCashRequest
from paycore_cash.records import CashMovement, DrawerSession, DrawerStatus, MovementKind
from paycore_cash.report import DrawerReport

PORTO_NOVO = ZoneInfo("Africa/Porto-Novo")  # UTC+1 all year (WAT), as Cotonou and Niamey
OPENED = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
SALE = datetime(2026, 3, 2, 12, 5, tzinfo=UTC)
CLOSED = datetime(2026, 3, 2, 22, 15, tzinfo=UTC)


def _report(*, opened_at: datetime = OPENED, sale_at: datetime = SALE, closed_at: datetime = CLOSED) -> DrawerReport:
    xof = lambda amount: Money.of(amount, "XOF")  # noqa: E731
    session = DrawerSession(
        "drw_1",
        "chez-awa",
        "T1",
        "XOF",
        xof("10000"),
        "Awa",
        opened_at,
        status=DrawerStatus.CLOSED,
        closed_by="Awa",
        closed_at=closed_at,
        counted=xof("13500"),
        expected=xof("13500"),
        variance=xof("0"),
    )
    sale = CashMovement("mov_1", "drw_1", MovementKind.SALE, xof("3500"), sale_at, actor="Awa", reason="T1-0001")
    return DrawerReport.build(session, [sale])


def _line(text: str, start: str) -> str:
    """The first line of ``text`` that starts with ``start``, its runs of spaces made one."""
    return next(" ".join(line.split()) for line in text.splitlines() if line.lstrip().startswith(start))


def test_a_report_in_a_time_zone_shows_the_opening_and_each_movement_in_local_time() -> None:
    text = _report().render(timezone=PORTO_NOVO)
    assert _line(text, "Opened") == "Opened 2026-03-02 08:30 WAT by Awa, float 10 000 XOF"
    assert _line(text, "1 ") == "1 13:05 sale +3 500 XOF Awa T1-0001"
    assert _line(text, "Closed") == "Closed 2026-03-02 23:15 WAT by Awa"


def test_a_report_without_a_time_zone_is_in_utc_as_before() -> None:
    report = _report()
    text = report.render()
    assert text == report.render(timezone=None)
    assert text.splitlines()[1:3] == [
        "Opened 2026-03-02 07:30 UTC by Awa, float 10 000 XOF",
        "Closed 2026-03-02 22:15 UTC by Awa",
    ]
    assert _line(text, "1 ") == "1 12:05 sale +3 500 XOF Awa T1-0001"


def test_a_movement_after_local_midnight_shows_the_local_time_and_the_closing_the_next_local_day() -> None:
    late = _report(sale_at=datetime(2026, 3, 2, 23, 40, tzinfo=UTC), closed_at=datetime(2026, 3, 2, 23, 50, tzinfo=UTC))
    text = late.render(timezone=PORTO_NOVO)  # in UTC all of it is on the 2nd; in Porto-Novo it ends on the 3rd
    assert _line(text, "Opened") == "Opened 2026-03-02 08:30 WAT by Awa, float 10 000 XOF"
    assert _line(text, "1 ") == "1 00:40 sale +3 500 XOF Awa T1-0001"
    assert _line(text, "Closed") == "Closed 2026-03-03 00:50 WAT by Awa"
    assert _line(late.render(), "Closed") == "Closed 2026-03-02 23:50 UTC by Awa"


def test_a_fixed_offset_zone_is_named_by_its_offset() -> None:
    text = _report().render(timezone=timezone(timedelta(hours=1)))
    assert _line(text, "Opened") == "Opened 2026-03-02 08:30 UTC+01:00 by Awa, float 10 000 XOF"


@pytest.mark.parametrize("zone", ["Africa/Porto-Novo", 1, timedelta(hours=1)])
def test_a_time_zone_that_is_not_a_tzinfo_is_refused(zone: object) -> None:
    with pytest.raises(InvalidCashRequest, match=r"timezone must be a datetime\.tzinfo .*, not "):
        _report().render(timezone=zone)  # type: ignore[arg-type]


def test_the_report_as_data_keeps_utc_with_its_offset() -> None:
    data = _report().as_dict()
    assert data["opened_at"] == "2026-03-02T07:30:00+00:00"
    assert data["movements"][0]["at"] == "2026-03-02T12:05:00+00:00"


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "paycore.toml"
    path.write_text(
        f'repository = "sqlite:///{tmp_path / "paycore.db"}"\n'
        '[tenants.chez-awa.providers.cash]\ntype = "cash"\ncurrency = "XOF"\n'
    )
    return str(path)


def drawer(config: str, *args: str) -> list[str]:
    return ["drawer", args[0], "--config", config, "--tenant", "chez-awa", *args[1:]]


def _local(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(PORTO_NOVO)


def test_the_command_line_shows_the_report_in_the_time_zone_it_is_given(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    main(drawer(config, "pay-in", "--till", "T1", "--amount", "500", "--reason", "coins", "--by", "Awa"))
    capsys.readouterr()
    close = drawer(config, "close", "--till", "T1", "--counted", "10500", "--by", "Awa")
    assert main([*close, "--timezone", "Africa/Porto-Novo"]) == 0
    closing = capsys.readouterr().out
    main(drawer(config, "report", "--till", "T1", "--json"))
    data = json.loads(capsys.readouterr().out)
    opened, closed = _local(data["opened_at"]), _local(data["closed_at"])
    assert f"Opened {opened:%Y-%m-%d %H:%M} WAT by Awa" in closing
    assert f"Closed {closed:%Y-%m-%d %H:%M} WAT by Awa" in closing
    assert _line(closing, "1 ").startswith(f"1 {_local(data['movements'][0]['at']):%H:%M} pay-in")
    assert main(drawer(config, "report", "--till", "T1", "--timezone", "Africa/Porto-Novo")) == 0
    assert capsys.readouterr().out == closing  # the report prints what the close printed
    assert main(drawer(config, "report", "--till", "T1")) == 0
    assert f"Opened {datetime.fromisoformat(data['opened_at']):%Y-%m-%d %H:%M} UTC" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["Mars/Olympus", "Africa", "africa/porto novo", ""])
def test_an_unknown_time_zone_is_a_one_line_error_with_exit_status_2(
    config: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    capsys.readouterr()
    assert main(drawer(config, "report", "--till", "T1", "--timezone", name)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"paycore drawer report: unknown time zone {name!r}; use an IANA name such as Africa/Dakar or UTC\n"
    )


def test_a_close_with_an_unknown_time_zone_closes_nothing(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    capsys.readouterr()
    close = drawer(config, "close", "--till", "T1", "--counted", "10000", "--by", "Awa")
    assert main([*close, "--timezone", "Mars/Olympus"]) == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err
    main(drawer(config, "list", "--json"))
    assert [s["status"] for s in json.loads(capsys.readouterr().out)] == ["open"]
