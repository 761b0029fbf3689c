"""``PaymentFlow``: the async orchestrator of the payment lifecycle.

The flow is the only code that changes payments. It asks providers (which
report facts), applies their answers through the state machine
(:mod:`paycore.updates`, :mod:`paycore.changes`), stores each change as one
unit of work with a version check (reloading and re-applying when it loses a
race), guards every mutating call with an idempotency key, and tells plugins
about committed changes. It uses anyio only, so it behaves the same under
asyncio and trio; :class:`paycore.blocking.BlockingPaymentFlow` runs this same
flow for sync callers.

A provider call is written down on the payment before it is sent
(``Payment.pending_call``). If the answer is lost, the payment keeps it with
``unknown=True`` and the next operation on the payment asks the provider
(``check_status``) before doing anything else; the request is never sent twice.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, TypeVar

import anyio
import pluggy
from attrs import evolve, frozen

from paycore import serialization
from paycore.changes import Change
from paycore.config import AdapterConfig, PaycoreConfig, load_config, webhook_url_for
from paycore.errors import (
    CaptureExceedsAuthorized,
    ConcurrentUpdate,
    ConfigurationError,
    CurrencyMismatch,
    IdempotencyError,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    InvalidAmount,
    InvalidTransition,
    NotFound,
    PaycoreError,
    PaymentBusy,
    PaymentNotFound,
    PaymentRejected,
    ProviderError,
    ProviderNotEnabled,
    ProviderNotSent,
    ProviderOutcomeUnknown,
    RefundExceedsCaptured,
    UnsupportedCurrency,
    UnsupportedOperation,
    ValidationError,
)
from paycore.hookspecs import IdempotencyStoreFactory, RepositoryFactory
from paycore.idempotency import check_key, derived_id, fingerprint, scope_of
from paycore.money import Money
from paycore.plugins import Registry, collect_registry, create_plugin_manager
from paycore.providers import Provider, ProviderContext
from paycore.records import (
    Checkout,
    Customer,
    LineItem,
    Payment,
    PaymentEvent,
    ProviderCall,
    ProviderUpdate,
    Refund,
    RefundUpdate,
    WebhookReceipt,
    new_id,
    utcnow,
)
from paycore.secrets import Settings, redact_url
from paycore.status import FraudStatus, Outcome, PaymentStatus, RefundStatus, ReviewReason
from paycore.storage import IdempotencyStore, PaymentRepository
from paycore.updates import apply_update, fail_refund, settles_call

__all__ = ["PaymentFlow"]

log = logging.getLogger("paycore.flow")

T = TypeVar("T")

_MAX_ATTEMPTS: Final = 25
"""Reload-and-reapply attempts before a write that keeps losing races gives up."""

_CAPTURABLE = (PaymentStatus.AUTHORIZED,)
_CANCELABLE = (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.AUTHORIZED)
_REFUNDABLE = (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED)

_RELEASE_ON: Final = (ValidationError, NotFound, ProviderError, PaymentBusy, IdempotencyError, ConcurrentUpdate)
"""Errors after which nothing new is left unsettled: the key is released for a retry.

(A call that reached the provider stays written down on the payment, so a retry
settles it by polling before anything else; it is never sent twice.)"""


@frozen
class _AdapterContext:
    settings: Settings
    plugin_manager: pluggy.PluginManager


@frozen
class _Unknown:
    """A provider call that was sent and got no usable answer."""

    reason: str


def _build_adapter(
    factories: Mapping[str, RepositoryFactory] | Mapping[str, IdempotencyStoreFactory],
    adapter: AdapterConfig,
    what: str,
    plugin_manager: pluggy.PluginManager,
) -> Any:
    factory = factories.get(adapter.type)
    if factory is None:
        known = ", ".join(sorted(factories)) or "none"
        raise ConfigurationError(
            f"no {what} type {adapter.type!r} is installed (installed: {known}); "
            f"install the package that provides it, e.g. paycore-{adapter.type}"
        )
    try:
        return factory(_AdapterContext(adapter.settings, plugin_manager))
    except PaycoreError:
        raise
    except Exception as error:
        # Not chained: the original exception may show a URL with its password.
        raise ConfigurationError(
            f"{what} {adapter.type!r} could not be built: {type(error).__name__}: {redact_url(str(error))}"
        ) from None


class PaymentFlow:
    """Runs payments through their lifecycle; build it with :meth:`from_config`.

    Every method is async and every argument after the first is keyword-only.
    Methods that take ``tenant`` are scoped to it when it is given: they never
    read or change another tenant's payment (it is reported as not found).
    ``tenant=None`` is unscoped, for trusted server-side code.
    """

    def __init__(
        self,
        *,
        config: PaycoreConfig,
        plugin_manager: pluggy.PluginManager,
        registry: Registry,
        repository: PaymentRepository,
        idempotency_store: IdempotencyStore,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.plugin_manager = plugin_manager
        self.registry = registry
        self.repository = repository
        self.idempotency_store = idempotency_store
        self._clock = clock
        self._providers: dict[tuple[str | None, str], Provider] = {}
        self._build_providers()

    @classmethod
    def from_config(
        cls,
        config: PaycoreConfig | Mapping[str, Any] | str | None = None,
        *,
        plugins: Iterable[object] = (),
        entry_points: bool = True,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> PaymentFlow:
        """Build a flow from a mapping, a TOML path, or ``None`` (the embedded default).

        ``plugins`` are extra plugin modules or objects registered in code;
        ``entry_points=False`` skips installed plugins (tests). A broken
        configuration raises :class:`~paycore.errors.ConfigurationError`.
        """
        resolved = load_config(config, environ=environ)
        manager = create_plugin_manager(plugins, entry_points=entry_points, blocked=resolved.plugins_blocked)
        registry = collect_registry(manager)
        repository = _build_adapter(registry.repositories, resolved.repository, "repository", manager)
        stores = [
            _build_adapter(registry.idempotency_stores, store, "idempotency store", manager)
            for store in resolved.idempotency
        ]
        if len(stores) == 1:
            store = stores[0]
        else:
            from paycore.tiered import TieredIdempotencyStore

            store = TieredIdempotencyStore(
                stores, names=[s.type for s in resolved.idempotency], refill_ttl=resolved.idempotency_ttl
            )
        return cls(
            config=resolved,
            plugin_manager=manager,
            registry=registry,
            repository=repository,
            idempotency_store=store,
            clock=clock,
        )

    def _build_providers(self) -> None:
        scopes: list[tuple[str | None, Mapping[str, Any]]] = [(None, self.config.providers)]
        scopes += [(name, tenant.providers) for name, tenant in self.config.tenants.items()]
        for tenant, providers in scopes:
            for code, provider_config in providers.items():
                provider_class = self.registry.providers.get(provider_config.type)
                if provider_class is None:
                    known = ", ".join(sorted(self.registry.providers)) or "none"
                    raise ConfigurationError(
                        f"provider {code!r} of tenant {tenant!r} has type {provider_config.type!r}, "
                        f"which no installed plugin provides (installed: {known})"
                    )
                context = ProviderContext(
                    code=code,
                    tenant=tenant,
                    settings=provider_config.settings,
                    plugin_manager=self.plugin_manager,
                    repository=self.repository,
                    webhook_url=webhook_url_for(self.config.webhook_url, tenant, code),
                )
                try:
                    self._providers[tenant, code] = provider_class(context)
                except PaycoreError:
                    raise
                except Exception as error:
                    raise ConfigurationError(
                        f"provider {code!r} ({provider_config.type}) of tenant {tenant!r} "
                        f"could not be built: {type(error).__name__}: {error}"
                    ) from error

    def __repr__(self) -> str:
        return (
            f"<PaymentFlow repository={type(self.repository).__name__} "
            f"idempotency={type(self.idempotency_store).__name__} providers={len(self._providers)}>"
        )

    async def __aenter__(self) -> PaymentFlow:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close providers, the idempotency store and the repository."""
        with anyio.CancelScope(shield=True):
            for provider in self._providers.values():
                await provider.aclose()
            await self.idempotency_store.aclose()
            await self.repository.aclose()

    def now(self) -> datetime:
        """The flow's clock (UTC)."""
        return self._clock()

    # -- providers -----------------------------------------------------------------------

    def provider(self, code: str, *, tenant: str | None = None) -> Provider:
        """The provider ``tenant`` enabled under ``code``; :class:`ProviderNotEnabled` if none."""
        found = self._providers.get((tenant, code))
        if found is None:
            enabled = sorted(c for (t, c) in self._providers if t == tenant)
            scope = "payments without a tenant" if tenant is None else f"tenant {tenant!r}"
            raise ProviderNotEnabled(
                f"provider {code!r} is not enabled for {scope}; enabled: {', '.join(enabled) or 'none'}"
            )
        return found

    def providers(self, *, tenant: str | None = None) -> dict[str, Provider]:
        """Every provider ``tenant`` enabled, by code."""
        return {code: p for (t, code), p in self._providers.items() if t == tenant}

    # -- reading ---------------------------------------------------------------------------

    async def get_payment(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """The payment with ``payment_id``; :class:`PaymentNotFound` if none is visible."""
        return await self._load(payment_id, tenant)

    async def list_payments(
        self,
        *,
        order_id: str | None = None,
        tenant: str | None = None,
        status: PaymentStatus | str | None = None,
        limit: int | None = None,
    ) -> list[Payment]:
        """Payments matching every given filter, oldest first."""
        wanted = _member(PaymentStatus, status, "status") if status is not None else None
        return await self.repository.list_payments(tenant=tenant, order_id=order_id, status=wanted, limit=limit)

    async def list_events(self, payment_id: str, *, tenant: str | None = None) -> list[PaymentEvent]:
        """The payment's history, in order."""
        await self._load(payment_id, tenant)
        return await self.repository.list_events(payment_id)

    async def _load(self, payment_id: str, tenant: str | None) -> Payment:
        payment = await self.repository.get(payment_id)
        if tenant is not None and payment.tenant != tenant:
            raise PaymentNotFound(f"no payment {payment_id!r} for tenant {tenant!r}")
        return payment

    # -- creating --------------------------------------------------------------------------

    async def create_payment(
        self,
        *,
        amount: Money,
        provider: str,
        order_id: str,
        tenant: str | None = None,
        description: str = "",
        customer: Customer | None = None,
        items: Sequence[LineItem] = (),
        metadata: Mapping[str, Any] | None = None,
        capture: bool = True,
        return_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> Checkout:
        """Create a payment and start it at ``provider``; return it with the customer's next action.

        Refused before anything is stored when the amount, currency, provider
        or a ``paycore_validate_payment`` policy says no.
        """
        chosen = self.provider(provider, tenant=tenant)
        items = tuple(items)
        _check_new_payment(chosen, amount, order_id, items, capture)
        arguments = {
            "amount": serialization.unstructure(amount),
            "provider": provider,
            "order_id": order_id,
            "description": description,
            "customer": serialization.unstructure(customer),
            "items": serialization.unstructure(items),
            "metadata": dict(metadata or {}),
            "capture": capture,
            "return_url": return_url,
        }

        async def run(payment_id: str) -> Checkout:
            try:
                existing = await self.repository.get(payment_id)
            except PaymentNotFound:
                existing = None
            if existing is not None:
                return await self._resume_create(existing, chosen, amount, provider, order_id, tenant)
            now = self.now()
            draft = Payment(
                id=payment_id,
                provider=provider,
                order_id=order_id,
                amount=amount,
                tenant=tenant,
                capture=capture,
                description=description,
                customer=customer,
                items=items,
                metadata=dict(metadata or {}),
                return_url=return_url,
                created_at=now,
                updated_at=now,
            )
            await chosen.check_payment(draft)
            await self._validate(draft)
            change = Change(draft, cause="api", now=now)
            change.set(pending_call=ProviderCall("initiate", now))
            change.event("created", to_status=PaymentStatus.PENDING.value, amount=amount)
            payment = change.result()
            assert payment is not None
            await self.repository.add(payment, change.events)
            await self._emit(change.events, payment)
            return await self._initiate(payment, chosen)

        return await self._idempotent(
            "create_payment",
            tenant,
            idempotency_key,
            arguments,
            lambda: run(derived_id("pay", scope_of(tenant), idempotency_key) if idempotency_key else new_id("pay")),
            Checkout,
        )

    async def _resume_create(
        self,
        existing: Payment,
        chosen: Provider,
        amount: Money,
        provider: str,
        order_id: str,
        tenant: str | None,
    ) -> Checkout:
        """Carry on a create whose first attempt stored the payment (crash, or not sent)."""
        if (existing.amount, existing.provider, existing.order_id, existing.tenant) != (
            amount,
            provider,
            order_id,
            tenant,
        ):
            raise IdempotencyKeyReused(f"idempotency key of payment {existing.id} was used for a different payment")
        if existing.pending_call is not None:
            existing = await self._settle(existing, chosen)
        if existing.status is PaymentStatus.PENDING and existing.pending_call is None:
            started = await self._mutate(existing.id, lambda p: self._begin(p, "initiate", _never_sent))
            return await self._initiate(started, chosen)
        return Checkout(existing, existing.next_action)

    async def _initiate(self, payment: Payment, chosen: Provider) -> Checkout:
        answer = await self._ask(chosen.initiate(payment), payment, "initiate")
        finished = await self._finish(payment.id, "initiate", answer)
        action = answer.next_action if isinstance(answer, ProviderUpdate) else None
        return Checkout(finished, action or finished.next_action)

    async def _validate(self, payment: Payment) -> None:
        """Ask every ``paycore_validate_payment`` plugin; a plugin that crashes refuses (fail closed)."""
        for impl in reversed(self.plugin_manager.hook.paycore_validate_payment.get_hookimpls()):
            try:
                result = impl.function(payment=payment)
                if inspect.isawaitable(result):
                    await result
            except PaycoreError:
                raise
            except Exception as error:
                log.exception("validation plugin %r failed on payment %s", impl.plugin_name, payment.id)
                raise PaymentRejected(
                    f"validation plugin {impl.plugin_name!r} failed ({type(error).__name__}); payment refused"
                ) from error

    # -- operations on a payment ------------------------------------------------------------

    async def capture(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        idempotency_key: str | None = None,
        tenant: str | None = None,
    ) -> Payment:
        """Capture an authorized payment: all of it, or ``amount`` (the rest is released)."""

        async def run() -> Payment:
            payment = await self._load(payment_id, tenant)
            chosen = self.provider(payment.provider, tenant=payment.tenant)
            payment = await self._settle(payment, chosen)
            wanted = _capture_amount(payment, chosen, amount)
            started = await self._mutate(
                payment_id,
                lambda p: self._begin(p, "capture", lambda q: _capture_amount(q, chosen, wanted), amount=wanted),
            )
            answer = await self._ask(chosen.capture(started, wanted), started, "capture")
            return await self._finish(payment_id, "capture", answer, capture_amount=wanted)

        arguments = {"payment_id": payment_id, "amount": serialization.unstructure(amount)}
        return await self._idempotent("capture", tenant, idempotency_key, arguments, run, Payment)

    async def cancel(
        self, payment_id: str, *, idempotency_key: str | None = None, tenant: str | None = None
    ) -> Payment:
        """Cancel a payment that is not captured; one never sent is canceled here alone."""

        async def run() -> Payment:
            payment = await self._load(payment_id, tenant)
            chosen = self.provider(payment.provider, tenant=payment.tenant)
            payment = await self._settle(payment, chosen)
            _check_cancel(payment, chosen, local=True)
            if _never_sent_here(payment):
                return await self._mutate(payment_id, lambda p: self._cancel_locally(p, chosen))
            started = await self._mutate(
                payment_id,
                lambda p: self._begin(p, "cancel", lambda q: _check_cancel(q, chosen, local=False)),
            )
            answer = await self._ask(chosen.cancel(started), started, "cancel")
            return await self._finish(payment_id, "cancel", answer)

        return await self._idempotent("cancel", tenant, idempotency_key, {"payment_id": payment_id}, run, Payment)

    def _cancel_locally(self, payment: Payment, chosen: Provider) -> Change:
        _check_cancel(payment, chosen, local=True)
        if not _never_sent_here(payment):
            raise PaymentBusy(f"payment {payment.id} was sent to its provider meanwhile; retry the cancel")
        change = Change(payment, cause="api", now=self.now())
        change.fire("cancel", message="canceled before it was sent to the provider")
        return change

    async def refund(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
        tenant: str | None = None,
    ) -> Refund:
        """Refund ``amount`` (default: all that remains) of a captured payment.

        Succeeded plus pending refunds never exceed the captured amount:
        :class:`~paycore.errors.RefundExceedsCaptured` otherwise, and nothing changes.
        """

        async def run() -> Refund:
            payment = await self._load(payment_id, tenant)
            chosen = self.provider(payment.provider, tenant=payment.tenant)
            refund_id = derived_id("re", scope_of(tenant), idempotency_key) if idempotency_key else new_id("re")
            payment = await self._settle(payment, chosen)
            earlier = next((r for r in payment.refunds if r.id == refund_id), None)
            if earlier is not None and earlier.status is not RefundStatus.FAILED:
                return earlier  # a first attempt under this key got that far: never refund twice
            wanted = _refund_amount(payment, chosen, amount)
            await chosen.check_refund(payment, wanted)
            started = await self._mutate(payment_id, lambda p: self._begin_refund(p, chosen, refund_id, wanted, reason))
            answer = await self._ask(
                chosen.refund(started, started.refund(refund_id)), started, "refund", refund_id=refund_id
            )
            update = (
                ProviderUpdate(refunds=(evolve(answer, refund_id=refund_id),))
                if isinstance(answer, RefundUpdate)
                else answer
            )
            finished = await self._finish(payment_id, "refund", update, refund_id=refund_id)
            return finished.refund(refund_id)

        arguments = {"payment_id": payment_id, "amount": serialization.unstructure(amount), "reason": reason}
        return await self._idempotent("refund", tenant, idempotency_key, arguments, run, Refund)

    def _begin_refund(self, payment: Payment, chosen: Provider, refund_id: str, amount: Money, reason: str) -> Change:
        _refund_amount(payment, chosen, amount)
        change = self._begin(payment, "refund", lambda p: None, amount=amount, refund_id=refund_id)
        now = change.now
        refund = Refund(refund_id, payment.id, amount, reason=reason, created_at=now, updated_at=now)
        # A failed attempt under the same key (not sent) is replaced by this one, not kept beside it.
        others = tuple(r for r in change.payment.refunds if r.id != refund_id)
        change.set(refunds=(*others, refund))
        change.event("refund_created", to_status=RefundStatus.PENDING.value, amount=amount, refund_id=refund_id)
        return change

    # -- provider calls --------------------------------------------------------------------

    def _begin(
        self,
        payment: Payment,
        operation: str,
        check: Callable[[Payment], object],
        *,
        amount: Money | None = None,
        refund_id: str | None = None,
    ) -> Change:
        """Write the call down before it is sent (re-checking on the freshest payment)."""
        if payment.pending_call is not None:
            raise PaymentBusy(f"payment {payment.id} is busy: a {payment.pending_call.operation} call is in progress")
        check(payment)
        change = Change(payment, cause="api", now=self.now())
        change.set(pending_call=ProviderCall(operation, change.now, amount=amount, refund_id=refund_id))
        return change

    async def _ask(
        self,
        call: Awaitable[T],
        payment: Payment,
        operation: str,
        *,
        written: bool = True,
        refund_id: str | None = None,
    ) -> T | _Unknown:
        """Await a provider call under the flow's timeout; classify how it ended.

        ``written``: the call was written down by :meth:`_begin`; if it never
        left (``ProviderNotSent``, or refused locally), that record is undone.
        """
        try:
            with anyio.fail_after(self.config.provider_timeout):
                return await call
        except (ProviderNotSent, ValidationError):
            if written:
                await self._not_sent(payment.id, operation, refund_id)
            raise
        except ProviderOutcomeUnknown as error:
            reason = str(error) or "no usable answer"
        except TimeoutError:
            reason = f"no answer within {self.config.provider_timeout:g}s"
        except Exception as error:
            log.exception("provider %r failed during %s of %s", payment.provider, operation, payment.id)
            reason = f"the provider call failed: {type(error).__name__}"
        log.warning("outcome of %s of payment %s is unknown: %s", operation, payment.id, reason)
        return _Unknown(reason)

    async def _finish(
        self,
        payment_id: str,
        operation: str,
        answer: ProviderUpdate | _Unknown,
        *,
        capture_amount: Money | None = None,
        refund_id: str | None = None,
    ) -> Payment:
        """Apply the answer to a call written down by :meth:`_begin`, and clear it."""

        def finish(payment: Payment) -> Change:
            change = Change(payment, cause="api", now=self.now())
            call = payment.pending_call
            if isinstance(answer, _Unknown):
                if call is not None:
                    change.set(pending_call=evolve(call, unknown=True))
                if operation == "initiate" and change.can("send"):
                    change.fire("send", message="sent; the provider's answer was lost")
                change.event("provider_call_unknown", refund_id=refund_id, message=f"{operation}: {answer.reason}")
                return change
            apply_update(change, answer, capture_amount=capture_amount)
            if operation == "initiate" and answer.outcome is None and change.can("send"):
                change.fire("send")
            change.set(pending_call=None)
            return change

        try:
            return await self._mutate(payment_id, finish)
        except BaseException:
            log.error("could not record the answer to %s of payment %s", operation, payment_id)
            raise

    async def _not_sent(self, payment_id: str, operation: str, refund_id: str | None) -> None:
        """Undo the written-down call of a request that never left: nothing happened."""

        def undo(payment: Payment) -> Change:
            change = Change(payment, cause="api", now=self.now())
            change.set(pending_call=None)
            if refund_id is not None:
                fail_refund(change, payment.refund(refund_id), "not sent: the request never reached the provider")
            return change

        with anyio.CancelScope(shield=True):
            await self._mutate(payment_id, undo)

    async def _settle(self, payment: Payment, chosen: Provider) -> Payment:
        """Before a new operation: settle a recorded call whose outcome is unknown by asking."""
        call = payment.pending_call
        if call is None:
            return payment
        lease = timedelta(seconds=self.config.idempotency_lease)
        if not call.unknown and self.now() - call.started_at < lease:
            raise PaymentBusy(f"payment {payment.id} is busy: a {call.operation} call is in progress")
        if not chosen.capabilities.polling:
            raise ProviderOutcomeUnknown(
                f"payment {payment.id}: the outcome of its {call.operation} call is unknown and provider "
                f"{chosen.code!r} cannot be polled; wait for its webhook"
            )
        settled, _ = await self._poll(payment, chosen)
        if settled.pending_call is not None:
            raise ProviderOutcomeUnknown(
                f"payment {payment.id}: the outcome of its {call.operation} call is still unknown"
            )
        return settled

    async def _poll(
        self, payment: Payment, chosen: Provider, *, cause: str = "poll"
    ) -> tuple[Payment, ProviderUpdate | _Unknown]:
        """Ask the provider for the payment's state, apply the answer, return both."""
        answer = await self._ask(chosen.check_status(payment), payment, "check_status", written=False)

        def apply(current: Payment) -> Change:
            change = Change(current, cause=cause, now=self.now())
            if isinstance(answer, _Unknown):
                if current.pending_call is not None and current.review_reason is not ReviewReason.UNKNOWN_OUTCOME:
                    change.flag(ReviewReason.UNKNOWN_OUTCOME, f"polling could not settle it: {answer.reason}")
                return change
            apply_update(change, answer)
            call = current.pending_call
            if call is not None and settles_call(call, answer, change, polled=True):
                change.set(pending_call=None)
            return change

        return await self._mutate(payment.id, apply), answer

    async def refresh(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """Poll the provider and apply what it says (settles unknown outcomes).

        Raises :class:`~paycore.errors.ProviderOutcomeUnknown` when the provider
        gave no usable answer (a payment whose call stays unknown is flagged for
        review), :class:`~paycore.errors.ProviderNotSent` when it could not be reached.
        """
        payment = await self._load(payment_id, tenant)
        chosen = self.provider(payment.provider, tenant=payment.tenant)
        if not chosen.capabilities.polling:
            raise UnsupportedOperation(f"provider {chosen.code!r} ({chosen.name}) cannot be polled")
        refreshed, answer = await self._poll(payment, chosen)
        if isinstance(answer, _Unknown):
            raise ProviderOutcomeUnknown(f"payment {payment_id}: the provider gave no usable answer: {answer.reason}")
        return refreshed

    # -- webhooks --------------------------------------------------------------------------

    async def handle_webhook(
        self, provider: str, body: bytes, headers: Mapping[str, str], *, tenant: str | None = None
    ) -> list[Payment]:
        """Verify, parse and apply a provider's webhook; return the payments it touched.

        The signature is verified before anything is parsed. An event id seen
        before is a no-op; an out-of-order event never moves a payment back.
        """
        chosen = self.provider(provider, tenant=tenant)
        if not chosen.capabilities.webhooks:
            raise UnsupportedOperation(f"provider {provider!r} ({chosen.name}) does not send webhooks")
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        await chosen.verify_webhook(body, lowered)
        updates = await chosen.parse_webhook(body, lowered)
        touched = []
        for update in updates:
            touched.append(await self._apply_webhook(chosen, tenant, update))
        return touched

    async def _apply_webhook(self, chosen: Provider, tenant: str | None, update: ProviderUpdate) -> Payment:
        if update.payment_id is not None:
            payment = await self.repository.get(update.payment_id)
            if payment.tenant != tenant or payment.provider != chosen.code:
                raise PaymentNotFound(f"no payment {update.payment_id!r} of provider {chosen.code!r}")
        elif update.external_id is not None:
            payment = await self.repository.get_by_external_id(chosen.code, tenant, update.external_id)
        else:
            from paycore.errors import MalformedWebhook

            raise MalformedWebhook(f"a webhook of provider {chosen.code!r} names no payment")
        event_id = update.provider_event_id
        receipt = (
            WebhookReceipt(chosen.code, event_id, payment.id, tenant=tenant, received_at=self.now())
            if event_id
            else None
        )

        def apply(current: Payment) -> Change:
            change = Change(current, cause="webhook", now=self.now(), provider_event_id=event_id)
            apply_update(change, update)
            call = current.pending_call
            if call is not None and call.unknown and settles_call(call, update, change, polled=False):
                change.set(pending_call=None)
            return change

        return await self._mutate(payment.id, apply, receipt=receipt)

    # -- expiry ----------------------------------------------------------------------------

    async def expire_stale(self, older_than: timedelta | float | None = None, *, limit: int = 100) -> list[Payment]:
        """Expire payments left unfinished for longer than ``older_than`` (default: ``payment_ttl``).

        A payment never sent is expired at once. One sent to a pollable provider
        is expired only when the provider says it was not paid; an unknown
        answer, or a provider that cannot be polled, flags it for review instead.
        Returns the payments that changed.
        """
        if older_than is None:
            older_than = self.config.payment_ttl
        age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
        stale = await self.repository.list_stale(
            statuses=(PaymentStatus.PENDING, PaymentStatus.PROCESSING),
            updated_before=self.now() - age,
            limit=limit,
        )
        changed = []
        for payment in stale:
            try:
                result = await self._expire_one(payment)
            except PaycoreError as error:
                log.warning("could not expire payment %s: %s", payment.id, error)
                continue
            if result.version != payment.version:
                changed.append(result)
        return changed

    async def _expire_one(self, payment: Payment) -> Payment:
        if _never_sent_here(payment) and payment.pending_call is None:
            return await self._mutate(payment.id, lambda p: self._expire_locally(p))
        chosen = self.provider(payment.provider, tenant=payment.tenant)
        if not chosen.capabilities.polling:
            return await self._mutate(
                payment.id,
                lambda p: self._flag(
                    p,
                    ReviewReason.UNKNOWN_OUTCOME,
                    "unfinished past its deadline; the provider cannot be polled",
                ),
            )
        polled, answer = await self._poll(payment, chosen, cause="reaper")
        if isinstance(answer, _Unknown) or answer.outcome is None:
            # No definitive answer: flag it; time alone never fails a payment.
            reason = answer.reason if isinstance(answer, _Unknown) else "the provider does not know it"
            return await self._mutate(
                payment.id,
                lambda p: self._flag(p, ReviewReason.UNKNOWN_OUTCOME, f"unfinished past its deadline: {reason}"),
            )
        if answer.outcome is not Outcome.PENDING or polled.pending_call is not None:
            return polled  # paid, failed or expired at the provider: the poll applied it
        return await self._mutate(payment.id, lambda p: self._expire_locally(p, asked=True))

    def _expire_locally(self, payment: Payment, *, asked: bool = False) -> Change | None:
        if payment.status not in (PaymentStatus.PENDING, PaymentStatus.PROCESSING) or payment.pending_call:
            return None
        if not asked and not _never_sent_here(payment):
            return None
        change = Change(payment, cause="reaper", now=self.now())
        change.fire("expire", message="the provider reports it unpaid" if asked else "never sent; abandoned")
        return change

    def _flag(self, payment: Payment, reason: ReviewReason, message: str) -> Change | None:
        if payment.needs_review and payment.review_reason is reason:
            return None
        change = Change(payment, cause="reaper", now=self.now())
        change.flag(reason, message)
        return change

    # -- operator actions ------------------------------------------------------------------

    async def set_fraud_status(
        self, payment_id: str, status: FraudStatus | str, *, message: str = "", tenant: str | None = None
    ) -> Payment:
        """Record an operator's fraud verdict (``review``/``rejected`` also flag the payment)."""
        verdict = _member(FraudStatus, status, "fraud status")
        await self._load(payment_id, tenant)

        def apply(payment: Payment) -> Change:
            change = Change(payment, cause="operator", now=self.now())
            change.set_fraud(verdict, message)
            return change

        return await self._mutate(payment_id, apply)

    async def resolve_review(self, payment_id: str, *, note: str, tenant: str | None = None) -> Payment:
        """Clear the needs-review flag once an operator has dealt with it, saying how."""
        await self._load(payment_id, tenant)

        def apply(payment: Payment) -> Change | None:
            if not payment.needs_review:
                return None
            change = Change(payment, cause="operator", now=self.now())
            change.set(needs_review=False, review_reason=None, review_message="")
            change.event("review_resolved", message=note)
            return change

        return await self._mutate(payment_id, apply)

    # -- the machinery ---------------------------------------------------------------------

    async def _mutate(
        self,
        payment_id: str,
        build: Callable[[Payment], Change | None],
        *,
        receipt: WebhookReceipt | None = None,
    ) -> Payment:
        """Load, change, store; on a lost race reload and re-apply. One unit of work per try."""
        for attempt in range(_MAX_ATTEMPTS):
            # A repeated delivery's receipt makes its save fail like a lost race (the receipt is
            # unique), so the receipt is looked up only on a retry: a new event costs no extra read.
            if (
                attempt > 0
                and receipt is not None
                and await self.repository.has_receipt(receipt.provider, receipt.tenant, receipt.event_id)
            ):
                return await self.repository.get(payment_id)
            payment = await self.repository.get(payment_id)
            change = build(payment)
            receipts = (receipt,) if receipt is not None else ()
            updated = change.result() if change is not None else None
            if updated is None:
                if receipt is None:
                    return payment
                updated = evolve(payment, version=payment.version + 1)
            events = change.events if change is not None else []
            try:
                await self.repository.save(updated, events, receipts)
            except ConcurrentUpdate:
                await anyio.sleep(random.uniform(0, 0.002 * attempt))
                continue
            await self._emit(events, updated)
            return updated
        raise ConcurrentUpdate(f"payment {payment_id} kept changing; gave up after {_MAX_ATTEMPTS} attempts")

    async def _emit(self, events: Sequence[PaymentEvent], payment: Payment) -> None:
        """Tell ``paycore_payment_event`` plugins about committed events; their errors are logged."""
        if not events:
            return
        impls = self.plugin_manager.hook.paycore_payment_event.get_hookimpls()
        for event in events:
            for impl in reversed(impls):
                try:
                    result = impl.function(event=event, payment=payment)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("plugin %r failed to handle event %s", impl.plugin_name, event.kind)

    async def _idempotent(
        self,
        operation: str,
        tenant: str | None,
        key: str | None,
        arguments: Mapping[str, Any],
        run: Callable[[], Awaitable[T]],
        result_type: type[T],
    ) -> T:
        """Run ``run`` at most once per idempotency key; replay its stored result after."""
        if key is None:
            return await run()
        check_key(key)
        scope = scope_of(tenant)
        claim = await self.idempotency_store.claim(
            scope=scope,
            key=key,
            fingerprint=fingerprint(operation, arguments),
            lease_seconds=self.config.idempotency_lease,
        )
        if claim.result is not None:
            return serialization.structure(claim.result["value"], result_type)
        assert claim.token is not None
        try:
            result = await run()
        except _RELEASE_ON:
            with anyio.CancelScope(shield=True):
                await self.idempotency_store.release(scope=scope, key=key, token=claim.token)
            raise
        try:
            await self.idempotency_store.complete(
                scope=scope,
                key=key,
                token=claim.token,
                result={"value": serialization.unstructure(result)},
                ttl_seconds=self.config.idempotency_ttl,
            )
        except IdempotencyLeaseLost:
            log.warning("idempotency key %r was taken over before %s finished; result kept", key, operation)
        return result


E = TypeVar("E", PaymentStatus, FraudStatus)


def _member(kind: type[E], value: str, what: str) -> E:
    """``kind(value)``, or a :class:`ValidationError` naming the value and the accepted ones."""
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(member.value for member in kind)
        raise ValidationError(f"{what} must be one of {accepted}; not {value!r}") from None


def _never_sent(payment: Payment) -> None:
    if payment.status is not PaymentStatus.PENDING:
        raise InvalidTransition(f"payment {payment.id} is {payment.status.value}, not pending")


def _never_sent_here(payment: Payment) -> bool:
    return payment.status is PaymentStatus.PENDING and payment.external_id is None


def _check_new_payment(
    provider: Provider, amount: Money, order_id: str, items: tuple[LineItem, ...], capture: bool
) -> None:
    if not isinstance(amount, Money):
        raise InvalidAmount(f"amount must be a Money, not {type(amount).__name__}: {amount!r}")
    if not amount.is_positive():
        raise InvalidAmount(f"a payment amount must be positive, not {amount}")
    if not isinstance(order_id, str) or not order_id:
        raise ValidationError(f"order_id must be a non-empty string, not {order_id!r}")
    if provider.currencies is not None and amount.currency not in provider.currencies:
        raise UnsupportedCurrency(
            f"provider {provider.code!r} does not accept {amount.currency}; "
            f"it accepts {', '.join(sorted(provider.currencies))}"
        )
    for item in items:
        if item.unit_price.currency != amount.currency:
            raise CurrencyMismatch(
                f"line item {item.name!r} is priced in {item.unit_price.currency}, the payment in {amount.currency}"
            )
    if not capture and not provider.capabilities.authorize_capture:
        raise UnsupportedOperation(
            f"provider {provider.code!r} ({provider.name}) cannot authorize without capturing (capture=False)"
        )


def _capture_amount(payment: Payment, provider: Provider, amount: Money | None) -> Money:
    if payment.status not in _CAPTURABLE:
        raise InvalidTransition(f"cannot capture payment {payment.id}: it is {payment.status.value}, not authorized")
    if not provider.capabilities.authorize_capture:
        raise UnsupportedOperation(f"provider {provider.code!r} ({provider.name}) does not capture")
    authorized = payment.authorized_amount or payment.amount
    if amount is None:
        return authorized
    if amount.currency != authorized.currency:
        raise CurrencyMismatch(f"cannot capture {amount} of a payment in {authorized.currency}")
    if not amount.is_positive():
        raise InvalidAmount(f"a capture must be positive, not {amount}")
    if amount > authorized:
        raise CaptureExceedsAuthorized(f"cannot capture {amount}: only {authorized} is authorized")
    if amount < authorized and not provider.capabilities.partial_capture:
        raise UnsupportedOperation(
            f"provider {provider.code!r} ({provider.name}) cannot capture part ({amount}) of {authorized}"
        )
    return amount


def _check_cancel(payment: Payment, provider: Provider, *, local: bool) -> None:
    if payment.status not in _CANCELABLE:
        raise InvalidTransition(f"cannot cancel payment {payment.id}: it is {payment.status.value}")
    if not (local and _never_sent_here(payment)) and not provider.capabilities.cancel:
        raise UnsupportedOperation(f"provider {provider.code!r} ({provider.name}) cannot cancel a payment")


def _refund_amount(payment: Payment, provider: Provider, amount: Money | None) -> Money:
    if payment.status not in _REFUNDABLE:
        raise InvalidTransition(f"cannot refund payment {payment.id}: it is {payment.status.value}, not succeeded")
    if not provider.capabilities.refund:
        raise UnsupportedOperation(f"provider {provider.code!r} ({provider.name}) does not refund")
    refundable = payment.refundable_amount
    wanted = refundable if amount is None else amount
    if wanted.currency != payment.currency:
        raise CurrencyMismatch(f"cannot refund {wanted} of a payment in {payment.currency}")
    if not wanted.is_positive():
        if amount is None:
            raise RefundExceedsCaptured(f"payment {payment.id} has nothing left to refund")
        raise InvalidAmount(f"a refund must be positive, not {wanted}")
    if wanted > refundable:
        raise RefundExceedsCaptured(
            f"cannot refund {wanted} of payment {payment.id}: only {refundable} remains refundable "
            f"(captured {payment.captured_amount}, refunded {payment.refunded_amount}, "
            f"pending {payment.pending_refund_amount})"
        )
    captured = payment.captured_amount
    if (wanted != captured or payment.refunds) and not provider.capabilities.partial_refund:
        raise UnsupportedOperation(
            f"provider {provider.code!r} ({provider.name}) cannot refund part ({wanted}) of {captured}"
        )
    return wanted
