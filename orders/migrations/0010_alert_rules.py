import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0009_order_concurrency_key"),
    ]

    operations = [
        migrations.CreateModel(
            name="AlertRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100, unique=True)),
                ("enabled", models.BooleanField(default=True)),
                (
                    "workflow",
                    models.CharField(
                        blank=True,
                        help_text="The blueprint's slug; empty for any blueprint.",
                        max_length=100,
                    ),
                ),
                (
                    "step",
                    models.CharField(
                        blank=True,
                        help_text="The id of the step that failed (the order list's failed step); empty for any step.",
                        max_length=200,
                    ),
                ),
                (
                    "error_contains",
                    models.CharField(
                        blank=True,
                        help_text="Text the order's error contains, in any case; empty for any error.",
                        max_length=500,
                    ),
                ),
                (
                    "threshold",
                    models.PositiveIntegerField(
                        default=5,
                        help_text="Alert once this many orders failed within the window.",
                        validators=[django.core.validators.MinValueValidator(1)],
                    ),
                ),
                (
                    "window_minutes",
                    models.PositiveIntegerField(
                        default=15,
                        help_text="The window, in minutes: the failures counted, and at most one alert in it.",
                        validators=[
                            django.core.validators.MinValueValidator(1),
                            django.core.validators.MaxValueValidator(10080),
                        ],
                    ),
                ),
                (
                    "channel",
                    models.CharField(
                        choices=[("email", "E-mail"), ("webhook", "Webhook")],
                        default="email",
                        max_length=16,
                    ),
                ),
                (
                    "email_to",
                    models.TextField(
                        blank=True,
                        help_text="For e-mail: the addresses, separated by commas or lines.",
                        verbose_name="e-mail to",
                    ),
                ),
                (
                    "webhook_url",
                    models.URLField(
                        blank=True,
                        help_text="For a webhook: the http(s) URL the alert is POSTed to as JSON.",
                        max_length=2000,
                        validators=[django.core.validators.URLValidator(schemes=["http", "https"])],
                        verbose_name="webhook URL",
                    ),
                ),
                ("last_sent_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("last_count", models.PositiveIntegerField(blank=True, editable=False, null=True)),
                ("last_error", models.TextField(blank=True, editable=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "ordering": ["name"],
            },
        ),
    ]
