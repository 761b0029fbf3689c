"""``PaymentFlow``: the async façade of the payment lifecycle.

The flow is the only code that changes payments, and it is assembled from
parts with one job each:

* :mod:`paycore.assembly` builds its plugins, adapters and providers from configuration;
* :mod:`paycore.idempotency` runs every mutating call at most once per key;
* :mod:`paycore.operations` says what may be captured, canceled or refunded, and how much;
* :mod:`paycore.provider_calls` writes a provider call down before it is sent and
  settles it (the call's rules are in :mod:`paycore.calls`);
* :mod:`paycore.unit_of_work` loads, changes and stores a payment with a version
  check, and tells observers once a change is committed;
* :mod:`paycore.webhooks` receives deliveries; :mod:`paycore.reaper` expires stale payments.

It uses anyio only, so it behaves the same under asyncio and trio;
:class:`paycore.blocking.BlockingPaymentFlow` runs this same flow for sync callers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import anyio
import pluggy

from paycore.actions import PaymentActions
from paycore.changes import Change
from paycore.clock import utcnow
from paycore.config import PaycoreConfig, load_config
from paycore.errors import (
    ProviderNotEnabled,
    ProviderOutcomeUnknown,
    UnsupportedOperation,
    ValidationError,
)
from paycore.idempotency import IdempotentRunner
from paycore.listing import PaymentPage, read_page
from paycore.observability import observed_operation
from paycore.plugins import Registry
from paycore.provider_calls import ProviderCalls, Unknown
from paycore.providers import Provider
from paycore.reaper import Reaper
from paycore.records import Payment, PaymentEvent
from paycore.status import FraudStatus, PaymentStatus
from paycore.storage import ClaimingRepository, IdempotencyStore, PaymentRepository
from paycore.unit_of_work import PaymentWriter
from paycore.webhooks import WebhookReceiver

__all__ = ["PaymentFlow"]

T = TypeVar("T")


class PaymentFlow(PaymentActions):
    """Runs payments through their lifecycle; build it with :meth:`from_config`.

    Every method is async and every argument after the first is keyword-only.
    The money-moving methods (``create_payment``, ``capture``, ``cancel``,
    ``refund``) come from :class:`~paycore.actions.PaymentActions`.
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
        self._clock = clock
        self.writer = PaymentWriter(repository, plugin_manager)
        """Loads, changes and stores payments (:mod:`paycore.unit_of_work`)."""
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
        """The write-before-send protocol (:mod:`paycore.provider_calls`)."""
        from paycore.assembly import build_providers  # configuration machinery: loaded when a flow is built

        self._providers = build_providers(config, registry, plugin_manager, repository)
        self._webhooks = WebhookReceiver(
            self.writer, self.calls, self._provider_for, max_bytes=config.webhook_max_bytes, clock=clock
        )
        self._reaper = Reaper(self.writer, self.calls, self._provider_for, clock=clock)

    @property
    def idempotency_store(self) -> IdempotencyStore:
        """The idempotency store every mutating call goes through."""
        return self.idempotency.store

    @idempotency_store.setter
    def idempotency_store(self, store: IdempotencyStore) -> None:
        self.idempotency.store = store

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
        from paycore.assembly import assemble  # building a flow's parts: loaded when a flow is built

        resolved = load_config(config, environ=environ)
        parts = assemble(resolved, plugins=plugins, entry_points=entry_points)
        return cls(
            config=parts.config,
            plugin_manager=parts.plugin_manager,
            registry=parts.registry,
            repository=parts.repository,
            idempotency_store=parts.idempotency_store,
            clock=clock,
        )

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

    def _provider_for(self, code: str, tenant: str | None) -> Provider:
        return self.provider(code, tenant=tenant)

    def providers(self, *, tenant: str | None = None) -> dict[str, Provider]:
        """Every provider ``tenant`` enabled, by code."""
        return {code: p for (t, code), p in self._providers.items() if t == tenant}

    # -- reading ---------------------------------------------------------------------------

    async def get_payment(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """The payment with ``payment_id``; :class:`PaymentNotFound` if none is visible."""
        return await self.writer.load(payment_id, tenant)

    async def list_payments(
        self,
        *,
        order_id: str | None = None,
        tenant: str | None = None,
        status: PaymentStatus | str | None = None,
        limit: int | None = None,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        after: str | None = None,
    ) -> list[Payment]:
        """Up to ``limit`` payments matching every given filter, oldest first (or ``newest_first``).

        ``created_from`` is inclusive and ``created_before`` exclusive; ``after``
        is the ``next_cursor`` of a page of the same listing (:meth:`page_payments`).
        """
        wanted = _member(PaymentStatus, status, "status") if status is not None else None
        return await self.repository.list_payments(
            tenant=tenant,
            order_id=order_id,
            status=wanted,
            limit=limit,
            created_from=created_from,
            created_before=created_before,
            newest_first=newest_first,
            after=after,
        )

    async def page_payments(
        self,
        *,
        order_id: str | None = None,
        tenant: str | None = None,
        status: PaymentStatus | str | None = None,
        limit: int = 50,
        created_from: datetime | None = None,
        created_before: datetime | None = None,
        newest_first: bool = False,
        after: str | None = None,
    ) -> PaymentPage:
        """One page of at most ``limit`` payments, and the cursor of the next page (``None`` at the end).

        Pass ``next_cursor`` back as ``after`` with the same filters to read the
        next page; payments created meanwhile never repeat or shift a page. A
        cursor of another listing (another tenant's) is a :class:`ValidationError`.
        """
        wanted = _member(PaymentStatus, status, "status") if status is not None else None
        return await read_page(
            self.repository,
            limit=limit,
            after=after,
            tenant=tenant,
            order_id=order_id,
            status=wanted,
            created_from=created_from,
            created_before=created_before,
            newest_first=newest_first,
        )

    async def list_events(self, payment_id: str, *, tenant: str | None = None) -> list[PaymentEvent]:
        """The payment's history, in order."""
        await self.writer.load(payment_id, tenant)
        return await self.repository.list_events(payment_id)

    # -- money-moving actions (from PaymentActions), observed ----------------------------

    create_payment = observed_operation("create_payment")(PaymentActions.create_payment)
    capture = observed_operation("capture")(PaymentActions.capture)
    cancel = observed_operation("cancel")(PaymentActions.cancel)
    refund = observed_operation("refund")(PaymentActions.refund)

    # -- reports ---------------------------------------------------------------------------

    @observed_operation("refresh")
    async def refresh(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """Poll the provider and apply what it says (settles unknown outcomes).

        A provider call in flight is left to its owner: the poll only records
        the money the provider reports. Raises
        :class:`~paycore.errors.ProviderOutcomeUnknown` when the provider gave no
        usable answer (a payment whose call stays unknown is flagged for
        review), :class:`~paycore.errors.ProviderNotSent` when it could not be reached.
        """
        payment = await self.writer.load(payment_id, tenant)
        chosen = self.provider(payment.provider, tenant=payment.tenant)
        if not chosen.capabilities.polling:
            raise UnsupportedOperation(f"provider {chosen.code!r} ({chosen.name}) cannot be polled")
        refreshed, answer = await self.calls.poll(payment, chosen)
        if isinstance(answer, Unknown):
            raise ProviderOutcomeUnknown(f"payment {payment_id}: the provider gave no usable answer: {answer.reason}")
        return refreshed

    @observed_operation("handle_webhook")
    async def handle_webhook(
        self, provider: str, body: bytes, headers: Mapping[str, str], *, tenant: str | None = None
    ) -> list[Payment]:
        """Verify, parse and apply a provider's webhook; return the payments it touched.

        The signature is verified before anything is parsed; a body over
        ``webhook_max_bytes`` is refused (:class:`~paycore.errors.WebhookTooLarge`).
        An event id seen before is a no-op; an out-of-order event never moves a
        payment back.
        """
        return await self._webhooks.receive(provider, body, headers, tenant=tenant)

    @observed_operation("expire_stale")
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
        return await self._reaper.expire_stale(age, limit=limit)

    # -- operator actions ------------------------------------------------------------------

    @observed_operation("set_fraud_status")
    async def set_fraud_status(
        self, payment_id: str, status: FraudStatus | str, *, message: str = "", tenant: str | None = None
    ) -> Payment:
        """Record an operator's fraud verdict (``review``/``rejected`` also flag the payment)."""
        verdict = _member(FraudStatus, status, "fraud status")
        await self.writer.load(payment_id, tenant)

        def apply(payment: Payment) -> Change:
            change = Change(payment, cause="operator", now=self.now())
            change.set_fraud(verdict, message)
            return change

        return await self.writer.mutate(payment_id, apply)

    @observed_operation("resolve_review")
    async def resolve_review(self, payment_id: str, *, note: str, tenant: str | None = None) -> Payment:
        """Clear the needs-review flag once an operator has dealt with it, saying how."""
        await self.writer.load(payment_id, tenant)

        def apply(payment: Payment) -> Change | None:
            if not payment.needs_review:
                return None
            change = Change(payment, cause="operator", now=self.now())
            change.set(needs_review=False, review_reason=None, review_message="")
            change.event("review_resolved", message=note)
            return change

        return await self.writer.mutate(payment_id, apply)


E = TypeVar("E", PaymentStatus, FraudStatus)


def _member(kind: type[E], value: str, what: str) -> E:
    """``kind(value)``, or a :class:`ValidationError` naming the value and the accepted ones."""
    try:
        return kind(value)
    except ValueError:
        accepted = ", ".join(member.value for member in kind)
        raise ValidationError(f"{what} must be one of {accepted}; not {value!r}") from None
