"""``Change``: the one way a payment is modified, event by event.

A change starts from a stored payment, fires state-machine triggers, sets
fields and flags, and appends one :class:`~paycore.records.PaymentEvent` per
change. :meth:`Change.result` gives the next version to store (or ``None`` when
nothing changed), so "every change appends an event" holds by construction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from paycore import fsm
from paycore.builders import compile_builder, compile_replace
from paycore.money import Money
from paycore.records import Payment, PaymentEvent, Refund, event_id
from paycore.status import REVIEW_ORDER, FraudStatus, PaymentStatus, ReviewReason
from paycore.wire import MAX_TEXT_LENGTH

__all__ = ["Change", "flagged_for", "replace_refund"]


_replace = compile_replace(Payment)
"""``_replace(payment, changes)``: the payment with ``changes`` (field names to values), as ``attrs.evolve``."""
replace_refund = compile_replace(Refund)
"""``replace_refund(refund, changes)``: the refund with ``changes`` (field names to values), as ``attrs.evolve``."""
_event = compile_builder(PaymentEvent)
"""``PaymentEvent(**fields)``, with every field given."""


class Change:
    """Changes to one payment, applied in memory, committed by the flow in one write.

    Field changes accumulate and the payment is copied once, when it is next
    read or when :meth:`result` builds the version to store: a transition
    costs one copy of the payment, not one per field and event.
    """

    def __init__(self, payment: Payment, *, cause: str, now: datetime, provider_event_id: str | None = None) -> None:
        self.original = payment
        self.cause = cause
        self.now = now
        self.provider_event_id = provider_event_id
        self.events: list[PaymentEvent] = []
        self._changes: dict[str, Any] = {}
        self._current: Payment | None = payment
        self._status = payment.status
        self._event_count = payment.event_count

    @property
    def payment(self) -> Payment:
        """The payment as changed so far."""
        if self._current is None:
            self._current = _replace(self.original, {**self._changes, "event_count": self._event_count})
        return self._current

    @property
    def status(self) -> PaymentStatus:
        """The payment's status as changed so far."""
        return self._status

    def set(self, **fields: Any) -> None:
        """Set fields other than ``status`` (which only :meth:`fire` changes)."""
        if "status" in fields:
            raise TypeError("status is changed only by fire(), through the state machine")
        changes, original = self._changes, self.original
        for name, value in fields.items():
            current = changes[name] if name in changes else getattr(original, name)
            # None against a record differs without the record's (Python-level) ``__ne__``.
            if current is not value and (current is None or value is None or current != value):
                changes[name] = value
                self._current = None

    def value(self, name: str) -> Any:
        """Field ``name`` of the payment as changed so far (without copying the payment)."""
        changes = self._changes
        return changes[name] if name in changes else getattr(self.original, name)

    def event(
        self,
        kind: str,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        amount: Money | None = None,
        refund_id: str | None = None,
        message: str = "",
    ) -> None:
        """Append an event describing a change made in this unit of work."""
        original = self.original
        self._event_count = sequence = self._event_count + 1
        self.events.append(
            _event(
                id=event_id(original.id, sequence),
                payment_id=original.id,
                sequence=sequence,
                kind=kind,
                cause=self.cause,
                tenant=original.tenant,
                from_status=from_status,
                to_status=to_status,
                amount=amount,
                refund_id=refund_id,
                provider_event_id=self.provider_event_id,
                message=message,
                at=self.now,
            )
        )
        self._current = None

    def can(self, trigger: str) -> bool:
        """True when ``trigger`` may fire from the current status."""
        return fsm.allowed(self._status, trigger)

    def fire(self, trigger: str, *, amount: Money | None = None, message: str = "") -> None:
        """Move the status through the state machine and record it; refuses invalid moves."""
        before = self._status
        after = fsm.fire(before, trigger)
        changes = self._changes
        changes["status"] = self._status = after
        if after not in fsm.OPEN and self.value("next_action") is not None:
            # The customer is awaited no more: what they were to do (a client secret, a checkout page) goes.
            changes["next_action"] = None
        # ``_value_``: a member's value without the ``Enum.value`` property's Python-level call.
        before_value, after_value = before._value_, after._value_
        self.event("status_changed", from_status=before_value, to_status=after_value, amount=amount, message=message)

    def flag(self, reason: ReviewReason, message: str) -> None:
        """Flag the payment for an operator's review, with why.

        The review's message lists every fact told (the oldest dropped past :data:`~paycore.wire.MAX_TEXT_LENGTH`),
        those of a review resolved since included; a payment that awaits review already keeps its reason if more
        pressing (:data:`REVIEW_ORDER`: an unknown outcome first, which blocks the payment)."""
        told: str = self.value("review_message")
        held: ReviewReason | None = self.value("review_reason") if self.value("needs_review") else None
        kept = reason if held is None or REVIEW_ORDER[reason] <= REVIEW_ORDER[held] else held
        text = message if not told else told if message in told else f"{told}; {message}"[-MAX_TEXT_LENGTH:]
        self.set(needs_review=True, review_reason=kept, review_message=text)
        self.event("flagged_for_review", message=f"{reason.value}{_FLAG_SEPARATOR}{message}")

    def set_fraud(self, status: FraudStatus, message: str) -> None:
        """Record a fraud verdict; ``review``/``rejected`` also flag the payment."""
        before: FraudStatus = self.value("fraud_status")
        if status == before and message == self.value("fraud_message"):
            return
        self.set(fraud_status=status, fraud_message=message)
        self.event("fraud_status_changed", from_status=before.value, to_status=status.value, message=message)
        if status in (FraudStatus.REVIEW, FraudStatus.REJECTED):
            self.flag(ReviewReason.FRAUD, message or f"fraud status {status.value}")

    @property
    def changed(self) -> bool:
        """True when anything was changed."""
        return bool(self.events) or bool(self._changes)

    def result(self) -> Payment | None:
        """The next version of the payment to store, or ``None`` when nothing changed."""
        if not self.changed:
            return None
        return _replace(
            self.original,
            {
                **self._changes,
                "version": self.original.version + 1,
                "updated_at": self.now,
                "event_count": self._event_count,
            },
        )


_FLAG_SEPARATOR = ": "


def flagged_for(event: PaymentEvent, reason: ReviewReason) -> str | None:
    """What ``event`` flagged its payment for ``reason`` with (:meth:`Change.flag`); ``None``: it is no such flag."""
    if event.kind != "flagged_for_review":
        return None
    told, separator, message = event.message.partition(_FLAG_SEPARATOR)
    return message if separator and told == reason.value else None
