"""The confirmation page of the admin actions that need more input (refund, resolve reviews, set the fraud
status, settle pending refunds, settle open payments), as a mixin of :class:`paycore_django.admin.PaymentAdmin`.

The page lists the payments the action will act on and posts them back; Apply acts on exactly those, never
on "all that match the filter", which could take in a payment that arrived since, and does nothing when
they are no longer what the list holds. The page of "Settle pending refunds" also lists the payments'
pending refunds and posts them back (:data:`LISTED_REFUND`), so that exactly those are settled. The page of
"Settle open payments" lists the open ones with their amount and review, and names the others, skipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from paycore import serialization
from paycore.calls import ProviderCall
from paycore.money import Money
from paycore.operations import capture_in_doubt
from paycore.status import PaymentStatus, RefundStatus
from paycore_django.models import Payment, Refund

__all__ = [
    "LISTED_REFUND",
    "ConfirmationPages",
    "is_open",
    "is_pending",
    "money_text",
    "not_open_message",
    "skipped_message",
    "some",
]

LISTED_REFUND = "_listed_refund"
"""The field in which the confirmation page of "Settle pending refunds" posts back each refund it listed."""


def money_text(minor_units: int | None, currency: str | None) -> str:
    """An amount stored in minor units as an operator reads it (``-`` for none)."""
    if minor_units is None or not currency:
        return "-"
    return Money.minor(minor_units, currency).display()


class ConfirmationPages:
    """The confirmation page of a :class:`~django.contrib.admin.ModelAdmin` of payments: mixed into one."""

    admin_site: Any
    opts: Any
    message_user: Callable[..., None]

    def _confirmed(
        self,
        request: HttpRequest,
        queryset: QuerySet[Payment],
        form: forms.Form,
        action: str,
        title: str,
        run: Callable[[], None],
        *,
        refunds: bool = False,
        open_payments: bool = False,
    ) -> HttpResponse | None:
        """Show ``action``'s confirmation page until it is applied with ``form`` valid; then ``run()``.

        The page posts back the payments it listed (never "all that match the
        filter", which could take in a payment that arrived since), so Apply
        acts on those; if they are no longer exactly what the list holds (one
        is gone or left the filter), nothing is done and the operator is told.
        With ``refunds``, the page lists the payments' pending refunds too, and
        posts them back (:data:`LISTED_REFUND`); with ``open_payments``, it
        lists the open ones apart and names the others, skipped.
        """
        if "apply" in request.POST:
            changed = _listing_changed(request, queryset)
            if changed:
                self.message_user(request, changed, messages.ERROR)
                return None
        if not form.is_valid():
            return self._ask(request, queryset, form, action, title, refunds=refunds, open_payments=open_payments)
        run()
        return None

    def _ask(
        self,
        request: HttpRequest,
        queryset: QuerySet[Payment],
        form: forms.Form,
        action: str,
        title: str,
        *,
        refunds: bool = False,
        open_payments: bool = False,
    ) -> TemplateResponse | None:
        """The intermediate page of an action that needs more input, listing the payments it will act on (``None``,
        the operator told why, when they are more than one page can post back). With ``refunds``, it lists their
        pending refunds and names the payments without one as skipped (``None``, the operator told, when no
        payment has one). With ``open_payments``, it lists the open payments with their amount and review, and
        names the others as skipped (``None``, the operator told, when none is open)."""
        payments = list(queryset.prefetch_related("refunds") if refunds else queryset)
        ended = [payment for payment in payments if open_payments and not is_open(payment)]
        pending = [
            _ListedRefund(refund.id, money_text(refund.amount, refund.currency), refund.created_at, payment.id)
            for payment in (payments if refunds else [])
            for refund in payment.refunds.all()
            if is_pending(refund)
        ]
        holding = {refund.payment_id for refund in pending}
        skipped = [payment.id for payment in payments if refunds and payment.id not in holding]
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        if limit is not None and len(payments) + len(pending) + len(form.fields) + _PAGE_FIELDS > limit:
            selected = f"{len(payments)} payments" + (f" with {len(pending)} pending refunds" if refunds else "")
            self.message_user(
                request,
                f"Nothing was done: {selected} are selected, more than a confirmation page can list "
                f"(DATA_UPLOAD_MAX_NUMBER_FIELDS = {limit}). Filter the list down, or select fewer.",
                messages.ERROR,
            )
            return None
        if refunds and not pending:
            self.message_user(request, f"Nothing to settle. {skipped_message(skipped)}", messages.INFO)
            return None
        if open_payments and len(ended) == len(payments):
            self.message_user(request, f"Nothing to settle. {not_open_message(ended)}", messages.INFO)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "form": form,
            "action": action,
            "payments": payments,
            "selected": [str(payment.pk) for payment in payments],
            "refunds": pending if refunds else None,
            "open_payments": [_listed_payment(payment) for payment in payments if is_open(payment)]
            if open_payments
            else None,
            "skipped": _ended(ended) if open_payments else some(set(skipped)),
            "refund_field": LISTED_REFUND,
            "token": request.POST.get("token") or secrets.token_urlsafe(12),
        }
        return TemplateResponse(request, "admin/paycore_django/payment/action_form.html", context)


class _ListedRefund(NamedTuple):
    """A pending refund as a confirmation page lists it."""

    id: str
    amount: str
    created_at: datetime
    payment_id: str


class _ListedPayment(NamedTuple):
    """An open payment as a confirmation page lists it."""

    id: str
    status: str
    amount: str
    order_id: str
    review: str


def _listed_payment(payment: Payment) -> _ListedPayment:
    """``payment`` as a confirmation page lists it: with its amount, and why it is flagged for review, if it is."""
    review = ""
    if payment.needs_review:
        review = payment.review_message or (payment.review_reason or "flagged").replace("_", " ")
    return _ListedPayment(
        payment.id, payment.status, money_text(payment.amount, payment.currency), payment.order_id, review
    )


OPEN_STATUSES = frozenset({PaymentStatus.PENDING.value, PaymentStatus.PROCESSING.value})
"""The statuses of a payment its provider may still settle, which an operator may settle in its place."""


def is_open(payment: Payment) -> bool:
    """Whether ``payment``'s row says an operator may settle it: open (pending or processing), or authorized with a
    capture whose outcome is unknown (its answer lost, or another amount than asked reported: settled only as
    succeeded, with what the provider captured)."""
    if payment.status in OPEN_STATUSES:
        return True
    if payment.status != PaymentStatus.AUTHORIZED.value or not payment.pending_call:
        return False
    return capture_in_doubt(PaymentStatus.AUTHORIZED, serialization.structure(payment.pending_call, ProviderCall))


def not_open_message(payments: list[Payment]) -> str:
    """The message naming the payments a settling of open payments skipped, with their status (a few, and how
    many more)."""
    return f"Skipped, no longer open: {_ended(payments)}."


def _ended(payments: list[Payment]) -> str:
    """Up to a few of ``payments`` with their status, as ``pay_1 (succeeded)``, and how many more."""
    return some({f"{payment.id} ({payment.status})" for payment in payments})


def is_pending(refund: Refund) -> bool:
    """Whether ``refund``'s row says it awaits its outcome."""
    return bool(refund.status == RefundStatus.PENDING.value)


def skipped_message(payment_ids: list[str]) -> str:
    """The message naming the payments a settling of pending refunds skipped (a few, and how many more)."""
    return f"Skipped, no pending refund: {some(set(payment_ids))}."


_PAGE_FIELDS = 5
"""The fields a confirmation page posts besides its form's and the payments': CSRF token, select_across,
action, token, apply."""


def _listing_changed(request: HttpRequest, queryset: QuerySet[Payment]) -> str:
    """Why the payments an applied confirmation page would act on are not those it listed (``""`` when they are)."""
    listed = set(request.POST.getlist(ACTION_CHECKBOX_NAME))
    found = {str(pk) for pk in queryset.values_list("pk", flat=True)}
    if found == listed:
        return ""
    changes = []
    if listed - found:
        changes.append(f"no longer in the list: {some(listed - found)}")
    if found - listed:
        changes.append(f"not on the page: {some(found - listed)}")
    return (
        f"Nothing was done: the payments are not those the confirmation page listed ({'; '.join(changes)}). "
        "Select the payments again."
    )


def some(ids: set[str], shown: int = 5) -> str:
    """Up to ``shown`` of ``ids``, in order, and how many more."""
    named = sorted(ids)
    more = f" and {len(named) - shown} more" if len(named) > shown else ""
    return ", ".join(named[:shown]) + more
