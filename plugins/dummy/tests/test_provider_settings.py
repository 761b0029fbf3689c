"""A dummy provider's settings: a value it could not use is refused at start-up, naming the setting."""

from __future__ import annotations

from typing import Any

import pytest

import paycore_dummy.plugin
from paycore.errors import ConfigurationError, ProviderNotSent
from paycore.flow import PaymentFlow
from paycore.money import Money
from paycore_dummy import generate_secret


def build(**settings: Any) -> PaymentFlow:
    """A flow with one dummy provider ``pay`` configured with ``settings``."""
    provider = {"type": "dummy", "api_key": "sk_test_chez_awa", "webhook_secret": generate_secret(), **settings}
    return PaymentFlow.from_config({"providers": {"pay": provider}}, plugins=[paycore_dummy.plugin], environ={})


@pytest.mark.parametrize(
    "base_url", [123, ["http://127.0.0.1:8765"], {"url": "x"}, True, "", "127.0.0.1:8765", "ftp://gateway.test"]
)
def test_a_base_url_that_is_not_an_absolute_http_url_is_refused_at_start_up(base_url: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^provider 'pay' of .*: 'base_url' must be an absolute http"):
        build(base_url=base_url)


def test_a_refused_base_url_never_shows_its_password() -> None:
    with pytest.raises(ConfigurationError, match="'base_url'") as refused:
        build(base_url="http://merchant:hunter2@gateway.test")
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("webhook_url", [123, ["https://shop.example/hooks"], "ftp://shop.example/hooks", "/hooks"])
def test_a_webhook_url_that_is_not_an_absolute_http_url_is_refused_at_start_up(webhook_url: object) -> None:
    with pytest.raises(ConfigurationError, match="provider 'pay' \\(dummy\\): webhook_url must be an absolute http"):
        build(base_url="http://127.0.0.1:9", webhook_url=webhook_url)


@pytest.mark.parametrize("gateway", [5, ["gw"], "", 1.5])
def test_a_gateway_that_is_neither_a_gateway_nor_a_name_is_refused_at_start_up(gateway: object) -> None:
    with pytest.raises(ConfigurationError, match="provider 'pay' \\(dummy\\): 'gateway' must be a DummyGateway"):
        build(gateway=gateway)


def test_a_url_under_a_setting_is_quoted_without_its_password() -> None:
    table = {
        "type": "dummy",
        "api_key": "sk_test",
        "webhook_secret": generate_secret(),
        "base_url": "http://127.0.0.1:9",
        "method": "redis://:Zx9Pw@h/0",
    }
    with pytest.raises(ConfigurationError, match=r"redis://:\*\*\*@h/0") as refused:
        PaymentFlow.from_config({"providers": {"wave": table}}, plugins=[paycore_dummy.plugin], environ={})
    assert "Zx9Pw" not in str(refused.value)


@pytest.mark.anyio
async def test_a_token_in_the_base_url_s_query_is_not_quoted_when_the_gateway_is_not_reached() -> None:
    async with build(base_url="http://127.0.0.1:1/?token=QUERYTOKEN") as flow:  # nothing listens on port 1
        with pytest.raises(ProviderNotSent, match=r"at http://127\.0\.0\.1:1/\?token=\*\*\*/? not reached"):
            await flow.create_payment(amount=Money.of("5000", "XOF"), provider="pay", order_id="T1-0001")


def test_the_provider_s_attributes_never_show_its_secrets_or_a_token_in_its_base_url() -> None:
    """A debugger, an error tracker's locals or ``vars(provider)`` show the secrets as ``***``."""
    secret = generate_secret()
    flow = build(base_url="http://127.0.0.1:1/?token=QUERYTOKEN", webhook_secret=secret)
    shown = repr(vars(flow.provider("pay")))
    for hidden in ("sk_test_chez_awa", secret.partition("_")[2], "QUERYTOKEN"):
        assert hidden not in shown
