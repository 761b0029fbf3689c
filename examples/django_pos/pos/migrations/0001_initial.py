from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("restaurant", models.CharField(default="chez-awa", max_length=64)),
                ("table", models.CharField(max_length=20)),
                ("dishes", models.CharField(max_length=200)),
                ("total", models.BigIntegerField(help_text="XOF (no minor unit)")),
                ("paid", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
