"""What may be done to a payment, and how much: the rules checked before an operation starts.

Each rule is a pure function of the payment and the provider. The flow checks it
once before anything is stored, and again on the freshest copy of the payment
in the unit of work that writes the provider call down, so a race between two
callers can never let both through. Which statuses allow an operation is the
state machine's answer (:func:`paycore.fsm.allowed`), asked here and nowhere else.
"""

from __future__ import annotations

from paycore import fsm
from paycore.calls import CallOperation, ProviderCall
from paycore.errors import (
    CaptureExceedsAuthorized,
    CurrencyMismatch,
    IdempotencyKeyReused,
    InvalidAmount,
    InvalidTransition,
    RefundExceedsCaptured,
    UnsupportedCurrency,
    UnsupportedOperation,
)
from paycore.inputs import check_reference
from paycore.money import MAX_MINOR_UNITS, Money
from paycore.providers import Provider
from paycore.records import LineItem, Payment
from paycore.status import PaymentStatus, RefundStatus

__all__ = [
    "capture_amount",
    "check_cancel",
    "check_new_payment",
    "create_key_reused",
    "refund_amount",
    "require_unsent",
    "unsent_and_idle",
    "was_never_sent",
]


def was_never_sent(payment: Payment) -> bool:
    """True when the payment never reached its provider (pending here, no provider reference)."""
    return payment.status is PaymentStatus.PENDING and payment.external_id is None


def unsent_and_idle(payment: Payment) -> bool:
    """True when the payment never reached its provider and no call of it is under way: there is nothing to ask
    the provider about it, and only its create's key sends it (or the reaper ends it)."""
    return payment.pending_call is None and was_never_sent(payment)


_NEVER_SENT = " (never sent: retry it as it was asked, or make another payment under a new key)"
"""How to go on with a create whose payment never reached its provider, told with :func:`create_key_reused`."""


def create_key_reused(payment: Payment) -> IdempotencyKeyReused:
    """The refusal of another request under the key that made ``payment``: with how to go on, if it was never sent."""
    hint = _NEVER_SENT if unsent_and_idle(payment) else ""
    return IdempotencyKeyReused(f"idempotency key of payment {payment.id} was used for a different payment{hint}")


def require_unsent(payment: Payment) -> None:
    """Refuse to start a payment that is no longer pending (:class:`InvalidTransition`)."""
    if payment.status is not PaymentStatus.PENDING:
        raise InvalidTransition(f"payment {payment.id} is {payment.status.value}, not pending")


def check_new_payment(
    provider: Provider, amount: Money, order_id: str, items: tuple[LineItem, ...], capture: bool
) -> None:
    """Refuse a payment ``provider`` cannot take, before anything is stored."""
    if not isinstance(amount, Money):
        raise InvalidAmount(f"amount must be a Money, not {type(amount).__name__}: {amount!r}")
    if not amount.is_positive():
        raise InvalidAmount(f"a payment amount must be positive, not {amount}")
    if amount.minor_units > MAX_MINOR_UNITS:
        raise InvalidAmount(
            f"a payment amount must be at most {MAX_MINOR_UNITS} minor units, not {amount.minor_units} ({amount})"
        )
    check_reference(order_id, what="order_id")
    if provider.currencies is not None and amount.currency not in provider.currencies:
        raise UnsupportedCurrency(
            f"provider {provider.code!r} does not accept {amount.currency}; "
            f"it accepts {', '.join(sorted(provider.currencies))}"
        )
    for item in items:
        if item.unit_price.currency != amount.currency:
            raise CurrencyMismatch(
                f"line item {item.name!r} is priced in {item.unit_price.currency}, the payment in {amount.currency}"
            )
    if not capture and not provider.capabilities.authorize_capture:
        raise UnsupportedOperation(
            f"provider {provider.code!r} ({provider.name}) cannot authorize without capturing (capture=False)"
        )


def capture_amount(payment: Payment, provider: Provider, amount: Money | None) -> Money:
    """What a capture of ``amount`` (``None``: all that is authorized) takes; refuse what may not be."""
    if not fsm.allowed(payment.status, "capture"):
        raise InvalidTransition(f"cannot capture payment {payment.id}: it is {payment.status.value}, not authorized")
    if not provider.capabilities.authorize_capture:
        raise UnsupportedOperation(f"provider {provider.code!r} ({provider.name}) does not capture")
    authorized = payment.authorized_amount or payment.amount
    if amount is None:
        return authorized
    if amount.currency != authorized.currency:
        raise CurrencyMismatch(f"cannot capture {amount} of a payment in {authorized.currency}")
    if not amount.is_positive():
        raise InvalidAmount(f"a capture must be positive, not {amount}")
    if amount > authorized:
        raise CaptureExceedsAuthorized(f"cannot capture {amount}: only {authorized} is authorized")
    if amount < authorized and not provider.capabilities.partial_capture:
        raise UnsupportedOperation(
            f"provider {provider.code!r} ({provider.name}) cannot capture part ({amount}) of {authorized}"
        )
    return amount


def resolved_amount(payment: Payment, held: Money | None, outcome: PaymentStatus) -> Money:
    """What an operator's word on an open payment records as held at the provider (captured or authorized; ``None``:
    its whole amount): in its currency, positive, and at most its amount (an underpaid transfer records less).

    An authorized payment is resolved too while its capture is unsettled (:func:`capture_in_doubt`): as
    ``succeeded``, with what the provider captured, at most what it holds."""
    ceiling = payment.amount
    if capture_in_doubt(payment.status, payment.pending_call):
        if outcome is not PaymentStatus.SUCCEEDED:
            raise InvalidTransition(
                f"payment {payment.id} is authorized and its capture's outcome is unknown: it is resolved as "
                "succeeded, with what the provider captured (a hold it released is canceled by cancel)"
            )
        ceiling = payment.authorized_amount or payment.amount
    elif payment.status not in fsm.OPEN:
        raise InvalidTransition(
            f"payment {payment.id} is {payment.status.value}: only a pending or processing payment is resolved"
            " (or an authorized one whose capture's outcome is unknown)"
        )
    if held is None:
        return ceiling
    if held.currency != payment.currency:
        raise CurrencyMismatch(f"cannot record {held} held on a payment in {payment.currency}")
    if not held.is_positive():
        raise InvalidAmount(f"an amount held must be positive, not {held}")
    if held > ceiling:
        raise InvalidAmount(f"cannot record {held} held on a payment of {payment.amount} ({ceiling} held)")
    return held


def capture_in_doubt(status: PaymentStatus, call: ProviderCall | None) -> bool:
    """True when a payment of ``status`` carrying ``call`` (its ``pending_call``) is authorized with a capture whose
    outcome is unknown: an answer lost, or one saying the provider captured what could not be recorded (another
    amount than asked: flagged)."""
    return (
        status is PaymentStatus.AUTHORIZED
        and call is not None
        and call.operation is CallOperation.CAPTURE
        and call.unknown
    )


def check_cancel(payment: Payment, provider: Provider, *, local: bool) -> None:
    """Refuse a cancel the status or the provider does not allow.

    ``local``: a payment never sent may be canceled here alone, whatever the provider can do.
    """
    if not fsm.allowed(payment.status, "cancel"):
        raise InvalidTransition(f"cannot cancel payment {payment.id}: it is {payment.status.value}")
    if not (local and was_never_sent(payment)) and not provider.capabilities.cancel:
        raise UnsupportedOperation(f"provider {provider.code!r} ({provider.name}) cannot cancel a payment")


def refund_amount(payment: Payment, provider: Provider, amount: Money | None) -> Money:
    """What a refund of ``amount`` (``None``: all that remains) takes; refuse what may not be.

    Succeeded plus pending refunds never exceed the captured amount.
    """
    if not fsm.allowed(payment.status, "refund_partially"):
        raise InvalidTransition(f"cannot refund payment {payment.id}: it is {payment.status.value}, not succeeded")
    if not provider.capabilities.refund:
        raise UnsupportedOperation(f"provider {provider.code!r} ({provider.name}) does not refund")
    refundable = payment.refundable_amount
    wanted = refundable if amount is None else amount
    if not isinstance(wanted, Money):
        raise InvalidAmount(f"a refund amount must be a Money, not {type(wanted).__name__}: {wanted!r}")
    if wanted.currency != payment.currency:
        raise CurrencyMismatch(f"cannot refund {wanted} of a payment in {payment.currency}")
    if not wanted.is_positive():
        if amount is None:
            raise RefundExceedsCaptured(f"payment {payment.id} has nothing left to refund")
        raise InvalidAmount(f"a refund must be positive, not {wanted}")
    if wanted > refundable:
        raise RefundExceedsCaptured(
            f"cannot refund {wanted} of payment {payment.id}: only {refundable} remains refundable "
            f"(captured {payment.captured_amount}, refunded {payment.refunded_amount}, "
            f"pending {payment.pending_refund_amount})"
        )
    captured = payment.captured_amount
    held = any(refund.status is not RefundStatus.FAILED for refund in payment.refunds)  # a failed one moved nothing
    if (wanted != captured or held) and not provider.capabilities.partial_refund:
        raise UnsupportedOperation(
            f"provider {provider.code!r} ({provider.name}) cannot refund part ({wanted}) of {captured}"
        )
    return wanted
