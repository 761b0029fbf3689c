"""Stripe's disputes (chargebacks): the ``charge.dispute.*`` events, read as :class:`~paycore.DisputeUpdate`.

A Dispute names its Charge and PaymentIntent, its amount and currency, the payer's ``reason``
(``fraudulent``, ``product_not_received``...) and its ``status`` (``warning_needs_response``,
``needs_response``, ``under_review``, ``won``, ``lost``...). Stripe withdraws the disputed amount
and a fee from the balance when the dispute opens (``charge.dispute.funds_withdrawn``) and
reinstates them if it is won (``charge.dispute.funds_reinstated``). paycore reports each event
as the dispute's state (with what happened to the funds), and the flow flags the payment for an
operator, who answers the dispute in Stripe's Dashboard; no amount of the payment changes.

A Dispute carries no copy of paycore's metadata: it is found by its PaymentIntent, and the
provider retrieves that intent first, so that an event of another tenant's payment on a shared
Stripe account, or of a charge that is not paycore's, is acknowledged and changes nothing (see
:mod:`paycore_stripe.event_refunds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paycore.disputes import DisputeUpdate
from paycore.records import ProviderUpdate
from paycore.wire import InvalidReport
from paycore_stripe.units import from_stripe

__all__ = ["DISPUTE_EVENTS", "disputed_intent", "read_dispute"]

DISPUTE_EVENTS: Final = {
    "charge.dispute.created": "",
    "charge.dispute.updated": "",
    "charge.dispute.closed": "",
    "charge.dispute.funds_withdrawn": "funds withdrawn",
    "charge.dispute.funds_reinstated": "funds reinstated",
}
"""The dispute events paycore reads, and what each says of the funds beside the dispute's status."""


def disputed_intent(event_type: str, dispute: Any) -> str | None:
    """The PaymentIntent a dispute event is about; ``None`` for another event, or a dispute of a charge without one
    (not paycore's: it makes every charge through a PaymentIntent)."""
    if event_type not in DISPUTE_EVENTS or not isinstance(dispute, Mapping):
        return None
    intent = dispute.get("payment_intent")
    return intent if isinstance(intent, str) and intent else None


def read_dispute(event_type: str, dispute: Any) -> ProviderUpdate | None:
    """The report of a dispute event's Dispute; ``None`` when it names no PaymentIntent.

    :class:`~paycore.wire.InvalidReport` when the Dispute is not one paycore can read.
    """
    if not isinstance(dispute, Mapping) or dispute.get("object") != "dispute":
        raise InvalidReport(f"a {event_type} event must carry a Stripe dispute object")
    intent = disputed_intent(event_type, dispute)
    if intent is None:
        return None
    ident, status, reason = dispute.get("id"), dispute.get("status"), dispute.get("reason")
    amount, currency = dispute.get("amount"), dispute.get("currency")
    if not isinstance(ident, str) or not isinstance(status, str) or not status:
        raise InvalidReport(f"a {event_type} event's dispute must carry its id and status")
    if type(amount) is not int or amount < 0 or not isinstance(currency, str):
        raise InvalidReport(f"a {event_type} event's dispute must carry its amount and currency")
    funds = DISPUTE_EVENTS[event_type]
    return ProviderUpdate(
        external_id=intent,
        dispute=DisputeUpdate(
            ident,
            f"{status}, {funds}" if funds else status,
            amount=from_stripe(amount, currency) if amount else None,
            reason=reason if isinstance(reason, str) else "",
        ),
    )
