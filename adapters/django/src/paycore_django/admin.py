"""The Django admin of paycore: read every payment, act on it only through the flow.

Nothing here can set a status or an amount: every field is read-only, rows
cannot be added or deleted, and the actions (capture, cancel, refund,
refresh from the provider, resolve a review, set the fraud status, settle
pending refunds, settle open payments) call ``paycore_django.blocking_flow()``,
so they go through the state machine, the provider and the idempotency store
like any other call. Each action needs its own permission on the Payment model
(``capture_payment``, ``cancel_payment``, ``refund_payment``,
``refresh_payment``, ``review_payment``; settling pending refunds is a refund
decision: ``refund_payment``; settling open payments is an operator's verdict
on a payment its reports left open and records its money: ``review_payment`` and
``refund_payment``); superusers have them all. An action counts a payment done only when the flow's result says
so (:mod:`paycore_django.admin_outcomes`): a declined capture, a refund still
pending or an answer lost is told as such. Every payment an action changed gets
an entry in the admin's log naming the staff user and what was done
(:mod:`paycore_django.admin_audit`).

Payments are read from the database of paycore's ``django`` repository (its
``using``). An action with a confirmation page (refund, resolve reviews, set
the fraud status, settle pending refunds, settle open payments) acts on exactly
the payments that page listed, even after "select all": never on one that
arrived since; and settling pending refunds settles exactly the refunds its
page listed (:mod:`paycore_django.admin_settling`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.db.models import Model, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse

import paycore_django
from paycore.blocking import BlockingPaymentFlow
from paycore.errors import PaycoreError
from paycore.money import Money
from paycore.records import Payment as PaymentRecord
from paycore.status import RefundStatus
from paycore_django.admin_audit import (
    audited,
    cancel_change,
    capture_change,
    fraud_change,
    refresh_change,
    refund_audited,
    review_change,
)
from paycore_django.admin_confirmation import LISTED_REFUND, money_text
from paycore_django.admin_forms import FraudForm, RefundForm, ReviewForm
from paycore_django.admin_outcomes import ActionOutcome, cancel_outcome, capture_outcome, completed, refund_outcome
from paycore_django.admin_settling import SettlingActions
from paycore_django.conf import repository_database
from paycore_django.databases import non_atomic_requests
from paycore_django.models import Payment, PaymentEvent, Refund

__all__ = ["PaymentAdmin", "PaymentEventInline", "RefundInline"]

PERMISSIONS = {
    "capture": "capture_payment",
    "cancel": "cancel_payment",
    "refund": "refund_payment",
    "refresh": "refresh_payment",
    "review": "review_payment",
}
"""Action permission name -> codename of the permission on the Payment model."""


def _read_after(flow: BlockingPaymentFlow, payment: Payment) -> PaymentRecord | None:
    """``payment`` as stored after an action, or ``None`` when it cannot be read (the action's own result stands)."""
    try:
        return flow.get_payment(payment.id, tenant=payment.tenant)
    except PaycoreError:
        return None


class _ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    """An inline that shows rows and changes none, read from the database paycore stores payments in."""

    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Model]:
        """The rows, from the database of paycore's repository (:func:`~paycore_django.conf.repository_database`)."""
        found: QuerySet[Model] = super().get_queryset(request).using(repository_database())
        return found

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are written by the flow only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Rows are written by the flow only."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """History is never deleted."""
        return False


class RefundInline(_ReadOnlyInline):
    """A payment's refunds."""

    model = Refund
    fields = readonly_fields = ("id", "status", "refund_amount", "reason", "external_id", "created_at", "updated_at")

    @admin.display(description="amount")
    def refund_amount(self, refund: Refund) -> str:
        """The refund's amount in its currency."""
        return money_text(refund.amount, refund.currency)


class PaymentEventInline(_ReadOnlyInline):
    """A payment's history, in order."""

    model = PaymentEvent
    ordering = ("sequence",)
    fields = readonly_fields = (
        "sequence",
        "at",
        "kind",
        "cause",
        "from_status",
        "to_status",
        "event_amount",
        "refund_id",
        "provider_event_id",
        "message",
    )

    @admin.display(description="amount")
    def event_amount(self, event: PaymentEvent) -> str:
        """The amount the event moved, if any."""
        return money_text(event.amount, event.currency)


@admin.register(Payment)
class PaymentAdmin(SettlingActions, admin.ModelAdmin):  # type: ignore[type-arg]
    """Payments: searchable and filterable; changed only by the actions, through the flow."""

    list_display = (
        "id",
        "status",
        "provider",
        "tenant",
        "order_id",
        "amount_display",
        "captured_display",
        "refunded_display",
        "needs_review",
        "fraud_status",
        "created_at",
    )
    list_filter = ("status", "provider", "tenant", "needs_review", "fraud_status", "currency")
    search_fields = ("=id", "=external_id", "=order_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    inlines = (RefundInline, PaymentEventInline)
    actions = (
        "capture_payments",
        "cancel_payments",
        "refund_payments",
        "refresh_payments",
        "resolve_reviews",
        "set_fraud_status",
        "settle_pending_refunds",
        "settle_open_payments",
    )

    @non_atomic_requests
    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        """The list, where the actions run: outside ``ATOMIC_REQUESTS``' transaction on every database, since
        the actions write through the flow on connections of its own, which the request's open transaction
        would lock out."""
        return super().changelist_view(request, extra_context)

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Payment], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        """Run the posted action, unless a selected id could name no payment (it holds a NUL, which
        PostgreSQL refuses in any query): then nothing is done and the operator is told. (Django 6.1
        passes more arguments, which go on to Django's own.)"""
        if any("\x00" in selected for selected in request.POST.getlist(ACTION_CHECKBOX_NAME)):
            self.message_user(request, "Nothing was done: a selected id is not a payment's id.", messages.ERROR)
            return None
        if any("\x00" in listed for listed in request.POST.getlist(LISTED_REFUND)):
            self.message_user(request, "Nothing was done: a listed refund id is not a refund's id.", messages.ERROR)
            return None
        return super().response_action(request, queryset, *args, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every field: a payment changes only through the flow."""
        return [field.name for field in self.model._meta.fields] + [
            "amount_display",
            "captured_display",
            "refunded_display",
        ]

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        """The list as the query string filters it; a filter value holding a NUL (which PostgreSQL refuses
        in a query) is refused as Django refuses a lookup it cannot use: the list again, with ``?e=1``."""
        if any("\x00" in value for key, values in request.GET.lists() if key != SEARCH_VAR for value in values):
            raise IncorrectLookupParameters("a filter value holds a NUL character")
        found: ChangeList = super().get_changelist_instance(request)
        return found

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Payment | None:
        """The payment ``object_id`` names; ``None`` (Django's "not found") for an id holding a NUL,
        which no payment has and PostgreSQL refuses in a query."""
        if "\x00" in object_id:
            return None
        found: Payment | None = super().get_object(request, object_id, from_field)
        return found

    def get_queryset(self, request: HttpRequest) -> QuerySet[Payment]:
        """Payments with their succeeded refunds summed, from the database of paycore's repository (the list,
        a payment's page and the actions all read there; :func:`~paycore_django.conf.repository_database`)."""
        return (
            super()
            .get_queryset(request)
            .using(repository_database())
            .annotate(refunded_total=Sum("refunds__amount", filter=Q(refunds__status=RefundStatus.SUCCEEDED.value)))
        )

    # -- permissions ---------------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Payments are created by the flow only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """No field is editable; the actions change payments through the flow."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A payment and its history are never deleted."""
        return False

    def _may(self, request: HttpRequest, action: str) -> bool:
        return bool(request.user.has_perm(f"{self.opts.app_label}.{PERMISSIONS[action]}"))

    def has_capture_permission(self, request: HttpRequest) -> bool:
        """May capture authorized payments."""
        return self._may(request, "capture")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """May cancel payments not captured."""
        return self._may(request, "cancel")

    def has_refund_permission(self, request: HttpRequest) -> bool:
        """May refund captured payments, and settle refunds left pending."""
        return self._may(request, "refund")

    def has_refresh_permission(self, request: HttpRequest) -> bool:
        """May ask providers for a payment's state."""
        return self._may(request, "refresh")

    def has_review_permission(self, request: HttpRequest) -> bool:
        """May resolve reviews and set fraud statuses."""
        return self._may(request, "review")

    def has_settle_permission(self, request: HttpRequest) -> bool:
        """May settle open payments as found at the provider: an operator's verdict on a payment its reports left
        open (as resolving a review is) that records the money the provider holds (then refundable, as settling a
        refund does), so it needs both the review and the refund permissions."""
        return self._may(request, "review") and self._may(request, "refund")

    # -- columns -------------------------------------------------------------------------------

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, payment: Payment) -> str:
        """What the payment is for."""
        return money_text(payment.amount, payment.currency)

    @admin.display(description="captured", ordering="captured")
    def captured_display(self, payment: Payment) -> str:
        """What was captured."""
        return money_text(payment.captured, payment.currency)

    @admin.display(description="refunded")
    def refunded_display(self, payment: Payment) -> str:
        """What succeeded refunds gave back."""
        total = getattr(payment, "refunded_total", None)
        if total is None:
            total = sum(r.amount for r in payment.refunds.all() if r.status == RefundStatus.SUCCEEDED.value)
        return money_text(total or None, payment.currency) if total else "-"

    # -- actions -------------------------------------------------------------------------------

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Payment],
        verb: str,
        run: Callable[[Payment], ActionOutcome],
    ) -> None:
        """Run ``run`` for each selected payment, oldest first; count, record and tell as
        :meth:`~paycore_django.admin_audit.AuditTrail._run_each` does."""
        self._run_each(request, queryset.order_by("created_at", "id"), verb, run)

    @staticmethod
    def _key(action: str, payment: Payment) -> str:
        # Two submissions of the same action on the same state share a key: the second replays.
        return f"admin:{action}:{payment.id}:{payment.version}"

    @admin.action(description="Capture selected payments", permissions=["capture"])
    def capture_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        """Capture the whole authorized amount."""
        flow = paycore_django.blocking_flow()

        def capture(payment: Payment) -> ActionOutcome:
            after = flow.capture(payment.id, idempotency_key=self._key("capture", payment), tenant=payment.tenant)
            return audited(capture_outcome(after), payment, after, capture_change(after))

        self._each(request, queryset, "Captured", capture)

    @admin.action(description="Cancel selected payments", permissions=["cancel"])
    def cancel_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        """Cancel payments not captured (releases authorizations)."""
        flow = paycore_django.blocking_flow()

        def cancel(payment: Payment) -> ActionOutcome:
            after = flow.cancel(payment.id, idempotency_key=self._key("cancel", payment), tenant=payment.tenant)
            return audited(cancel_outcome(after), payment, after, cancel_change(after))

        self._each(request, queryset, "Canceled", cancel)

    @admin.action(description="Refresh selected payments from their provider", permissions=["refresh"])
    def refresh_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        """Ask each payment's provider for its state and apply it."""
        flow = paycore_django.blocking_flow()

        def refresh(payment: Payment) -> ActionOutcome:
            after = flow.refresh(payment.id, tenant=payment.tenant)
            return audited(completed(after), payment, after, refresh_change(after))

        self._each(request, queryset, "Refreshed", refresh)

    @admin.action(description="Refund selected payments…", permissions=["refund"])
    def refund_payments(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        """Ask how much to refund (an amount only for payments of one currency), then refund each listed payment."""
        currencies = queryset.order_by().values_list("currency", flat=True).distinct()
        form = RefundForm(request.POST if "apply" in request.POST else None, currencies=currencies)
        return self._confirmed(
            request, queryset, form, "refund_payments", "Refund payments", lambda: self._refund(request, queryset, form)
        )

    def _refund(self, request: HttpRequest, queryset: QuerySet[Payment], form: RefundForm) -> None:
        if refused := form.refusal():
            self.message_user(request, refused, messages.ERROR)
            return
        flow = paycore_django.blocking_flow()
        token = str(request.POST.get("token", ""))[:64] or secrets.token_urlsafe(12)
        raw_amount = form.cleaned_data["amount"].strip()

        def refund(payment: Payment) -> ActionOutcome:
            amount = Money.typed(raw_amount, payment.currency) if raw_amount else None
            known = {row.id for row in payment.refunds.all()}  # a resubmitted form replays one of them
            made = flow.refund(
                payment.id,
                amount=amount,
                reason=form.cleaned_data["reason"],
                idempotency_key=f"admin:refund:{token}:{payment.id}",
                tenant=payment.tenant,
            )
            return refund_audited(refund_outcome(made, _read_after(flow, payment)), made, known)

        self._each(request, queryset, "Refunded", refund)

    @admin.action(description="Resolve the review of selected payments…", permissions=["review"])
    def resolve_reviews(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        """Clear the needs-review flag of the payments the confirmation page listed, noting how it was settled."""
        form = ReviewForm(request.POST if "apply" in request.POST else None)
        return self._confirmed(
            request,
            queryset,
            form,
            "resolve_reviews",
            "Resolve reviews",
            lambda: self._resolve(request, queryset, form),
        )

    def _resolve(self, request: HttpRequest, queryset: QuerySet[Payment], form: forms.Form) -> None:
        flow = paycore_django.blocking_flow()
        note = form.cleaned_data["note"]

        def resolve(payment: Payment) -> ActionOutcome:
            after = flow.resolve_review(payment.id, note=note, tenant=payment.tenant)
            return audited(completed(after), payment, after, review_change(note))

        self._each(request, queryset, "Resolved", resolve)

    @admin.action(description="Set the fraud status of selected payments…", permissions=["review"])
    def set_fraud_status(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse | None:
        """Record an operator's fraud verdict on the payments the confirmation page listed."""
        form = FraudForm(request.POST if "apply" in request.POST else None)
        return self._confirmed(
            request,
            queryset,
            form,
            "set_fraud_status",
            "Set fraud status",
            lambda: self._set_fraud(request, queryset, form),
        )

    def _set_fraud(self, request: HttpRequest, queryset: QuerySet[Payment], form: forms.Form) -> None:
        flow = paycore_django.blocking_flow()
        verdict, message = form.cleaned_data["fraud_status"], form.cleaned_data["message"]

        def set_fraud(payment: Payment) -> ActionOutcome:
            after = flow.set_fraud_status(payment.id, verdict, message=message, tenant=payment.tenant)
            return audited(completed(after), payment, after, fraud_change(after, message))

        self._each(request, queryset, "Updated", set_fraud)
