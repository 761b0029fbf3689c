"""``StripeState``: what the provider keeps on a payment for its later calls."""

from __future__ import annotations

from typing import Literal

from attrs import frozen

__all__ = ["Mode", "StripeState"]

Mode = Literal["payment_intent", "checkout"]
"""How the customer pays: with Stripe.js on the merchant's page, or on Stripe's hosted Checkout page."""


@frozen
class StripeState:
    """The Stripe objects of one payment (reported in ``ProviderUpdate.provider_state``).

    ``mode`` is the mode the payment was created in (a provider's mode may
    change later; its payments keep theirs). ``session_id`` is the Checkout
    Session (checkout mode), ``payment_intent_id`` the PaymentIntent, known at
    once in ``payment_intent`` mode and once the customer pays in ``checkout`` mode.
    """

    mode: Mode = "payment_intent"
    payment_intent_id: str | None = None
    session_id: str | None = None
