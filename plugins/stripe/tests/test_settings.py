"""Settings the provider cannot use are refused when the flow is built, naming the setting and the provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import paycore_stripe.plugin
from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore_stripe import StripeProvider

FlowWith = Callable[..., PaymentFlow]


@pytest.mark.parametrize("setting", ["api_base", "success_url", "cancel_url"])
@pytest.mark.parametrize(
    "value", [123, ["https://shop.example/paid"], "not a url", "shop.example/paid", "ftp://x.example"]
)
def test_a_url_setting_that_is_not_an_http_url_is_refused_when_the_flow_is_built(
    flow_with: FlowWith, setting: str, value: object
) -> None:
    """Not at the first payment, which would be stored and then sent nowhere."""
    with pytest.raises(ConfigurationError, match=rf"^provider 'card' of .*: '{setting}' must be an absolute http"):
        flow_with(mode="checkout", **{setting: value})


def test_an_api_base_with_a_password_is_refused_without_showing_the_password(flow_with: FlowWith) -> None:
    with pytest.raises(ConfigurationError, match="api_base") as refused:
        flow_with(api_base="https://m:s3cret@api.stripe.com")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("value", [42, ["acct_1Nv0FGQ9RK"], "", "cus_1Nv0FGQ9RK", "acct_1Nv0FGQ9RK\n"])
def test_a_stripe_account_that_is_not_an_account_id_is_refused_when_the_flow_is_built(
    flow_with: FlowWith, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=r"provider 'card' \(stripe\): stripe_account must be"):
        flow_with(stripe_account=value)


@pytest.mark.parametrize("value", [5, {"card": True}])
def test_payment_method_types_that_are_not_a_list_of_names_are_refused_when_the_flow_is_built(
    flow_with: FlowWith, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=r"provider 'card' \(stripe\): payment_method_types must be"):
        flow_with(payment_method_types=value)


@pytest.mark.parametrize("value", ["http://127.0.0.1:12111", 5])
def test_a_simulator_that_is_not_an_asgi_app_is_refused_when_the_flow_is_built(
    flow_with: FlowWith, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=r"provider 'card' \(stripe\): simulator must be an ASGI app"):
        flow_with(simulator=value)


@pytest.mark.parametrize("setting", ["mode", "max_network_retries"])
def test_a_value_too_large_to_show_is_refused_when_the_flow_is_built(flow_with: FlowWith, setting: str) -> None:
    """An integer of more digits than Python spells out is refused like any other value of the wrong kind."""
    with pytest.raises(ConfigurationError, match=rf"provider 'card' \(stripe\): {setting} must be"):
        flow_with(**{setting: 10**5000})


def _flow_from_environment(**variables: str) -> PaymentFlow:
    """A flow whose ``card`` provider is configured by ``PAYCORE_PROVIDERS__CARD__*`` variables alone."""
    prefix = "PAYCORE_PROVIDERS__CARD__"
    environ = {f"{prefix}TYPE": "stripe", f"{prefix}API_KEY": "sk_test_51paycore", f"{prefix}WEBHOOK_SECRET": "whsec_x"}
    environ.update({f"{prefix}{name.upper()}": value for name, value in variables.items()})
    return PaymentFlow.from_config(None, environ=environ, plugins=[paycore_stripe.plugin])


@pytest.mark.parametrize(("text", "retries"), [("3", 3), (" 0 ", 0), ("5", 5), ("05", 5)])
def test_max_network_retries_set_in_the_environment_takes_effect(text: str, retries: int) -> None:
    """An environment variable is text: its digits are the number of retries the SDK makes."""
    provider = _flow_from_environment(max_network_retries=text).providers()["card"]
    assert isinstance(provider, StripeProvider)
    assert provider.max_network_retries == retries


@pytest.mark.parametrize("text", ["6", "-1", "3.0", "1e0", "", " ", "three", "true", "\u0663", "9" * 5000])
def test_max_network_retries_in_the_environment_that_is_not_0_to_5_is_refused(text: str) -> None:
    """Not read as 0, nor as the default: each is refused, naming the setting."""
    refusal = r"^provider 'card' \(stripe\): max_network_retries must be 0 to 5, not"
    with pytest.raises(ConfigurationError, match=refusal):
        _flow_from_environment(max_network_retries=text)


@pytest.mark.parametrize("value", [True, False, 2.0, -1, 6, [3]])
def test_max_network_retries_that_is_not_a_whole_number_0_to_5_is_refused(flow_with: FlowWith, value: object) -> None:
    """A bool or a float is not a number of retries, even one equal to a whole number."""
    with pytest.raises(ConfigurationError, match=r"provider 'card' \(stripe\): max_network_retries must be 0 to 5"):
        flow_with(max_network_retries=value)


def test_a_long_run_of_digits_for_max_network_retries_is_refused_shortened() -> None:
    with pytest.raises(ConfigurationError) as refused:
        _flow_from_environment(max_network_retries="9" * 5000)
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("name", ["mode", "stripe_account", "payment_method_types", "max_network_retries"])
def test_a_url_under_a_setting_is_quoted_without_its_password(name: str) -> None:
    table = {"type": "stripe", "api_key": "sk_live_x", "webhook_secret": "whsec_a", name: "redis://:Zx9Pw@h/0"}
    with pytest.raises(ConfigurationError, match=r"redis://:\*\*\*@h/0") as refused:
        PaymentFlow.from_config({"providers": {"card": table}}, environ={})
    assert "Zx9Pw" not in str(refused.value)
