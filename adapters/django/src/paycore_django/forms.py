"""``PaymentMethodForm``: the customer picks how to pay; nothing else comes from the browser.

The form offers the providers a tenant enabled that accept the order's
currency and that ``PROVIDER_FILTER`` lets the request use
(:func:`offered_providers`). It has no amount field on purpose: the amount is
what the order still owes, of the total the shop's ``ORDER_RESOLVER`` states. Nor does it carry
an idempotency key: :func:`paycore_django.views.pay` derives one from the order,
so a double click, a resubmitted form and a second tab share one payment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.http import HttpRequest

from paycore.errors import ConfigurationError
from paycore.providers import Provider
from paycore_django.conf import django_options

__all__ = ["PaymentMethodForm", "offered_providers", "provider_label", "providers_for_currency"]


def offered_providers(request: HttpRequest, providers: Mapping[str, Provider]) -> dict[str, Provider]:
    """The providers of ``providers`` (by code) that ``request`` may pay with.

    All of them, unless ``PAYCORE_DJANGO["PROVIDER_FILTER"]`` is set: then those
    of its answer, a mapping by code, that are among ``providers`` (a filter
    can leave providers out, never add one).
    """
    choose = django_options().provider_filter
    if choose is None:
        return dict(providers)
    chosen = choose(request, dict(providers))
    if not isinstance(chosen, Mapping):
        raise ConfigurationError(
            f"PAYCORE_DJANGO['PROVIDER_FILTER'] must return the providers it keeps, a dict by code, not {chosen!r}"
        )
    return {code: provider for code, provider in providers.items() if code in chosen}


def providers_for_currency(providers: Mapping[str, Provider], currency: str) -> dict[str, Provider]:
    """The providers of ``providers`` that accept ``currency``, by code, in code order."""
    return {
        code: provider
        for code, provider in sorted(providers.items())
        if provider.currencies is None or currency in provider.currencies
    }


def provider_label(provider: Provider) -> str:
    """How a provider is shown to customers: its ``label`` setting, else its code."""
    label = provider.settings.get("label")
    return str(label) if label else provider.code


class PaymentMethodForm(forms.Form):
    """Choose one of ``providers`` that accepts ``currency``."""

    provider = forms.ChoiceField(label="Pay with", widget=forms.RadioSelect)

    def __init__(self, data: Any = None, *, providers: Mapping[str, Provider], currency: str, **kwargs: Any) -> None:
        super().__init__(data, **kwargs)
        self.currency = currency
        self.offered = providers_for_currency(providers, currency)
        field = self.fields["provider"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(code, provider_label(provider)) for code, provider in self.offered.items()]
        if len(self.offered) == 1:
            field.initial = next(iter(self.offered))
