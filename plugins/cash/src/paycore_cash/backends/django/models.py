"""The tables of the cash drawers in the Django ORM: storage only.

:class:`paycore_cash.records.DrawerSession` and
:class:`~paycore_cash.records.CashMovement` are the domain records; these
models are how they are kept (:mod:`paycore_cash.backends.django.storage`
converts). Never change a drawer by saving these models: a drawer changes only
through :class:`paycore_cash.drawers.CashDrawers` and the cash provider, which
check its rules and its ``version``. The admin may read them.

Amounts are integer minor units (``BigIntegerField``) beside the drawer's
currency. The tables themselves keep the rules that matter under concurrency:
one open session per till (a conditional unique constraint; the tenant-less
default is stored as ``""`` so that it, too, is one tenant), one SALE
movement per payment and one REFUND movement per refund; and one
:class:`RefundClaim` per refund id, which says whether its cash was paid out or
the refund was given up, so that a call given up is never paid out afterwards.
"""

from __future__ import annotations

from typing import Final

from django.db import models
from django.db.models import Q

from paycore_cash.backends import rows
from paycore_cash.records import DrawerStatus, MovementKind

__all__ = ["NO_TENANT", "CashMovement", "DrawerSession", "RefundClaim"]

ID_LENGTH: Final = 64
CODE_LENGTH: Final = 64
NAME_LENGTH: Final = 255
STATUS_LENGTH: Final = 32
OUTCOME_LENGTH: Final = 16
"""Room for a refund claim's outcome (:data:`~paycore_cash.backends.rows.PAID_OUT`,
:data:`~paycore_cash.backends.rows.GIVEN_UP`)."""
CURRENCY_LENGTH: Final = 3

NO_TENANT: Final = rows.NO_TENANT
"""How the tenant-less default (``tenant=None``) is stored: as in every relational backend."""


_OPEN: Final = DrawerStatus.OPEN.value
_SALE: Final = MovementKind.SALE.value
_REFUND: Final = MovementKind.REFUND.value


def _non_negative(table: str, *fields: str) -> list[models.CheckConstraint]:
    return [
        models.CheckConstraint(
            condition=Q(**{f"{name}__gte": 0}) | Q(**{f"{name}__isnull": True}),
            name=f"paycore_cash_{table}_{name}_non_negative",
        )
        for name in fields
    ]


class DrawerSession(models.Model):  # type: ignore[misc]
    """One row per drawer session; ``version`` is bumped by every movement and by the close."""

    id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    tenant = models.CharField(max_length=CODE_LENGTH, blank=True, help_text='"" is the tenant-less default.')
    till = models.CharField(max_length=CODE_LENGTH)
    currency = models.CharField(max_length=CURRENCY_LENGTH)
    opening_float = models.BigIntegerField(help_text="Minor units of the currency.")
    opened_by = models.CharField(max_length=NAME_LENGTH)
    opened_at = models.DateTimeField()
    status = models.CharField(max_length=STATUS_LENGTH)
    closed_by = models.CharField(max_length=NAME_LENGTH, null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    counted = models.BigIntegerField(null=True, blank=True, help_text="Minor units counted at closing.")
    expected = models.BigIntegerField(null=True, blank=True, help_text="Minor units expected at closing.")
    variance = models.BigIntegerField(null=True, blank=True, help_text="Counted minus expected, minor units.")
    close_id = models.CharField(
        max_length=ID_LENGTH, null=True, blank=True, help_text="The identity of a keyed close (from its key)."
    )
    version = models.IntegerField()

    class Meta:
        db_table = "paycore_cash_drawer_session"
        verbose_name = "drawer session"
        ordering = ("opened_at", "id")
        constraints = [
            *_non_negative("session", "opening_float", "counted"),
            models.UniqueConstraint(
                fields=("tenant", "till"),
                condition=Q(status=_OPEN),
                name="paycore_cash_session_open_till_uniq",
            ),
        ]
        indexes = [models.Index(fields=("tenant", "till", "opened_at"), name="paycore_cash_session_till")]

    def __str__(self) -> str:
        return f"{self.id} ({self.till}, {self.status})"


class CashMovement(models.Model):  # type: ignore[misc]
    """A cash movement of a session; ``position`` is the order it was added in (the session's version then)."""

    id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    session = models.ForeignKey(DrawerSession, on_delete=models.PROTECT, related_name="movements")
    position = models.IntegerField()
    kind = models.CharField(max_length=STATUS_LENGTH)
    currency = models.CharField(max_length=CURRENCY_LENGTH)
    amount = models.BigIntegerField(help_text="Minor units of the currency; the kind says the direction.")
    at = models.DateTimeField()
    actor = models.CharField(max_length=NAME_LENGTH, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    payment_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    refund_id = models.CharField(max_length=ID_LENGTH, null=True, blank=True)
    tendered = models.BigIntegerField(null=True, blank=True, help_text="Sales: minor units handed over.")
    change = models.BigIntegerField(null=True, blank=True, help_text="Sales: minor units given back.")

    class Meta:
        db_table = "paycore_cash_movement"
        verbose_name = "cash movement"
        ordering = ("session", "position")
        constraints = [
            *_non_negative("movement", "amount", "tendered", "change"),
            models.UniqueConstraint(fields=("session", "position"), name="paycore_cash_movement_position_uniq"),
            models.UniqueConstraint(
                fields=("payment_id",), condition=Q(kind=_SALE), name="paycore_cash_movement_sale_uniq"
            ),
            models.UniqueConstraint(
                fields=("refund_id",), condition=Q(kind=_REFUND), name="paycore_cash_movement_refund_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.kind})"


class RefundClaim(models.Model):  # type: ignore[misc]
    """What became of a refund id at the drawers: its cash was paid out, or it was given up.

    Written in the same transaction as the REFUND movement (``paid_out``) or by the give-up (``given_up``,
    ``through`` a version of the payment: no call written down at that version or before pays it out; a
    later one turns the row into ``paid_out``). The primary key is the refund id, so of a give-up and a
    pay-out racing, one write fails or waits and its transaction stores nothing.
    """

    refund_id = models.CharField(primary_key=True, max_length=ID_LENGTH)
    payment_id = models.CharField(max_length=ID_LENGTH, help_text='"" for a refund movement that names none.')
    outcome = models.CharField(max_length=OUTCOME_LENGTH, help_text='"paid_out" or "given_up".')
    through = models.IntegerField(
        null=True, blank=True, help_text="Given up: the payment version it was given up through."
    )
    at = models.DateTimeField()

    class Meta:
        db_table = "paycore_cash_refund_claim"
        verbose_name = "refund claim"
        ordering = ("at", "refund_id")
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome__in=(rows.PAID_OUT, rows.GIVEN_UP)), name="paycore_cash_refund_claim_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.refund_id} ({self.outcome})"
