"""``WaveClient``: calls to Wave's API, each ending in an answer or in an error that says whether it was sent.

* The request never left (connection refused, DNS failure, a connect timeout, or it could not be built:
  a header value httpx cannot encode): :class:`~paycore.errors.ProviderNotSent`.
* Wave refused it before doing anything (a documented ``4xx`` error code:
  ``request-validation-error``, ``invalid-auth``, ``api-key-revoked``,
  ``unauthorized-wallet``, ``rate-limit-exceeded``...): :class:`WaveRefused`,
  a ``ProviderNotSent`` that carries Wave's status and code.
* Sent, no usable answer (a read timeout, a reset connection, a ``5xx`` such
  as ``internal-server-error`` or ``service-unavailable``, a body that is not
  JSON or cannot be decoded, or a status that is neither ``2xx`` nor an error, such as a redirect
  from a proxy or an ``http://`` address, which httpx does not follow):
  :class:`~paycore.errors.ProviderOutcomeUnknown`.

The API key goes in the ``Authorization`` header only; no message quotes it. Wave's own error text is
quoted (it helps an operator), with every occurrence of a secret the client holds shown as ``***``: a
gateway may echo the key it was shown ("API key ... was revoked"), and the phone of the customer a request is
about (``personal``) is shown as ``***`` however the answer writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import anyio
import httpx

from paycore.errors import MalformedWebhook, ProviderNotSent, ProviderOutcomeUnknown
from paycore.secrets import Secret, hide_phones, hide_secrets, redact_url
from paycore.wire import error_code, load_json_object

__all__ = ["DEFAULT_BASE_URL", "WaveClient", "WaveRefused"]

DEFAULT_BASE_URL: Final = "https://api.wave.com"
"""Where Wave's API lives."""
_NOT_SENT_ERRORS: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
    httpx.ProxyError,
)


_PERSONAL_FIELDS = ("restrict_payer_mobile",)
"""The fields of a request to Wave that hold a customer's personal data (their phone)."""


def _personal(body: Mapping[str, Any] | None, known: Iterable[str]) -> tuple[str, ...]:
    """The customer's personal data in ``body`` and ``known`` (the phone of the payment a request is about), to be
    hidden from any error text Wave answers it with."""
    found = [value for field in _PERSONAL_FIELDS if body is not None and isinstance(value := body.get(field), str)]
    return tuple(value for value in (*found, *known) if value)


class WaveRefused(ProviderNotSent):
    """Wave answered a ``4xx``: it did nothing with the request (``status``, Wave's error ``code``).

    ``code`` is the code as Wave wrote it when it is shaped as Wave's codes are (``checkout-refund-failed``), to
    compare with Wave's documented codes; the message shows ``shown_code`` (by default ``code``), the code with
    every secret and personal datum hidden."""

    def __init__(self, status: int, code: str, message: str, request: str, *, shown_code: str | None = None) -> None:
        self.status = status
        self.code = code
        self.wave_message = message
        shown = code if shown_code is None else shown_code
        detail = f": {message}" if message else ""
        super().__init__(f"Wave refused {request} with {status} {shown or 'without an error code'}{detail}")


class WaveClient:
    """An :mod:`httpx` client of Wave's API (asyncio and trio alike), one per provider instance."""

    def __init__(
        self,
        api_key: Secret,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        hidden: Iterable[Secret] = (),
    ) -> None:
        """``hidden``: other secrets (the webhook secrets) that Wave's error text must never carry into a message."""
        self._api_key = api_key
        self._hidden = (api_key, *hidden)
        self._base_url = Secret(base_url)  # its query may carry a token: shown by base_url only with it hidden
        self.timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"<WaveClient base_url={self.base_url!r}>"

    @property
    def base_url(self) -> str:
        """Where Wave's API is reached, a password or a token in it shown as ``***``."""
        return redact_url(self._base_url.reveal())

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url.reveal(),
                headers={"authorization": f"Bearer {self._api_key.reveal()}", "user-agent": "paycore-wave"},
                timeout=self.timeout,
                transport=self._transport,
            )
        return self._client

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        personal: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """One API call: Wave's JSON answer, ``None`` for an empty ``2xx`` body, or an error (see the module).

        ``personal``: what of the customer the call is about (their phone) Wave's error text may echo, though the
        request does not carry it (an expire, a refund or a retrieve of their session); no error quotes it."""
        what = f"{method} {path}"
        try:
            client = self._http()
            request = client.build_request(method, path, json=body, params=params)
        except Exception as error:
            # Raised while the request was built, before anything was sent (a header value httpx cannot encode,
            # a body it cannot write): Wave saw nothing. The error's name only: its text, and the error itself,
            # may hold a header (the API key).
            raise ProviderNotSent(f"the request {what} to Wave could not be built: {type(error).__name__}") from None
        try:
            # An in-process transport ignores httpx's timeouts: the call is bounded here too.
            with anyio.fail_after(self.timeout + 1.0):
                response = await client.send(request)
        except _NOT_SENT_ERRORS as error:
            raise ProviderNotSent(f"Wave at {self.base_url} not reached for {what}: {type(error).__name__}") from error
        except (httpx.TimeoutException, TimeoutError) as error:
            raise ProviderOutcomeUnknown(f"Wave did not answer {what} within {self.timeout:g}s") from error
        except httpx.TransportError as error:
            raise ProviderOutcomeUnknown(
                f"the connection to Wave failed during {what}: {type(error).__name__}"
            ) from error
        except httpx.RequestError as error:
            # Sent, and its answer could not be read (a body its Content-Encoding does not decode): unknown.
            unread = f"Wave's answer to {what} could not be read: {type(error).__name__}"
            raise ProviderOutcomeUnknown(unread) from error
        personal = _personal(body, personal)
        if response.status_code >= 500:
            code = self._quoted(_error(response), "code", 100, personal)
            raise ProviderOutcomeUnknown(f"Wave answered {response.status_code} {code} to {what}".rstrip())
        if response.status_code >= 400:
            answer = _error(response)
            shown = self._quoted(answer, "code", 100, personal)
            message = self._quoted(answer, "message", 300, personal)
            code = error_code(answer.get("code"), shown)  # compared as Wave wrote it, shown hidden
            raise WaveRefused(response.status_code, code, message, what, shown_code=shown)
        if not 200 <= response.status_code < 300:
            # A redirect (httpx follows none) or another answer that is not Wave's: a proxy or an http://
            # base_url answered, and whether the call went on to Wave is not known. Never read as success.
            where = hide_secrets(response.headers.get("location", ""), self._hidden)[:200]
            raise ProviderOutcomeUnknown(
                f"Wave answered {response.status_code} to {what}, not an answer of its API"
                + (f" (sent on to {where!r}: is base_url Wave's https address?)" if where else "")
            )
        if not response.content.strip():
            return None
        try:
            return load_json_object(response.content, what=f"Wave's answer to {what}")
        except MalformedWebhook as error:
            raise ProviderOutcomeUnknown(
                f"Wave answered {response.status_code} to {what}, unreadable: {error}"
            ) from None

    def _quoted(self, error: Mapping[str, Any], field: str, limit: int, personal: tuple[str, ...] = ()) -> str:
        """A text ``field`` of Wave's error answer, at most ``limit`` characters, with no secret of this client
        and none of the ``personal`` data of the customer (an error may echo what it refused)."""
        value = error.get(field)
        if not isinstance(value, str):
            return ""
        return hide_phones(hide_secrets(value, self._hidden), personal)[:limit]

    async def aclose(self) -> None:
        """Close the connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _error(response: httpx.Response) -> dict[str, Any]:
    """Wave's error object: ``{"code": ..., "message": ...}`` (also read when nested under ``error``)."""
    try:
        data = load_json_object(response.content, what="Wave's error answer")
    except MalformedWebhook:
        return {}
    nested = data.get("error")
    return nested if isinstance(nested, dict) else data
