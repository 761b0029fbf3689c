"""The Stripe SDK's async client over httpx, as the provider uses it.

:func:`build_client` makes a :class:`stripe.StripeClient` whose HTTP client is
the SDK's :class:`stripe.HTTPXClient` (so every ``*_async`` call runs on
httpx, under asyncio and trio alike). ``transport`` sends its requests through
an httpx transport of the caller's instead of the network: the in-process mode,
``httpx.ASGITransport(app=StripeSimulator(...))``.

The SDK retries a failed request itself and raises only the last attempt's
error; the HTTP client records every attempt (:func:`~paycore_stripe.calls.record_attempt`)
so that :func:`~paycore_stripe.calls.ask` knows whether an earlier one may have
reached Stripe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import stripe

from paycore_stripe.calls import record_attempt

__all__ = ["RecordingHTTPXClient", "TransportHTTPXClient", "build_client"]


class RecordingHTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, recording how each attempt of a request ended (see :mod:`paycore_stripe.calls`)."""

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        """One attempt (the SDK's retry loop calls this once per attempt), recorded whatever its ending."""
        try:
            answer = await super().request_async(method, url, headers, post_data)
        except BaseException as error:  # the SDK's APIConnectionError wraps httpx's; a cancellation may come mid-way
            record_attempt(method, error.__cause__ if isinstance(error, stripe.APIConnectionError) else error)
            raise
        record_attempt(method, None)
        return answer


class TransportHTTPXClient(RecordingHTTPXClient):
    """The SDK's httpx client, sending through ``transport`` (an ASGI app in tests and demos)."""

    def __init__(self, transport: httpx.AsyncBaseTransport, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        # The SDK builds its own httpx.AsyncClient; this one goes through the given transport.
        self._client_async = httpx.AsyncClient(transport=transport)


def build_client(
    api_key: str,
    *,
    timeout: float,
    max_network_retries: int,
    api_base: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    stripe_account: str | None = None,
) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """A Stripe client and its HTTP client (the caller closes the latter with ``close_async``)."""
    http_client = (
        RecordingHTTPXClient(timeout=timeout) if transport is None else TransportHTTPXClient(transport, timeout=timeout)
    )
    client = stripe.StripeClient(
        api_key,
        stripe_account=stripe_account,
        base_addresses=None if api_base is None else {"api": api_base},
        max_network_retries=max_network_retries,
        http_client=http_client,
    )
    return client, http_client
