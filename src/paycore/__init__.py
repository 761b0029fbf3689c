"""paycore: a framework-agnostic payments SDK.

One async payment lifecycle (:class:`PaymentFlow`) over pluggable providers,
repositories and idempotency stores, found through pluggy and entry points.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from paycore.blocking import BlockingPaymentFlow
    from paycore.disputes import DisputeUpdate
    from paycore.errors import PaycoreError
    from paycore.flow import PaymentFlow
    from paycore.hookspecs import hookimpl
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

__all__ = [
    "BlockingPaymentFlow",
    "Capabilities",
    "Checkout",
    "Customer",
    "DisputeUpdate",
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


_HOMES: Final = {
    "BlockingPaymentFlow": "paycore.blocking",
    "Capabilities": "paycore.providers",
    "Checkout": "paycore.records",
    "Customer": "paycore.records",
    "DisputeUpdate": "paycore.disputes",
    "FraudStatus": "paycore.status",
    "LineItem": "paycore.records",
    "Money": "paycore.money",
    "NextAction": "paycore.records",
    "Outcome": "paycore.status",
    "PaycoreError": "paycore.errors",
    "Payment": "paycore.records",
    "PaymentEvent": "paycore.records",
    "PaymentFlow": "paycore.flow",
    "PaymentStatus": "paycore.status",
    "Provider": "paycore.providers",
    "ProviderContext": "paycore.providers",
    "ProviderUpdate": "paycore.records",
    "Refund": "paycore.records",
    "RefundStatus": "paycore.status",
    "RefundUpdate": "paycore.records",
    "ReviewReason": "paycore.status",
    "hookimpl": "paycore.hookspecs",
}
"""The module each exported name is defined in: it is imported when the name is first asked for."""


def __getattr__(name: str) -> Any:
    # Each export loads its own module on first use, so ``import paycore`` loads none of them and
    # ``from paycore import PaymentFlow`` only paycore.flow and what it imports (see paycore.flow).
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'paycore' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home), name)
    globals()[name] = value  # later look-ups find it without calling this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
