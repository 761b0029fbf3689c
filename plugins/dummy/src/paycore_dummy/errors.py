"""Errors of the dummy gateway and its provider."""

from __future__ import annotations

from paycore.errors import PaycoreError, ProviderNotSent

__all__ = ["GatewayAlreadyRunning", "GatewayApiError", "GatewayNotRunning", "GatewayRefused"]


class GatewayApiError(PaycoreError):
    """The gateway refuses a request; carries the HTTP status and a short code it answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class GatewayNotRunning(PaycoreError):
    """The gateway was used outside ``async with gateway`` (or a server's lifespan)."""


class GatewayAlreadyRunning(PaycoreError):
    """``async with gateway`` was entered while the gateway was running already."""


class GatewayRefused(ProviderNotSent):
    """The gateway answered 4xx: it did nothing (bad request, wrong state, wrong API key, a capture, cancel or
    refund of a payment it does not hold). A status poll answered ``404 not_found`` for the payment's gateway id
    raises none: :meth:`~paycore_dummy.provider.DummyProvider.check_status` reports it as
    :attr:`~paycore.status.Outcome.NOT_FOUND`, the gateway holds no such payment.

    ``code`` is the gateway's code as written, to compare; the message shows ``shown_code`` (by default
    ``code``), the code with every secret and phone hidden."""

    def __init__(self, status: int, code: str, message: str, *, shown_code: str | None = None) -> None:
        shown = code if shown_code is None else shown_code
        super().__init__(f"dummy gateway refused the request ({status} {shown}): {message}")
        self.status = status
        self.code = code
