"""paycore-wave: Wave's Checkout API (XOF mobile money) as a paycore provider.

* :class:`WaveProvider`: checkout sessions, ``Wave-Signature`` webhooks,
  polling, expiry (cancel) and full refunds;
* :class:`WaveSimulator`: the part of Wave's API the provider uses, as an ASGI
  app with a launch page and signed webhooks, for tests and demos without Wave;
* :mod:`paycore_wave.signing`: Wave's webhook signature scheme.
"""

from __future__ import annotations

from paycore_wave.client import WaveClient, WaveRefused
from paycore_wave.provider import MissingRedirectUrl, WaveProvider
from paycore_wave.sessions import WaveSession
from paycore_wave.simulator import WaveSimulator

__all__ = ["MissingRedirectUrl", "WaveClient", "WaveProvider", "WaveRefused", "WaveSession", "WaveSimulator"]
