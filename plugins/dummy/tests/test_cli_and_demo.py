"""``paycore dummy serve`` runs the gateway on a port; ``paycore demo`` takes online orders through it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from paycore.demo import run_demo
from paycore_dummy import generate_secret


@pytest.fixture
def served_gateway(unused_port: int) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """``paycore dummy serve`` in a subprocess: its base URL, API key and process."""
    api_key = "sk_test_cli_0123456789"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paycore.cli",
            "dummy",
            "serve",
            "--port",
            str(unused_port),
            "--api-key",
            api_key,
            "--webhook-secret",
            generate_secret(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base_url = f"http://127.0.0.1:{unused_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"paycore dummy serve did not start: {process.stdout.read()}") from None  # type: ignore[union-attr]
                time.sleep(0.05)
        yield base_url, api_key, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_dummy_serve_answers_the_api_on_the_given_port(served_gateway: tuple[str, str, subprocess.Popen[str]]) -> None:
    base_url, api_key, _ = served_gateway
    headers = {"authorization": f"Bearer {api_key}"}
    created = httpx.post(
        f"{base_url}/v1/payments", json={"amount": 5000, "currency": "XOF", "reference": "pay_cli"}, headers=headers
    )
    assert created.status_code == 201
    assert created.json()["next_action"]["url"] == f"{base_url}/checkout/{created.json()['id']}"
    assert "5000 XOF" in httpx.get(created.json()["next_action"]["url"]).text


def test_dummy_serve_never_prints_secrets_it_was_given(served_gateway: tuple[str, str, subprocess.Popen[str]]) -> None:
    _, api_key, process = served_gateway
    process.terminate()
    output, _ = process.communicate(timeout=10)
    assert "dummy gateway on http://127.0.0.1:" in output
    assert api_key not in output
    assert "whsec_" not in output


@pytest.mark.anyio
async def test_the_demo_takes_online_orders_confirmed_by_signed_webhooks() -> None:
    lines: list[str] = []
    assert await run_demo(echo=lines.append) == 0
    text = "\n".join(lines)
    assert "W-0001" in text
    assert re.search(r"^W-0001 +wave +7 500 XOF +succeeded ", text, re.MULTILINE)
    assert re.search(r"^W-0002 +wave +12 000 XOF +partially_refunded +2 500 XOF", text, re.MULTILINE)
    assert re.search(r"^W-0003 +wave +4 001 XOF +failed ", text, re.MULTILINE)
    assert "succeeded by signed webhook evt_" in text
    assert "net taken by wave: 17 000 XOF" in text
