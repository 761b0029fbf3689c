"""``ProviderConformance``: what every payment provider must do through ``PaymentFlow``.

Subclass it and provide:

* an async fixture ``flow``: a :class:`~paycore.flow.PaymentFlow` with the
  provider enabled under the code ``"conformance"`` (no tenant);
* an ``amount`` fixture if the provider does not take XOF;
* for a provider that sends webhooks, :meth:`ProviderConformance.deliveries`:
  make the provider move a payment to an outcome (as its customer or gateway
  would) and return the signed deliveries it sent about it, undelivered; and
  :meth:`ProviderConformance.refund_deliveries` for a provider that refunds.
  The suite delivers them itself: genuine, repeated, out of order, and forged
  (a flipped byte, the wrong secret, no signature, a stale timestamp, no
  amounts, negative amounts). To forge, it re-signs bodies with
  :meth:`ProviderConformance.sign` (Standard Webhooks by default) and edits
  amounts with :meth:`ProviderConformance.edit_amounts` (JSON by default);
* optionally :meth:`ProviderConformance.make_next_call_not_sent` and
  :meth:`ProviderConformance.make_next_call_unknown` (see
  :func:`interrupt_next_call`), which unlock the tests of failed calls, and
  :meth:`ProviderConformance.decline_next_refund` and
  :meth:`ProviderConformance.underpaid_deliveries`, which unlock the tests of a
  declined refund and of a customer who paid less than asked;
* :meth:`ProviderConformance.pay` only if paying takes more than creating the
  payment and delivering its ``SUCCEEDED`` deliveries (cash at a drawer), and
  :meth:`ProviderConformance.start_payment` if the provider must be told to
  leave a new payment awaiting the customer.

Tests that need a capability the provider does not declare are skipped, and say
so; a provider that declares webhooks must implement the delivery hooks.

The same module holds two helpers for providers' own tests: :class:`ScriptedAnswers`
(how a test provider's next calls end) and :func:`interrupt_next_call`.
"""

from __future__ import annotations

from paycore.testing.provider_base import CODE, AmountEdit, AmountKind
from paycore.testing.provider_delivery_tests import DeliveryTests
from paycore.testing.provider_failure_tests import FailureTests
from paycore.testing.provider_payment_tests import PaymentTests
from paycore.testing.scripting import OPERATIONS, ScriptedAnswers, interrupt_next_call

__all__ = [
    "CODE",
    "OPERATIONS",
    "AmountEdit",
    "AmountKind",
    "ProviderConformance",
    "ScriptedAnswers",
    "interrupt_next_call",
]


class ProviderConformance(PaymentTests, DeliveryTests, FailureTests):
    """Conformance tests for a :class:`~paycore.providers.Provider`, run through the flow (see the module docstring)."""
