"""The gateway's own records of payments and refunds (amounts in integer minor units)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from attrs import define, field

from paycore.errors import MoneyError
from paycore.money import Money
from paycore_dummy.scenarios import Scenario

__all__ = ["GatewayPayment", "GatewayRefund", "shown_amount", "shown_count"]


def _now() -> datetime:
    return datetime.now(UTC)


def shown_amount(minor_units: int, currency: str) -> str:
    """An amount in minor units as a customer reads it: ``1250``, ``"EUR"`` is ``12.50 EUR``.

    An amount paycore cannot show (a currency it does not know: the gateway takes any three letters; more
    digits than it keeps) is shown in minor units, saying so; one with more digits than Python writes out
    (``sys.get_int_max_str_digits()``, a line's total of a huge quantity, say) by its number of digits. Never
    an error: the customer's pages show whatever the gateway took.
    """
    try:
        return str(Money.minor(minor_units, currency))
    except (MoneyError, ValueError):
        return f"{shown_count(minor_units)} {currency} (minor units)"


def shown_count(number: int) -> str:
    """``number`` written out, or, past the digits Python writes out, how many digits it has (never an error)."""
    try:
        return str(number)
    except ValueError:  # Exceeds the limit (4300 digits) for integer string conversion
        size = abs(number)
        digits = math.floor(size.bit_length() * math.log10(2)) + 1  # the count, or one more
        digits -= size < 10 ** (digits - 1)
        return f"a {'negative ' if number < 0 else ''}{digits}-digit number"


@define
class GatewayRefund:
    """A refund as the gateway records it."""

    id: str
    reference: str | None
    amount: int
    status: str
    reason: str = ""
    created_at: datetime = field(factory=_now)

    def to_json(self) -> dict[str, Any]:
        """The refund as the API shows it."""
        return {
            "id": self.id,
            "reference": self.reference,
            "amount": self.amount,
            "status": self.status,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


@define
class GatewayPayment:
    """A payment as the gateway records it. Amounts are integer minor units."""

    id: str
    reference: str
    amount: int
    currency: str
    capture: bool
    method: str
    scenario: Scenario
    status: str = "requires_action"
    """``requires_action``, ``authorized``, ``succeeded``, ``failed``, ``canceled``, ``expired``."""
    authorized_amount: int = 0
    captured_amount: int = 0
    refunds: list[GatewayRefund] = field(factory=list)
    description: str = ""
    return_url: str | None = None
    webhook_url: str | None = None
    metadata: dict[str, Any] = field(factory=dict)
    items: list[dict[str, Any]] = field(factory=list)
    """The basket shown on the checkout page: ``name``, ``quantity``, ``unit_price``."""
    phone: str | None = None
    failure_message: str = ""
    created_at: datetime = field(factory=_now)
    updated_at: datetime = field(factory=_now)

    @property
    def refunded_amount(self) -> int:
        """Sum of succeeded refunds."""
        return sum(r.amount for r in self.refunds if r.status == "succeeded")

    @property
    def sends_webhooks(self) -> bool:
        """False in the ``timeout`` scenario (only polling finds the result) or without a URL."""
        return self.webhook_url is not None and self.scenario is not Scenario.TIMEOUT

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The payment as the API and webhooks show it."""
        data: dict[str, Any] = {
            "id": self.id,
            "object": "payment",
            "reference": self.reference,
            "amount": self.amount,
            "currency": self.currency,
            "capture": self.capture,
            "method": self.method,
            "status": self.status,
            "authorized_amount": self.authorized_amount,
            "captured_amount": self.captured_amount,
            "refunded_amount": self.refunded_amount,
            "refunds": [r.to_json() for r in self.refunds],
            "description": self.description,
            "metadata": dict(self.metadata),
            "items": [dict(item) for item in self.items],
            "failure_message": self.failure_message,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "next_action": None,
        }
        if self.status == "requires_action":
            if self.method == "mobile_money":
                data["next_action"] = {
                    "type": "approve_on_phone",
                    "url": f"{base_url}/phone/{self.id}",
                    "ussd_code": f"*144*{self.id[-6:]}#",
                    "message": f"Approve the payment of {shown_amount(self.amount, self.currency)} on your phone",
                }
            else:
                data["next_action"] = {"type": "redirect", "url": f"{base_url}/checkout/{self.id}"}
        return data
