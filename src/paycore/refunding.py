"""``RefundRequest``: a refund as asked, decided on a payment and written down before it is sent.

:meth:`~paycore.actions.PaymentActions.refund` makes one per call. It decides
the refund (its amount, checked against what the payment may still refund; its
id, bound to the idempotency key) and the change that writes it down with its
provider call. When the provider has nothing to check and no call of the
payment is in flight, that decision needs nothing awaited, so a repository that
can stores it with the key's claim, in one unit of work (:meth:`RefundRequest.first_write`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from attrs import frozen

from paycore import operations
from paycore.calls import CallOperation
from paycore.changes import Change, replace_refund
from paycore.errors import IdempotencyKeyReused, PaycoreError
from paycore.keys import KeyBinding
from paycore.money import Money
from paycore.provider_calls import ProviderCalls
from paycore.providers import Provider, checks_nothing
from paycore.records import Payment, Refund, new_id
from paycore.refund_reports import never_reached
from paycore.status import RefundStatus
from paycore.storage import PaymentRepository, PaymentWrite

__all__ = ["RefundRequest"]


class _MadeMeanwhile(Exception):  # not an error: the refund a write found, which ends the operation
    """The refund of the id a write was to replace, found not failed: made after all."""

    def __init__(self, refund: Refund) -> None:
        super().__init__(refund.id)
        self.refund = refund


@frozen
class RefundRequest:
    """A refund of ``amount`` (``None``: all that remains) of payment ``payment_id``, as the caller asked it."""

    payment_id: str
    amount: Money | None
    reason: str
    metadata: Mapping[str, Any]
    tenant: str | None
    """The tenant the caller acts for (``None``: unscoped)."""
    calls: ProviderCalls
    provider: Callable[..., Provider]
    """The flow's providers: ``provider(code, tenant=...)``."""

    def draft(self, payment: Payment, chosen: Provider, binding: KeyBinding | None, earlier: Refund | None) -> Refund:
        """The refund to ask ``chosen`` for, its amount checked on ``payment``.

        It takes the id of ``earlier``, a failed attempt under the same key, so that it replaces it;
        else the id the key binds (a new one without a key).
        """
        wanted = operations.refund_amount(payment, chosen, self.amount)
        if earlier is not None:
            refund_id = earlier.id
        elif binding is not None:
            refund_id = binding.new_id("re", within=self.payment_id)
        else:
            refund_id = new_id("re")
        return Refund(
            id=refund_id, payment_id=self.payment_id, amount=wanted, reason=self.reason, metadata=self.metadata
        )

    async def sends_again(self, earlier: Refund, repository: PaymentRepository) -> bool:
        """True when ``earlier``, the refund a first attempt under the same key wrote down, is to be sent again:
        only one that failed for never reaching its provider. One the provider declined (or an operator found
        failed) is the key's answer, as it is when the first attempt lived to tell it; pending or succeeded, it
        is never sent twice.

        :class:`~paycore.errors.IdempotencyKeyReused` when ``earlier`` is no refund of this request: one an
        earlier release keyed where its key's record is not asked (another key space), for another amount,
        reason or metadata (the key's record, asked, refuses such a request before it gets here)."""
        if (
            (self.amount is not None and earlier.amount != self.amount)
            or earlier.reason != self.reason
            or dict(earlier.metadata) != dict(self.metadata)
        ):
            raise IdempotencyKeyReused(f"idempotency key of refund {earlier.id} was used for a different refund")
        if earlier.status is not RefundStatus.FAILED or earlier.external_id is not None:
            return False  # the provider named it (its external id), so it reached the provider after all
        return never_reached(await repository.list_events(self.payment_id), earlier.id)

    async def write_down(
        self, payment: Payment, chosen: Provider, refund: Refund, earlier: Refund | None
    ) -> Payment | Refund:
        """``payment`` with ``refund`` and its call written down, to be sent; or, when the refund of its id is no
        longer ``earlier`` (the failed attempt under the same key it replaces, or none), that refund: the first
        attempt's, written or reported since, which is the key's answer and is never sent again. Cut before it is
        sent, the refund fails as never sent (:meth:`~paycore.provider_calls.ProviderCalls.write_down`)."""
        build = partial(self.first_change, chosen=chosen, refund=refund, earlier=earlier)
        try:
            return await self.calls.write_down(self.payment_id, build, known=payment)
        except _MadeMeanwhile as made:
            return made.refund

    def first_change(self, payment: Payment, chosen: Provider, refund: Refund, earlier: Refund | None = None) -> Change:
        """The change that adds ``refund`` to ``payment`` and writes its call down (re-checked on ``payment``).

        It replaces ``earlier``, a failed attempt under the same key found never to have reached the provider.
        A refund of its id that is anything else now (written by that first attempt since, or reported succeeded,
        declined or named by the provider) is never replaced: while a call is under way the payment is busy, as
        for any call (:meth:`~paycore.provider_calls.ProviderCalls.first_change`); after, :class:`_MadeMeanwhile`,
        before any check of the payment (which that refund may have refunded whole since)."""
        held = next((r for r in payment.refunds if r.id == refund.id), None)
        if held is not None and held != earlier and payment.pending_call is None:
            raise _MadeMeanwhile(held)

        def add_refund(change: Change) -> None:
            added = replace_refund(refund, {"created_at": change.now, "updated_at": change.now})
            others = tuple(r for r in change.value("refunds") if r.id != refund.id)
            change.set(refunds=(*others, added))
            change.event(
                "refund_created", to_status=RefundStatus.PENDING.value, amount=refund.amount, refund_id=refund.id
            )

        check = partial(operations.refund_amount, provider=chosen, amount=refund.amount)
        return self.calls.first_change(
            payment, CallOperation.REFUND, check, amount=refund.amount, refund_id=refund.id, also=add_refund
        )

    def first_write(self, binding: KeyBinding, payment: Payment) -> PaymentWrite | None:
        """The refund written down on ``payment`` as the key's claim read it, when nothing needs awaiting first.

        ``None`` (and the refund is decided as without the claim's write) when the
        payment is another tenant's, has a call in flight to settle first, or has
        an earlier attempt's refund under the key; when the provider checks refunds
        (an awaited :meth:`~paycore.providers.Provider.check_refund`); or when the
        refund is refused, which the operation then says, releasing the key.
        """
        if (self.tenant is not None and payment.tenant != self.tenant) or payment.pending_call is not None:
            return None
        try:
            chosen = self.provider(payment.provider, tenant=payment.tenant)
            if (
                not checks_nothing(chosen, "check_refund")
                or binding.earlier("re", payment.refunds, within=payment.id) is not None
            ):
                return None
            change = self.first_change(payment, chosen, self.draft(payment, chosen, binding, None))
        except PaycoreError:
            return None
        started = change.result()
        return PaymentWrite(started, change.events) if started is not None else None
