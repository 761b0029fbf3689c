"""``PaymentFlow``: the async façade of the payment lifecycle.

The flow is the only code that changes payments, and it is assembled from
parts with one job each:

* :mod:`paycore.assembly` builds its plugins, adapters and providers from configuration,
  and :mod:`paycore.flow_parts` the parts below, one set per flow;
* :mod:`paycore.idempotency` runs every mutating call at most once per key;
* :mod:`paycore.actions` creates, captures, cancels and refunds;
* :mod:`paycore.operations` says what may be captured, canceled or refunded, and how much;
* :mod:`paycore.provider_calls` writes a provider call down before it is sent and
  settles it (the call's rules are in :mod:`paycore.calls`);
* :mod:`paycore.unit_of_work` loads, changes and stores a payment with a version
  check, and tells observers once a change is committed;
* :mod:`paycore.webhooks` receives deliveries; :mod:`paycore.reaper` expires stale payments.

It uses anyio only, so it behaves the same under asyncio and trio;
:class:`paycore.blocking.BlockingPaymentFlow` runs this same flow for sync callers.

Importing this module loads only what the class definition needs; what a flow runs on
(:mod:`paycore.flow_parts`, and through it everything above) is imported when the first flow is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from paycore.clock import utcnow
from paycore.in_flight import flow_operation
from paycore.status import FraudStatus, PaymentStatus, RefundStatus, member_of

if TYPE_CHECKING:
    import pluggy

    from paycore.config import PaycoreConfig
    from paycore.flow_parts import FlowParts
    from paycore.in_flight import InFlight
    from paycore.listing import PaymentPage
    from paycore.money import Money
    from paycore.plugins import Registry
    from paycore.providers import Provider
    from paycore.records import Checkout, Customer, LineItem, Payment, PaymentEvent, Refund
    from paycore.storage import IdempotencyStore, PaymentRepository

__all__ = ["PaymentFlow"]


def _flow_parts() -> type[FlowParts]:
    """:class:`~paycore.flow_parts.FlowParts`, imported when a flow is built rather than with this module: it loads
    the machinery a flow runs on, and ``from paycore import PaymentFlow`` stays cheap for a command-line tool or a
    serverless function that may never build a flow (``tests/test_import_cost.py``)."""
    from paycore.flow_parts import FlowParts

    return FlowParts


class PaymentFlow:
    """Runs payments through their lifecycle; build it with :meth:`from_config`.

    Every method is async and every argument after the first is keyword-only.
    The money-moving methods (``create_payment``, ``capture``, ``cancel``,
    ``refund``) run :class:`~paycore.actions.PaymentActions` over this flow's parts.
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
        flow_parts = _flow_parts()
        self._parts = flow_parts(
            config=config,
            plugin_manager=plugin_manager,
            registry=registry,
            repository=repository,
            idempotency_store=idempotency_store,
            clock=clock,
        )
        self.writer = self._parts.writer
        """Loads, changes and stores payments (:mod:`paycore.unit_of_work`)."""
        self.idempotency = self._parts.idempotency
        """The idempotency runner every mutating call goes through (plugins' included)."""
        self.calls = self._parts.calls
        """The write-before-send protocol (:mod:`paycore.provider_calls`)."""

    @property
    def idempotency_store(self) -> IdempotencyStore:
        """The idempotency store every mutating call goes through."""
        return self.idempotency.store

    @idempotency_store.setter
    def idempotency_store(self, store: IdempotencyStore) -> None:
        self.idempotency.store = store

    @property
    def in_flight(self) -> InFlight:
        """The operations under way on this flow, which closing it lets finish first."""
        return self._parts.in_flight

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
        built = _flow_parts().assemble(config, plugins=plugins, entry_points=entry_points, environ=environ)
        with built.disposed_on_error():  # a provider refused: the repository and stores are not left open
            return cls(
                config=built.config,
                plugin_manager=built.plugin_manager,
                registry=built.registry,
                repository=built.repository,
                idempotency_store=built.idempotency_store,
                clock=clock,
            )

    def __repr__(self) -> str:
        repository, keys = type(self.repository).__name__, type(self.idempotency_store).__name__
        return f"<PaymentFlow repository={repository} idempotency={keys} providers={len(self._parts.providers)}>"

    async def __aenter__(self) -> PaymentFlow:
        with self._parts.in_flight:  # FlowClosed once closing began: a closed flow is not opened again
            return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close providers, the idempotency store and the repository; then the flow refuses to send or store."""
        await self._parts.aclose()

    def now(self) -> datetime:
        """The flow's clock (UTC)."""
        return self._parts.now()

    # -- providers -----------------------------------------------------------------------

    def provider(self, code: str, *, tenant: str | None = None) -> Provider:
        """The provider ``tenant`` enabled under ``code``; :class:`~paycore.errors.ProviderNotEnabled` if none."""
        return self._parts.provider(code, tenant=tenant)

    def providers(self, *, tenant: str | None = None) -> dict[str, Provider]:
        """Every provider ``tenant`` enabled, by code."""
        return {code: p for (t, code), p in self._parts.providers.items() if t == tenant}

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
        wanted = member_of(PaymentStatus, status, "status") if status is not None else None
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
        wanted = member_of(PaymentStatus, status, "status") if status is not None else None
        return await self._parts.page(
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

    # -- money-moving actions (paycore.actions), observed ---------------------------------

    @flow_operation("create_payment")
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
        return await self._parts.create_payment(
            amount=amount,
            provider=provider,
            order_id=order_id,
            tenant=tenant,
            description=description,
            customer=customer,
            items=items,
            metadata=metadata,
            capture=capture,
            return_url=return_url,
            idempotency_key=idempotency_key,
        )

    @flow_operation("capture")
    async def capture(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        idempotency_key: str | None = None,
        tenant: str | None = None,
    ) -> Payment:
        """Capture an authorized payment: all of it, or ``amount`` (the rest is released)."""
        return await self._parts.capture(payment_id, amount=amount, idempotency_key=idempotency_key, tenant=tenant)

    @flow_operation("cancel")
    async def cancel(
        self, payment_id: str, *, idempotency_key: str | None = None, tenant: str | None = None
    ) -> Payment:
        """Cancel a payment that is not captured; one never sent is canceled here alone."""
        return await self._parts.cancel(payment_id, idempotency_key=idempotency_key, tenant=tenant)

    @flow_operation("refund")
    async def refund(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        reason: str = "",
        idempotency_key: str | None = None,
        tenant: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Refund ``amount`` (default: all that remains) of a captured payment. Succeeded plus pending refunds never
        exceed the captured amount: :class:`~paycore.errors.RefundExceedsCaptured` otherwise, and nothing changes.
        ``metadata`` travels with the refund to its provider (for cash: the ``till`` and the ``cashier``)."""
        return await self._parts.refund(
            payment_id, amount=amount, reason=reason, idempotency_key=idempotency_key, tenant=tenant, metadata=metadata
        )

    # -- reports ---------------------------------------------------------------------------

    @flow_operation("refresh")
    async def refresh(self, payment_id: str, *, tenant: str | None = None) -> Payment:
        """Poll the provider and apply what it says (settles unknown outcomes); a payment never sent is returned as it
        is. A provider call in flight is left to its owner: the poll only records the money the provider reports. Raises
        :class:`~paycore.errors.ProviderOutcomeUnknown` when the provider gave no usable answer (a payment whose call
        stays unknown is flagged for review), :class:`~paycore.errors.ProviderNotSent` when it could not be reached."""
        return await self._parts.refresh(payment_id, tenant)

    @flow_operation("handle_webhook")
    async def handle_webhook(
        self, provider: str, body: bytes, headers: Mapping[str, str], *, tenant: str | None = None
    ) -> list[Payment]:
        """Verify, parse and apply a provider's webhook; return the payments it touched.

        The signature is verified before anything is parsed; a body over
        ``webhook_max_bytes`` is refused (:class:`~paycore.errors.WebhookTooLarge`).
        An event id seen before is a no-op; an out-of-order event never moves a
        payment back.
        """
        return await self._parts.webhooks.receive(provider, body, headers, tenant=tenant)

    @flow_operation("expire_stale")
    async def expire_stale(self, older_than: timedelta | float | None = None, *, limit: int = 100) -> list[Payment]:
        """Expire payments unfinished for longer than ``older_than`` (default: ``payment_ttl``); return those changed.

        A payment never sent is expired at once; a sent one is asked about if its provider can be polled, then, still
        unpaid, canceled at a provider that can cancel and expired on its answer, or expired on the poll if webhooks
        would tell of a later payment, else flagged. One changed since its poll is left; one its provider could not be
        asked about waits, flagged past twice ``older_than``. See :meth:`paycore.reaper.Reaper.expire_stale`."""
        from paycore.config import MAX_PAYMENT_TTL  # loaded with the flow: importing this module stays cheap
        from paycore.inputs import check_age

        self._parts.check_open()
        age = check_age(self.config.payment_ttl if older_than is None else older_than, most=MAX_PAYMENT_TTL)
        return await self._parts.reaper.expire_stale(age, limit=limit)

    # -- operator actions ------------------------------------------------------------------

    @flow_operation("set_fraud_status")
    async def set_fraud_status(
        self, payment_id: str, status: FraudStatus | str, *, message: str = "", tenant: str | None = None
    ) -> Payment:
        """Record an operator's fraud verdict (``review``/``rejected`` also flag the payment)."""
        verdict = member_of(FraudStatus, status, "fraud status")
        return await self._parts.set_fraud_status(payment_id, verdict, message, tenant)

    @flow_operation("resolve_refund")
    async def resolve_refund(
        self, payment_id: str, refund_id: str, *, outcome: RefundStatus | str, note: str, tenant: str | None = None
    ) -> Payment:
        """Settle a refund left pending (its outcome unknown, or its report lost) as an operator found it at the
        provider: ``succeeded`` or ``failed`` (refundable again), with a ``note`` saying what was found. Refused for a
        refund no longer pending; as ``failed`` while its request may still arrive, or changed as it was given up."""
        settled = member_of(RefundStatus, outcome, "a refund's outcome")
        return await self._parts.resolve_refund(payment_id, refund_id, settled, note, tenant)

    @flow_operation("resolve_payment")
    async def resolve_payment(
        self,
        payment_id: str,
        *,
        outcome: PaymentStatus | str,
        note: str,
        amount: Money | None = None,
        tenant: str | None = None,
    ) -> Payment:
        """Settle an open (pending or processing) payment as an operator found it at the provider, when its reports
        cannot settle it: ``succeeded`` (captured), ``authorized`` (held: capture or cancel follow) with ``amount``
        (default: its amount; less for an underpaid transfer), or ``failed``; ``note`` says what was found; an
        authorized one whose capture's outcome is unknown, as ``succeeded`` with what the provider captured. Refused
        while its last provider call may still act; a flag awaiting review stays, for ``resolve_review``."""
        settled = member_of(PaymentStatus, outcome, "a payment's outcome")
        return await self._parts.resolve_payment(payment_id, settled, amount, note, tenant)

    @flow_operation("resolve_review")
    async def resolve_review(self, payment_id: str, *, note: str, tenant: str | None = None) -> Payment:
        """Clear the needs-review flag once an operator has dealt with it, saying how."""
        return await self._parts.resolve_review(payment_id, note, tenant)
