"""Wave's checkout session object, read as paycore reports.

A checkout session (``cos-...``) carries two statuses: ``checkout_status``
(``open``, ``complete``, ``expired``) and ``payment_status`` (``processing``,
``cancelled``, ``succeeded``). They map to one :class:`~paycore.status.Outcome`:

=================  ==================  ============  ==========================================
checkout_status    payment_status      outcome       meaning
=================  ==================  ============  ==========================================
any                ``succeeded``       SUCCEEDED     paid; ``amount`` is what was collected
``expired``        not ``succeeded``   EXPIRED       the session ran out (or was expired) unpaid
``open``           ``processing``      PENDING       awaiting the customer in the Wave app
``complete``       ``processing``      PENDING       the payment is still being processed
``open``           ``cancelled``       PENDING       an attempt failed; the session is still payable
``complete``       ``cancelled``       FAILED        the payment failed (``last_payment_error``)
=================  ==================  ============  ==========================================

``last_payment_error`` is the reason for the *last* failed attempt: a customer
may try again on the same session (after topping up, say) for as long as it is
open, so only a session that is no longer open ends the payment. The reason is
the update's message either way.

Amounts are strings in the currency's major unit: whole francs for XOF
(``"5000"``). Any other status, a malformed amount or id is refused with
:class:`~paycore.wire.InvalidReport`: a report paycore cannot trust never exists.
"""

from __future__ import annotations

import re
from typing import Any, Final

from attrs import frozen

from paycore.errors import MoneyError
from paycore.money import Money
from paycore.records import NextAction, ProviderUpdate
from paycore.status import Outcome
from paycore.wire import InvalidReport, check_id

__all__ = [
    "CHECKOUT_STATUSES",
    "PAYMENT_STATUSES",
    "WaveSession",
    "awaits_customer",
    "format_amount",
    "outcome_of",
    "parse_amount",
    "session_update",
]

CHECKOUT_STATUSES: Final = ("open", "complete", "expired")
"""The values of a session's ``checkout_status`` that Wave documents."""
PAYMENT_STATUSES: Final = ("processing", "cancelled", "succeeded")
"""The values of a session's ``payment_status`` that Wave documents."""
_AMOUNT: Final = re.compile(r"(0|[1-9][0-9]{0,18})(\.[0-9]{1,4})?")


@frozen
class WaveSession:
    """What the provider keeps on a payment for later calls: its checkout session and transaction ids."""

    session_id: str
    """The checkout session's id (``cos-...``): retrieve, expire and refund are addressed to it."""
    transaction_id: str | None = None
    """Wave's transaction id once the customer paid (also shown in the customer's Wave app)."""


def format_amount(amount: Money) -> str:
    """``amount`` as Wave expects it: a decimal string in the major unit (``"5000"`` for 5000 XOF)."""
    if amount.exponent == 0:
        return str(amount.minor_units)
    return f"{amount.amount:.{amount.exponent}f}"


def parse_amount(value: object, currency: object) -> Money:
    """An amount Wave reported (a non-negative decimal string) as :class:`~paycore.money.Money`."""
    if not isinstance(currency, str):
        raise InvalidReport(f"a Wave session's 'currency' must be a string such as 'XOF', not {currency!r:.40}")
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        raise InvalidReport(f"a Wave amount must be a decimal string such as '5000', not {value!r:.40}")
    try:
        return Money.of(value, currency)
    except MoneyError as error:
        raise InvalidReport(
            f"a Wave amount of {value!r:.40} {currency!r:.10} is not money paycore takes: {error}"
        ) from None


def outcome_of(checkout_status: object, payment_status: object) -> Outcome:
    """The outcome a session's two statuses stand for (the table above)."""
    if checkout_status not in CHECKOUT_STATUSES:
        raise InvalidReport(
            f"a Wave 'checkout_status' must be one of {list(CHECKOUT_STATUSES)}, not {checkout_status!r:.40}"
        )
    if payment_status not in PAYMENT_STATUSES:
        raise InvalidReport(
            f"a Wave 'payment_status' must be one of {list(PAYMENT_STATUSES)}, not {payment_status!r:.40}"
        )
    if payment_status == "succeeded":
        return Outcome.SUCCEEDED
    if checkout_status == "expired":
        return Outcome.EXPIRED
    if payment_status == "cancelled" and checkout_status == "complete":
        return Outcome.FAILED
    return Outcome.PENDING  # awaiting the customer, who may retry a failed attempt while the session is open


def awaits_customer(data: dict[str, Any]) -> bool:
    """Whether the session still waits for the customer to pay it: ``open`` and not paid.

    Such a session is payable at its ``wave_launch_url`` (after a failed attempt too);
    a complete or expired one is not.
    """
    return data.get("checkout_status") == "open" and data.get("payment_status") != "succeeded"


def _payment_error(data: dict[str, Any]) -> str:
    error = data.get("last_payment_error")
    if error is None:
        return ""
    if not isinstance(error, dict):
        raise InvalidReport(f"a Wave 'last_payment_error' must be an object or null, not {type(error).__name__}")
    code, message = error.get("code"), error.get("message")
    parts = [str(part) for part in (code, message) if isinstance(part, str) and part]
    return ": ".join(parts)[:500]


def _optional_id(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else check_id(value, what=f"a Wave session's {key!r}")


def session_update(
    data: object, *, provider_event_id: str | None = None, with_launch_url: bool = False
) -> ProviderUpdate:
    """A Wave checkout session object as a :class:`~paycore.records.ProviderUpdate`.

    The session id is the external id and the transaction id, once there is
    one, a second reference; ``client_reference`` (paycore's payment id) is
    echoed as ``payment_id``. A succeeded session reports its ``amount`` as
    captured; one without an amount reports none. ``with_launch_url``: while
    the session awaits the customer (:func:`awaits_customer`), the customer's
    next action is its ``wave_launch_url`` (the answer to a create, or a poll
    of a session whose create answer was lost); a session that no longer
    awaits the customer has none.
    """
    if not isinstance(data, dict):
        raise InvalidReport(f"a Wave checkout session must be a JSON object, not {type(data).__name__}")
    session_id = check_id(data.get("id"), what="a Wave session's 'id'")
    transaction_id = _optional_id(data, "transaction_id")
    client_reference = _optional_id(data, "client_reference")
    outcome = outcome_of(data.get("checkout_status"), data.get("payment_status"))
    captured = None
    if outcome is Outcome.SUCCEEDED and data.get("amount") is not None:
        captured = parse_amount(data.get("amount"), data.get("currency"))
    next_action = None
    if with_launch_url and awaits_customer(data):
        next_action = NextAction(kind="redirect", url=data.get("wave_launch_url"))
    return ProviderUpdate(
        outcome=outcome,
        external_id=session_id,
        references=(transaction_id,) if transaction_id is not None else (),
        provider_state=WaveSession(session_id=session_id, transaction_id=transaction_id),
        payment_id=client_reference,
        captured=captured,
        next_action=next_action,
        provider_event_id=provider_event_id,
        message=_payment_error(data),
    )
