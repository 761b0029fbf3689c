"""paycore-dummy: a simulated online payment gateway and its paycore provider.

The gateway (:class:`DummyGateway`) is a small ASGI service with a REST API, a
hosted checkout page, an "approve on your phone" page and Standard Webhooks
signed deliveries; :class:`DummyProvider` is paycore's side of it. Scenarios
(decline, timeout, duplicate webhooks...) are triggered by amount or metadata:
see :mod:`paycore_dummy.scenarios`.
"""

from paycore_dummy.delivery import DeliveryAttempt, GatewayEvent, RetryPolicy
from paycore_dummy.errors import GatewayAlreadyRunning, GatewayApiError, GatewayNotRunning, GatewayRefused
from paycore_dummy.gateway import DummyGateway, GatewayPayment, GatewayRefund
from paycore_dummy.inprocess import register_gateway, resolve_gateway, unregister_gateway
from paycore_dummy.provider import DummyProvider
from paycore_dummy.scenarios import Scenario, scenario_for
from paycore_dummy.signing import WebhookSecret, generate_secret

__all__ = [
    "DeliveryAttempt",
    "DummyGateway",
    "DummyProvider",
    "GatewayAlreadyRunning",
    "GatewayApiError",
    "GatewayEvent",
    "GatewayNotRunning",
    "GatewayPayment",
    "GatewayRefund",
    "GatewayRefused",
    "RetryPolicy",
    "Scenario",
    "WebhookSecret",
    "generate_secret",
    "register_gateway",
    "resolve_gateway",
    "scenario_for",
    "unregister_gateway",
]
