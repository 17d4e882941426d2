from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blueprints", "0003_blueprint_notify_url"),
    ]

    operations = [
        migrations.AddField(
            model_name="blueprint",
            name="concurrency_key",
            field=models.CharField(
                blank=True,
                help_text="An expression over input and order, e.g. {{ input.customer_id }}: "
                "at most one order per value runs at once, the others stay due; empty for no "
                "limit.",
                max_length=500,
            ),
        ),
    ]
