"""Provider calls: the write-ahead record of a request to a provider, its states and who may settle it.

Before the flow sends a money-moving request (initiate, capture, cancel, refund)
it writes a :class:`ProviderCall` on the payment, in the same unit of work as
the operation's first change. The call has an identity (:attr:`ProviderCall.id`)
and a lease: while the lease runs, the call belongs to the operation that wrote
it (its *owner*), and only that owner clears it. Its life:

.. code-block:: text

    submitting --answer--> (cleared: the answer is applied)
        |       --not sent--> (cleared: nothing happened, a retry is safe)
        |
        +--no usable answer--> unknown --a report settles it--> (cleared)
        +--lease runs out (owner crashed)--> treated as unknown

* **submitting**, within its lease: the owner is talking to the provider. A
  poll or a webhook meanwhile may record facts the provider reports (money
  it holds), but never clears the call, never fails its refund, and never
  lets a second operation start: that meets :class:`~paycore.errors.PaymentBusy`.
  "The provider does not know this payment" while its initiate is in flight is
  no decline.
* **unknown** (the owner got no usable answer), or submitting past its lease
  (the owner died): the outcome must be learnt by asking the provider
  (``check_status``) or from its webhook; the request is never sent again.
  Before a new operation, the flow asks first.

This module holds the record and the rules; :mod:`paycore.provider_calls` runs them.
"""

from __future__ import annotations

import binascii
import os
import time
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from attrs import frozen

from paycore.builders import compile_builder
from paycore.errors import PaymentBusy
from paycore.money import Money

__all__ = [
    "HELD_CALLS",
    "CallOperation",
    "CallState",
    "HeldCalls",
    "ProviderCall",
    "Unknown",
    "new_call_id",
    "random_token",
]


class CallOperation(StrEnum):
    """The money-moving requests that are written down before they are sent."""

    INITIATE = "initiate"
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"


class CallState(StrEnum):
    """Where a written-down provider call stands."""

    SUBMITTING = "submitting"
    """Written down; its owner is sending it and will settle it with the answer."""
    UNKNOWN = "unknown"
    """Sent, and no usable answer came back: only asking the provider settles it."""


_URL_SAFE = bytes.maketrans(b"+/", b"-_")
"""Standard base64's two symbols to URL-safe base64's."""


def random_token(nbytes: int) -> str:
    """``nbytes`` from the operating system's random source, URL-safe base64 text.

    What ``secrets.token_urlsafe`` returns, without importing ``secrets`` (and
    with it ``random`` and ``hmac``) when paycore is imported.
    """
    encoded = binascii.b2a_base64(os.urandom(nbytes), newline=False)  # base64.urlsafe_b64encode, in C
    return encoded.translate(_URL_SAFE).rstrip(b"=").decode()


def new_call_id() -> str:
    """A fresh, unique provider-call id: ``call_...``."""
    return f"call_{random_token(12)}"


@frozen(kw_only=True)
class ProviderCall:
    """A provider call written down before it is sent (the write-ahead record)."""

    id: str
    """The call's identity: its owner settles it only while the payment still carries this id."""
    operation: CallOperation
    started_at: datetime
    lease_until: datetime
    """Until then the call belongs to its owner; afterwards anyone settles it by asking."""
    amount: Money | None = None
    """The amount asked for (capture, refund)."""
    refund_id: str | None = None
    """The refund a ``refund`` call is for."""
    state: CallState = CallState.SUBMITTING
    reason: str = ""
    """Why the outcome is unknown, when it is."""
    cause: str = "api"
    """Who sent it: ``api`` (a caller of the flow) or ``reaper`` (closing an abandoned payment)."""

    @classmethod
    def start(
        cls,
        operation: CallOperation,
        *,
        now: datetime,
        lease: timedelta,
        amount: Money | None = None,
        refund_id: str | None = None,
        cause: str = "api",
        call_id: str | None = None,
    ) -> ProviderCall:
        """A new call of ``operation`` written down ``now``, owned for ``lease`` (``call_id``, else a new id)."""
        return _build_call(
            id=call_id or new_call_id(),
            operation=operation,
            started_at=now,
            lease_until=now + lease,
            amount=amount,
            refund_id=refund_id,
            cause=cause,
        )

    @property
    def unknown(self) -> bool:
        """True once the call was sent and no usable answer came back."""
        return self.state is CallState.UNKNOWN

    @property
    def closes_abandoned_payment(self) -> bool:
        """True for the reaper's cancel: the provider's "canceled" then means the payment expired."""
        return self.operation is CallOperation.CANCEL and self.cause == "reaper"

    def in_flight(self, now: datetime) -> bool:
        """True while the call's owner is still talking to the provider (and only it may settle it)."""
        return self.state is CallState.SUBMITTING and now < self.lease_until

    def is_the_same(self, other: ProviderCall) -> bool:
        """True when ``other`` is this very call: the same id (a retry under the same key gives its
        call the same one) written down at the same time, whatever its state since."""
        return self.id == other.id and self.started_at == other.started_at

    def lease_ran_out(self, now: datetime) -> bool:
        """True once the call's lease has run out: no request of it can still be on its way, so a poll
        asked now may settle it by what it does not show, and anyone settles it by asking."""
        return now >= self.lease_until

    def answers_in_time(self, now: datetime, timeout: timedelta) -> bool:
        """True when a request sent ``now`` is answered, or given up on, within the call's lease
        (``timeout`` away at most): so no one settles the call by asking while it travels."""
        return now + timeout < self.lease_until

    def settled_by_reports(self, now: datetime) -> bool:
        """True when a poll or a webhook may settle the call: its outcome is unknown or its lease ran out."""
        return not self.in_flight(now)

    def busy(self, payment_id: str) -> PaymentBusy:
        """The refusal of a new operation on payment ``payment_id`` while this call is in progress."""
        return PaymentBusy(
            f"payment {payment_id} is busy: its {self.operation.value} call is in progress; retry when it is settled"
        )


_build_call = compile_builder(ProviderCall)
"""``ProviderCall(**fields)``, without running ``__init__``."""


@frozen
class Unknown:
    """How a provider call ended that was sent (or may have been) and got no usable answer: only asking the
    provider settles it now."""

    reason: str


class HeldCalls:
    """The calls this process wrote down and still awaits the answer of, each until its lease ends by the
    monotonic clock; one registry for every flow of the process (:data:`HELD_CALLS`).

    A call's lease is kept in wall-clock time, which other processes read too; but a wall clock may step
    forward (NTP correcting it, a virtual machine resumed) while a request travels. Within the process that
    sent it, the call stays its owner's for its whole lease, measured by a clock that never steps: no reaper,
    poll or operator of this process (through any of its flows: a Django site has one per event loop) takes it
    up meanwhile. The owner lets it go (:meth:`release`) once its answer, or the lack of one, is being written.
    """

    __slots__ = ("_limit", "_until")

    def __init__(self) -> None:
        self._until: dict[tuple[str, datetime], float] = {}  # a call (its id, when written) to its lease's end
        self._limit = 1024

    def hold(self, call: ProviderCall, seconds: float) -> ProviderCall:
        """Hold ``call`` from now for ``seconds`` (its lease); ``call`` itself. Safe from any thread."""
        until, now = self._until, time.monotonic()
        if len(until) >= self._limit:  # the calls whose owners failed before letting go, once their lease ended
            for held, ends in list(until.items()):
                if ends <= now:
                    until.pop(held, None)
            self._limit = max(1024, 2 * len(until))
        until[call.id, call.started_at] = now + seconds
        return call

    def holds(self, call: ProviderCall) -> bool:
        """True while this process awaits ``call``'s answer and its lease has not run out by the monotonic clock."""
        ends = self._until.get((call.id, call.started_at))
        return ends is not None and time.monotonic() < ends

    def in_flight(self, call: ProviderCall, now: datetime) -> bool:
        """True while ``call``'s owner talks to the provider: by its lease (:meth:`ProviderCall.in_flight`), or as
        this process awaits it (:meth:`holds`)."""
        return call.in_flight(now) or self.holds(call)

    def release(self, call: ProviderCall) -> None:
        """Let ``call`` go: its owner is writing what came of it (or undoing it)."""
        self._until.pop((call.id, call.started_at), None)


HELD_CALLS: Final = HeldCalls()
"""The calls every flow of this process awaits the answer of (:class:`HeldCalls`)."""
