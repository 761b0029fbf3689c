"""Settings the provider cannot use are refused when the flow is built, naming the setting and the provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paycore.errors import ConfigurationError
from paycore.flow import PaymentFlow
from paycore_wave import WaveSimulator

BuildFlow = Callable[..., PaymentFlow]


@pytest.mark.parametrize("value", [["https://api.wave.com"], 443, "", "api.wave.com", "ftp://api.wave.com"])
def test_a_base_url_that_is_not_an_http_url_is_refused_when_the_flow_is_built(
    simulator: WaveSimulator, flow_factory: BuildFlow, value: object
) -> None:
    """Not at the first payment, which would be stored and then sent nowhere."""
    with pytest.raises(ConfigurationError, match=r"^provider 'wave' of .*: 'base_url' must be an absolute http"):
        flow_factory(simulator, base_url=value)


def test_a_base_url_with_a_password_is_refused_without_showing_the_password(
    simulator: WaveSimulator, flow_factory: BuildFlow
) -> None:
    with pytest.raises(ConfigurationError, match="base_url") as refused:
        flow_factory(simulator, base_url="https://m:s3cret@api.wave.com")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("value", [42, ["am-7wbj1"], "", "am-7wbj1\n"])
def test_an_aggregated_merchant_id_that_is_not_an_id_is_refused_when_the_flow_is_built(
    simulator: WaveSimulator, flow_factory: BuildFlow, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=r"provider 'wave' \(wave\): aggregated_merchant_id must"):
        flow_factory(simulator, aggregated_merchant_id=value)


@pytest.mark.parametrize("value", ["http://127.0.0.1:8000", object()])
def test_a_transport_that_is_not_an_httpx_transport_is_refused_when_the_flow_is_built(
    simulator: WaveSimulator, flow_factory: BuildFlow, value: object
) -> None:
    with pytest.raises(ConfigurationError, match=r"provider 'wave' \(wave\): transport must be an httpx"):
        flow_factory(simulator, transport=value)


def test_a_restrict_payer_too_large_to_show_is_refused_when_the_flow_is_built(
    simulator: WaveSimulator, flow_factory: BuildFlow
) -> None:
    """An integer of more digits than Python spells out is refused like any other value that is not a flag."""
    with pytest.raises(ConfigurationError, match=r"provider 'wave' \(wave\): restrict_payer must be true or false"):
        flow_factory(simulator, restrict_payer=10**5000)


def test_a_webhook_secret_with_a_byte_that_is_not_utf8_is_refused_when_the_flow_is_built() -> None:
    """Set through a PAYCORE_* variable, such a byte reaches Python as a lone surrogate: accepted, every delivery
    was then refused 401 'could not verify (UnicodeEncodeError)'."""
    import os

    import paycore_wave.plugin

    environ = {
        "PAYCORE_PROVIDERS__W__TYPE": "wave",
        "PAYCORE_PROVIDERS__W__API_KEY": "wave_sn_prod_abc",
        "PAYCORE_PROVIDERS__W__WEBHOOK_SECRET": os.fsdecode(b"wave_sn_WHS_ab\xe9cd"),
        "PAYCORE_PROVIDERS__W__SUCCESS_URL": "https://shop.example/ok",
    }
    with pytest.raises(ConfigurationError, match=r"^provider 'w' \(wave\): the Wave webhook_secret setting holds") as e:
        PaymentFlow.from_config(None, plugins=[paycore_wave.plugin], environ=environ)
    assert "wave_sn_WHS" not in str(e.value)


@pytest.mark.parametrize("secret", ["wave_sn_WHS_a\x00b", "old_secret wave_sn_WHS_\x1bnew"])
def test_a_webhook_secret_with_a_control_character_is_refused_when_the_flow_is_built(
    simulator: WaveSimulator, flow_factory: BuildFlow, secret: str
) -> None:
    with pytest.raises(ConfigurationError, match="webhook_secret setting holds a control character") as refused:
        flow_factory(simulator, webhook_secret=secret)
    assert "wave_sn_WHS" not in str(refused.value)
    assert "old_secret" not in str(refused.value)
    flow_factory(simulator, webhook_secret="wave_sn_WHS_caf\u00e9")  # text UTF-8 encodes is a secret still


def test_a_url_under_a_setting_is_quoted_without_its_password() -> None:
    table = {"type": "wave", "api_key": "wave_sn_prod_x", "webhook_secret": "s", "restrict_payer": "redis://:Zx9Pw@h/0"}
    with pytest.raises(ConfigurationError, match=r"redis://:\*\*\*@h/0") as refused:
        PaymentFlow.from_config({"providers": {"wave": table}}, environ={})
    assert "Zx9Pw" not in str(refused.value)


def test_the_provider_s_attributes_never_show_its_secrets_or_a_token_in_its_base_url(
    simulator: WaveSimulator, flow_factory: BuildFlow
) -> None:
    """A debugger, an error tracker's locals or ``vars(provider)`` show the secrets as ``***``."""
    from .conftest import API_KEY, WEBHOOK_SECRET

    flow = flow_factory(simulator, base_url="https://wave-proxy.example/api?token=TOPSECRET123")
    provider = flow.provider("wave")
    shown = f"{vars(provider)!r} {vars(provider.client)!r}"  # type: ignore[attr-defined]
    for secret in (API_KEY, WEBHOOK_SECRET, "TOPSECRET123"):
        assert secret not in shown
