"""Business-key filters on PostgreSQL: GIN indexes of the payload and the saved data.

`payload.<path>=<value>` and `data.<path>=<value>` are containment tests (`payload @>
'{"customer": {"id": "C-42"}}'`), which a `jsonb_path_ops` GIN index answers without
reading the table. Built CONCURRENTLY, so the webhook goes on inserting while they build.
Not in the model's Meta: other databases get nothing, and filter by scanning.
"""

from django.db import migrations

INDEXES = {
    "order_payload_gin": "payload",
    "order_data_gin": "data",
}


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name, column in INDEXES.items():
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} "
                f"ON orders_order USING gin ({column} jsonb_path_ops)"
            )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            for name in INDEXES:
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("orders", "0006_workplace"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
