"""``paycore drawer``: a till's day from the shell, kept in a SQLite file between commands."""

from __future__ import annotations

import json
import shlex
import textwrap
from pathlib import Path

import pytest

from paycore.cli import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "paycore.toml"
    path.write_text(
        f'repository = "sqlite:///{tmp_path / "paycore.db"}"\n'
        "[tenants.chez-awa.providers.cash]\n"
        'type = "cash"\n'
        'currency = "XOF"\n'
    )
    return str(path)


@pytest.fixture(params=["configured currency", "currency of the float"])
def any_config(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A configuration whose cash provider fixes the currency, then one whose drawers take their float's."""
    path = tmp_path / "any.toml"
    currency = 'currency = "XOF"\n' if request.param == "configured currency" else ""
    path.write_text(
        f'repository = "sqlite:///{tmp_path / "any.db"}"\n[tenants.chez-awa.providers.cash]\ntype = "cash"\n{currency}'
    )
    return str(path)


def drawer(config: str, *args: str) -> list[str]:
    return ["drawer", args[0], "--config", config, "--tenant", "chez-awa", *args[1:]]


def test_a_day_at_the_till_from_the_command_line(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa")) == 0
    assert "float 10 000 XOF" in capsys.readouterr().out
    assert main(drawer(config, "pay-in", "--till", "T1", "--amount", "5000", "--reason", "coins", "--by", "Awa")) == 0
    assert "should hold 15 000 XOF" in capsys.readouterr().out
    assert main(drawer(config, "pay-out", "--till", "T1", "--amount", "12000", "--reason", "drop", "--by", "Awa")) == 0
    capsys.readouterr()
    assert main(drawer(config, "close", "--till", "T1", "--counted", "2500", "--by", "Awa")) == 0
    closing = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert "Expected in drawer 3 000 XOF" in closing
    assert "Counted 2 500 XOF" in closing
    assert "Variance -500 XOF (short)" in closing


def test_the_report_is_available_as_json(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    main(drawer(config, "close", "--till", "T1", "--counted", "9000", "--by", "Awa"))
    capsys.readouterr()
    assert main(drawer(config, "report", "--till", "T1", "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["variance"] == {"amount": "-1000", "currency": "XOF"}
    assert data["status"] == "closed"


def test_listing_shows_each_session_with_its_variance(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    main(drawer(config, "close", "--till", "T1", "--counted", "10250", "--by", "Awa"))
    main(drawer(config, "open", "--till", "T1", "--float", "5000", "--by", "Binta"))
    capsys.readouterr()
    assert main(drawer(config, "list", "--till", "T1")) == 0
    rows = capsys.readouterr().out.splitlines()
    assert len(rows) == 2
    assert "closed" in rows[0]
    assert "variance +250 XOF" in rows[0]
    assert "open" in rows[1]
    assert "Binta" in rows[1]


def test_a_refused_command_says_why_and_exits_non_zero(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(drawer(config, "pay-out", "--till", "T1", "--amount", "100", "--reason", "x", "--by", "Awa")) == 1
    assert "no open cash drawer" in capsys.readouterr().err


@pytest.mark.parametrize("typed", ["1e3", "+100", "\u0661\u0660\u0660"])
def test_an_amount_no_one_types_is_refused_and_moves_no_cash(
    config: str, typed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--amount 1e3`` paid 1 000 XOF out of the drawer."""
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    capsys.readouterr()
    assert main(drawer(config, "pay-out", "--till", "T1", "--amount", typed, "--reason", "x", "--by", "Awa")) == 1
    assert "not digits with at most one" in capsys.readouterr().err
    main(drawer(config, "list", "--json"))
    assert json.loads(capsys.readouterr().out)[0]["expected"] == {"amount": "10000", "currency": "XOF"}


def test_closing_twice_from_the_command_line_is_refused(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(drawer(config, "open", "--till", "T1", "--float", "10000", "--by", "Awa"))
    main(drawer(config, "close", "--till", "T1", "--counted", "10000", "--by", "Awa"))
    capsys.readouterr()
    main(drawer(config, "list", "--json"))
    session_id = json.loads(capsys.readouterr().out)[0]["session_id"]
    assert main(drawer(config, "close", "--session", session_id, "--counted", "1", "--by", "Awa")) == 1
    assert "closed already" in capsys.readouterr().err


def test_the_help_warns_that_the_default_forgets_drawers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["drawer", "open", "--help"])
    assert "forgets them" in capsys.readouterr().out


def test_a_keyed_close_retried_after_it_went_through_replays_it(
    any_config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(drawer(any_config, "open", "--till", "T1", "--float", "10000", "--currency", "XOF", "--by", "Awa"))
    close = drawer(any_config, "close", "--till", "T1", "--counted", "9500", "--by", "Awa", "--key", "close-T1")
    capsys.readouterr()
    assert main(close) == 0
    first = capsys.readouterr().out
    assert main(close) == 0  # the answer was lost: the cashier runs it again
    assert capsys.readouterr().out == first
    assert "Variance -500 XOF (short)" in " ".join(first.split())
    main(drawer(any_config, "list", "--json"))
    assert [s["status"] for s in json.loads(capsys.readouterr().out)] == ["closed"]
    # another count under the key is refused, and an unkeyed close of a closed till still is
    recount = drawer(any_config, "close", "--till", "T1", "--counted", "9000", "--by", "Awa", "--key", "close-T1")
    assert main(recount) == 1
    assert "close-T1" in capsys.readouterr().err
    assert main(drawer(any_config, "close", "--till", "T1", "--counted", "9500", "--by", "Awa")) == 1
    assert "no open cash drawer" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["pay-in", "pay-out"])
def test_a_keyed_pay_in_or_out_retried_after_the_close_replays_it(
    any_config: str, action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main(drawer(any_config, "open", "--till", "T1", "--float", "10000", "--currency", "XOF", "--by", "Awa"))
    pay = drawer(any_config, action, "--till", "T1", "--amount", "2000", "--reason", "r", "--by", "Awa", "--key", "p1")
    capsys.readouterr()
    assert main(pay) == 0
    first = capsys.readouterr().out
    main(drawer(any_config, "close", "--till", "T1", "--counted", "0", "--by", "Awa"))
    capsys.readouterr()
    assert main(pay) == 0
    assert capsys.readouterr().out == first
    main(drawer(any_config, "report", "--till", "T1", "--json"))
    movements = json.loads(capsys.readouterr().out)["movements"]
    assert [m["kind"] for m in movements] == [action.replace("-", "_")]
    unkeyed = drawer(any_config, action, "--till", "T1", "--amount", "2000", "--reason", "r", "--by", "Awa")
    assert main(unkeyed) == 1
    assert "no open cash drawer" in capsys.readouterr().err


def test_a_till_never_opened_is_refused_without_a_configured_currency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bare.toml"
    path.write_text(
        f'repository = "sqlite:///{tmp_path / "bare.db"}"\n[tenants.chez-awa.providers.cash]\ntype = "cash"\n'
    )
    argv = drawer(str(path), "pay-in", "--till", "T9", "--amount", "1", "--reason", "r", "--by", "A", "--key", "k")
    assert main(argv) == 1
    assert "till 'T9' has no open cash drawer" in capsys.readouterr().err


def test_the_drawer_commands_use_the_plugins_the_command_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import paycore.testing.fake

    path = tmp_path / "with-fake.toml"
    path.write_text(  # a provider only a plugin given in code provides, beside the cash drawer
        f'repository = "sqlite:///{tmp_path / "fake.db"}"\n'
        '[tenants.chez-awa.providers.cash]\ntype = "cash"\ncurrency = "XOF"\n'
        '[tenants.chez-awa.providers.card]\ntype = "fake"\nwebhook_secret = "whsec-test"\n'
    )
    opened = drawer(str(path), "open", "--till", "T1", "--float", "10000", "--by", "Awa")
    assert main(opened, plugins=[paycore.testing.fake]) == 0
    assert "float 10 000 XOF" in capsys.readouterr().out


def test_the_help_examples_run_in_order_and_balance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The configuration and the commands ``paycore drawer --help`` shows, run as a user copies them."""
    with pytest.raises(SystemExit):
        main(["drawer", "--help"])
    help_text = capsys.readouterr().out
    config = textwrap.dedent(help_text.split("holding\n", 1)[1].split("\nExamples:", 1)[0]).strip()
    examples = [shlex.split(line)[1:] for line in help_text.split("Examples:\n", 1)[1].splitlines() if line.strip()]
    assert config.startswith('repository = "sqlite:///paycore.db"')
    actions = ("open", "pay-out", "close", "report")
    assert [example[:2] for example in examples] == [["drawer", action] for action in actions]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paycore.toml").write_text(config + "\n")
    outputs = []
    for example in examples:
        assert main(example) == 0, f"{shlex.join(example)}: {capsys.readouterr().err}"
        outputs.append([" ".join(line.split()) for line in capsys.readouterr().out.splitlines()])
    assert "the drawer should hold 30 000 XOF" in outputs[1][0]
    for report in outputs[2:]:  # the close prints the report, as the report command does
        assert "Expected in drawer 30 000 XOF" in report
        assert "Counted 30 000 XOF" in report
        assert "Variance 0 XOF (balanced)" in report
