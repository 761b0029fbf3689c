"""``DisputeUpdate``: a provider's word that the payer disputed a payment with their bank (a chargeback).

A dispute is not one of the payment's refunds: the bank takes the money back (a dispute lost) or returns it
(won) outside them, and the merchant answers it at the provider. So paycore records what the provider says
(an event, ``dispute``) and flags the payment for an operator (:attr:`~paycore.status.ReviewReason.DISPUTE`),
once for each state of each dispute, and changes none of the payment's amounts or its status.
"""

from __future__ import annotations

from attrs import frozen

from paycore.money import Money
from paycore.wire import InvalidReport, check_amount, check_id, check_text, is_amount, is_id, is_text

__all__ = ["DisputeUpdate"]

_STATUS_LENGTH = 100
"""The most characters of a dispute's status paycore keeps (a provider's word, and what happened to the funds)."""


@frozen
class DisputeUpdate:
    """What a provider reports about one dispute of the payment: its id, its status in the provider's own words
    (``needs_response``, ``won``, ``lost``...), the amount disputed, and the payer's reason if given."""

    dispute_id: str
    status: str
    amount: Money | None = None
    reason: str = ""

    def __attrs_post_init__(self) -> None:
        if not is_id(self.dispute_id):
            check_id(self.dispute_id, what="DisputeUpdate.dispute_id")
        if not self.status or not is_text(self.status) or len(self.status) > _STATUS_LENGTH:
            check_text(self.status, what="DisputeUpdate.status", limit=_STATUS_LENGTH)
            raise InvalidReport("DisputeUpdate.status must name the dispute's status")
        if (self.reason and not is_text(self.reason)) or type(self.reason) is not str:
            check_text(self.reason, what="DisputeUpdate.reason")
        if self.amount is not None and not is_amount(self.amount):
            check_amount(self.amount, what="DisputeUpdate.amount")
