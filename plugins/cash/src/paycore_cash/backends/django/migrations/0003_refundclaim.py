from typing import Any

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

BATCH = 1000
"""Refund claims written per statement while claiming the refunds paid out already."""


def claim_paid_out_refunds(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Give every stored REFUND movement with a refund id its ``paid_out`` claim, so that refund is never given up."""
    using = schema_editor.connection.alias
    movements = apps.get_model("paycore_cash", "CashMovement").objects.using(using)
    claims = apps.get_model("paycore_cash", "RefundClaim")
    batch: list[Any] = []
    paid = movements.filter(kind="refund", refund_id__isnull=False).order_by("pk")
    for refund_id, payment_id, at in paid.values_list("refund_id", "payment_id", "at"):
        batch.append(claims(refund_id=refund_id, payment_id=payment_id or "", outcome="paid_out", at=at))
        if len(batch) == BATCH:
            claims.objects.using(using).bulk_create(batch)
            batch = []
    if batch:
        claims.objects.using(using).bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("paycore_cash", "0002_drawersession_close_id"),
    ]

    operations = [
        migrations.CreateModel(
            name="RefundClaim",
            fields=[
                ("refund_id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("payment_id", models.CharField(help_text='"" for a refund movement that names none.', max_length=64)),
                ("outcome", models.CharField(help_text='"paid_out" or "given_up".', max_length=16)),
                (
                    "through",
                    models.IntegerField(
                        blank=True, help_text="Given up: the payment version it was given up through.", null=True
                    ),
                ),
                ("at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "refund claim",
                "db_table": "paycore_cash_refund_claim",
                "ordering": ("at", "refund_id"),
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("outcome__in", ("paid_out", "given_up"))),
                        name="paycore_cash_refund_claim_outcome_valid",
                    )
                ],
            },
        ),
        migrations.RunPython(claim_paid_out_refunds, migrations.RunPython.noop, elidable=True),
    ]
