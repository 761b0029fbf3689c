"""The tables of paycore in the Django ORM: storage only.

:class:`paycore.records.Payment` is the domain object; these models are how it
is kept (:mod:`paycore.rows` converts). Never change a payment by
saving these models: a payment changes only through
:class:`paycore.flow.PaymentFlow`, which checks its state machine, bumps its
``version`` and appends its events in one transaction. The admin may read them.

Amounts are integer minor units (``BigIntegerField``) beside their currency;
nested records (customer, basket, next action, pending provider call, the
provider's state and references) are JSON in :mod:`paycore.serialization`'s wire
format, so a new field of those records needs no migration. Every reference a
provider reported for a payment is also a :class:`PaymentReference` row: the
index webhooks find a payment by, and the constraint that gives a reference to
one payment per provider code and tenant. A ``NULL`` tenant is "no tenant": unique constraints that
involve the tenant come in pairs (one for a tenant, one for none) because SQL
treats every ``NULL`` as distinct.
"""

from __future__ import annotations

from typing import Final

from django.db import models
from django.db.models import Q

__all__ = ["IdempotencyRecord", "Payment", "PaymentEvent", "PaymentReference", "Refund", "WebhookReceipt"]

ID_LENGTH: Final = 64
CODE_LENGTH: Final = 64
STATUS_LENGTH: Final = 32
CURRENCY_LENGTH: Final = 3
REFERENCE_LENGTH: Final = 255


def _non_negative(model: str, *fields: str) -> list[models.CheckConstraint]:
    return [
        models.CheckConstraint(
            condition=Q(**{f"{name}__gte": 0}) | Q(**{f"{name}__isnull": True}),
            name=f"paycore_{model}_{name}_non_negative",
        )
        for name in fields
    ]


class Payment(models.Model):
    """One row per payment; ``version`` is the optimistic-concurrency counter."""

    id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    tenant = models.CharField(max_length=CODE_LENGTH, null=True, blank=True)
    provider = models.CharField(max_length=CODE_LENGTH)
    order_id = models.CharField(max_length=REFERENCE_LENGTH)
    status = models.CharField(max_length=STATUS_LENGTH)
    currency = models.CharField(max_length=CURRENCY_LENGTH)
    amount = models.BigIntegerField(help_text="Minor units of the currency.")
    authorized = models.BigIntegerField(null=True, blank=True, help_text="Minor units held, if authorized.")
    captured = models.BigIntegerField(null=True, blank=True, help_text="Minor units captured.")
    external_id = models.CharField(max_length=REFERENCE_LENGTH, null=True, blank=True)
    references = models.JSONField(
        default=list, blank=True, help_text="Every reference the provider reported, as the payment holds them."
    )
    provider_state = models.JSONField(
        default=dict, blank=True, help_text="The provider's own data for later calls (a JSON object)."
    )
    capture = models.BooleanField(default=True)
    description = models.TextField(blank=True, default="")
    customer = models.JSONField(null=True, blank=True)
    items = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    return_url = models.TextField(null=True, blank=True)
    next_action = models.JSONField(null=True, blank=True)
    fraud_status = models.CharField(max_length=STATUS_LENGTH, default="unknown")
    fraud_message = models.TextField(blank=True, default="")
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=STATUS_LENGTH, null=True, blank=True)
    review_message = models.TextField(blank=True, default="")
    pending_call = models.JSONField(null=True, blank=True)
    version = models.IntegerField()
    event_count = models.IntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [*_non_negative("payment", "amount", "authorized", "captured")]
        indexes = [
            models.Index(fields=("created_at", "id"), name="paycore_payment_created"),
            models.Index(fields=("tenant", "created_at", "id"), name="paycore_payment_tenant"),
            models.Index(fields=("order_id", "created_at", "id"), name="paycore_payment_order"),
            models.Index(fields=("status", "updated_at", "id"), name="paycore_payment_stale"),
            models.Index(fields=("status", "created_at", "id"), name="paycore_payment_status"),
            models.Index(fields=("tenant", "status", "created_at", "id"), name="paycore_payment_tenant_status"),
            # Only the payments that carry a provider call: the reaper's listing of them reads a few entries.
            models.Index(
                fields=("updated_at", "id"), condition=Q(pending_call__isnull=False), name="paycore_payment_calls"
            ),
        ]
        permissions = [
            ("capture_payment", "Can capture a payment"),
            ("cancel_payment", "Can cancel a payment"),
            ("refund_payment", "Can refund a payment"),
            ("refresh_payment", "Can refresh a payment from its provider"),
            ("review_payment", "Can resolve a payment's review and set its fraud status"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class PaymentReference(models.Model):
    """A reference a provider reported for a payment (its ``external_id`` and every other one).

    Webhooks find their payment through these rows; the unique constraints give
    a reference to one payment per provider code and tenant.
    """

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=CODE_LENGTH)
    tenant = models.CharField(max_length=CODE_LENGTH, null=True, blank=True)
    reference = models.CharField(max_length=REFERENCE_LENGTH)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="reference_rows")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("provider", "tenant", "reference"),
                condition=Q(tenant__isnull=False),
                name="paycore_reference_uniq",
            ),
            models.UniqueConstraint(
                fields=("provider", "reference"),
                condition=Q(tenant__isnull=True),
                name="paycore_reference_no_tenant_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.reference}"


class Refund(models.Model):
    """A refund of a payment, in the order the payment holds its refunds (``position``)."""

    id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refunds")
    position = models.IntegerField()
    status = models.CharField(max_length=STATUS_LENGTH)
    currency = models.CharField(max_length=CURRENCY_LENGTH)
    amount = models.BigIntegerField(help_text="Minor units of the currency.")
    reason = models.TextField(blank=True, default="")
    external_id = models.CharField(max_length=REFERENCE_LENGTH, null=True, blank=True)
    metadata = models.JSONField(
        default=dict, blank=True, help_text="What the caller said about the refund for its provider (a JSON object)."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ("payment", "position")
        constraints = [
            *_non_negative("refund", "amount"),
            models.UniqueConstraint(fields=("payment", "position"), name="paycore_refund_position_uniq"),
        ]
        indexes = [
            # Only the pending refunds: the reaper's listing of the payments holding one reads a few entries.
            models.Index(
                fields=("updated_at", "payment"), condition=Q(status="pending"), name="paycore_refund_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class PaymentEvent(models.Model):
    """The append-only history of a payment: one row per change, numbered per payment."""

    id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    sequence = models.IntegerField()
    kind = models.CharField(max_length=STATUS_LENGTH)
    cause = models.CharField(max_length=STATUS_LENGTH)
    tenant = models.CharField(max_length=CODE_LENGTH, null=True, blank=True)
    from_status = models.CharField(max_length=STATUS_LENGTH, null=True, blank=True)
    to_status = models.CharField(max_length=STATUS_LENGTH, null=True, blank=True)
    amount = models.BigIntegerField(null=True, blank=True, help_text="Minor units of the currency.")
    currency = models.CharField(max_length=CURRENCY_LENGTH, null=True, blank=True)
    refund_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    provider_event_id = models.CharField(max_length=REFERENCE_LENGTH, null=True, blank=True)
    message = models.TextField(blank=True, default="")
    at = models.DateTimeField()

    class Meta:
        ordering = ("payment", "sequence")
        constraints = [
            models.UniqueConstraint(fields=("payment", "sequence"), name="paycore_event_sequence_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} #{self.sequence} {self.kind}"


class WebhookReceipt(models.Model):
    """A provider event id already applied: the unique constraints make a second delivery a no-op."""

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(max_length=CODE_LENGTH)
    tenant = models.CharField(max_length=CODE_LENGTH, null=True, blank=True)
    event_id = models.CharField(max_length=REFERENCE_LENGTH)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="webhook_receipts")
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("provider", "tenant", "event_id"),
                condition=Q(tenant__isnull=False),
                name="paycore_receipt_uniq",
            ),
            models.UniqueConstraint(
                fields=("provider", "event_id"),
                condition=Q(tenant__isnull=True),
                name="paycore_receipt_no_tenant_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}:{self.event_id}"


class IdempotencyRecord(models.Model):
    """One idempotency key: held (``token`` set, ``expires_at`` = end of the lease) or
    completed (``result`` set, ``expires_at`` = end of its retention); Unix seconds."""

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=REFERENCE_LENGTH)
    key = models.CharField(max_length=REFERENCE_LENGTH)
    fingerprint = models.CharField(max_length=128)
    token = models.CharField(max_length=64, null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    expires_at = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=("scope", "key"), name="paycore_idempotency_key_uniq")]
        indexes = [models.Index(fields=("expires_at",), name="paycore_idempotency_expires")]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key}"
