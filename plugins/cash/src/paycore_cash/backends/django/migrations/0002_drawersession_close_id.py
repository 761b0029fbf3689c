from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("paycore_cash", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="drawersession",
            name="close_id",
            field=models.CharField(
                blank=True, help_text="The identity of a keyed close (from its key).", max_length=64, null=True
            ),
        ),
    ]
