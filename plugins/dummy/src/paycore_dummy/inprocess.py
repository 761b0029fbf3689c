"""The in-process mode: a provider reaches a gateway in the same process, no port needed.

A provider's ``gateway`` setting is either a :class:`DummyGateway` object or a
name registered here (configuration files can only hold names). Its HTTP client
then goes through :class:`httpx.ASGITransport`: the same requests, the same
gateway code, without a socket. Webhooks go back the same way when the gateway
is built with ``webhook_transport=httpx.ASGITransport(app=paycore.asgi.create_app(flow))``.
"""

from __future__ import annotations

import threading
from typing import Any

from paycore.errors import ConfigurationError
from paycore_dummy.gateway import DummyGateway

__all__ = ["register_gateway", "resolve_gateway", "unregister_gateway"]

_gateways: dict[str, DummyGateway] = {}
_lock = threading.Lock()


def register_gateway(name: str, gateway: DummyGateway) -> None:
    """Make ``gateway`` reachable by providers configured with ``gateway = name``."""
    with _lock:
        _gateways[name] = gateway


def unregister_gateway(name: str) -> None:
    """Forget the gateway registered as ``name`` (if any)."""
    with _lock:
        _gateways.pop(name, None)


def resolve_gateway(setting: Any) -> DummyGateway:
    """The gateway a provider's ``gateway`` setting names (an object, or a registered name)."""
    if isinstance(setting, DummyGateway):
        return setting
    if isinstance(setting, str):
        with _lock:
            gateway = _gateways.get(setting)
        if gateway is None:
            known = ", ".join(sorted(_gateways)) or "none"
            raise ConfigurationError(
                f"no in-process dummy gateway is registered as {setting!r} (registered: {known}); "
                "call paycore_dummy.register_gateway(name, gateway) first"
            )
        return gateway
    raise ConfigurationError(
        f"the dummy provider's 'gateway' setting must be a DummyGateway or a registered name, "
        f"not {type(setting).__name__}"
    )
