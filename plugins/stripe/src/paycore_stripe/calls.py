"""How a Stripe SDK call ended, in paycore's terms: an answer, not sent, or unknown.

The SDK raises one exception class per kind of failure; :func:`ask` turns each
into what paycore's flow needs to know (see :mod:`paycore.providers`):

* :class:`stripe.CardError` (402): a **definitive decline**. It is raised again
  for the operation to report as ``Outcome.FAILED``.
* :class:`stripe.InvalidRequestError` (400, 404), :class:`stripe.AuthenticationError`
  (401), :class:`stripe.PermissionError` (403), :class:`stripe.IdempotencyError`
  and :class:`stripe.RateLimitError` (429): Stripe refused the request and
  created nothing: :class:`~paycore.errors.ProviderNotSent`. A 404 is
  :class:`NotAtStripe`, so that a poll can report ``Outcome.NOT_FOUND``.
* :class:`stripe.APIConnectionError`: not sent when the connection was never
  made (refused, DNS, connect timeout); **unknown** otherwise (a read timeout,
  a reset after the request left).
* :class:`stripe.APIError`, any 5xx or 409 (a request with the same
  idempotency key still running at Stripe), a timeout, or an answer paycore
  cannot read: :class:`~paycore.errors.ProviderOutcomeUnknown`.

Messages name the operation and Stripe's error code and type, never the API key
or the request's parameters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import anyio
import httpx
import stripe

from paycore.errors import ProviderNotSent, ProviderOutcomeUnknown

__all__ = ["NotAtStripe", "answer_dict", "ask"]

T = TypeVar("T")

_NEVER_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)
"""httpx errors raised before a byte of the request left this process."""
_REFUSED: Final = (
    stripe.InvalidRequestError,
    stripe.AuthenticationError,
    stripe.PermissionError,
    stripe.IdempotencyError,
    stripe.RateLimitError,
)
"""SDK errors for requests Stripe refused without doing anything."""


class NotAtStripe(ProviderNotSent):
    """Stripe has no such object (404 ``resource_missing``)."""


def _described(operation: str, error: stripe.StripeError) -> str:
    code = f" ({error.code})" if isinstance(error.code, str) and error.code else ""
    status = f" {error.http_status}" if error.http_status else ""
    return f"Stripe answered{status} {type(error).__name__}{code} to {operation}"


async def ask(operation: str, call: Callable[[], Awaitable[T]], *, deadline: float | None) -> T:
    """Run one SDK call; its answer, or the paycore error that says whether it was sent.

    ``deadline`` bounds the whole call (the SDK's retries included) in seconds:
    past it the call's outcome is unknown. A :class:`stripe.CardError` is
    raised as it is: the caller reports the decline.
    """
    try:
        with anyio.fail_after(deadline):
            return await call()
    except stripe.CardError:
        raise
    except stripe.APIConnectionError as error:
        if isinstance(error.__cause__, _NEVER_SENT):
            raise ProviderNotSent(
                f"Stripe was not reached for {operation} ({type(error.__cause__).__name__}): nothing was sent"
            ) from None
        cause = type(error.__cause__).__name__ if error.__cause__ is not None else "connection error"
        raise ProviderOutcomeUnknown(
            f"the connection to Stripe failed after {operation} was sent ({cause}): only a poll can tell"
        ) from None
    except _REFUSED as error:
        if error.http_status == 409:
            raise ProviderOutcomeUnknown(_described(operation, error) + ": an earlier attempt may be running") from None
        if error.http_status == 404:
            raise NotAtStripe(_described(operation, error)) from None
        raise ProviderNotSent(_described(operation, error) + ": Stripe refused it and created nothing") from None
    except stripe.StripeError as error:
        raise ProviderOutcomeUnknown(_described(operation, error) + ": its outcome is unknown") from None
    except TimeoutError:
        raise ProviderOutcomeUnknown(f"Stripe did not answer {operation} within {deadline:g}s") from None


def answer_dict(answer: Any, operation: str) -> dict[str, Any]:
    """An SDK object as a plain ``dict``; :class:`~paycore.errors.ProviderOutcomeUnknown` if it is not one."""
    to_dict = getattr(answer, "to_dict", None)
    data = to_dict() if callable(to_dict) else answer
    if not isinstance(data, dict):
        raise ProviderOutcomeUnknown(f"Stripe's answer to {operation} is not an object ({type(answer).__name__})")
    return data
