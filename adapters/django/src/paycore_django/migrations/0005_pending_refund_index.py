# A partial index of the pending refunds: the reaper lists the payments holding one, oldest first.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("paycore_django", "0004_pending_call_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="refund",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["updated_at", "payment"],
                name="paycore_refund_pending",
            ),
        ),
    ]
