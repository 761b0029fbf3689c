"""The admin actions that settle what a provider's reports could not, as its dashboard shows it: pending refunds
(``flow.resolve_refund``) and open payments (``flow.resolve_payment``), as a mixin of
:class:`paycore_django.admin.PaymentAdmin`.

Both ask on a confirmation page how it ended and what was checked, and act on exactly what the page listed.
"Settle pending refunds" settles the refunds the page listed that are still pending. "Settle open payments"
settles the selected payments still pending or processing as succeeded or authorized (with the amount the provider
holds, blank for the whole amount: an underpaid transfer records less) or failed; the others are skipped. A payment
flagged for review stays flagged (the operator is told): "Resolve the review" closes it once checked. Each refusal
is told naming the payment, and each payment settled is recorded in the audit trail
(:mod:`paycore_django.admin_audit`).
"""

from __future__ import annotations

from attrs import evolve
from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.errors import PaycoreError
from paycore.money import Money
from paycore_django.admin_audit import AuditTrail, payment_settled_change, refunds_settled_change
from paycore_django.admin_confirmation import (
    LISTED_REFUND,
    ConfirmationPages,
    is_open,
    is_pending,
    not_open_message,
    skipped_message,
    some,
)
from paycore_django.admin_forms import SettlePaymentForm, SettleRefundForm
from paycore_django.admin_outcomes import (
    ActionOutcome,
    payment_settled_outcome,
    refund_not_listed,
    refund_not_pending,
    settle_outcome,
)
from paycore_django.models import Payment, Refund

__all__ = ["SettlingActions"]


class SettlingActions(ConfirmationPages, AuditTrail):
    """The settling actions of a :class:`~django.contrib.admin.ModelAdmin` of payments: mixed into one, which says
    who may run them (``has_refund_permission``: pending refunds; ``has_settle_permission``: open payments)."""

    @admin.action(description="Settle pending refunds of selected payments…", permissions=["refund"])
    def settle_pending_refunds(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        """Settle the pending refunds the confirmation page listed as succeeded or failed, as the provider's
        dashboard shows them, noting what was checked."""
        form = SettleRefundForm(request.POST if "apply" in request.POST else None)
        return self._confirmed(
            request,
            queryset,
            form,
            "settle_pending_refunds",
            "Settle pending refunds",
            lambda: self._settle(request, queryset, form),
            refunds=True,
        )

    def _settle(self, request: HttpRequest, queryset: QuerySet[Payment], form: forms.Form) -> None:
        """Settle each refund the page listed that is still pending; tell what happened to the others."""
        flow = paycore_django.blocking_flow()
        outcome, note = form.cleaned_data["outcome"], form.cleaned_data["note"]
        listed = set(request.POST.getlist(LISTED_REFUND))
        unknown = set(listed)
        settled, told, skipped = 0, [], []
        for payment in queryset.order_by("created_at", "id").prefetch_related("refunds"):
            refunds = list(payment.refunds.all())
            unknown -= {refund.id for refund in refunds}
            if not any(refund.id in listed or is_pending(refund) for refund in refunds):
                skipped.append(payment.id)
            settled_here = []
            for refund in refunds:
                if refund.id in listed:
                    said = self._settle_one(flow, payment, refund, outcome, note)
                elif is_pending(refund):
                    said = refund_not_listed(payment.id, refund.id)
                else:
                    continue
                if said.done:
                    settled_here.append(refund.id)
                if said.message:
                    told.append(said)
            if settled_here:
                self._audit(request, payment, refunds_settled_change(settled_here, outcome, note))
            settled += len(settled_here)
        if unknown:
            told.append(
                ActionOutcome(
                    False, f"Not settled: {some(unknown)}: not refunds of the listed payments.", messages.ERROR
                )
            )
        if settled:
            self.message_user(request, f"Settled {settled} refund(s) as {outcome}.", messages.SUCCESS)
        for said in told:
            self.message_user(request, said.message, said.level)
        if skipped:
            self.message_user(request, skipped_message(skipped), messages.INFO)

    @staticmethod
    def _settle_one(
        flow: BlockingPaymentFlow, payment: Payment, refund: Refund, outcome: str, note: str
    ) -> ActionOutcome:
        """Settle ``refund``, listed as pending, unless it no longer is (a webhook or a refresh settled it since)."""
        if not is_pending(refund):
            return refund_not_pending(payment.id, refund.id, refund.status)
        try:
            after = flow.resolve_refund(payment.id, refund.id, outcome=outcome, note=note, tenant=payment.tenant)
        except PaycoreError as error:
            return ActionOutcome(False, f"Not settled: refund {refund.id} of {payment.id}: {error}", messages.ERROR)
        return settle_outcome(after, refund.id)

    @admin.action(description="Settle open payments as found at the provider…", permissions=["settle"])
    def settle_open_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        """Settle the open payments the confirmation page listed as succeeded or authorized (with the amount the
        provider holds) or failed, as the provider's dashboard shows them, noting what was checked."""
        currencies = queryset.order_by().values_list("currency", flat=True).distinct()
        form = SettlePaymentForm(request.POST if "apply" in request.POST else None, currencies=currencies)
        return self._confirmed(
            request,
            queryset,
            form,
            "settle_open_payments",
            "Settle open payments",
            lambda: self._settle_open(request, queryset, form),
            open_payments=True,
        )

    def _settle_open(self, request: HttpRequest, queryset: QuerySet[Payment], form: forms.Form) -> None:
        """Settle each listed payment still open; name the others, skipped (settled since, or never open)."""
        flow = paycore_django.blocking_flow()
        outcome, held, note = (form.cleaned_data[name] for name in ("outcome", "amount", "note"))
        payments = list(queryset.order_by("created_at", "id"))
        self._run_each(
            request,
            [payment for payment in payments if is_open(payment)],
            "Settled",
            lambda payment: self._settle_payment(flow, payment, outcome, held, note),
            done_as=f" as {outcome}",
        )
        ended = [payment for payment in payments if not is_open(payment)]
        if ended:
            self.message_user(request, not_open_message(ended), messages.INFO)

    @staticmethod
    def _settle_payment(
        flow: BlockingPaymentFlow, payment: Payment, outcome: str, held: str, note: str
    ) -> ActionOutcome:
        """Settle the open ``payment`` as ``outcome`` with ``held`` (typed in its currency; blank: its whole amount);
        a refusal (a call still able to act, an amount above the payment's, ended meanwhile) is told."""
        try:
            amount = Money.typed(held, payment.currency) if held else None
            after = flow.resolve_payment(payment.id, outcome=outcome, amount=amount, note=note, tenant=payment.tenant)
        except PaycoreError as error:
            return ActionOutcome(False, f"Not settled: {payment.id}: {error}", messages.ERROR)
        return evolve(payment_settled_outcome(after), change=payment_settled_change(after, note))
