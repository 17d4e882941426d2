from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0008_order_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="concurrency_key",
            field=models.CharField(blank=True, db_default="", default="", max_length=500),
        ),
        migrations.AddConstraint(
            model_name="order",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    ("status", "running"), models.Q(("concurrency_key", ""), _negated=True)
                ),
                fields=("workflow", "concurrency_key"),
                name="order_running_key",
            ),
        ),
    ]
