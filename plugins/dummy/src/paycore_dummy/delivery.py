"""Webhook delivery: sign each attempt, retry with backoff until the merchant answers 2xx."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import anyio
import httpx
from attrs import field, frozen

from paycore.errors import ConfigurationError
from paycore.logs import guarded_logger
from paycore.secrets import redact_url
from paycore.wire import shown
from paycore_dummy.signing import WebhookSecret, signature_headers

__all__ = ["DeliveryAttempt", "GatewayEvent", "RetryPolicy", "WebhookSender"]

logger = guarded_logger("paycore_dummy.delivery")  # a handler that raises never stops a delivery


def _at_least_one(policy: RetryPolicy, attribute: Any, value: object) -> None:
    if type(value) is not int or value < 1:
        raise ConfigurationError(
            f"RetryPolicy {attribute.name} must be at least 1 (delivery attempts in all), not {shown(value)}"
        )


def _seconds(policy: RetryPolicy, attribute: Any, value: object) -> None:
    positive = attribute.name == "timeout"  # no time at all to answer would fail every attempt
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not (value > 0 if positive else value >= 0)
    ):
        more = "more than 0" if positive else "0 or more"
        raise ConfigurationError(
            f"RetryPolicy {attribute.name} must be a number of seconds, {more}, not {shown(value)}"
        )


_LARGEST_DOUBLING: Final = 1023
"""``2.0 ** 1024`` overflows a float: the delay doubles no further (long past any ``max_backoff``)."""


@frozen
class RetryPolicy:
    """How hard the gateway tries: ``attempts`` in all, waiting ``backoff * 2**n`` (capped) between.

    A policy the gateway cannot deliver with (no attempt at all, a delay that is negative, infinite or not a
    number, no time to answer) is refused when built, with a :class:`~paycore.errors.ConfigurationError`."""

    attempts: int = field(default=6, validator=_at_least_one)
    backoff: float = field(default=0.5, validator=_seconds)
    max_backoff: float = field(default=30.0, validator=_seconds)
    timeout: float = field(default=10.0, validator=_seconds)
    """Seconds the merchant has to answer one attempt."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff, self.backoff * 2.0 ** min(attempt - 1, _LARGEST_DOUBLING)))


@frozen
class GatewayEvent:
    """One event the gateway tells the merchant about; its id is the ``webhook-id``."""

    id: str
    type: str
    data: dict[str, Any]
    created_at: datetime

    def body(self) -> bytes:
        """The JSON body delivered (the same bytes on every attempt, the ones signed): compact UTF-8, each
        character as itself, so a payment's metadata weighs in a webhook what it weighed in the request
        (``\\u00e9`` escapes would triple it). A lone surrogate, which UTF-8 cannot carry, stays a ``\\ud800``
        escape, as JSON writes it."""
        return json.dumps(
            {"id": self.id, "type": self.type, "timestamp": self.created_at.isoformat(), "data": self.data},
            ensure_ascii=False,
            separators=(",", ":"),
            sort_keys=True,
        ).encode("utf-8", "backslashreplace")


@frozen
class DeliveryAttempt:
    """What one delivery attempt ended in: the merchant's status, or the error that prevented one."""

    event_id: str
    event_type: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None = None
    at: datetime = field(factory=lambda: datetime.now(UTC))

    @property
    def delivered(self) -> bool:
        """True when the merchant answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Delivers events over an :class:`httpx.AsyncClient` (real HTTP, or an in-process transport)."""

    def __init__(
        self,
        *,
        secrets: Sequence[WebhookSecret],
        policy: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.secrets = tuple(secrets)
        self.policy = policy
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.attempts: list[DeliveryAttempt] = []
        """Every attempt so far, in the order they ended."""

    async def __aenter__(self) -> WebhookSender:
        self._client = httpx.AsyncClient(transport=self._transport, timeout=self.policy.timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def attempt(self, url: str, event: GatewayEvent, attempt: int) -> DeliveryAttempt:
        """Send ``event`` once, signed now; record and return what happened."""
        if self._client is None:
            raise RuntimeError("WebhookSender used outside 'async with'")
        body = event.body()
        headers = signature_headers(body, msg_id=event.id, secrets=self.secrets)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "paycore-dummy-gateway"
        status: int | None = None
        error: str | None = None
        try:
            with anyio.fail_after(self.policy.timeout):
                response = await self._client.post(url, content=body, headers=headers)
            status = response.status_code
        except Exception as exc:  # whatever stops one attempt (a URL httpx refuses too) fails it, not the gateway
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        result = DeliveryAttempt(
            event_id=event.id,
            event_type=event.type,
            url=url,
            attempt=attempt,
            status_code=status,
            error=error,
            at=datetime.now(UTC),
        )
        self.attempts.append(result)
        if not result.delivered:  # a token in the URL's query is not logged (nor in an error quoting the URL)
            outcome = status or redact_url(error or "")
            logger.info("webhook %s (%s) attempt %d to %s: %s", event.id, event.type, attempt, redact_url(url), outcome)
        return result

    async def deliver(self, url: str, event: GatewayEvent) -> bool:
        """Deliver ``event`` until the merchant answers 2xx or the attempts run out."""
        attempts = self.policy.attempts
        for attempt in range(1, attempts + 1):
            if (await self.attempt(url, event, attempt)).delivered:
                return True
            if attempt < attempts:
                await anyio.sleep(self.policy.delay(attempt))
        logger.warning(
            "webhook %s (%s) to %s: gave up after %d attempts", event.id, event.type, redact_url(url), attempts
        )
        return False
