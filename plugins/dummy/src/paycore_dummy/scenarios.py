"""The scenarios a developer triggers on purpose, by amount or by metadata.

Like a card network's test numbers: the last two digits of the amount in minor
units pick a scenario (``5001`` XOF declines), or the payment's metadata names
one (``{"dummy_scenario": "decline"}``), which wins over the amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from paycore.errors import ValidationError

__all__ = ["SCENARIO_METADATA_KEY", "Scenario", "scenario_for"]

SCENARIO_METADATA_KEY: Final = "dummy_scenario"


class Scenario(StrEnum):
    """What the gateway does with a payment."""

    SUCCESS = "success"
    """The customer's approval succeeds (or authorizes, for ``capture=False``)."""
    DECLINE = "decline"
    """The customer's approval is declined by the issuer: the payment fails."""
    AUTHORIZE = "authorize"
    """Approval only authorizes, even with ``capture=True``: the merchant captures later."""
    TIMEOUT = "timeout"
    """The gateway takes the payment and settles it, but answers too late and sends no
    webhook: only polling finds the result."""
    GATEWAY_ERROR = "gateway_error"
    """The gateway answers 503 and records nothing."""
    DUPLICATE_WEBHOOKS = "duplicate_webhooks"
    """After approval the gateway sends its events out of order, one of them twice."""
    LATE_SUCCESS = "late_success"
    """No customer needed: the gateway expires the payment, then the money arrives late."""


_BY_LAST_DIGITS: Final = {
    1: Scenario.DECLINE,
    2: Scenario.AUTHORIZE,
    3: Scenario.TIMEOUT,
    4: Scenario.GATEWAY_ERROR,
    5: Scenario.DUPLICATE_WEBHOOKS,
    6: Scenario.LATE_SUCCESS,
}


def scenario_for(amount_minor: int, metadata: Mapping[str, Any] | None = None) -> Scenario:
    """The scenario for a payment: metadata ``dummy_scenario`` first, else the amount's last two digits."""
    named = (metadata or {}).get(SCENARIO_METADATA_KEY)
    if named is not None:
        try:
            return Scenario(str(named))
        except ValueError:
            known = ", ".join(s.value for s in Scenario)
            raise ValidationError(f"unknown {SCENARIO_METADATA_KEY} {named!r}; known: {known}") from None
    return _BY_LAST_DIGITS.get(amount_minor % 100, Scenario.SUCCESS)
