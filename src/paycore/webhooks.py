"""``WebhookReceiver``: a provider's delivery, from bytes at the door to a committed change.

The order never varies: the body's type and size are checked, the provider
verifies the signature before anything is parsed, the parsed reports are
applied one payment at a time as reports (:func:`paycore.settling.apply_under_call`)
with the provider's event id recorded in the same write, so a repeated delivery
is a no-op. Every refusal is a :class:`~paycore.errors.PaycoreError` and changes
nothing: a provider that crashes while verifying refuses the delivery
(:class:`InvalidSignature`), one that crashes while parsing cannot read it
(:class:`MalformedWebhook`). A report that must wait for a provider call in
flight is refused with :class:`PaymentBusy` (HTTP 503: the sender delivers it
again later). A report of money moved (authorized, paid, refunded) whose amount
is missing or not positive is :class:`MalformedWebhook` before any report of the
delivery is applied, whatever its signature, from a provider whose notifications
carry their amounts (``Capabilities.webhook_amounts``, the default). From one
whose notifications never do, such a report is confirmed by polling the
provider, or flags the payment when it cannot be polled.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from hashlib import sha256

from attrs import evolve

from paycore import fsm, serialization
from paycore.changes import Change
from paycore.errors import (
    DuplicateExternalId,
    InvalidSignature,
    MalformedWebhook,
    PaycoreError,
    PaymentBusy,
    PaymentNotFound,
    ProviderError,
    UnsupportedOperation,
    WebhookTooLarge,
)
from paycore.logs import guarded_logger
from paycore.money import Money
from paycore.provider_calls import ProviderCalls
from paycore.providers import Provider
from paycore.records import Payment, ProviderUpdate, RefundUpdate
from paycore.reviews import flag_missing_amount, tell_refund_of_uncaptured
from paycore.settling import apply_under_call
from paycore.status import Outcome, RefundStatus
from paycore.storage import PaymentLookup
from paycore.unit_of_work import Delivery, PaymentWriter
from paycore.updates import about_another, provider_ids
from paycore.wire import MAX_ID_LENGTH, InvalidReport

__all__ = ["WebhookReceiver", "money_without_amount", "receipt_ids", "webhook_body"]

log = guarded_logger("paycore.webhooks")

ProviderLookup = Callable[[str, "str | None"], Provider]


def webhook_body(body: object, *, max_bytes: int) -> bytes:
    """``body`` as bytes if it is a bytes-like delivery of at most ``max_bytes``; refuse it otherwise."""
    if isinstance(body, bytes):
        raw = body
    elif isinstance(body, bytearray | memoryview):
        raw = bytes(body)
    else:
        raise MalformedWebhook(f"a webhook body must be bytes, not {type(body).__name__}")
    if len(raw) > max_bytes:
        raise WebhookTooLarge(f"a webhook body may hold at most {max_bytes} bytes, not {len(raw)}")
    return raw


def _unaccounted(amount: Money | None) -> bool:
    return amount is None or not amount.is_positive()


def receipt_ids(updates: Sequence[ProviderUpdate]) -> list[str | None]:
    """The receipt of each report of one delivery: its event id; or, when several reports carry the same
    one (a delivery of several reports under one event), that id with ``#`` and a digest of the report.

    A receipt names the report, not its place: each report is applied once, and a delivery again (in any
    order) applies only what a first one left undone. Two identical reports are one fact, one receipt.
    """
    if len(updates) == 1:
        return [updates[0].provider_event_id]
    counts = Counter(update.provider_event_id for update in updates)
    receipts: list[str | None] = []
    for update in updates:
        event_id = update.provider_event_id
        if event_id is None or counts[event_id] == 1:
            receipts.append(event_id)
            continue
        report = json.dumps(serialization.unstructure(evolve(update, provider_event_id=None)), sort_keys=True)
        receipts.append(f"{event_id[: MAX_ID_LENGTH - 25]}#{sha256(report.encode()).hexdigest()[:24]}")
    return receipts


def money_without_amount(update: ProviderUpdate) -> str | None:
    """What money ``update`` reports moved without its amount (missing, zero or negative), or ``None``."""
    if update.outcome is Outcome.AUTHORIZED and _unaccounted(update.authorized):
        return "an authorization"
    if update.outcome is Outcome.SUCCEEDED and _unaccounted(update.captured):
        return "a payment"
    for refund in update.refunds:
        if refund.status is RefundStatus.SUCCEEDED and _unaccounted(refund.amount):
            return "a refund"
    return None


class _AnotherProvidersPayment(PaymentNotFound):
    """A report about a payment of another provider of the same gateway and tenant (see ``_sibling_of``)."""


def _delivered_for(payment: Payment, chosen: Provider, tenant: str | None) -> bool:
    """True when a delivery to ``chosen`` of ``tenant`` may name ``payment``: another tenant's payment, or
    another provider's, is one it does not know (answered as a payment that does not exist)."""
    return payment.tenant == tenant and payment.provider == chosen.code


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    if type(headers) is not dict and not isinstance(headers, Mapping):  # a dict is a Mapping, without the ABC check
        raise MalformedWebhook(f"webhook headers must be a mapping, not {type(headers).__name__}")
    return {str(name).lower(): str(value) for name, value in headers.items()}


class WebhookReceiver:
    """Verifies, parses and applies providers' deliveries."""

    def __init__(
        self,
        writer: PaymentWriter,
        calls: ProviderCalls,
        providers: ProviderLookup,
        *,
        max_bytes: int,
        clock: Callable[[], datetime],
        siblings: Callable[[Provider, str | None], Sequence[Provider]] = lambda provider, tenant: (),
    ) -> None:
        self.writer = writer
        self.calls = calls
        self.providers = providers
        self.max_bytes = max_bytes
        self.clock = clock
        self.siblings = siblings
        """The other providers a tenant enabled of a provider's class (see :meth:`_sibling_of`)."""

    async def receive(
        self, provider: str, body: object, headers: Mapping[str, str], *, tenant: str | None
    ) -> list[Payment]:
        """Verify, parse and apply one delivery; return the payments it touched."""
        chosen = self.providers(provider, tenant)  # first: a refusal of the body names a provider the flow has
        raw = webhook_body(body, max_bytes=self.max_bytes)
        if not chosen.capabilities.webhooks:
            raise UnsupportedOperation(f"provider {provider!r} ({chosen.name}) does not send webhooks")
        lowered = _headers(headers)
        try:
            await chosen.verify_webhook(raw, lowered)
        except PaycoreError:
            raise
        except Exception as error:
            log.warning("provider %r could not verify a delivery: %s", chosen.code, type(error).__name__)
            raise InvalidSignature(f"the delivery could not be verified ({type(error).__name__})") from None
        try:
            updates = list(await chosen.parse_webhook(raw, lowered))
        except InvalidReport as error:
            raise MalformedWebhook(f"provider {chosen.code!r} sent an invalid report: {error}") from None
        except PaycoreError:
            raise
        except Exception as error:
            log.exception("provider %r could not parse a verified delivery", chosen.code)
            raise MalformedWebhook(f"the delivery could not be read ({type(error).__name__})") from None
        for update in updates:
            if not isinstance(update, ProviderUpdate):
                raise MalformedWebhook(f"provider {chosen.code!r} parsed its delivery into something else than reports")
            unaccounted = money_without_amount(update) if chosen.capabilities.webhook_amounts else None
            if unaccounted is not None:
                raise MalformedWebhook(f"provider {chosen.code!r} reported {unaccounted} without its amount")
        receipts = receipt_ids(updates)
        if len(updates) > 1:  # refused whole or applied report by report: each refusal found before any write
            given: dict[str, str] = {}  # the references earlier reports of the delivery give their payments
            firsts: dict[str, str] = {}  # the provider id an earlier report gives a payment that had none
            for update in updates:
                await self._check_target(chosen, tenant, update, given, firsts)
        applied = [
            await self._apply(chosen, tenant, update, receipt)
            for update, receipt in zip(updates, receipts, strict=True)
        ]
        return [payment for payment in applied if payment is not None]

    def _sibling_of(self, payment: Payment, chosen: Provider, tenant: str | None) -> bool:
        """True when ``payment`` is ``tenant``'s, of another provider of ``chosen``'s gateway: two providers on
        one gateway account (Stripe.js and Checkout) each get every event of the account (Stripe sends each to
        every endpoint), so each acknowledges the other's, changing nothing. Refused, the gateway would retry it
        for days and may switch the endpoint off, with the provider's own events."""
        if payment.tenant != tenant or payment.provider == chosen.code:
            return False
        return any(sibling.code == payment.provider for sibling in self.siblings(chosen, tenant))

    async def _held_by_sibling(self, chosen: Provider, tenant: str | None, lookup: PaymentLookup) -> bool:
        """True when ``lookup``, a reference ``chosen`` does not know, is one a sibling provider's payment holds
        (a refund made in the gateway's dashboard, a dispute: reports that name their payment by reference)."""
        if lookup.reference is None:
            return False
        for sibling in self.siblings(chosen, tenant):
            try:
                await self.writer.find(PaymentLookup.by_reference(sibling.code, tenant, lookup.reference))
            except PaymentNotFound:
                continue
            log.info("provider %r acknowledged a report, not applied: %s is provider %r's", chosen.code, lookup,
                     sibling.code)  # fmt: skip
            return True
        return False

    async def _check_target(
        self,
        chosen: Provider,
        tenant: str | None,
        update: ProviderUpdate,
        given: dict[str, str],
        firsts: dict[str, str],
    ) -> None:
        """Refuse ``update`` as :meth:`_apply` would for its payment (unknown, another tenant's or provider's,
        about another object at the provider) or for a reference another payment holds; checked before a delivery
        of several reports writes any. ``given`` holds the references the delivery's earlier reports give their
        payments, ``firsts`` the provider id they give a payment that had none (and both get this one's)."""
        lookup = self._lookup(chosen, tenant, update)
        if lookup.payment_id is None and lookup.reference in given:
            lookup = PaymentLookup.by_id(given[lookup.reference])  # named by what an earlier report gives it
        try:
            payment = await self.writer.find(lookup)
        except PaymentNotFound:
            if await self._held_by_sibling(chosen, tenant, lookup):
                return  # acknowledged when it is applied
            raise PaymentNotFound(f"no payment {lookup}") from None
        if self._sibling_of(payment, chosen, tenant):
            return  # acknowledged when it is applied (see _sibling_of)
        if not _delivered_for(payment, chosen, tenant):
            raise PaymentNotFound(f"no payment {lookup}")
        first = firsts.get(payment.id)
        known = provider_ids(payment.external_id, payment.references) or ((first,) if first else ())
        _check_about(payment.id, known, chosen, update)
        reported = [reference for reference in (update.external_id, *update.references) if reference]
        if not known and reported:
            firsts[payment.id] = reported[0]  # what the report's write will make the payment's provider id
        for reference in reported:  # however the lookup found the payment
            holder = given.get(reference)
            if holder is None:
                try:
                    holder = (await self.writer.find(PaymentLookup.by_reference(chosen.code, tenant, reference))).id
                except PaymentNotFound:
                    holder = payment.id
            if holder != payment.id:
                raise MalformedWebhook(f"provider {chosen.code!r} reported a reference of another payment")
            given[reference] = payment.id

    def _lookup(self, chosen: Provider, tenant: str | None, update: ProviderUpdate) -> PaymentLookup:
        if update.payment_id is not None:
            return PaymentLookup.by_id(update.payment_id)
        if update.external_id is not None:
            return PaymentLookup.by_reference(chosen.code, tenant, update.external_id)
        raise MalformedWebhook(f"a webhook of provider {chosen.code!r} names no payment")

    async def _apply(
        self, chosen: Provider, tenant: str | None, update: ProviderUpdate, receipt: str | None
    ) -> Payment | None:
        lookup = self._lookup(chosen, tenant, update)
        event_id = update.provider_event_id
        delivery = Delivery(chosen.code, tenant, receipt, self.clock()) if receipt else None
        needs_poll = late = False
        told: tuple[RefundUpdate, ...] = ()

        def build(current: Payment) -> Change:
            nonlocal needs_poll, late, told
            if self._sibling_of(current, chosen, tenant):
                raise _AnotherProvidersPayment(f"payment {current.id} is provider {current.provider!r}'s")
            if not _delivered_for(current, chosen, tenant):
                raise PaymentNotFound(f"no payment {lookup}")  # another tenant's, or another provider's
            change = Change(current, cause="webhook", now=self.clock(), provider_event_id=event_id)
            applied = apply_under_call(change, update, capabilities=chosen.capabilities)
            if applied.foreign is not None:  # refused at the door, nothing written: the flag goes with the change
                raise _about_another(chosen, applied.foreign)
            told = applied.told
            if applied.deferred:
                raise PaymentBusy(
                    f"payment {current.id} cannot take this event yet (a provider call in flight, a refund reported "
                    "before its capture or while one of ours is pending); deliver it again later"
                )
            needs_poll = applied.missing_amount and chosen.capabilities.polling
            # A late confirmation: what paycore knew of the payment was wrong, its refunds (told, not recorded,
            # while it had no capture) too. The provider is asked for the rest once the capture is written.
            late = current.status in fsm.CLOSED and change.status in fsm.CAPTURED and chosen.capabilities.polling
            if applied.missing_amount and not needs_poll:
                flag_missing_amount(change, "a webhook reported money without its amount")
            return change

        try:
            applied_payment = await self.writer.mutate_found(lookup, build, delivery=delivery)
        except PaymentBusy:
            if told:  # the refunds wait for the payment's late capture: an operator is told meanwhile, once
                await self._tell(lookup, told, event_id)
            raise
        except _AnotherProvidersPayment as sibling:
            log.info("provider %r acknowledged a report, not applied: %s", chosen.code, sibling)
            return None
        except PaymentNotFound:
            if await self._held_by_sibling(chosen, tenant, lookup):
                return None
            raise PaymentNotFound(f"no payment {lookup}") from None
        except DuplicateExternalId:  # nothing was stored: the report contradicts what is
            raise MalformedWebhook(f"provider {chosen.code!r} reported a reference of another payment") from None
        if not _delivered_for(applied_payment, chosen, tenant):
            raise PaymentNotFound(f"no payment {lookup}")  # a delivery seen before, naming another's payment now
        if late and not needs_poll:
            try:
                return (await self.calls.poll(applied_payment, chosen, cause="webhook"))[0]
            except (ProviderError, DuplicateExternalId) as error:  # the late confirmation stands, flagged
                log.warning("could not poll payment %s after its late confirmation: %s", applied_payment.id, error)
        if not needs_poll:
            return applied_payment
        try:
            polled, answer = await self.calls.poll(applied_payment, chosen, cause="webhook", confirming=True)
        except (ProviderError, DuplicateExternalId) as error:  # the answer was not stored
            log.warning("could not confirm the amounts of payment %s by polling: %s", applied_payment.id, error)
        else:
            if isinstance(answer, ProviderUpdate):
                return polled

        def flag(current: Payment) -> Change:
            change = Change(current, cause="webhook", now=self.clock(), provider_event_id=event_id)
            flag_missing_amount(change, "a webhook reported money without its amount, and polling could not say")
            return change

        return await self.writer.mutate(applied_payment.id, flag)

    async def _tell(self, lookup: PaymentLookup, told: tuple[RefundUpdate, ...], event_id: str | None) -> None:
        """Flag the payment for ``told``, the refunds its refused delivery waits with, in a write of its own (no
        receipt: the delivery comes again). Each is told once, as its events say (the review's text is cut at
        2 000 characters), and only while the payment is still closed without its money."""
        payment = await self.writer.find(lookup)
        events = await self.writer.repository.list_events(payment.id)
        before = {event.message for event in events if event.kind == "refund_of_uncaptured"}

        def tell(current: Payment) -> Change:
            change = Change(current, cause="webhook", now=self.clock(), provider_event_id=event_id)
            if current.status in fsm.CLOSED:  # a capture since: the delivery will apply when it comes again
                for refund in told:
                    tell_refund_of_uncaptured(change, refund, told_before=before)
            return change

        await self.writer.mutate(payment.id, tell)


def _check_about(payment_id: str, known: tuple[str, ...], chosen: Provider, update: ProviderUpdate) -> None:
    """Refuse a delivered report about another object at the provider than payment ``payment_id``'s (whose ids are
    ``known``: a second checkout made for it, at a provider that names a payment by one id, or by one of each
    kind): :class:`MalformedWebhook`."""
    capabilities = chosen.capabilities
    foreign = about_another(
        payment_id, known, update, one_id=capabilities.one_id_per_payment, per_kind=capabilities.one_id_per_kind
    )
    if foreign is not None:
        raise _about_another(chosen, foreign)


def _about_another(chosen: Provider, why: str) -> MalformedWebhook:
    return MalformedWebhook(f"provider {chosen.code!r}: {why}")
