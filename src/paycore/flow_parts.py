"""``FlowParts``: what one flow runs on, and the flow's operations that need more than one part.

A :class:`~paycore.flow.PaymentFlow` builds one ``FlowParts`` and delegates to
it: the payment writer (:mod:`paycore.unit_of_work`), the idempotency runner
(:mod:`paycore.idempotency`), the write-before-send protocol
(:mod:`paycore.provider_calls`), the enabled providers, the webhook receiver
(:mod:`paycore.webhooks`) and the reaper (:mod:`paycore.reaper`). ``FlowParts``
is also :class:`~paycore.actions.PaymentActions` over those parts (the flow's
``create_payment``, ``capture``, ``cancel`` and ``refund``), and it polls,
pages and applies operators' decisions.

The flow's class does not derive from the actions and names its parts only for
type checkers, so ``from paycore import PaymentFlow`` defines the flow without
importing what it runs on: this module, and through it the machinery, is
imported when the first flow is built (see :mod:`paycore.flow`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import anyio
import pluggy

from paycore import inputs, operations
from paycore.actions import PaymentActions
from paycore.assembly import Parts, assemble, build_providers
from paycore.calls import ProviderCall
from paycore.changes import Change
from paycore.clock import checked_clock
from paycore.config import PaycoreConfig, load_config
from paycore.errors import (
    InvalidTransition,
    PaymentBusy,
    ProviderNotEnabled,
    ProviderOutcomeUnknown,
    UnsupportedOperation,
    ValidationError,
)
from paycore.idempotency import IdempotentRunner
from paycore.in_flight import InFlight
from paycore.listing import PaymentPage, read_page
from paycore.logs import guarded_logger
from paycore.money import Money
from paycore.plugins import Registry
from paycore.provider_calls import ProviderCalls, Unknown
from paycore.providers import Provider
from paycore.reaper import Reaper
from paycore.records import Payment
from paycore.refund_reports import fail_refund, succeed_refund, sync_refund_status
from paycore.status import FraudStatus, PaymentStatus, RefundStatus
from paycore.storage import ClaimingRepository, IdempotencyStore, PaymentRepository
from paycore.unit_of_work import PaymentWriter
from paycore.webhooks import WebhookReceiver

__all__ = ["FlowParts"]

_RESOLVED_BY = {PaymentStatus.SUCCEEDED: "succeed", PaymentStatus.AUTHORIZED: "authorize", PaymentStatus.FAILED: "fail"}
"""The transition an operator's word fires on an open payment, by the outcome found at the provider."""

log = guarded_logger("paycore.flow")


class FlowParts(PaymentActions):
    """One flow's parts and the money-moving actions over them; see the module docstring."""

    def __init__(
        self,
        *,
        config: PaycoreConfig,
        plugin_manager: pluggy.PluginManager,
        registry: Registry,
        repository: PaymentRepository,
        idempotency_store: IdempotencyStore,
        clock: Callable[[], datetime],
    ) -> None:
        self.plugin_manager = plugin_manager
        self.repository = repository
        self._clock = clock = checked_clock(clock)
        self.in_flight = InFlight()
        """The operations under way (:mod:`paycore.in_flight`): closing the flow lets them finish first."""
        self._drain_seconds = config.idempotency_lease
        self._closing: anyio.Event | None = None
        self.writer = PaymentWriter(repository, plugin_manager)
        """Loads, changes and stores payments."""
        self.idempotency = IdempotentRunner(
            idempotency_store,
            lease_seconds=config.idempotency_lease,
            ttl_seconds=config.idempotency_ttl,
            clock=clock,
            required=config.idempotency_required,
            completes_keys_of=self.writer.completes_keys_of,
            claims_with=repository if isinstance(repository, ClaimingRepository) else None,
        )
        """The idempotency runner every mutating call goes through (plugins' included)."""
        self.calls = ProviderCalls(
            self.writer, timeout=config.provider_timeout, lease=config.idempotency_lease, clock=clock
        )
        """The write-before-send protocol."""
        self.providers = build_providers(
            config, registry, plugin_manager, repository, may_still_arrive=self.calls.may_still_arrive
        )
        """Every enabled provider, by ``(tenant, code)``."""
        self.webhooks = WebhookReceiver(
            self.writer,
            self.calls,
            self.provider_for,
            max_bytes=config.webhook_max_bytes,
            clock=clock,
            siblings=self.siblings_of,
        )
        """Receives the providers' deliveries."""
        self.reaper = Reaper(self.writer, self.calls, self.provider_for, clock=clock)
        """Expires stale payments."""

    @staticmethod
    def assemble(
        config: PaycoreConfig | Mapping[str, Any] | str | None,
        *,
        plugins: Iterable[object],
        entry_points: bool,
        environ: Mapping[str, str] | None,
    ) -> Parts:
        """The configuration's parts, which :meth:`paycore.flow.PaymentFlow.from_config` builds a flow with."""
        return assemble(load_config(config, environ=environ), plugins=plugins, entry_points=entry_points)

    def provider(self, code: str, *, tenant: str | None = None) -> Provider:
        """The provider ``tenant`` enabled under ``code``; :class:`~paycore.errors.ProviderNotEnabled` if none.

        Every operation that talks to a provider asks for it first: once the flow is closed,
        :class:`~paycore.errors.FlowClosed` refuses it before anything is stored or sent."""
        self.check_open()
        try:
            found = self.providers.get((tenant, code))
        except TypeError:  # an unhashable code or tenant names no provider
            found = None
        if found is None:
            enabled = sorted(c for (t, c) in self.providers if t == tenant)
            scope = "payments without a tenant" if tenant is None else f"tenant {tenant!r}"
            raise ProviderNotEnabled(
                f"provider {code!r} is not enabled for {scope}; enabled: {', '.join(enabled) or 'none'}"
            )
        return found

    def provider_for(self, code: str, tenant: str | None) -> Provider:
        """:meth:`provider` with ``tenant`` positional, for the webhook receiver and the reaper."""
        return self.provider(code, tenant=tenant)

    def siblings_of(self, provider: Provider, tenant: str | None) -> list[Provider]:
        """The other providers ``tenant`` enabled of ``provider``'s very class (the same gateway)."""
        return [p for (t, code), p in self.providers.items() if t == tenant and code != provider.code
                and type(p) is type(provider)]  # fmt: skip

    def now(self) -> datetime:
        """The flow's clock (UTC)."""
        return self._clock()

    async def aclose(self) -> None:
        """Refuse new operations; let those under way finish (for up to ``idempotency_lease``, the longest a
        provider call may take to be answered); then close the providers, the idempotency store and the
        repository, even when cancelled, and each of them even when another's close fails: the first failure
        is raised then, the others logged. A second close waits for the first."""
        if self._closing is not None:
            with anyio.CancelScope(shield=True):
                await self._closing.wait()
            return
        self._closing = anyio.Event()
        self.in_flight.closed = True  # refused at the door from now on; those under way go on to the end
        with anyio.CancelScope(shield=True):
            try:
                await self._close_parts()
            finally:
                self._closing.set()

    async def _close_parts(self) -> None:
        if not await self.in_flight.wait_idle(self._drain_seconds):
            log.warning("closing the flow with %d operations still under way", self.in_flight.count)
        self.closed = True
        parts: list[Provider | IdempotencyStore | PaymentRepository] = [*self.providers.values()]
        parts += [self.idempotency.store, self.repository]
        failures: list[tuple[object, BaseException]] = []
        for part in parts:
            try:
                await part.aclose()
            except BaseException as error:  # every part is closed, whatever another one's close raised
                failures.append((part, error))
        if failures:
            # A KeyboardInterrupt or a cancellation outranks an error; the other failures are logged, as
            # paycore.disposal.dispose logs them (the classes, never an error's text: it may quote a password).
            raised = next((failed for _, failed in failures if not isinstance(failed, Exception)), failures[0][1])
            for unclosed, failed in failures:
                if failed is not raised:
                    log.warning("%s could not be closed: %s", type(unclosed).__name__, type(failed).__name__)
            raise raised

    async def page(
        self,
        *,
        limit: int,
        after: str | None,
        tenant: str | None,
        order_id: str | None,
        status: PaymentStatus | None,
        created_from: datetime | None,
        created_before: datetime | None,
        newest_first: bool,
    ) -> PaymentPage:
        """One page of the repository's payments (:func:`paycore.listing.read_page`)."""
        return await read_page(
            self.repository,
            limit=limit,
            after=after,
            tenant=tenant,
            order_id=order_id,
            status=status,
            created_from=created_from,
            created_before=created_before,
            newest_first=newest_first,
        )

    async def refresh(self, payment_id: str, tenant: str | None) -> Payment:
        """Poll the payment's provider and apply its answer; see :meth:`paycore.flow.PaymentFlow.refresh`."""
        self.check_open()
        payment = await self.writer.load(payment_id, tenant)
        chosen = self.provider(payment.provider, tenant=payment.tenant)
        if not chosen.capabilities.polling:
            raise UnsupportedOperation(f"provider {chosen.code!r} ({chosen.name}) cannot be polled")
        if operations.unsent_and_idle(payment):
            return payment  # never sent: nothing to ask (its key's retry sends it; the reaper ends it past its ttl)
        refreshed, answer = await self.calls.poll(payment, chosen)
        if isinstance(answer, Unknown):
            raise ProviderOutcomeUnknown(f"payment {payment_id}: the provider gave no usable answer: {answer.reason}")
        return refreshed

    async def set_fraud_status(
        self, payment_id: str, verdict: FraudStatus, message: str, tenant: str | None
    ) -> Payment:
        """Record an operator's fraud verdict (``review``/``rejected`` also flag the payment)."""
        self.check_open()
        message = inputs.check_text(message, what="a fraud verdict's message")
        await self.writer.load(payment_id, tenant)

        def apply(payment: Payment) -> Change:
            change = Change(payment, cause="operator", now=self.now())
            change.set_fraud(verdict, message)
            return change

        return await self.writer.mutate(payment_id, apply)

    async def resolve_refund(
        self, payment_id: str, refund_id: str, outcome: RefundStatus, note: str, tenant: str | None
    ) -> Payment:
        """Settle a refund left pending as an operator found it at the provider; see
        :meth:`paycore.flow.PaymentFlow.resolve_refund`."""
        self.check_open()
        note = inputs.check_note(note, what="a refund's resolution note")
        if outcome not in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
            raise ValidationError(f"a pending refund is resolved as succeeded or failed, not {outcome.value}")
        loaded = await self.writer.load(payment_id, tenant)
        given_up = outcome is RefundStatus.FAILED and await self._give_up_refund(loaded, refund_id)

        def apply(payment: Payment) -> Change:
            refund = payment.refund(refund_id)
            if refund.status is not RefundStatus.PENDING:
                raise InvalidTransition(f"refund {refund_id} is {refund.status.value}: only a pending one is resolved")
            call, now = payment.pending_call, self.now()
            ours = call is not None and call.refund_id == refund_id
            if ours and call is not None and self.calls.held.in_flight(call, now):
                raise PaymentBusy(
                    f"payment {payment_id}: the call of refund {refund_id} is in flight; its answer settles it"
                )
            if ours and call is not None and outcome is RefundStatus.FAILED and not self.calls.past_arriving(call):
                # Its request may still reach the provider: failed now, the refund would be asked again and paid twice.
                until = call.lease_until + self.calls.answered_within
                raise PaymentBusy(
                    f"payment {payment_id}: the request of refund {refund_id} may still reach the provider until "
                    f"{until.isoformat(timespec='seconds')}; refresh the payment to ask it"
                )
            if outcome is RefundStatus.FAILED and (not given_up or _sent_since(loaded, payment, refund_id)):
                # Given up for the calls written down by the version read: a call that ended or was sent since is not.
                raise PaymentBusy(
                    f"payment {payment_id}: refund {refund_id} changed as it was given up; resolve it again"
                )
            change = Change(payment, cause="operator", now=now)
            if ours:
                change.set(pending_call=None)
            settle = succeed_refund if outcome is RefundStatus.SUCCEEDED else fail_refund
            settle(change, refund, note)
            sync_refund_status(change)
            return change

        return await self.writer.mutate(payment_id, apply)

    async def _give_up_refund(self, payment: Payment, refund_id: str) -> bool:
        """Before an operator fails refund ``refund_id``: its provider makes sure it is never paid out
        (:meth:`~paycore.providers.Provider.give_up_refund`); one it paid out after all refuses the resolution.
        False when its request may still arrive (the resolution is refused then); a provider this flow does
        not configure (which could not make sure of it) refuses it too."""
        refund, call = payment.refund(refund_id), payment.pending_call
        if refund.status is not RefundStatus.PENDING or (
            call is not None and call.refund_id == refund_id and not self.calls.past_arriving(call)
        ):
            return False  # refused by the checks that follow, nothing given up
        try:
            chosen = self.provider(payment.provider, tenant=payment.tenant)
        except ProviderNotEnabled as error:
            raise ProviderNotEnabled(
                f"refund {refund_id} is resolved failed only by a flow that configures its provider, which makes "
                f"sure it is never paid out later: {error}"
            ) from None
        held = await chosen.give_up_refund(payment, refund)
        if held is not None and held.status is RefundStatus.SUCCEEDED:
            raise InvalidTransition(
                f"refund {refund_id} was paid out at the provider ({held.amount or refund.amount}): it did not fail; "
                "refresh the payment to record it"
            )
        return True

    async def resolve_payment(
        self, payment_id: str, outcome: PaymentStatus, amount: Money | None, note: str, tenant: str | None
    ) -> Payment:
        """Settle an open payment as an operator found it at the provider; see
        :meth:`paycore.flow.PaymentFlow.resolve_payment`."""
        self.check_open()
        note = inputs.check_note(note, what="a payment's resolution note")
        trigger = _RESOLVED_BY.get(outcome)
        if trigger is None:
            raise ValidationError(
                f"an open payment is resolved as succeeded, authorized or failed, not {outcome.value}"
            )
        amount = inputs.check_money(amount, what="the amount the provider holds")
        if amount is not None and outcome is PaymentStatus.FAILED:
            raise ValidationError("an amount is given only with outcome succeeded or authorized")
        await self.writer.load(payment_id, tenant)

        def apply(payment: Payment) -> Change:
            held = operations.resolved_amount(payment, amount, outcome)
            call, now = payment.pending_call, self.now()
            if call is not None:
                self._check_call_ended(payment, call, now)
            change = Change(payment, cause="operator", now=now)
            if call is not None:
                change.set(pending_call=None)
            if outcome is PaymentStatus.SUCCEEDED:
                change.set(captured_amount=held, authorized_amount=payment.authorized_amount or held)
            elif outcome is PaymentStatus.AUTHORIZED:
                change.set(authorized_amount=held)
            fired = "capture" if payment.status is PaymentStatus.AUTHORIZED else trigger  # a capture in doubt
            change.fire(fired, amount=None if outcome is PaymentStatus.FAILED else held, message=note)
            return change  # a flag stays: a report that came meanwhile is not hidden (resolve_review closes it)

        return await self.writer.mutate(payment_id, apply)

    def _check_call_ended(self, payment: Payment, call: ProviderCall, now: datetime) -> None:
        """Refuse an operator's word on a payment whose last provider call may still act: in flight, or its request
        still able to reach the provider (a cancel arriving after "paid" would take the money back)."""
        if self.calls.held.in_flight(call, now):
            raise PaymentBusy(
                f"payment {payment.id}: its {call.operation.value} call is in flight; its answer settles it"
            )
        if not self.calls.past_arriving(call):
            until = call.lease_until + self.calls.answered_within
            raise PaymentBusy(
                f"payment {payment.id}: the request of its {call.operation.value} call may still reach the provider "
                f"until {until.isoformat(timespec='seconds')}; refresh the payment to ask it"
            )

    async def resolve_review(self, payment_id: str, note: str, tenant: str | None) -> Payment:
        """Clear the needs-review flag, saying how it was dealt with (no change if it is not set).

        The review's message, what the operator was told, is kept: the same fact reported again
        (the next poll, another delivery) is not told again."""
        self.check_open()
        note = inputs.check_note(note, what="a review's note")
        await self.writer.load(payment_id, tenant)

        def apply(payment: Payment) -> Change | None:
            if not payment.needs_review:
                return None
            change = Change(payment, cause="operator", now=self.now())
            change.set(needs_review=False, review_reason=None)
            change.event("review_resolved", message=note)
            return change

        return await self.writer.mutate(payment_id, apply)


def _sent_since(loaded: Payment, current: Payment, refund_id: str) -> bool:
    """True when refund ``refund_id`` of ``current`` is not as ``loaded`` had it: changed since (failed and sent
    again by a retry under its key, say), or carried by a call written down after ``loaded``. Its provider gave it
    up for the calls ``loaded`` knew of; such a call could still pay it out."""
    if current.refund(refund_id) != loaded.refund(refund_id):
        return True
    call, before = current.pending_call, loaded.pending_call
    if call is None or call.refund_id != refund_id:
        return False
    return before is None or before.refund_id != refund_id or not call.is_the_same(before)
