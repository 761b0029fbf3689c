"""How a Stripe SDK call ended, in paycore's terms: an answer, not sent, or unknown.

The SDK raises one exception class per kind of failure; :func:`ask` turns each
into what paycore's flow needs to know (see :mod:`paycore.providers`):

* :class:`stripe.CardError` (402) to a create: a **definitive decline**. It is
  raised again for the create to report as ``Outcome.FAILED`` (``declines=True``).
  To any other request (a capture, a refund, a cancel) it refuses that request
  alone: the payment stays as it was, so it is :class:`~paycore.errors.ProviderNotSent`.
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

The SDK retries a failed request itself (``max_network_retries``) under the
same idempotency key, and raises only its **last** attempt's error. So that
error says nothing of the earlier attempts: one of them may have reached Stripe
and done the work (a reset or a 5xx after Stripe made the refund) before a
retry failed to connect or was refused. The SDK's HTTP client (see
:mod:`paycore_stripe.client`) records each attempt of the call :func:`ask`
runs in its :class:`Attempts`; once an attempt of a mutating request may have
reached Stripe, a later "not sent" ending is
:class:`~paycore.errors.ProviderOutcomeUnknown`, never
:class:`~paycore.errors.ProviderNotSent`.

A call whose every attempt was a read (``GET``: a retrieve, a list) asked
Stripe to change nothing: however it ended (its answer lost, a 5xx, a
timeout), it is :class:`~paycore.errors.ProviderNotSent`, never unknown. So an
operation that reads before it asks for a change (a cancel that retrieves the
Checkout Session before expiring it) and loses that read's answer has sent
nothing: the flow undoes its call, and a retry sends at once.

Messages name the operation and Stripe's error code and type, never the API key
or the request's parameters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Final, TypeVar

import anyio
import httpx
import stripe

from paycore.errors import ProviderError, ProviderNotSent, ProviderOutcomeUnknown

__all__ = ["Attempts", "NotAtStripe", "answer_dict", "ask", "record_attempt"]

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
    stripe.CardError,
)
"""SDK errors for requests Stripe refused without doing anything (a decline of a create is raised as it is)."""


class NotAtStripe(ProviderNotSent):
    """Stripe has no such object (404 ``resource_missing``)."""


class Attempts:
    """The HTTP attempts of one SDK call, as its HTTP client saw them (the SDK retries some itself)."""

    def __init__(self) -> None:
        self._reached: list[bool] = []
        self._reads: list[bool] = []

    def record(self, method: str, failure: BaseException | None) -> None:
        """One attempt of a ``method`` request ended: answered (``failure`` is ``None``) or with ``failure``.

        It may have changed something at Stripe unless it was a read (``GET``)
        or failed before a byte of it left this process.
        """
        read = method.lower() == "get"
        self._reads.append(read)
        self._reached.append(not read and not isinstance(failure, _NEVER_SENT))

    @property
    def earlier_reached(self) -> bool:
        """True when an attempt before the last may have reached Stripe and done the work."""
        return any(self._reached[:-1])

    @property
    def only_read(self) -> bool:
        """True when the call made attempts and every one was a read (``GET``): Stripe was asked to change nothing."""
        return bool(self._reads) and all(self._reads)


_ATTEMPTS: ContextVar[Attempts | None] = ContextVar("paycore_stripe_attempts", default=None)
"""The attempts of the SDK call :func:`ask` is running in this task (the SDK calls its HTTP client in it)."""


def record_attempt(method: str, failure: BaseException | None) -> None:
    """Record an attempt of the SDK call :func:`ask` is running (see :meth:`Attempts.record`); else nothing."""
    attempts = _ATTEMPTS.get()
    if attempts is not None:
        attempts.record(method, failure)


def _answered(error: stripe.StripeError) -> str:
    """Stripe's answer as its status, the SDK's error class and Stripe's error code: ``429 RateLimitError``."""
    code = f" ({error.code})" if isinstance(error.code, str) and error.code else ""
    status = f"{error.http_status} " if error.http_status else ""
    return f"{status}{type(error).__name__}{code}"


def _described(operation: str, error: stripe.StripeError) -> str:
    return f"Stripe answered {_answered(error)} to {operation}"


def _cause(error: stripe.APIConnectionError) -> str:
    """The name of the httpx error behind a connection error."""
    return type(error.__cause__).__name__ if error.__cause__ is not None else "connection error"


async def ask(operation: str, call: Callable[[], Awaitable[T]], *, deadline: float | None, declines: bool = False) -> T:
    """Run one SDK call; its answer, or the paycore error that says whether it was sent.

    ``deadline`` bounds the whole call (the SDK's retries included) in seconds:
    past it the call's outcome is unknown. With ``declines`` (a create), a
    :class:`stripe.CardError` is raised as it is: the caller reports the
    payment's decline; without, it refused this request alone. The last attempt's "not
    sent" is unknown when an earlier attempt may have reached Stripe; a call
    that only read (``GET``) is never unknown: it sent nothing that changes Stripe.
    """
    attempts = Attempts()
    token = _ATTEMPTS.set(attempts)
    try:
        with anyio.fail_after(deadline):
            return await call()
    except (stripe.StripeError, TimeoutError) as error:
        if declines and isinstance(error, stripe.CardError):
            raise
        raise _ending(operation, error, deadline, attempts) from None
    finally:
        _ATTEMPTS.reset(token)


def _ending(
    operation: str, error: stripe.StripeError | TimeoutError, deadline: float | None, attempts: Attempts
) -> ProviderError:
    """The paycore error for how the call ended: :func:`_last_ending`, unless an earlier attempt may have done it.

    A call that only read (every attempt a ``GET``) and whose outcome would be unknown was not sent
    (:func:`_read_ending`): nothing it asked can have changed anything at Stripe.
    """
    ending = _last_ending(operation, error, deadline)
    if isinstance(ending, ProviderOutcomeUnknown) and attempts.only_read:
        return _read_ending(operation, error, deadline)
    if isinstance(error, TimeoutError) or not isinstance(ending, ProviderNotSent) or not attempts.earlier_reached:
        return ending
    last = _cause(error) if isinstance(error, stripe.APIConnectionError) else _answered(error)
    return ProviderOutcomeUnknown(
        f"an earlier attempt of {operation} may have reached Stripe before the SDK's retry of it "
        f"failed ({last}): only a poll can tell"
    )


def _read_ending(operation: str, error: stripe.StripeError | TimeoutError, deadline: float | None) -> ProviderNotSent:
    """A read's failure (its answer lost, a 5xx, no answer in time): nothing was asked of Stripe to change."""
    if isinstance(error, TimeoutError):
        failure = f"Stripe did not answer {operation} within {deadline:g}s"
    elif isinstance(error, stripe.APIConnectionError):
        failure = f"the answer to {operation} was lost ({_cause(error)})"
    else:
        failure = _described(operation, error)
    return ProviderNotSent(f"{failure}, but it only reads: nothing was asked of Stripe to change")


def _last_ending(operation: str, error: stripe.StripeError | TimeoutError, deadline: float | None) -> ProviderError:
    """The paycore error for the call's last attempt alone (see the module's docstring)."""
    if isinstance(error, TimeoutError):
        return ProviderOutcomeUnknown(f"Stripe did not answer {operation} within {deadline:g}s")
    if isinstance(error, stripe.APIConnectionError):
        if isinstance(error.__cause__, _NEVER_SENT):
            return ProviderNotSent(f"Stripe was not reached for {operation} ({_cause(error)}): nothing was sent")
        return ProviderOutcomeUnknown(
            f"the connection to Stripe failed after {operation} was sent ({_cause(error)}): only a poll can tell"
        )
    if isinstance(error, _REFUSED):
        if error.http_status == 409:
            return ProviderOutcomeUnknown(_described(operation, error) + ": an earlier attempt may be running")
        if error.http_status == 404:
            return NotAtStripe(_described(operation, error))
        return ProviderNotSent(_described(operation, error) + ": Stripe refused it and created nothing")
    return ProviderOutcomeUnknown(_described(operation, error) + ": its outcome is unknown")


def answer_dict(answer: Any, operation: str) -> dict[str, Any]:
    """An SDK object as a plain ``dict``; :class:`~paycore.errors.ProviderOutcomeUnknown` if it is not one."""
    to_dict = getattr(answer, "to_dict", None)
    data = to_dict() if callable(to_dict) else answer
    if not isinstance(data, dict):
        raise ProviderOutcomeUnknown(f"Stripe's answer to {operation} is not an object ({type(answer).__name__})")
    return data
