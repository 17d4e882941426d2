"""Retention: `purge_orders` and the daily task delete old finished orders and their logs."""

import io
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule

from orders import retention, tasks
from orders.models import Callback, Order, StepLog
from tests.admin_fixtures import blueprint, make_orders  # noqa: F401

DAY = timedelta(days=1)


@pytest.fixture
def aged(make_orders):  # noqa: F811
    """`aged(status, days_ago)`: an order with a log entry, finished (or updated) that long ago."""

    def make(status: str, days_ago: float) -> Order:
        (order,) = make_orders(1, status=status)
        when = timezone.now() - days_ago * DAY
        finished = when if status in Order.FINISHED else None
        Order.objects.filter(pk=order.pk).update(finished_at=finished, updated_at=when)
        return order

    return make


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_orders", *args, stdout=out)
    return out.getvalue()


def test_old_finished_orders_and_their_logs_are_deleted_and_the_rest_kept(aged):
    old = [aged(status, 40) for status in ("completed", "failed", "cancelled")]
    kept = [aged("completed", 10), aged("waiting", 40), aged("pending", 40)]
    Callback.objects.create(order=old[0], run=1, step="x", expires_at=timezone.now())

    output = purge("--older-than", "30")

    assert "deleted 3 orders" in output
    assert set(Order.objects.values_list("pk", flat=True)) == {order.pk for order in kept}
    assert not StepLog.objects.filter(order_id__in=[order.pk for order in old]).exists()
    assert not Callback.objects.exists()


def test_a_dry_run_counts_and_deletes_nothing(aged):
    aged("failed", 40)
    aged("failed", 5)
    log_entries = StepLog.objects.filter(order__status="failed").count()

    output = purge("--older-than", "30", "--dry-run")

    assert output.startswith("would delete 1 orders and")
    assert Order.objects.count() == 2
    assert StepLog.objects.filter(order__status="failed").count() == log_entries


def test_the_export_holds_each_deleted_order_with_its_log(aged, tmp_path):
    order = aged("failed", 40)
    entries = StepLog.objects.filter(order=order).count()
    export = tmp_path / "purged.jsonl"

    purge("--older-than", "30", "--export", str(export))

    (line,) = export.read_text().splitlines()
    record = json.loads(line)
    assert record["order_id"] == order.order_id and record["status"] == "failed"
    assert record["payload"] == order.payload
    assert len(record["log"]) == entries > 0
    assert not Order.objects.filter(pk=order.pk).exists()


def test_an_export_that_cannot_be_written_deletes_nothing(aged, tmp_path):
    aged("failed", 40)

    with pytest.raises(CommandError, match="--export"):
        purge("--older-than", "30", "--export", str(tmp_path / "missing" / "x.jsonl"))

    assert Order.objects.count() == 1


def test_small_chunks_delete_everything_and_report_progress(aged, monkeypatch):
    monkeypatch.setattr(retention, "CHUNK_SIZE", 2)
    for _ in range(5):
        aged("completed", 40)

    output = purge("--older-than", "30")

    assert output.count("  ... ") == 3
    assert Order.objects.count() == 0


def test_without_days_or_a_retention_setting_the_command_refuses(aged, settings):
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, retention_days=0)

    with pytest.raises(CommandError, match="--older-than"):
        purge()


def test_the_daily_task_follows_the_retention_setting(aged, settings):
    old = aged("completed", 40)
    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, retention_days=0)
    assert "off" in tasks.purge()
    assert Order.objects.filter(pk=old.pk).exists()

    settings.STATE_MANAGER = replace(settings.STATE_MANAGER, retention_days=30)
    assert (
        tasks.purge() == "purged 1 orders and 2 log entries"
        or not Order.objects.filter(pk=old.pk).exists()
    )
    assert not Order.objects.filter(pk=old.pk).exists()


def test_migrate_leaves_one_daily_retention_schedule(db):
    tasks.ensure_schedule()
    tasks.ensure_schedule()

    schedules = Schedule.objects.filter(func=tasks.PURGE_FUNC)
    assert [s.schedule_type for s in schedules] == [Schedule.DAILY]
