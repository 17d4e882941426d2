"""Order-id search on PostgreSQL: a trigram index on UPPER(order_id).

The API's `search` is Django's `icontains`, `UPPER(order_id) LIKE UPPER('%…%')`, which no
B-tree serves: at a million orders it read the whole table. A GIN index of trigrams
(`pg_trgm`) answers it in a millisecond. The extension is trusted, so a database owner may
create it; when it cannot be created, the search keeps working unindexed and the migration
says so. The index is built CONCURRENTLY, so the webhook goes on inserting orders while it
builds, then the table is analysed. The index is not in the model's Meta: other databases
get nothing.
"""

from django.db import DatabaseError, migrations

INDEX = "order_id_trgm"


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError as exc:
            reason = str(exc).splitlines()[0]
            print(f"\n  pg_trgm cannot be created ({reason}): order-id search stays unindexed")
            return
        cursor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} "
            "ON orders_order USING gin (UPPER(order_id) gin_trgm_ops)"
        )
        # Statistics of the indexed expression: without them the planner guesses that a
        # search matches 1,600 rows, and walks the list's `created_at` index past every
        # order instead of reading the few that match.
        cursor.execute("ANALYZE orders_order")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("orders", "0004_batch_lanes"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
