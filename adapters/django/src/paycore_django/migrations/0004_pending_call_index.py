# A partial index of the payments that carry a provider call: the reaper lists them oldest first.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("paycore_django", "0003_listing_indexes_refund_metadata"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="payment",
            index=models.Index(
                condition=models.Q(("pending_call__isnull", False)),
                fields=["updated_at", "id"],
                name="paycore_payment_calls",
            ),
        ),
    ]
