"""paycore-stripe: Stripe PaymentIntents and Checkout as a paycore provider, on the official SDK.

:class:`StripeProvider` is the provider (type ``stripe``); :class:`StripeSimulator`
an in-process stand-in for the subset of Stripe's API it uses, which signs its
webhooks as Stripe does, for tests and demos without a network.
"""

from paycore_stripe.provider import StripeProvider
from paycore_stripe.simulator import StripeSimulator
from paycore_stripe.state import StripeState
from paycore_stripe.units import AmountNotAccepted, from_stripe, to_stripe

__all__ = ["AmountNotAccepted", "StripeProvider", "StripeSimulator", "StripeState", "from_stripe", "to_stripe"]
