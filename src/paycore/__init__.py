"""paycore: a framework-agnostic payments SDK.

One async payment lifecycle (:class:`PaymentFlow`) over pluggable providers,
repositories and idempotency stores, found through pluggy and entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paycore.errors import PaycoreError
from paycore.money import Money
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import (
    Checkout,
    Customer,
    LineItem,
    NextAction,
    Payment,
    PaymentEvent,
    ProviderUpdate,
    Refund,
    RefundUpdate,
)
from paycore.status import FraudStatus, Outcome, PaymentStatus, RefundStatus, ReviewReason

if TYPE_CHECKING:
    from paycore.blocking import BlockingPaymentFlow
    from paycore.flow import PaymentFlow
    from paycore.hookspecs import hookimpl

__all__ = [
    "BlockingPaymentFlow",
    "Capabilities",
    "Checkout",
    "Customer",
    "FraudStatus",
    "LineItem",
    "Money",
    "NextAction",
    "Outcome",
    "PaycoreError",
    "Payment",
    "PaymentEvent",
    "PaymentFlow",
    "PaymentStatus",
    "Provider",
    "ProviderContext",
    "ProviderUpdate",
    "Refund",
    "RefundStatus",
    "RefundUpdate",
    "ReviewReason",
    "hookimpl",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The flow pulls in anyio, and hookimpl pluggy: each is loaded on first use, not on ``import paycore``.
    if name == "hookimpl":
        from paycore.hookspecs import hookimpl

        return hookimpl
    if name == "PaymentFlow":
        from paycore.flow import PaymentFlow

        return PaymentFlow
    if name == "BlockingPaymentFlow":
        from paycore.blocking import BlockingPaymentFlow

        return BlockingPaymentFlow
    raise AttributeError(f"module 'paycore' has no attribute {name!r}")
