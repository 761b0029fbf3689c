"""``StripeProvider``: Stripe PaymentIntents (or Checkout Sessions) as a paycore provider.

It calls Stripe with the official SDK's async client over httpx, with an
idempotency key derived from paycore's ids on every mutating request (see
:func:`_idempotency_key`), verifies each webhook with the SDK's
``Stripe-Signature`` check before reading it, and reports what Stripe said
(see :mod:`paycore_stripe.reports`).

Settings (``[providers.card]`` with ``type = "stripe"``):

``api_key``
    The secret key (``sk_live_...``, ``sk_test_...``) or a restricted key (``rk_...``).
``webhook_secret``
    The endpoint's signing secret (``whsec_...``); during a rotation, the old
    and the new one separated by a space.
``mode``
    ``payment_intent`` (the default: the customer confirms with Stripe.js on the
    merchant's page; the next action carries the client secret) or
    ``checkout`` (the customer pays on Stripe's hosted Checkout page; the next
    action is a redirect to it).
``success_url``, ``cancel_url``
    Checkout mode: where Stripe sends the customer back. ``success_url``
    defaults to the payment's ``return_url``, ``cancel_url`` to ``success_url``.
``payment_method_types``
    Optional list (``["card"]``); by default Stripe offers the payment methods
    enabled in the Dashboard.
``stripe_account``
    Optional connected account id (``acct_...``) to act for (Stripe Connect).
``timeout``
    Seconds per HTTP request (default 30); ``max_network_retries`` the SDK's
    retries of a failed connection or a 5xx, 0 to 5 (or its digits, from the
    environment; default 2: safe, every mutating request carries an
    idempotency key); ``webhook_tolerance`` seconds of
    clock skew a webhook may have (default 300).
``api_base``, ``simulator``
    Testing: another API address (a :class:`~paycore_stripe.simulator.StripeSimulator`
    served on loopback), or a simulator object reached in process.

Each setting is checked when the flow is built: a URL that is not an absolute http(s) URL,
an account id that is not ``acct_...``, or any value of the wrong type is a
:class:`~paycore.errors.ConfigurationError` naming the setting (never showing a secret).
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Final, TypeVar, cast

import httpx
import stripe
from attrs import evolve

from paycore.errors import (
    ConfigurationError,
    MoneyError,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    ValidationError,
)
from paycore.logs import guarded_logger
from paycore.money import Money
from paycore.providers import Capabilities, Provider, ProviderContext
from paycore.records import NextAction, Payment, ProviderUpdate, Refund, RefundUpdate
from paycore.secrets import Secret, shown_setting
from paycore.status import Outcome
from paycore.wire import InvalidReport, is_id, shown
from paycore_stripe.calls import NotAtStripe, answer_dict, ask
from paycore_stripe.event_refunds import webhook_reports
from paycore_stripe.reports import (
    PAYMENT_ID_KEY,
    REFUND_ID_KEY,
    TENANT_KEY,
    client_secret_action,
    read_checkout,
    read_intent,
    read_refund,
    read_session,
)
from paycore_stripe.state import Mode, StripeState
from paycore_stripe.units import stripe_currency, to_stripe
from paycore_stripe.webhooks import ANOTHER_SYSTEM, ANOTHER_TENANT, DEFAULT_TOLERANCE, elsewhere, load_event, verify

__all__ = ["StripeProvider"]

T = TypeVar("T")
IN_PROCESS_API_BASE: Final = "http://stripe-simulator.invalid"
_MODES: Final = ("payment_intent", "checkout")
_KEY_PREFIXES: Final = ("sk_", "rk_")
_LIVE_KEY_PREFIXES: Final = ("sk_live_", "rk_live_")
_TEST_KEY_PREFIXES: Final = ("sk_test_", "rk_test_")

log = guarded_logger("paycore_stripe")
_ACCOUNT_ID: Final = re.compile(r"acct_[A-Za-z0-9]{1,250}")
_LOOKBACK_SECONDS: Final = 600
"""How long before a payment's creation, and after its create could last reach Stripe, a lost create is searched
for (the clocks of paycore and of Stripe may differ by that much)."""
_MAX_LOOKUP_PAGES: Final = 20
_MOST_RETRIES: Final = 5
"""The most retries ``max_network_retries`` may ask of the SDK."""
_AWAITING_CUSTOMER: Final = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
"""The PaymentIntent statuses in which it waits for the customer to confirm it with Stripe.js."""


class StripeProvider(Provider):
    """Stripe: automatic or manual capture, partial capture, cancel, partial refunds, webhooks, polling."""

    name: ClassVar[str] = "stripe"
    capabilities: ClassVar[Capabilities] = Capabilities(
        authorize_capture=True,
        partial_capture=True,
        cancel=True,
        refund=True,
        partial_refund=True,
        webhooks=True,
        polling=True,
        polls_report_refunds=True,
        one_id_per_kind=True,  # one Checkout Session (cs_), one PaymentIntent (pi_) per payment
    )
    secret_settings: ClassVar[frozenset[str]] = frozenset({"api_key", "webhook_secret"})
    settings_names: ClassVar[frozenset[str] | None] = frozenset(
        {
            "api_base",
            "api_key",
            "cancel_url",
            "max_network_retries",
            "mode",
            "payment_method_types",
            "simulator",
            "stripe_account",
            "success_url",
            "timeout",
            "webhook_secret",
            "webhook_tolerance",
        }
    )
    state_type: ClassVar[type[Any] | None] = StripeState

    def __init__(self, context: ProviderContext) -> None:
        super().__init__(context)
        settings = context.settings
        where = f"provider {context.code!r} (stripe)"
        api_key = settings.credential("api_key")
        if not api_key.startswith(_KEY_PREFIXES):
            raise ConfigurationError(f"{where}: api_key must be a secret key (sk_...) or a restricted key (rk_...)")
        secrets = settings.secret("webhook_secret").split()
        if not secrets or not all(s.startswith("whsec_") for s in secrets):
            raise ConfigurationError(f"{where}: webhook_secret must be the endpoint's signing secret (whsec_...)")
        mode = settings.get("mode", "payment_intent")
        if mode not in _MODES:
            raise ConfigurationError(f"{where}: mode must be one of {_MODES}, not {shown_setting(mode)}")
        self.mode: Mode = mode
        self.success_url: str | None = settings.url("success_url")
        self.cancel_url: str | None = settings.url("cancel_url")
        self.payment_method_types: list[str] | None = _method_types(
            settings.get("payment_method_types"), f"{where}: payment_method_types"
        )
        self.timeout = settings.seconds("timeout", 30.0, most=3600)
        self.webhook_tolerance = settings.seconds("webhook_tolerance", DEFAULT_TOLERANCE, most=3600)
        self.max_network_retries = _retries(settings.get("max_network_retries", 2), f"{where}: max_network_retries")
        simulator = settings.get("simulator")
        if simulator is not None and not callable(simulator):
            raise ConfigurationError(
                f"{where}: simulator must be an ASGI app such as a StripeSimulator, "
                f"not a value of type {type(simulator).__name__}"
            )
        self._transport: httpx.AsyncBaseTransport | None = (
            None if simulator is None else httpx.ASGITransport(app=simulator)
        )
        api_base = settings.url("api_base")
        self._api_base: str | None = IN_PROCESS_API_BASE if simulator is not None else api_base
        self._stripe_account: str | None = _optional_account(settings.get("stripe_account"), f"{where}: stripe_account")
        # Kept as Secret: shown as '***' by anything that prints the provider's attributes (vars(), a debugger).
        self._secrets = tuple(Secret(secret) for secret in secrets)
        self._api_key = Secret(api_key)
        self._livemode: bool | None = _key_livemode(api_key)
        """Whether the key is a live-mode one (``None``: its prefix does not say): events of the other mode are not
        this provider's (see :func:`~paycore_stripe.webhooks.elsewhere`)."""
        self._client: stripe.StripeClient | None = None
        self._http: stripe.HTTPXClient | None = None

    # -- the SDK -----------------------------------------------------------------------------

    def _stripe(self) -> stripe.StripeClient:
        if self._client is None:
            from paycore_stripe.client import build_client

            self._client, self._http = build_client(
                self._api_key.reveal(),
                timeout=self.timeout,
                max_network_retries=self.max_network_retries,
                api_base=self._api_base,
                transport=self._transport,
                stripe_account=self._stripe_account,
            )
        return self._client

    @property
    def _deadline(self) -> float:
        """The longest a call may take, its retries and their back-off included."""
        return self.timeout * (self.max_network_retries + 1) + 2.0 * self.max_network_retries

    async def _ask(
        self, operation: str, call: Callable[[stripe.StripeClient], Awaitable[T]], *, declines: bool = False
    ) -> T:
        client = self._stripe()
        return await ask(operation, lambda: call(client), deadline=self._deadline, declines=declines)

    async def aclose(self) -> None:
        """Close the SDK's HTTP client."""
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    # -- checks before anything is stored --------------------------------------------------

    async def check_payment(self, payment: Payment) -> None:
        """Refuse a currency or an amount Stripe cannot take, and a checkout without a return address."""
        to_stripe(payment.amount)
        if self.mode == "checkout" and not (self.success_url or payment.return_url):
            raise ValidationError(
                f"provider {self.code!r} (stripe, checkout mode) needs a return_url for the payment "
                "(or a success_url setting): Stripe sends the customer back there"
            )

    async def check_capture(self, payment: Payment, amount: Money) -> None:
        """Refuse a capture amount Stripe cannot take (``1.235 KWD``) before the call is written down."""
        to_stripe(amount)

    async def check_refund(self, payment: Payment, refund: Refund) -> None:
        """Refuse a refund amount Stripe cannot take (``0.125 KWD``)."""
        to_stripe(refund.amount)

    # -- operations --------------------------------------------------------------------------

    async def initiate(self, payment: Payment) -> ProviderUpdate:
        """Create the PaymentIntent (or the Checkout Session) with an idempotency key of the payment."""
        options: stripe.RequestOptions = {"idempotency_key": f"paycore-{payment.id}-create"}
        if self.mode == "checkout":
            params = self._session_params(payment)
            session = await self._ask(
                "creating a Checkout Session", lambda c: c.v1.checkout.sessions.create_async(params, options)
            )
            return _checked(lambda: self._created_session(answer_dict(session, "a session create")))
        try:
            intent = await self._ask(
                "creating a PaymentIntent",
                lambda c: c.v1.payment_intents.create_async(self._intent_params(payment), options),
                declines=True,
            )
        except stripe.CardError as error:
            return _declined(error)
        data = answer_dict(intent, "a PaymentIntent create")
        return _checked(
            lambda: _with_action(
                read_intent(data, state=StripeState(payment_intent_id=data.get("id"))), client_secret_action(data)
            )
        )

    async def capture(self, payment: Payment, amount: Money) -> ProviderUpdate:
        """Capture ``amount`` of the authorized PaymentIntent (Stripe releases the rest)."""
        intent_id = await self._intent_id(payment)
        units = to_stripe(amount)
        options = _idempotency_key(payment, f"capture-{units}")
        try:
            intent = await self._ask(  # a decline refuses the capture alone: the authorization stands...
                "capturing a PaymentIntent",
                lambda c: c.v1.payment_intents.capture_async(intent_id, {"amount_to_capture": units}, options),
            )
        except ProviderNotSent as refused:  # ...unless the intent the refusal names was canceled (its hold ended)
            canceled = _canceled_intent(refused.__context__, intent_id)
            if canceled is None:
                raise
            return canceled
        return _checked(lambda: read_intent(answer_dict(intent, "a capture")))

    async def cancel(self, payment: Payment) -> ProviderUpdate:
        """Cancel the PaymentIntent; in checkout mode, expire the session while it is open.

        Stripe cancels a Checkout Session's PaymentIntent directly only when it is
        ``requires_capture``; an open session (with no intent yet, or one a declined
        card left ``requires_payment_method``) is expired instead, and Stripe
        cancels its intent (see :meth:`_cancel_checkout`).
        """
        state = self._state_of(payment)
        if state.mode == "checkout" and state.session_id is not None:
            return await self._cancel_checkout(payment, state.session_id)
        return await self._cancel_intent(payment, await self._intent_id(payment))

    async def _cancel_checkout(self, payment: Payment, session_id: str) -> ProviderUpdate:
        """Retrieve the session (its intent expanded), then expire it, or cancel its authorized intent.

        An open session is expired (reported ``CANCELED``); an expired one is
        reported as it is. A complete session's intent is canceled only when it is
        ``requires_capture``: in any other status Stripe refuses, so nothing is sent.
        """
        answer = await self._ask(
            "retrieving a Checkout Session",
            lambda c: c.v1.checkout.sessions.retrieve_async(session_id, {"expand": ["payment_intent"]}),
        )
        session = answer_dict(answer, "a session retrieve")
        update = _checked(read_session, session)
        status = session.get("status")
        if status == "open":
            return await self._expire_session(payment, session_id)
        if status != "complete":
            return update
        intent = session.get("payment_intent")
        intent_status = intent.get("status") if isinstance(intent, Mapping) else None
        if not update.references or intent_status != "requires_capture":
            raise ProviderNotSent(
                f"payment {payment.id}: its Checkout Session is complete and its PaymentIntent is "
                f"{shown(intent_status)}; Stripe cancels it only while requires_capture"
            )
        return await self._cancel_intent(payment, update.references[0])

    async def _expire_session(self, payment: Payment, session_id: str) -> ProviderUpdate:
        """Expire the open session: the payment is ``CANCELED`` (Stripe cancels the session's intent, if any)."""
        expiry = _idempotency_key(payment, "expire")
        session = await self._ask(
            "expiring a Checkout Session",
            lambda c: c.v1.checkout.sessions.expire_async(session_id, None, expiry),
        )
        update = _checked(lambda: read_session(answer_dict(session, "a session expiry")))
        return ProviderUpdate(outcome=Outcome.CANCELED) if update.outcome is Outcome.EXPIRED else update

    async def _cancel_intent(self, payment: Payment, intent_id: str) -> ProviderUpdate:
        """Cancel the PaymentIntent ``intent_id`` (void its authorization)."""
        options = _idempotency_key(payment, "cancel")
        intent = await self._ask(
            "canceling a PaymentIntent", lambda c: c.v1.payment_intents.cancel_async(intent_id, None, options)
        )
        return _checked(lambda: read_intent(answer_dict(intent, "a cancel")))

    async def refund(self, payment: Payment, refund: Refund) -> RefundUpdate:
        """Refund ``refund.amount`` of the PaymentIntent; paycore's ids travel in the refund's metadata."""
        intent_id = await self._intent_id(payment)
        params: stripe.params.RefundCreateParams = {
            "payment_intent": intent_id,
            "amount": to_stripe(refund.amount),
            "metadata": {PAYMENT_ID_KEY: payment.id, REFUND_ID_KEY: refund.id, "paycore_reason": refund.reason[:500]},
        }
        options: stripe.RequestOptions = {"idempotency_key": f"paycore-{refund.id}-refund"}
        answer = await self._ask("creating a Refund", lambda c: c.v1.refunds.create_async(params, options))
        try:
            return read_refund(answer_dict(answer, "a refund create"))
        except (InvalidReport, MoneyError) as error:
            raise ProviderOutcomeUnknown(f"Stripe's answer to a refund is unreadable: {error}") from None

    async def check_status(self, payment: Payment) -> ProviderUpdate:
        """Retrieve the PaymentIntent (and every refund of it), or the session first in checkout mode.

        A payment whose create was lost (no Stripe id known) is looked up among
        the intents or sessions created since; none found is ``NOT_FOUND``. An
        intent or a session still awaiting the customer carries the customer's
        next action as the create's answer does (the client secret; a redirect to
        the session's page), so that a customer whose create answer was lost can
        still be sent to pay.
        """
        state = self.state(payment)
        if state is None:
            return await self._lost_create(payment)
        session: dict[str, Any] | None = None
        intent_id = state.payment_intent_id
        if state.mode == "checkout" and state.session_id is not None:
            try:
                answer = await self._ask(
                    "retrieving a Checkout Session",
                    lambda c: c.v1.checkout.sessions.retrieve_async(state.session_id),
                )
            except NotAtStripe:
                return ProviderUpdate(outcome=Outcome.NOT_FOUND, message="Stripe has no such Checkout Session")
            session = answer_dict(answer, "a session retrieve")
            session_update = _checked(_polled_session, session)
            intent_id = intent_id or (session_update.references[0] if session_update.references else None)
            if intent_id is None:
                return session_update
        if intent_id is None:
            return ProviderUpdate(outcome=Outcome.NOT_FOUND, message="no Stripe object is known for this payment")
        try:
            intent = await self._ask(
                "retrieving a PaymentIntent", lambda c: c.v1.payment_intents.retrieve_async(intent_id)
            )
        except NotAtStripe:
            return ProviderUpdate(outcome=Outcome.NOT_FOUND, message="Stripe has no such PaymentIntent")
        refunds = await self._refunds_of(intent_id)
        intent_data = answer_dict(intent, "a retrieve")
        if session is None:
            return _checked(_polled_intent, intent_data, refunds=refunds)
        return _checked(_polled_checkout, session, intent_data, refunds=refunds)

    # -- webhooks ----------------------------------------------------------------------------

    async def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Refuse a delivery whose ``Stripe-Signature`` is missing, stale or made with another secret."""
        verify(body, headers, secrets=[secret.reveal() for secret in self._secrets], tolerance=self.webhook_tolerance)

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> Sequence[ProviderUpdate]:
        """The reports of a verified event (see :mod:`paycore_stripe.webhooks`).

        An event that does not tell every refund of its PaymentIntent (a
        ``charge.refunded``: from API version ``2022-11-15`` on its charge lists
        none), or that is rendered before ``2025-03-31.basil`` and shows a refund
        paycore did not make (it may release uncaptured money), reports every
        refund of the intent, listed through the API as a poll lists them (see
        :mod:`paycore_stripe.event_refunds`). When Stripe cannot be asked, the
        delivery is refused with :class:`~paycore.errors.PaymentBusy` (the
        webhook endpoint answers 503) for Stripe to send it again: it is never
        read as refunding nothing.
        """
        event = load_event(body)
        why = elsewhere(event, livemode=self._livemode, account=self._stripe_account, tenant=self.context.tenant)
        if why is not None:
            if why not in (ANOTHER_TENANT, ANOTHER_SYSTEM):  # every event of an account reaches each endpoint
                log.info("Stripe event %s (%s) acknowledged, not read: %s", event.id, event.type, why)
            return []
        return await webhook_reports(
            event, tenant=self.context.tenant, list_refunds=self._refunds_of, retrieve_intent=self._intent_if_any
        )

    # -- helpers -----------------------------------------------------------------------------

    def _metadata(self, payment: Payment) -> dict[str, str]:
        metadata = {PAYMENT_ID_KEY: payment.id, "paycore_order_id": payment.order_id[:500]}
        if payment.tenant is not None:  # whose payment it is, for restaurants sharing one Stripe account
            metadata[TENANT_KEY] = payment.tenant
        return metadata

    def _intent_params(self, payment: Payment) -> stripe.params.PaymentIntentCreateParams:
        params: stripe.params.PaymentIntentCreateParams = {
            "amount": to_stripe(payment.amount),
            "currency": stripe_currency(payment.currency),
            "capture_method": "automatic" if payment.capture else "manual",
            "metadata": self._metadata(payment),
        }
        if self.payment_method_types is not None:
            params["allowed_payment_method_types"] = cast(Any, self.payment_method_types)
        else:
            params["automatic_payment_methods"] = {"enabled": True}
        if payment.description:
            params["description"] = payment.description[:1000]
        if payment.customer is not None and payment.customer.email:
            params["receipt_email"] = payment.customer.email
        return params

    def _session_params(self, payment: Payment) -> stripe.params.checkout.SessionCreateParams:
        success_url = self.success_url or payment.return_url or ""
        name = payment.description or f"Order {payment.order_id}"
        params: stripe.params.checkout.SessionCreateParams = {
            "mode": "payment",
            "success_url": success_url,
            "cancel_url": self.cancel_url or success_url,
            "client_reference_id": payment.id,
            "metadata": self._metadata(payment),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": stripe_currency(payment.currency),
                        "unit_amount": to_stripe(payment.amount),
                        "product_data": {"name": name[:250]},
                    },
                }
            ],
            "payment_intent_data": {
                "capture_method": "automatic" if payment.capture else "manual",
                "metadata": self._metadata(payment),
            },
        }
        if self.payment_method_types is not None:
            params["allowed_payment_method_types"] = cast(Any, self.payment_method_types)
        if payment.customer is not None and payment.customer.email:
            params["customer_email"] = payment.customer.email
        return params

    def _created_session(self, session: dict[str, Any]) -> ProviderUpdate:
        update = read_session(session, what="checkout.session")
        url = session.get("url")
        return ProviderUpdate(
            outcome=update.outcome,
            external_id=update.external_id,
            references=update.references,
            provider_state=update.provider_state,
            next_action=NextAction(kind="redirect", url=url) if update.outcome is Outcome.PENDING else None,
        )

    def _state_of(self, payment: Payment) -> StripeState:
        state = self.state(payment)
        return state if isinstance(state, StripeState) else StripeState(mode=self.mode)

    async def _intent_id(self, payment: Payment) -> str:
        """The payment's PaymentIntent id: kept in its state, among its references, or its session's."""
        state = self._state_of(payment)
        if state.payment_intent_id:
            return state.payment_intent_id
        known = next((r for r in payment.references if r.startswith("pi_")), None)
        if known is not None:
            return known
        found = await self._session_intent(state.session_id) if state.session_id else None
        if found is None:
            raise ProviderNotSent(f"payment {payment.id} has no Stripe PaymentIntent yet: the customer has not paid")
        return found

    async def _session_intent(self, session_id: str) -> str | None:
        session = await self._ask(
            "retrieving a Checkout Session", lambda c: c.v1.checkout.sessions.retrieve_async(session_id)
        )
        update = _checked(lambda: read_session(answer_dict(session, "a session retrieve")))
        return update.references[0] if update.references else None

    async def _intent_if_any(self, intent_id: str) -> dict[str, Any] | None:
        """The PaymentIntent ``intent_id`` as Stripe has it; ``None`` when Stripe has no such intent."""
        try:
            intent = await self._ask(
                "retrieving a PaymentIntent", lambda c: c.v1.payment_intents.retrieve_async(intent_id)
            )
        except NotAtStripe:
            return None
        return answer_dict(intent, "a retrieve")

    async def _refund_page(self, params: stripe.params.RefundListParams) -> Any:
        return await self._ask("listing Refunds", lambda c: c.v1.refunds.list_async(params))

    async def _refunds_of(self, intent_id: str) -> list[dict[str, Any]]:
        """Every refund of the intent, page after page (so a refund not listed never reached Stripe)."""
        refunds: list[dict[str, Any]] = []
        params: stripe.params.RefundListParams = {"payment_intent": intent_id, "limit": 100}
        while True:
            page = await self._refund_page(params)
            data = answer_dict(page, "a refund list")
            items = data.get("data")
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ProviderOutcomeUnknown("Stripe's refund list has no 'data' list of refunds")
            refunds.extend(items)
            if data.get("has_more") is not True or not items:
                return refunds
            params = {**params, "starting_after": str(items[-1].get("id"))}

    async def _list_page(self, *, checkout: bool, params: dict[str, Any]) -> Any:
        """One page of the sessions (``checkout``) or the intents matching ``params``."""
        if checkout:
            sessions = cast(stripe.params.checkout.SessionListParams, params)
            return await self._ask("listing Checkout Sessions", lambda c: c.v1.checkout.sessions.list_async(sessions))
        intents = cast(stripe.params.PaymentIntentListParams, params)
        return await self._ask("listing PaymentIntents", lambda c: c.v1.payment_intents.list_async(intents))

    async def _lost_create(self, payment: Payment) -> ProviderUpdate:
        """Look for the intent (or session) a lost create may have made, by paycore's id in its metadata.

        Only among those Stripe made while the create could reach it: from the payment's creation until its
        call's lease ran out (no request of it travels later), or its last write when it carries no call, each
        widened by :data:`_LOOKBACK_SECONDS`. Stripe lists newest first: unbounded, the window would grow with
        every object the account makes, until the one sought lay past the last page read.
        """
        call = payment.pending_call
        last = call.lease_until if call is not None else payment.updated_at
        created = {
            "gte": math.floor(payment.created_at.timestamp()) - _LOOKBACK_SECONDS,
            "lte": math.ceil(max(last, payment.created_at).timestamp()) + _LOOKBACK_SECONDS,
        }
        checkout = self.mode == "checkout"
        starting_after: str | None = None
        for _ in range(_MAX_LOOKUP_PAGES):
            params: dict[str, Any] = {"created": created, "limit": 100}
            if starting_after is not None:
                params["starting_after"] = starting_after
            page = await self._list_page(checkout=checkout, params=params)
            data = answer_dict(page, "a list")
            items = data.get("data")
            if not isinstance(items, list):
                raise ProviderOutcomeUnknown("Stripe's list has no 'data' list")
            for item in items:
                metadata = item.get("metadata") if isinstance(item, dict) else None
                if isinstance(metadata, dict) and metadata.get(PAYMENT_ID_KEY) == payment.id:
                    if checkout:
                        return _checked(_polled_session, item)
                    return _checked(_polled_intent, item, state=StripeState(payment_intent_id=item.get("id")))
            if data.get("has_more") is not True or not items:
                return ProviderUpdate(outcome=Outcome.NOT_FOUND, message="Stripe holds nothing for this payment")
            starting_after = items[-1].get("id") if isinstance(items[-1], dict) else None
        raise ProviderOutcomeUnknown(
            f"too many Stripe objects created while the create of {payment.id} could reach Stripe to find it"
        )


def _idempotency_key(payment: Payment, request: str) -> stripe.RequestOptions:
    """The Stripe idempotency key of ``request`` (``cancel``, ``expire``, ``capture-3000``) for ``payment``.

    It names paycore's call being made (``payment.pending_call``) as well as the
    payment: a retry of that call (the same id) is the same request at Stripe,
    and a new call, made only after a definite "not sent", gets a new key, so
    that Stripe neither replays an earlier refusal nor refuses the key as spent
    on another request (an expire refused because the customer just paid, then
    the cancel of the intent). Without a call (the provider used directly), the
    payment's id alone.
    """
    call = payment.pending_call
    made_by = payment.id if call is None else f"{payment.id}-{call.id}"
    return {"idempotency_key": f"paycore-{made_by}-{request}"}


def _key_livemode(api_key: str) -> bool | None:
    """Whether ``api_key`` is a live-mode key, a test-mode one (``False``), or one its prefix does not tell."""
    if api_key.startswith(_LIVE_KEY_PREFIXES):
        return True
    return False if api_key.startswith(_TEST_KEY_PREFIXES) else None


def _optional_account(value: object, what: str) -> str | None:
    """``value`` if it is a connected account id (``acct_...``); ``None`` when unset."""
    if value is None:
        return None
    if not isinstance(value, str) or _ACCOUNT_ID.fullmatch(value) is None:
        quoted = shown_setting(value) if isinstance(value, str) else f"a value of type {type(value).__name__}"
        raise ConfigurationError(f"{what} must be a connected account id such as 'acct_1Nv0FG...', not {quoted}")
    return value


def _retries(value: object, what: str) -> int:
    """``value`` as a number of retries, 0 to 5: a whole number, or its decimal digits (from the environment)."""
    number = value
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 10:  # longer: refused, never converted
        number = int(text)
    if type(number) is not int or not 0 <= number <= _MOST_RETRIES:
        raise ConfigurationError(f"{what} must be 0 to {_MOST_RETRIES}, not {shown_setting(value)}")
    return number


def _method_types(value: object, what: str) -> list[str] | None:
    """``value`` as a list of payment method names (``["card"]``); ``None`` when unset."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value or not all(isinstance(m, str) and is_id(m) for m in value):
        raise ConfigurationError(
            f"{what} must be a non-empty list of names such as ['card'], not {shown_setting(value)}"
        )
    return list(value)


def _checked(build: Callable[..., ProviderUpdate], *args: Any, **kwargs: Any) -> ProviderUpdate:
    """A report built from an API answer; an answer paycore cannot accept leaves the outcome unknown."""
    try:
        return build(*args, **kwargs)
    except (InvalidReport, MoneyError) as error:
        raise ProviderOutcomeUnknown(f"Stripe answered something paycore cannot read: {error}") from None


def _with_action(update: ProviderUpdate, action: NextAction | None) -> ProviderUpdate:
    """``update`` carrying the customer's next ``action`` while the payment is pending; a settled one needs none."""
    if action is None or update.outcome is not Outcome.PENDING:
        return update
    return evolve(update, next_action=action)


def _intent_action(intent: Mapping[str, Any]) -> NextAction | None:
    """The customer's next action on a PaymentIntent found by a poll: its client secret while it awaits them.

    ``None`` once the customer is done with it (processing, authorized, paid or canceled), or when
    Stripe shows no client secret.
    """
    if intent.get("status") not in _AWAITING_CUSTOMER or intent.get("client_secret") is None:
        return None
    return client_secret_action(intent)


def _session_action(session: Mapping[str, Any]) -> NextAction | None:
    """The customer's next action on a Checkout Session found by a poll: a redirect to its page while it is open.

    ``None`` for a complete or expired session (Stripe takes no more payment there), or one without a ``url``.
    """
    url = session.get("url")
    if session.get("status") != "open" or url is None:
        return None
    return NextAction(kind="redirect", url=url)


def _polled_intent(intent: Any, *, refunds: Sequence[Any] = (), state: StripeState | None = None) -> ProviderUpdate:
    """A PaymentIntent found by a poll (:func:`read_intent`), with the next action while it awaits the customer."""
    update = read_intent(intent, refunds=refunds, state=state)
    return _with_action(update, _intent_action(intent))


def _polled_session(session: Any) -> ProviderUpdate:
    """A Checkout Session found by a poll, read (:func:`read_session`), with a redirect to its page while it is open."""
    update = read_session(session)
    return _with_action(update, _session_action(session))


def _polled_checkout(session: Any, intent: Any, *, refunds: Sequence[Any] = ()) -> ProviderUpdate:
    """A Checkout Session and its PaymentIntent found by a poll (:func:`read_checkout`), with a redirect while open.

    An open session whose intent a declined card left ``requires_payment_method`` still takes another card
    on its page: the redirect, never the intent's client secret.
    """
    update = read_checkout(session, intent, refunds=refunds)
    return _with_action(update, _session_action(session))


def _canceled_intent(error: BaseException | None, intent_id: str) -> ProviderUpdate | None:
    """The report of PaymentIntent ``intent_id`` when Stripe's refusal (``error``: a card decline, or
    ``payment_intent_unexpected_state``) names it canceled: a capture refused because its authorization is gone
    (released, or expired after its days) reports so; else ``None``."""
    if not isinstance(error, stripe.CardError | stripe.InvalidRequestError):
        return None
    intent = _error_intent(error)
    if intent is None or intent.get("id") != intent_id or intent.get("status") != "canceled":
        return None
    return _checked(read_intent, intent)


def _error_intent(error: stripe.StripeError) -> dict[str, Any] | None:
    """The PaymentIntent Stripe's error object names (``error.payment_intent``), if it names one."""
    body = error.json_body
    details = body.get("error") if isinstance(body, dict) else None
    intent = details.get("payment_intent") if isinstance(details, dict) else None
    return intent if isinstance(intent, dict) else None


def _declined(error: stripe.CardError) -> ProviderUpdate:
    """A card decline as a definitive ``FAILED`` report (with the intent Stripe made, if it says)."""
    intent = _error_intent(error)
    intent_id = intent.get("id") if intent is not None else None
    reason = ": ".join(str(part) for part in (error.code, getattr(error, "decline_code", None)) if part)
    return _checked(
        lambda: ProviderUpdate(
            outcome=Outcome.FAILED,
            external_id=intent_id if isinstance(intent_id, str) else None,
            message=f"the card was declined ({reason or 'card_error'})",
        )
    )
