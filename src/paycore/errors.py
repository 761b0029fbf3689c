"""Every error paycore raises, under one root: :class:`PaycoreError`.

Catch ``PaycoreError`` to handle anything the library refuses or cannot do.
Subclasses say *what* went wrong; their messages say which value was wrong and
what would have been right. No message ever contains a secret.
"""

from __future__ import annotations

from typing import Final


class PaycoreError(Exception):
    """The root of every error paycore raises on purpose."""


class ConfigurationError(PaycoreError):
    """The configuration is malformed, incomplete or names something unknown."""


class PluginError(PaycoreError):
    """A plugin failed to load or registered something it may not."""


class PluginLoadError(PluginError):
    """An entry point of the ``paycore`` group could not be imported or registered."""


class DuplicateRegistration(PluginError):
    """Two plugins registered a provider, repository or store under the same name."""


class MoneyError(PaycoreError, ValueError):
    """An amount or currency is invalid."""


class UnknownCurrency(MoneyError):
    """A currency code is not an active ISO 4217 code."""


class InvalidAmount(MoneyError):
    """An amount cannot be represented exactly in its currency (or is not a number)."""


class CurrencyMismatch(MoneyError):
    """Two amounts of different currencies were combined or compared."""


class ValidationError(PaycoreError):
    """A request was refused before anything ran; nothing was changed or stored."""


class InvalidReport(ValidationError, ValueError):
    """A provider's report holds a value paycore cannot accept (a wrong type, a negative amount...).

    Raised where the report is built; nothing was stored. Providers turn it
    into :class:`~paycore.errors.MalformedWebhook` for a delivery and into a
    provider error for an API answer.
    """


class PaymentRejected(ValidationError):
    """A ``paycore_validate_payment`` policy refused to create the payment."""


class ProviderNotEnabled(ValidationError):
    """The provider code is not enabled for this tenant."""


class UnsupportedCurrency(ValidationError):
    """The provider does not accept the payment's currency."""


class UnsupportedOperation(ValidationError):
    """The provider cannot perform the operation (no partial capture, no cancel...)."""


class InvalidTransition(ValidationError):
    """The payment's current status does not allow the requested operation."""


class RefundExceedsCaptured(ValidationError):
    """A refund would take succeeded plus pending refunds above the captured amount."""


class CaptureExceedsAuthorized(ValidationError):
    """A capture asks for more than was authorized."""


class NotFound(PaycoreError, LookupError):
    """A payment or refund does not exist (or belongs to another tenant)."""


class PaymentNotFound(NotFound):
    """No payment with that id is visible in this scope."""


class RefundNotFound(NotFound):
    """No refund with that id is visible in this scope."""


class DuplicatePayment(PaycoreError):
    """A repository already holds a payment with this id."""


class DuplicateExternalId(DuplicatePayment):
    """A provider reference is held by another payment of the same provider code and tenant."""


class ConcurrentUpdate(PaycoreError):
    """A write lost a race: the stored version is not the one the writer read."""


class PaymentBusy(PaycoreError):
    """Another operation on this payment is talking to the provider right now."""


class IdempotencyError(PaycoreError):
    """An idempotency key cannot be used for this request."""


class IdempotencyKeyReused(IdempotencyError):
    """The key was already used for a different request."""


class IdempotencyInProgress(IdempotencyError):
    """The key's first request is still running; retry after it finishes."""


class IdempotencyLeaseLost(IdempotencyError):
    """The holder's lease expired and another request took the key over."""


class WebhookError(PaycoreError):
    """A webhook delivery was refused; nothing was changed."""


class InvalidSignature(WebhookError):
    """The webhook's signature is missing, stale or does not verify."""


class MalformedWebhook(WebhookError):
    """The webhook's body or headers cannot be understood."""


class WebhookTooLarge(MalformedWebhook):
    """The webhook's body is larger than ``webhook_max_bytes`` (HTTP 413 at the ASGI door)."""


class ProviderError(PaycoreError):
    """A provider call did not give a definitive answer."""


class ProviderNotSent(ProviderError):
    """The request never reached the provider: nothing happened, retrying is safe."""


class ProviderOutcomeUnknown(ProviderError):
    """A request was sent but no usable answer came back, and asking the provider has not settled it yet.

    The operation whose answer was lost returns what it left, its call marked unknown
    (``payment.pending_call.unknown``); the next operation on the payment, or a refresh,
    raises this while the call stays unknown. A provider raises it from a request it sent.

    The payment stays as it was with the call recorded; only asking the provider
    (``PaymentFlow.refresh``) settles it, never sending the request again.
    """


class StorageError(PaycoreError):
    """The repository or idempotency store failed (unreachable, timed out)."""


class StorageUnavailable(StorageError):
    """The storage backend cannot be reached. The write that met it is not known to be made (a connection lost
    as it committed may have made it), and an operation's earlier writes, such as its provider call written down
    before sending, may have been: retry under the same idempotency key to learn what stands."""


class FlowClosed(PaycoreError):
    """The :class:`~paycore.flow.PaymentFlow` was closed: nothing is sent or stored through it any more."""

    def __init__(self, message: str = "this PaymentFlow was closed: it sends and stores nothing more") -> None:
        super().__init__(message)


RELEASE_ON: Final[tuple[type[BaseException], ...]] = (
    ValidationError,
    MoneyError,
    NotFound,
    ProviderError,
    PaymentBusy,
    IdempotencyError,
    ConcurrentUpdate,
    StorageError,
)
"""Errors after which nothing new is left unsettled, so an idempotency key is released for a retry
(:class:`~paycore.idempotency.IdempotentRunner`'s default ``release_on``).

A provider call that reached the provider stays written down on its payment, so a
retry settles it by asking the provider before anything else: it is never sent twice.
A storage failure leaves nothing half-written (a unit of work is all or nothing), so
it releases the key too: a retry need not wait for the lease of a request that ended."""


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, or its class name when it has none: how an adapter names a driver's
    error in its own (a driver's later lines may quote the statement and its values)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
