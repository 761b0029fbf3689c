import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="DrawerSession",
            fields=[
                ("id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("tenant", models.CharField(blank=True, help_text='"" is the tenant-less default.', max_length=64)),
                ("till", models.CharField(max_length=64)),
                ("currency", models.CharField(max_length=3)),
                ("opening_float", models.BigIntegerField(help_text="Minor units of the currency.")),
                ("opened_by", models.CharField(max_length=255)),
                ("opened_at", models.DateTimeField()),
                ("status", models.CharField(max_length=32)),
                ("closed_by", models.CharField(blank=True, max_length=255, null=True)),
                ("closed_at", models.DateTimeField(blank=True, null=True)),
                ("counted", models.BigIntegerField(blank=True, help_text="Minor units counted at closing.", null=True)),
                (
                    "expected",
                    models.BigIntegerField(blank=True, help_text="Minor units expected at closing.", null=True),
                ),
                (
                    "variance",
                    models.BigIntegerField(blank=True, help_text="Counted minus expected, minor units.", null=True),
                ),
                ("version", models.IntegerField()),
            ],
            options={
                "verbose_name": "drawer session",
                "db_table": "paycore_cash_drawer_session",
                "ordering": ("opened_at", "id"),
                "indexes": [models.Index(fields=["tenant", "till", "opened_at"], name="paycore_cash_session_till")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("opening_float__gte", 0), ("opening_float__isnull", True), _connector="OR"),
                        name="paycore_cash_session_opening_float_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("counted__gte", 0), ("counted__isnull", True), _connector="OR"),
                        name="paycore_cash_session_counted_non_negative",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("status", "open")),
                        fields=("tenant", "till"),
                        name="paycore_cash_session_open_till_uniq",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="CashMovement",
            fields=[
                ("id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("position", models.IntegerField()),
                ("kind", models.CharField(max_length=32)),
                ("currency", models.CharField(max_length=3)),
                (
                    "amount",
                    models.BigIntegerField(help_text="Minor units of the currency; the kind says the direction."),
                ),
                ("at", models.DateTimeField()),
                ("actor", models.CharField(blank=True, default="", max_length=255)),
                ("reason", models.TextField(blank=True, default="")),
                ("payment_id", models.CharField(blank=True, max_length=64, null=True)),
                ("refund_id", models.CharField(blank=True, max_length=64, null=True)),
                (
                    "tendered",
                    models.BigIntegerField(blank=True, help_text="Sales: minor units handed over.", null=True),
                ),
                ("change", models.BigIntegerField(blank=True, help_text="Sales: minor units given back.", null=True)),
                (
                    "session",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="movements",
                        to="paycore_cash.drawersession",
                    ),
                ),
            ],
            options={
                "verbose_name": "cash movement",
                "db_table": "paycore_cash_movement",
                "ordering": ("session", "position"),
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("amount__gte", 0), ("amount__isnull", True), _connector="OR"),
                        name="paycore_cash_movement_amount_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("tendered__gte", 0), ("tendered__isnull", True), _connector="OR"),
                        name="paycore_cash_movement_tendered_non_negative",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("change__gte", 0), ("change__isnull", True), _connector="OR"),
                        name="paycore_cash_movement_change_non_negative",
                    ),
                    models.UniqueConstraint(fields=("session", "position"), name="paycore_cash_movement_position_uniq"),
                    models.UniqueConstraint(
                        condition=models.Q(("kind", "sale")),
                        fields=("payment_id",),
                        name="paycore_cash_movement_sale_uniq",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("kind", "refund")),
                        fields=("refund_id",),
                        name="paycore_cash_movement_refund_uniq",
                    ),
                ],
            },
        ),
    ]
