"""``paycore dummy serve`` refuses arguments the gateway cannot run with, on one line, before starting anything."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn

from paycore.cli import main
from paycore_dummy import DummyGateway, generate_secret

SECRET = generate_secret()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` was asked to serve: nothing listens on a port in these tests."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    return calls


def serve(*arguments: str) -> int:
    """``paycore dummy serve`` with a key, a secret and ``arguments``; its exit status."""
    return main(["dummy", "serve", "--api-key", "sk_test_cli_0123", "--webhook-secret", SECRET, *arguments])


@pytest.mark.parametrize(
    ("arguments", "refusal"),
    [
        (["--attempts", "-1"], "--attempts must be at least 1 (delivery attempts in all), not -1"),
        (["--attempts", "0"], "--attempts must be at least 1 (delivery attempts in all), not 0"),
        (["--timeout-delay", "nan"], "--timeout-delay must be a number of seconds, 0 or more, not nan"),
        (["--timeout-delay", "-1"], "--timeout-delay must be a number of seconds, 0 or more, not -1.0"),
        (["--scenario-delay", "inf"], "--scenario-delay must be a number of seconds, 0 or more, not inf"),
        (["--port", "99999"], "--port must be 1 to 65535, not 99999"),
        (["--port", "0"], "--port must be 1 to 65535, not 0"),
        (["--port", "-1"], "--port must be 1 to 65535, not -1"),
        (["--host", "999.1.1.1"], "--host must be an address or a name to listen on, not '999.1.1.1': "),
        (["--host", "nohost.invalid"], "--host must be an address or a name to listen on, not 'nohost.invalid': "),
        (
            ["--host", "h" * 300],
            "--host must be an address or a name to listen on, not 'hhhhhhhhhhhhhhhhh...hhhhhhhhhhhhhhhhhh': "
            "not a host name",
        ),
        (["--webhook-url", "notaurl"], "--webhook-url: webhook_url must be an absolute http(s) URL "),
        (["--webhook-url", "https://shop.example/hooks/{code}"], "--webhook-url is where the gateway posts webhooks"),
    ],
)
def test_serve_refuses_an_argument_the_gateway_cannot_run_with_on_one_line_before_starting(
    served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str], arguments: list[str], refusal: str
) -> None:
    """It started the server anyway (or printed a traceback, or uvicorn's log) and kept running."""
    assert serve(*arguments) == 1
    out, err = capsys.readouterr()
    assert err.startswith(f"paycore: error: {refusal}")
    assert err.count("\n") == 1
    assert len(err) < 400
    assert (out, served) == ("", [])


def test_a_webhook_url_with_a_password_is_refused_without_showing_it(
    served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve("--webhook-url", "https://shop:s3cret@shop.example/hooks with space") == 1
    assert "s3cret" not in capsys.readouterr().err
    assert served == []


def test_serve_runs_the_gateway_with_the_arguments_it_accepts(
    served: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--host", "localhost", "--port", "65535", "--attempts", "1", "--timeout-delay", "0"]
    assert serve(*arguments, "--webhook-url", "https://shop.example/hooks") == 0
    [call] = served
    gateway = call["app"]
    assert isinstance(gateway, DummyGateway)
    assert (call["host"], call["port"], gateway.retry.attempts, gateway.timeout_delay) == ("localhost", 65535, 1, 0.0)
    assert gateway.webhook_url == "https://shop.example/hooks"
    assert "dummy gateway on http://localhost:65535" in capsys.readouterr().out


@pytest.mark.parametrize("separator", [" ", ",", ", "])
@pytest.mark.parametrize("given_in", ["option", "environment"])
def test_serve_signs_with_every_secret_of_a_rotation_written_as_the_providers_webhook_secret(
    served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, separator: str, given_in: str
) -> None:
    """The old and new secrets in one value (as the provider's ``webhook_secret`` takes them) were read as one
    secret and refused as "not valid base64", so a rotation could not be given through the environment."""
    import paycore_dummy.cli

    built: list[object] = []

    def gateway(**settings: Any) -> DummyGateway:
        built.append(settings["webhook_secrets"])
        return DummyGateway(**settings)

    monkeypatch.setattr(paycore_dummy.cli, "DummyGateway", gateway)
    rotated_in = generate_secret()
    both = f"{SECRET}{separator}{rotated_in}"
    if given_in == "environment":
        monkeypatch.setenv("PAYCORE_DUMMY_WEBHOOK_SECRET", both)
        assert main(["dummy", "serve", "--api-key", "sk_test_cli_0123"]) == 0
    else:
        assert main(["dummy", "serve", "--api-key", "sk_test_cli_0123", "--webhook-secret", both]) == 0
    assert built == [[SECRET, rotated_in]]
    assert len(served) == 1


@pytest.mark.parametrize(("option", "variable"), [("", None), (" , ", None), (None, "  "), (None, "")])
def test_serve_refuses_a_webhook_secret_given_empty(
    served: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    option: str | None,
    variable: str | None,
) -> None:
    """An unset shell variable in ``--webhook-secret "$SECRET"`` started a gateway with a secret made up for the
    run, so the shop's webhooks all failed their signature."""
    if variable is not None:
        monkeypatch.setenv("PAYCORE_DUMMY_WEBHOOK_SECRET", variable)
    else:
        monkeypatch.delenv("PAYCORE_DUMMY_WEBHOOK_SECRET", raising=False)
    given = [] if option is None else ["--webhook-secret", option]
    assert main(["dummy", "serve", "--api-key", "sk_test_cli_0123", *given]) == 1
    assert "holds no secret" in capsys.readouterr().err
    assert served == []
