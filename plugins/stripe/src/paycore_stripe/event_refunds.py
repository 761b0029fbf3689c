"""A webhook event's reports, with the refunds it does not tell (or is not trusted with) listed through the API.

:func:`webhook_reports` reads a verified event (:func:`~paycore_stripe.webhooks.read_event`)
and, when the event does not tell every refund of its PaymentIntent or may show
a Refund that released uncaptured money (an event rendered before
``2025-03-31.basil``), lists the intent's refunds through the API and reports
those instead: on the version the SDK pins, the API never lists such a release.

* A ``charge.refunded`` (see :func:`~paycore_stripe.webhooks.unlisted_refunds`)
  names its PaymentIntent only when its charge, a copy of the intent's metadata,
  names a paycore payment of this tenant: another's asks Stripe nothing.
* At a tenant's endpoint, a ``refund.*`` or ``charge.refund.updated`` whose refund names
  no tenant (see :func:`~paycore_stripe.webhooks.unmarked_refund`) has its PaymentIntent
  retrieved first: another tenant's on a Stripe account they share, or another system's,
  is acknowledged and changes nothing (answered 404, Stripe would send it again for days).
  So is a dispute's (a Dispute carries no copy of paycore's metadata).
* A ``refund.*`` or ``charge.refund.updated`` of a refund paycore did not make
  (see :func:`~paycore_stripe.webhooks.untrusted_refund`) carries no such copy:
  its PaymentIntent is retrieved first, and its refunds listed only when its
  metadata names a paycore payment of this tenant. Of an intent Stripe does not
  have, or another's, the event is read as it is (no payment of this tenant has
  that intent: the flow does not find it).

When Stripe cannot be asked, the delivery is refused with
:class:`~paycore.errors.PaymentBusy` (the webhook endpoint answers 503) for
Stripe to send it again: it is never read as refunding nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from paycore.errors import PaymentBusy, ProviderError
from paycore.records import ProviderUpdate
from paycore_stripe.disputes import disputed_intent
from paycore_stripe.webhooks import (
    StripeEvent,
    of_paycore_and_tenant,
    read_event,
    unlisted_refunds,
    unmarked_refund,
    untrusted_refund,
)

__all__ = ["IntentRetriever", "RefundLister", "webhook_reports"]

T = TypeVar("T")

RefundLister = Callable[[str], Awaitable[list[dict[str, Any]]]]
"""Every refund of a PaymentIntent (by its id), listed through the API."""
IntentRetriever = Callable[[str], Awaitable[dict[str, Any] | None]]
"""A PaymentIntent (by its id) retrieved through the API; ``None`` when Stripe has no such intent."""


async def webhook_reports(
    event: StripeEvent, *, tenant: str | None, list_refunds: RefundLister, retrieve_intent: IntentRetriever
) -> list[ProviderUpdate]:
    """The reports of ``event``, delivered at ``tenant``'s door, with refunds listed through the API when needed.

    :class:`~paycore.errors.MalformedWebhook` if the event is unreadable;
    :class:`~paycore.errors.PaymentBusy` if Stripe had to be asked and could not be.
    """
    updates = read_event(event)
    if not updates:
        return updates
    intent: dict[str, Any] | None = None
    disputed = disputed_intent(event.type, event.object)
    if disputed is not None:  # a Dispute carries no copy of paycore's metadata: its intent tells whose it is
        intent = await _asked(event, f"retrieving {disputed}", retrieve_intent(disputed))
        return updates if intent is not None and of_paycore_and_tenant(intent.get("metadata"), tenant) else []
    unmarked = unmarked_refund(event) if tenant is not None else None
    if unmarked is not None:  # at a tenant's door, a refund naming no tenant may be another's on a shared account
        intent = await _asked(event, f"retrieving {unmarked}", retrieve_intent(unmarked))
        if intent is not None and not of_paycore_and_tenant(intent.get("metadata"), tenant):
            return []  # another tenant's or another system's: acknowledged, nothing changes
    intent_id = unlisted_refunds(event, tenant=tenant)
    if intent_id is None:
        intent_id = untrusted_refund(event, tenant=tenant)
        if intent_id is None:
            return updates
        if intent_id != unmarked:  # not asked about above (asked, Stripe may have none: asked once)
            intent = await _asked(event, f"retrieving {intent_id}", retrieve_intent(intent_id))
        if intent is None or not of_paycore_and_tenant(intent.get("metadata"), tenant):
            return updates  # another system's or another tenant's intent: not found here
    refunds = await _asked(event, f"listing the refunds of {intent_id}", list_refunds(intent_id))
    return read_event(event, refunds=refunds)


async def _asked(event: StripeEvent, what: str, answer: Awaitable[T]) -> T:
    """``answer``, awaited; a provider error refuses the delivery with :class:`~paycore.errors.PaymentBusy`."""
    try:
        return await answer
    except ProviderError as error:
        raise PaymentBusy(
            f"Stripe event {event.id} ({event.type}) cannot be read without asking Stripe (whose payment a dispute is, "
            f"every refund of an intent), and {what} failed: {error}; deliver it again later"
        ) from None
