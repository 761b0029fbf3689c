"""paycore plugin module: the ``stripe`` provider type."""

from __future__ import annotations

from paycore.hookspecs import ProviderRegistrar, hookimpl
from paycore_stripe.provider import StripeProvider

__all__ = ["paycore_register_providers"]


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register :class:`StripeProvider` as provider type ``stripe``."""
    register(StripeProvider)
