"""The forms of the admin actions that ask for more than a click: how much to refund, how a review, a
pending refund or an open payment was settled, and an operator's fraud verdict (:mod:`paycore_django.admin`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from django import forms

from paycore.errors import MoneyError
from paycore.money import Money, currency_exponent
from paycore.status import FraudStatus, PaymentStatus, RefundStatus

__all__ = ["FraudForm", "RefundForm", "ReviewForm", "SettlePaymentForm", "SettleRefundForm"]


class _AmountInOneCurrency(forms.Form):
    """A form whose ``amount`` is typed in the one currency of the payments it acts on (``currencies``, their codes):
    the field is labelled with that currency, or says that there are several (without any, its help is general)."""

    amount_label: ClassVar[str]
    one_currency_help: ClassVar[str]
    """The field's help for payments of one ``{currency}``."""
    several_currencies_help: ClassVar[str]
    """The field's help for payments in several ``{currencies}``."""

    def __init__(self, *args: Any, currencies: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.currencies = sorted(set(currencies))
        field = self.fields["amount"]
        if len(self.currencies) == 1:
            (currency,) = self.currencies
            field.label = f"{self.amount_label} ({currency})"
            field.help_text = self.one_currency_help.format(currency=currency)
        elif self.currencies:
            field.help_text = self.several_currencies_help.format(currencies=_listed(self.currencies))


class RefundForm(_AmountInOneCurrency):
    """How much to refund (blank: everything still refundable) and why.

    A typed amount is in the currency of the payments refunded, so it is allowed only when they all have
    the same one (:meth:`refusal`); the field names that currency, or says there are several.
    """

    amount = forms.CharField(
        required=False,
        help_text="In the payments' currency, in major units (e.g. 2500 XOF, 12.50 EUR); "
        "blank refunds all that is left of each.",
    )
    reason = forms.CharField(required=False, max_length=500)

    amount_label = "Amount"
    one_currency_help = "In {currency}, in major units; blank refunds all that is left of each payment."
    several_currencies_help = (
        "The payments are in {currencies}: an amount can be typed only for payments of one currency. Leave it "
        "blank to refund all that is left of each payment."
    )

    def clean_amount(self) -> str:
        """The typed amount, checked as an amount of the payments' one currency: a field error, before anything is
        refunded, for text that is no amount of it (``"1,000"``, ``"12.505"`` of EUR) or is not above zero."""
        typed = str(self.cleaned_data["amount"]).strip()
        if not typed or len(self.currencies) != 1:
            return typed  # blank: all that is left; several currencies: refused whole (:meth:`refusal`)
        (currency,) = self.currencies
        if _typed_money(typed, currency).minor_units <= 0:
            raise forms.ValidationError(f"A refund is more than zero {currency}; leave it blank to refund all.")
        return typed

    def refusal(self) -> str:
        """Why the refund cannot be made as asked (``""`` when it can): an amount typed for payments in several
        currencies, which would be read as so much of each."""
        if not self.cleaned_data["amount"].strip() or len(self.currencies) < 2:
            return ""
        return (
            f"Nothing was refunded: the selected payments are in {_listed(self.currencies)}, and an amount is in "
            "one currency. Select payments of one currency, or leave the amount blank to refund all that is left "
            "of each payment."
        )


def _typed_money(typed: str, currency: str) -> Money:
    """``typed`` read as an amount of ``currency`` with :meth:`Money.typed`: a field error, before anything is done,
    for text that is no amount of it (``"1,000"``, ``"1e3"``, ``"+100"``, ``"12.505"`` of EUR, ``"10.5"`` of XOF)."""
    example = "2500" if currency_exponent(currency) == 0 else f"12.{'5' + '0' * (currency_exponent(currency) - 1)}"
    try:
        return Money.typed(typed, currency)
    except MoneyError as error:
        why = str(error).partition("): ")[2] or "not digits with at most one '.'"
        raise forms.ValidationError(
            f"{typed!r} is not an amount of {currency} ({why}): type digits and at most one '.', as in {example}."
        ) from None


def _listed(currencies: list[str]) -> str:
    """Two or more currencies as a sentence names them: ``["EUR", "USD", "XOF"]`` as ``"EUR, USD and XOF"``."""
    return ", ".join(currencies[:-1]) + f" and {currencies[-1]}"


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


class SettlePaymentForm(_AmountInOneCurrency):
    """How open payments ended at the provider, as its dashboard shows them: succeeded (the money captured),
    authorized (a hold, captured or canceled afterwards as usual) or failed; the amount the provider holds (blank:
    each payment's whole amount); and what was checked.

    An amount is in the currency of the payments settled, so it can be typed only when they all have the same one:
    for payments in several currencies it is a field error (as is one given with ``failed``).
    """

    outcome = forms.ChoiceField(
        choices=[
            (PaymentStatus.SUCCEEDED.value, "succeeded (the provider captured the money)"),
            (PaymentStatus.AUTHORIZED.value, "authorized (the provider holds it: capture or cancel it afterwards)"),
            (PaymentStatus.FAILED.value, "failed (no money was taken)"),
        ],
        widget=forms.RadioSelect,
        help_text="As the provider's dashboard shows the payments.",
    )
    amount = forms.CharField(
        required=False,
        label="Amount held",
        help_text="What the provider holds of each payment, in major units (e.g. 8000 XOF, 12.50 EUR); "
        "blank records each payment's whole amount.",
    )
    note = forms.CharField(max_length=500, help_text="What was checked at the provider.")

    amount_label = "Amount held"
    one_currency_help = (
        "What the provider holds of each payment, in {currency}, in major units (less than the payment's amount for "
        "an underpaid transfer); blank records each payment's whole amount."
    )
    several_currencies_help = (
        "The payments are in {currencies}: an amount can be typed only for payments of one currency. Leave it "
        "blank to record each payment's whole amount."
    )

    def clean_amount(self) -> str:
        """The typed amount, checked as an amount of the payments' one currency: a field error, before anything is
        settled, for text that is no amount of it, an amount not above zero, or payments in several currencies."""
        typed = str(self.cleaned_data["amount"]).strip()
        if not typed:
            return typed  # each payment's whole amount
        if len(self.currencies) != 1:
            raise forms.ValidationError(
                f"The selected payments are in {_listed(self.currencies) if self.currencies else 'no currency'}, "
                "and an amount is in one currency: select payments of one currency, or leave it blank to record "
                "each payment's whole amount."
            )
        (currency,) = self.currencies
        if _typed_money(typed, currency).minor_units <= 0:
            raise forms.ValidationError(f"An amount held is more than zero {currency}; choose failed if none is.")
        return typed

    def clean(self) -> dict[str, Any]:
        """The form's data; an amount typed for payments that failed is a field error (a failed payment holds none)."""
        cleaned: dict[str, Any] = super().clean()
        if cleaned.get("outcome") == PaymentStatus.FAILED.value and cleaned.get("amount"):
            self.add_error(
                "amount", "A failed payment holds nothing: leave the amount blank, or choose another outcome."
            )
        return cleaned


class FraudForm(forms.Form):
    """An operator's fraud verdict."""

    fraud_status = forms.ChoiceField(choices=[(s.value, s.value) for s in FraudStatus], label="Fraud status")
    message = forms.CharField(required=False, max_length=500)
