"""``PaymentActions``: create, capture, cancel and refund, each an idempotent provider call.

Each action runs at most once per idempotency key (:mod:`paycore.idempotency`), settles any earlier call of
the payment first, checks the operation's rules (:mod:`paycore.operations`), writes its provider call down,
sends it and settles it with the answer (:mod:`paycore.provider_calls`). Records created under a key get ids
bound to it, so a retried or taken-over request finds what its first attempt stored instead of making a
second payment or refund. :class:`~paycore.flow.PaymentFlow` offers them as its own methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any, Final, TypeVar

import pluggy
from attrs import evolve

from paycore import inputs, operations, serialization
from paycore.calls import CallOperation, ProviderCall
from paycore.changes import Change
from paycore.errors import FlowClosed, PaymentBusy
from paycore.fsm import OPEN, allowed
from paycore.hookcalls import validate_payment
from paycore.idempotency import IdempotentRunner
from paycore.keys import KeyBinding, call_id_of, call_ids_of, scope_of
from paycore.money import Money
from paycore.provider_calls import ProviderCalls, Unknown
from paycore.providers import Provider
from paycore.records import Checkout, Customer, LineItem, Payment, ProviderUpdate, Refund, RefundUpdate, new_id
from paycore.refunding import RefundRequest
from paycore.status import PaymentStatus
from paycore.storage import PaymentWrite
from paycore.unit_of_work import PaymentWriter

__all__ = ["PaymentActions"]

T = TypeVar("T")


class PaymentActions:
    """The money-moving actions on payments; see the module docstring.

    :class:`~paycore.flow.PaymentFlow` is built on it and gives it its parts: the payment writer, the
    provider-call protocol, the idempotency runner, the plugin manager, the providers and the clock.
    """

    writer: PaymentWriter
    calls: ProviderCalls
    idempotency: IdempotentRunner
    plugin_manager: pluggy.PluginManager
    closed: bool = False
    """Set once the flow is closed: every action is refused (:class:`~paycore.errors.FlowClosed`)."""

    def provider(self, code: str, *, tenant: str | None = None) -> Provider:
        """The provider ``tenant`` enabled under ``code`` (the flow provides it)."""
        raise NotImplementedError

    def check_open(self) -> None:
        """:class:`~paycore.errors.FlowClosed` once the flow is closed."""
        if self.closed:
            raise FlowClosed

    def now(self) -> datetime:
        """The flow's clock (the flow provides it)."""
        raise NotImplementedError

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
        """Create a payment and start it at ``provider``; return it with the customer's next action. Refused before
        anything is stored when the amount, currency, provider or a ``paycore_validate_payment`` policy says no."""
        chosen = self.provider(provider, tenant=tenant)
        items = inputs.check_items(items)
        capture = inputs.check_capture(capture)
        operations.check_new_payment(chosen, amount, order_id, items, capture)
        description = inputs.check_text(description, what="description")
        customer = inputs.check_customer(customer)
        return_url = inputs.check_url(return_url, what="return_url")
        metadata = inputs.json_document(metadata, what="metadata")
        arguments = {
            "amount": serialization.unstructure(amount),
            "provider": provider,
            "order_id": order_id,
            "description": description,
            "customer": serialization.unstructure(customer),
            "items": serialization.unstructure(items),
            "metadata": metadata,
            "capture": capture,
            "return_url": return_url,
        }

        def requested(binding: KeyBinding | None, now: datetime) -> Payment:
            """The payment this request asks for, unchecked."""
            return Payment(
                id=binding.new_id("pay") if binding is not None else new_id("pay"),
                provider=provider,
                order_id=order_id,
                amount=amount,
                tenant=tenant,
                capture=capture,
                description=description,
                customer=customer,
                items=items,
                metadata=inputs.as_kept(metadata),
                return_url=return_url,
                created_at=now,
                updated_at=now,
            )

        async def build(binding: KeyBinding | None) -> PaymentWrite:
            """The new payment with its first event and its provider call, checked by the provider and policies."""
            now = self.now()
            draft = requested(binding, now)
            await chosen.check_payment(draft)
            await validate_payment(self.plugin_manager, payment=draft)
            change = Change(draft, cause="api", now=now)
            change.set(pending_call=self.calls.start(CallOperation.INITIATE, now=self.now()))  # its lease: from now
            change.event("created", to_status=PaymentStatus.PENDING.value, amount=amount)
            payment = change.result()
            assert payment is not None
            return PaymentWrite(payment, change.events)

        async def execute(binding: KeyBinding | None) -> Checkout:
            existing = await self._earlier_payment(binding)
            if existing is not None:
                return await self._resume_create(existing, requested(binding, existing.created_at), chosen, binding)
            added = binding.added if binding is not None else None
            if added is None:
                added = await build(binding)
                telling, writes = partial(self.writer.add, added.payment, added.events), True
            else:  # stored with the key's claim: its events are told
                telling, writes = partial(self.writer.notify, added.events, added.payment), False
            payment, call = added.payment, added.payment.pending_call
            assert call is not None
            self.writer.remember(payment)
            await self.calls.unless_cut(telling, payment.id, lambda: call, to_its_end=writes)
            return await self._initiate(payment, call, chosen, binding)

        return await self.idempotency.run(
            operation="create_payment",
            scope=scope_of(tenant),
            key=idempotency_key,
            arguments=arguments,
            execute=execute,
            result_type=Checkout,
            prefetch=lambda binding: binding.candidate_ids("pay"),  # an earlier attempt's payment
            adds=build,
        )

    async def _earlier_payment(self, binding: KeyBinding | None) -> Payment | None:
        """The payment an earlier attempt under the same key stored, while the key binds it."""
        if binding is None:
            return None
        found = binding.prefetched
        if found is None:
            found = {
                payment.id: payment for payment in await self.writer.repository.get_many(binding.candidate_ids("pay"))
            }
        return binding.earlier("pay", found.values())

    async def _resume_create(
        self, existing: Payment, requested: Payment, chosen: Provider, binding: KeyBinding | None
    ) -> Checkout:
        """Carry on a create whose first attempt stored the payment (crash, or not sent), when the
        request is that attempt's in every field the caller gives; else the key was reused."""
        if _request_of(existing) != _request_of(requested):
            raise operations.create_key_reused(existing)
        if existing.pending_call is not None:  # a create that never left pending and never arrived is sent now, once
            resending = existing.status is PaymentStatus.PENDING
            existing = await self.calls.settle(existing, chosen, resending_create=resending)
        if operations.unsent_and_idle(existing):  # a create the provider answered is never sent again
            started, call = await self.calls.begin(
                existing.id, CallOperation.INITIATE, operations.require_unsent, known=existing
            )
            return await self._initiate(started, call, chosen, binding)
        return Checkout(existing, existing.next_action)

    async def _initiate(
        self, payment: Payment, call: ProviderCall, chosen: Provider, binding: KeyBinding | None
    ) -> Checkout:
        answer = await self.calls.ask(chosen.initiate(payment), payment, call, provider=chosen)
        return await self.calls.conclude(
            payment.id,
            call,
            answer,
            chosen,
            # The action the payment took from the answer, and only while it is open: an answer refused (it names
            # another payment) sends the customer nowhere, nor does a payment a reaper ended meanwhile.
            lambda finished: Checkout(finished, finished.next_action if finished.status in OPEN else None),
            known=payment,
            binding=binding,
        )

    async def capture(
        self,
        payment_id: str,
        *,
        amount: Money | None = None,
        idempotency_key: str | None = None,
        tenant: str | None = None,
    ) -> Payment:
        """Capture an authorized payment: all of it, or ``amount`` (the rest is released)."""
        amount = inputs.check_money(amount, what="a capture amount")

        async def execute(binding: KeyBinding | None) -> Payment:
            payment, chosen, own = await self._settled(payment_id, tenant, binding, CallOperation.CAPTURE)
            if own and not allowed(payment.status, "capture"):
                return payment  # this key's first attempt reached the provider: settled by asking, never sent again
            wanted = operations.capture_amount(payment, chosen, amount)
            await chosen.check_capture(payment, wanted)
            started, call = await self.calls.begin(
                payment_id,
                CallOperation.CAPTURE,
                lambda p: operations.capture_amount(p, chosen, wanted),
                amount=wanted,
                known=payment,
                call_id=call_id_of(binding),
            )
            answer = await self.calls.ask(chosen.capture(started, wanted), started, call, provider=chosen)
            return await self.calls.conclude(payment_id, call, answer, chosen, _itself, known=started, binding=binding)

        arguments = {"payment_id": payment_id, "amount": serialization.unstructure(amount)}
        return await self._run("capture", payment_id, tenant, idempotency_key, arguments, execute, Payment)

    async def cancel(
        self, payment_id: str, *, idempotency_key: str | None = None, tenant: str | None = None
    ) -> Payment:
        """Cancel a payment that is not captured; one never sent is canceled here alone."""

        async def execute(binding: KeyBinding | None) -> Payment:
            payment, chosen, own = await self._settled(payment_id, tenant, binding, CallOperation.CANCEL)
            if own and not allowed(payment.status, "cancel"):
                return payment  # as for a capture: the first attempt's cancel, settled by asking
            operations.check_cancel(payment, chosen, local=True)
            if operations.was_never_sent(payment):
                return await self.writer.mutate(payment_id, lambda p: self._cancel_locally(p, chosen), known=payment)
            started, call = await self.calls.begin(
                payment_id,
                CallOperation.CANCEL,
                lambda p: operations.check_cancel(p, chosen, local=False),
                known=payment,
                call_id=call_id_of(binding),
            )
            answer = await self.calls.ask(chosen.cancel(started), started, call, provider=chosen)
            return await self.calls.conclude(payment_id, call, answer, chosen, _itself, known=started, binding=binding)

        arguments = {"payment_id": payment_id}
        return await self._run("cancel", payment_id, tenant, idempotency_key, arguments, execute, Payment)

    def _cancel_locally(self, payment: Payment, chosen: Provider) -> Change:
        operations.check_cancel(payment, chosen, local=True)
        if payment.pending_call is not None or not operations.was_never_sent(payment):
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
        metadata: Mapping[str, Any] | None = None,
    ) -> Refund:
        """Refund ``amount`` (default: all that remains) of a captured payment.

        Succeeded plus pending refunds never exceed the captured amount:
        :class:`~paycore.errors.RefundExceedsCaptured` otherwise, and nothing changes.
        ``metadata`` travels with the refund to its provider (for cash: the
        ``till`` it is paid out of and the ``cashier`` who pays it).
        """

        amount = inputs.check_money(amount, what="a refund amount")
        reason = inputs.check_text(reason, what="reason")
        document = inputs.json_document(metadata, what="refund metadata")
        request = RefundRequest(payment_id, amount, reason, inputs.as_kept(document), tenant, self.calls, self.provider)

        async def execute(binding: KeyBinding | None) -> Refund:
            written = binding.updated if binding is not None else None
            if written is not None:  # stored with the key's claim
                started, call = written.payment, written.payment.pending_call
                assert call is not None
                assert call.refund_id is not None
                try:
                    chosen = self.provider(started.provider, tenant=started.tenant)
                except FlowClosed:  # closed since the claim: the refund written with it was never sent
                    await self.calls.undo(payment_id, call, known=started)
                    raise
                telling = partial(self.writer.notify, written.events, started)
                await self.calls.unless_cut(telling, payment_id, lambda: call)
                refund_id = call.refund_id
            else:
                payment, chosen, _ = await self._settled(payment_id, tenant, binding)
                earlier = binding.earlier("re", payment.refunds, within=payment.id) if binding is not None else None
                if earlier is not None and not await request.sends_again(earlier, self.writer.repository):
                    return earlier  # a first attempt under this key got that far: never refund twice
                refund = request.draft(payment, chosen, binding, earlier)
                await chosen.check_refund(payment, refund)
                written_down = await request.write_down(payment, chosen, refund, earlier)
                if isinstance(written_down, Refund):
                    return written_down  # the first attempt's refund, reported made as this one was written: not sent
                started, call, refund_id = written_down, written_down.pending_call, refund.id
                assert call is not None
            answer = await self.calls.ask(
                chosen.refund(started, started.refund(refund_id)), started, call, provider=chosen
            )
            if isinstance(answer, RefundUpdate):  # the answer is about this refund, whatever id it names
                named = answer if answer.refund_id == refund_id else evolve(answer, refund_id=refund_id)
                update: ProviderUpdate | Unknown = ProviderUpdate(refunds=(named,))
            else:
                update = answer
            return await self.calls.conclude(
                payment_id,
                call,
                update,
                chosen,
                lambda finished: finished.refund(refund_id),
                known=started,
                binding=binding,
            )

        money = serialization.unstructure(amount)
        arguments = {"payment_id": payment_id, "amount": money, "reason": reason, "metadata": dict(metadata or {})}
        return await self._run(
            "refund", payment_id, tenant, idempotency_key, arguments, execute, Refund, request.first_write
        )

    async def _settled(
        self, payment_id: str, tenant: str | None, binding: KeyBinding | None, operation: CallOperation | None = None
    ) -> tuple[Payment, Provider, bool]:
        """The payment and its provider once any earlier provider call of it is settled, and whether that call
        was this key's own ``operation`` call (:func:`~paycore.keys.call_id_of`). Settled by asking, it took
        effect, or the operation is still possible and is sent now, once (its first attempt sent nothing).

        A payment read with the operation's idempotency key (:attr:`KeyBinding.prefetched`) is not read again.
        """
        payment = await self.writer.load(payment_id, tenant, prefetched=binding.prefetched if binding else None)
        chosen = self.provider(payment.provider, tenant=payment.tenant)
        call = payment.pending_call
        own = call is not None and call.operation is operation and call.id in call_ids_of(binding)
        return await self.calls.settle(payment, chosen), chosen, own

    async def _run(
        self,
        operation: str,
        payment_id: str,
        tenant: str | None,
        key: str | None,
        arguments: Mapping[str, Any],
        execute: Callable[[KeyBinding | None], Any],
        result_type: type[T],
        updates: Callable[[KeyBinding, Payment], PaymentWrite | None] | None = None,
    ) -> T:
        self.check_open()
        inputs.check_payment_id(payment_id, tenant)
        # A key lives in the key space of its payment's tenant; another tenant named finds no payment (not its key).
        owner = tenant if tenant is not None or key is None else await self.writer.tenant_of(payment_id)
        if key is not None and tenant is not None:
            self.writer.refuse_another_tenant(payment_id, tenant)  # as a payment that does not exist, nothing read
        result: T = await self.idempotency.run(
            operation=operation,
            scope=scope_of(owner),
            key=key,
            arguments=arguments,
            execute=execute,
            result_type=result_type,
            prefetch=lambda binding: (payment_id,),
            updates=updates,
        )
        return result


_request_of: Final = attrgetter(
    "tenant", "provider", "order_id", "amount", "capture", "description", "customer", "items", "metadata", "return_url"
)
"""What the caller of ``create_payment`` gave for a payment: a retry under its key must give the same."""


def _itself(payment: Payment) -> Payment:
    """The result of an operation that returns the payment it leaves."""
    return payment
