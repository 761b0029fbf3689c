"""The statuses a payment and a refund move through (their values are stable)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final, TypeVar

from paycore.errors import ValidationError

__all__ = ["REVIEW_ORDER", "FraudStatus", "Outcome", "PaymentStatus", "RefundStatus", "ReviewReason", "member_of"]


class PaymentStatus(StrEnum):
    """Where a payment stands. Only the state machine in :mod:`paycore.fsm` changes it."""

    PENDING = "pending"
    """Created here, not yet sent to the provider."""
    PROCESSING = "processing"
    """Sent to the provider, awaiting the customer or a confirmation."""
    AUTHORIZED = "authorized"
    """Funds are held; a capture (full or partial) or a cancel follows."""
    SUCCEEDED = "succeeded"
    """Captured: the money is the merchant's."""
    FAILED = "failed"
    """Declined or failed at the provider."""
    EXPIRED = "expired"
    """Abandoned: the provider said it was not paid before the payment's deadline."""
    CANCELED = "canceled"
    """Canceled before capture (an authorization is released)."""
    PARTIALLY_REFUNDED = "partially_refunded"
    """Some, not all, of the captured amount was refunded."""
    REFUNDED = "refunded"
    """The whole captured amount was refunded."""

    @property
    def is_final(self) -> bool:
        """True when no further money can move without a refund or a late confirmation."""
        return self in _FINAL


_FINAL = frozenset({PaymentStatus.FAILED, PaymentStatus.EXPIRED, PaymentStatus.CANCELED, PaymentStatus.REFUNDED})


class RefundStatus(StrEnum):
    """Where a refund stands."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class FraudStatus(StrEnum):
    """A provider's or an operator's verdict on the payment's fraud risk."""

    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REVIEW = "review"


class ReviewReason(StrEnum):
    """Why a payment was flagged for an operator's review."""

    LATE_CONFIRMATION = "late_confirmation"
    """The provider confirmed money after the payment expired, failed or was canceled here."""
    AMOUNT_MISMATCH = "amount_mismatch"
    """The provider reported an amount or currency other than the payment's."""
    UNKNOWN_OUTCOME = "unknown_outcome"
    """A provider call's outcome stayed unknown and polling could not settle it."""
    FRAUD = "fraud"
    """The fraud status asks for a review."""
    REFUND_REVERSED = "refund_reversed"
    """The provider reports a refund failed after it had succeeded: its money went back to the merchant."""
    DISPUTE = "dispute"
    """The payer disputed the payment with their bank (a chargeback): the merchant answers it at the provider."""


REVIEW_ORDER: Final[Mapping[ReviewReason, int]] = MappingProxyType(
    {
        ReviewReason.UNKNOWN_OUTCOME: 0,
        ReviewReason.FRAUD: 1,
        ReviewReason.DISPUTE: 2,
        ReviewReason.REFUND_REVERSED: 3,
        ReviewReason.LATE_CONFIRMATION: 4,
        ReviewReason.AMOUNT_MISMATCH: 5,
    }
)
"""Which reason a payment flagged for two keeps, the more pressing first: an unknown outcome blocks the payment
until an operator (or the provider) settles it, so the reaper leaves it to them whatever else was flagged."""


class Outcome(StrEnum):
    """What a provider reports a payment (or a refund) to be, as a fact, not a command."""

    PENDING = "pending"
    """Accepted by the provider; the customer has yet to act."""
    AUTHORIZED = "authorized"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    """The provider itself gave up on it: not paid."""
    NOT_FOUND = "not_found"
    """The provider has no record of the payment: it never arrived (or has not arrived yet).

    While the payment's initiate call is in flight this is no decline; once that
    call's outcome is unknown or its lease has run out, it means "never paid"."""


S = TypeVar("S", bound=StrEnum)


def member_of(kind: type[S], value: str, what: str) -> S:
    """``kind(value)``, or a :class:`~paycore.errors.ValidationError` naming the value and the accepted ones."""
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(member.value for member in kind)
        raise ValidationError(f"{what} must be one of {accepted}; not {value!r}") from None
