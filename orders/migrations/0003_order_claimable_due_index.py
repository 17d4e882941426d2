from django.db import migrations

# The claim reads due orders oldest first; an index of just the claimable ones, in that
# order, lets it stop after `limit` rows however many finished orders the table holds.
# Plain SQL (the same on PostgreSQL and SQLite), so the models' state is unchanged.


class Migration(migrations.Migration):
    dependencies = [("orders", "0002_batch_lock_resume_point")]

    operations = [
        migrations.RunSQL(
            sql=(
                'CREATE INDEX "order_claimable_due" ON "orders_order" ("due_at", "id") '
                "WHERE \"status\" IN ('pending', 'waiting')"
            ),
            reverse_sql='DROP INDEX "order_claimable_due"',
        ),
    ]
