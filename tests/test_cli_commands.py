"""The ``paycore`` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import paycore.testing.fake
from paycore import fsm
from paycore.cli import main


def test_plugins_lists_installed_plugins_with_versions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "memory" in out
    assert "paycore-memory 0.1.0" in out
    assert "repository memory" in out


WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DUMMY = {"type": "dummy", "base_url": "http://127.0.0.1:9", "webhook_secret": WEBHOOK_SECRET}
"""A dummy gateway's provider (a plugin the core's tests install) with the secrets it reads."""


def test_check_accepts_a_valid_configuration_and_hides_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\n[tenants.chez-awa.providers.till]\ntype = "dummy"\n'
                      'base_url = "http://127.0.0.1:9"\napi_key = "sk-live-do-not-print"\n'
                      f'webhook_secret = "{WEBHOOK_SECRET}"\n')  # fmt: skip
    assert main(["--config", str(config), "check"]) == 0
    out = capsys.readouterr().out
    assert "chez-awa" in out
    assert "till" in out
    assert "sk-live-do-not-print" not in out


def test_check_of_a_configuration_given_in_code_never_prints_its_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "repository": "memory",
        "providers": {"till": {**DUMMY, "api_key": "sk-live-do-not-print"}},
    }
    assert main(["check"], config=config) == 0
    out = capsys.readouterr().out
    assert "configuration OK: the configuration given in code" in out
    assert "sk-live-do-not-print" not in out


def test_check_refuses_a_broken_configuration_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\nprovider_timout = 3\n')
    assert main(["--config", str(config), "check"]) == 1
    assert "unknown configuration key(s) ['provider_timout']" in capsys.readouterr().err


def test_check_refuses_a_setting_its_provider_does_not_read_without_showing_its_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = {"repository": "memory", "providers": {"till": {"type": "cash", "api_kye": "sk-live-do-not-print"}}}
    assert main(["check"], config=config) == 1
    err = capsys.readouterr().err
    assert "no setting 'api_kye'; it reads currency, label" in err
    assert "sk-live-do-not-print" not in err


@pytest.mark.parametrize(
    "argv", [["check"], ["payments", "list"], ["report", "--day", "2026-12-04"]], ids=["check", "payments", "report"]
)
def test_a_configuration_file_nested_too_deeply_is_a_one_line_error(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "deep.toml"
    config.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["--config", str(config), *argv]) == 1
    captured = capsys.readouterr()
    refused = f"configuration file '{config}' nests arrays or tables too deeply to be read"
    assert captured.err == f"paycore: error: {refused}\n"
    assert captured.out == ""


def test_states_prints_the_state_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["states"]) == 0
    assert capsys.readouterr().out == fsm.mermaid()


def test_the_states_page_of_the_docs_matches_the_machine() -> None:
    page = (Path(__file__).parents[1] / "docs" / "states.md").read_text()
    assert fsm.mermaid() in page, "regenerate docs/states.md with `paycore states`"


def test_check_names_the_file_paycore_config_points_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\n[providers.till]\ntype = "cash"\n')
    monkeypatch.setenv("PAYCORE_CONFIG", str(config))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"configuration OK: {config} (PAYCORE_CONFIG; PAYCORE_* applied)" in out
    assert "embedded default" not in out
    assert "till" in out


def test_check_without_paycore_config_says_embedded_default(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PAYCORE_CONFIG", raising=False)
    assert main(["check"]) == 0
    assert "configuration OK: embedded default (PAYCORE_* applied)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--backend", "trio"],
        ["report", "--backend", "trio", "--day", "2026-12-04"],
        ["payments", "list", "--backend", "trio"],
    ],
    ids=["demo", "report", "payments"],
)
def test_backend_trio_without_trio_installed_is_a_one_line_error(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from anyio._core import _eventloop

    monkeypatch.setitem(sys.modules, "trio", None)  # `import trio` raises ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "anyio._backends._trio", None)
    if hasattr(_eventloop, "loaded_backends"):  # forget a trio backend an earlier test loaded
        loaded = {name: backend for name, backend in _eventloop.loaded_backends.items() if name != "trio"}
        monkeypatch.setattr(_eventloop, "loaded_backends", loaded)
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == "paycore: error: --backend trio needs trio: pip install 'paycore[trio]'\n"
    assert captured.out == ""


def test_output_to_a_reader_that_stopped_early_ends_quietly() -> None:
    import subprocess

    command = [sys.executable, "-m", "paycore.cli", "states"]
    shell = f"{' '.join(command)} | true"  # ``| head``: the reader is gone before the table is written
    ended = subprocess.run(["bash", "-c", f"set -o pipefail; {shell}"], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in ended.stderr
    assert "Exception ignored" not in ended.stderr
    assert ended.stderr == ""
    assert ended.returncode in (0, 141), "141 (as a command ended by SIGPIPE) when the write found the reader gone"


def test_python_dash_m_paycore_runs_the_command() -> None:
    import subprocess

    ended = subprocess.run([sys.executable, "-m", "paycore", "states"], capture_output=True, text=True, timeout=60)
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith("stateDiagram-v2")
    wrong = subprocess.run([sys.executable, "-m", "paycore", "nope"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("usage: python -m paycore")


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd (a pipe named by path, as a shell's <(...))")
def test_a_configuration_read_from_a_pipe_is_the_one_the_command_runs_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ``--config <(decrypt paycore.toml)``: read twice, the pipe was empty the second time, and the command ran on the
    # embedded default without a word.
    import os

    secret = "whsec-never-printed-0123456789"
    text = (
        f'repository = "sqlite:///{tmp_path / "pos.db"}"\n[providers.till]\ntype = "cash"\n'
        f'[providers.card]\ntype = "fake"\nwebhook_secret = "{secret}"\n'
    )
    for before in (True, False):
        reading, writing = os.pipe()
        os.write(writing, text.encode())
        os.close(writing)
        named = ["--config", f"/dev/fd/{reading}"]
        try:
            assert main([*named, "check"] if before else ["check", *named], plugins=[paycore.testing.fake]) == 0
        finally:
            os.close(reading)
        out = capsys.readouterr().out
        assert out.startswith(f"configuration OK: /dev/fd/{reading}"), "the pipe is named, not its contents shown"
        assert "repository   sqlalchemy" in out
        assert "till" in out
        assert secret not in out


# -- --config after the subcommand ------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "plugins", "states"])
def test_every_command_takes_its_config_after_the_subcommand_too(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/configuration.md: the command reads its ``--config`` "before or after the subcommand", as
    ``payments list --config`` always did; ``check --config FILE`` was "unrecognized arguments", status 2."""
    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\n[providers.till]\ntype = "cash"\n')
    assert main([command, "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    if command == "check":
        assert captured.out.startswith(f"configuration OK: {config}\n")
        assert "till" in captured.out


def test_a_config_after_the_subcommand_is_the_one_that_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = tmp_path / "missing.toml", tmp_path / "paycore.toml"
    after.write_text('repository = "memory"\n[providers.till]\ntype = "cash"\n')
    assert main(["--config", str(before), "check", "--config", str(after)]) == 0
    assert capsys.readouterr().out.startswith(f"configuration OK: {after}\n")
    assert main(["check", "--config", str(before)]) == 1
    assert capsys.readouterr().err == f"paycore: error: configuration file '{before}' does not exist\n"


def test_a_plugins_command_gets_the_config_given_after_it_unless_it_reads_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from typing import Any

    from paycore import hookimpl

    class Commands:
        @hookimpl
        def paycore_register_commands(self, register: Any) -> None:
            register("where", help="print the configuration", configure=lambda parser: None, run=_print_config)

            def own(parser: Any) -> None:
                parser.add_argument("--config", dest="own_config")

            register("own", help="its own --config", configure=own, run=lambda args: print(args.own_config))

    config = tmp_path / "paycore.toml"
    config.write_text('repository = "memory"\n')
    assert main(["where", "--config", str(config)], plugins=[Commands()]) == 0
    assert capsys.readouterr().out == f"{config}\n"
    assert main(["own", "--config", "mine.toml"], plugins=[Commands()]) == 0
    assert capsys.readouterr().out == "mine.toml\n"


def _print_config(args: object) -> int:
    print(getattr(args, "config", None))
    return 0


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd (a pipe named by path, as a shell's <(...))")
@pytest.mark.parametrize("argv", [["check"], ["payments", "list"]], ids=["check", "payments"])
def test_a_pipe_given_after_the_subcommand_is_read_once_too(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # ``payments list --config <(...)`` read the pipe a second time, found it empty, and listed the embedded default's
    # payments without a word.
    import os

    reading, writing = os.pipe()
    os.write(writing, b'repository = "nowhere"\n')
    os.close(writing)
    try:
        assert main([*argv, "--config", f"/dev/fd/{reading}"]) == 1
    finally:
        os.close(reading)
    captured = capsys.readouterr()
    assert captured.err.startswith("paycore: error: no repository type 'nowhere' is installed")
    assert captured.err.count("\n") == 1
    assert captured.out == ""


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd (a pipe named by path, as a shell's <(...))")
def test_a_pipe_given_to_a_plugins_command_s_own_config_is_read_once_too(capsys: pytest.CaptureFixture[str]) -> None:
    """``paycore db upgrade --config <(...)`` read the pipe a second time, found it empty, and migrated the embedded
    default's ``./paycore.db`` instead of the configured database, saying it had upgraded it."""
    import os
    from typing import Any

    from paycore import hookimpl
    from paycore.config import load_config

    class Commands:
        @hookimpl
        def paycore_register_commands(self, register: Any) -> None:
            def own(parser: Any) -> None:
                parser.add_argument("--config", dest="own_config")

            def run(args: Any) -> int:
                print(load_config(args.own_config).provider_timeout)
                return 0

            register("own", help="its own --config", configure=own, run=run)

    reading, writing = os.pipe()
    os.write(writing, b"provider_timeout = 7\n")
    os.close(writing)
    try:
        assert main(["own", "--config", f"/dev/fd/{reading}"], plugins=[Commands()]) == 0
    finally:
        os.close(reading)
    assert capsys.readouterr().out == "7.0\n"


# -- what a provider does while it is built ------------------------------------------------------


def test_check_of_a_provider_that_calls_sys_exit_is_a_one_line_error_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It ended the command with status 4 ("no licence key" as the only output, on stderr, by Python itself)."""
    from typing import Any

    from paycore import hookimpl
    from paycore.testing.fake import FakeProvider

    class Exiting(FakeProvider):
        name = "exiting"

        def __init__(self, context: Any) -> None:
            super().__init__(context)
            sys.exit("no licence key")

    class Registers:
        @hookimpl
        def paycore_register_providers(self, register: Any) -> None:
            register(Exiting)

    config = {"repository": "memory", "providers": {"till": {"type": "exiting", "webhook_secret": WEBHOOK_SECRET}}}
    assert main(["check"], config=config, plugins=[Registers()]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("paycore: error: provider 'till' (exiting) of tenant None could not be built by ")
    assert "SystemExit: the plugin called sys.exit('no licence key')" in captured.err
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_check_refuses_a_label_that_is_not_text(capsys: pytest.CaptureFixture[str]) -> None:
    config = {"repository": "memory", "providers": {"till": {"type": "cash", "label": ["Espèces"]}}}
    assert main(["check"], config=config) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("paycore: error: provider 'till' (cash) of tenant None: the setting 'label' must ")
    assert captured.err.endswith("; got a list\n")
    assert captured.out == ""
