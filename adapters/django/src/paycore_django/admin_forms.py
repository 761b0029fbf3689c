"""The forms of the admin actions that ask for more than a click: how much to refund, how a review or a
pending refund was settled, and an operator's fraud verdict (:mod:`paycore_django.admin`)."""

from __future__ import annotations

from django import forms

from paycore.status import FraudStatus, RefundStatus

__all__ = ["FraudForm", "RefundForm", "ReviewForm", "SettleRefundForm"]


class RefundForm(forms.Form):
    """How much to refund (blank: everything still refundable) and why."""

    amount = forms.CharField(
        required=False, help_text="In major units (e.g. 2500 XOF, 12.50 EUR); blank refunds all that is left."
    )
    reason = forms.CharField(required=False, max_length=500)


class ReviewForm(forms.Form):
    """How the review was settled."""

    note = forms.CharField(max_length=500, help_text="What was checked and decided.")


class SettleRefundForm(forms.Form):
    """How pending refunds ended at the provider, as its dashboard shows them, and what was checked."""

    outcome = forms.ChoiceField(
        choices=[
            (RefundStatus.SUCCEEDED.value, "succeeded"),
            (RefundStatus.FAILED.value, "failed (its amount is refundable again)"),
        ],
        widget=forms.RadioSelect,
        help_text="As the provider's dashboard shows the refunds.",
    )
    note = forms.CharField(max_length=500, help_text="What was checked at the provider.")


class FraudForm(forms.Form):
    """An operator's fraud verdict."""

    fraud_status = forms.ChoiceField(choices=[(s.value, s.value) for s in FraudStatus], label="Fraud status")
    message = forms.CharField(required=False, max_length=500)
