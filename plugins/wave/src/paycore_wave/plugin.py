"""paycore plugin module: the ``wave`` provider type."""

from __future__ import annotations

from paycore.hookspecs import ProviderRegistrar, hookimpl
from paycore_wave.provider import WaveProvider

__all__ = ["paycore_register_providers"]


@hookimpl
def paycore_register_providers(register: ProviderRegistrar) -> None:
    """Register :class:`~paycore_wave.provider.WaveProvider` as provider type ``wave``."""
    register(WaveProvider)
