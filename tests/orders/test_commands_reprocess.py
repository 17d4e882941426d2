"""python manage.py reprocess_orders: the bulk reprocess from a shell."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from orders.models import Order, StepLog
from tests.statemanager.fixtures import *  # noqa: F403
from tests.statemanager.fixtures import shop_order


def reprocess_orders(*args) -> str:
    out = StringIO()
    call_command("reprocess_orders", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


@pytest.fixture
def orders(shop):
    shop_order("A-1", "failed", current_step="ship")
    shop_order("A-2", "failed")
    shop_order("A-3", "running")
    shop_order("A-4", "completed")


def test_reprocesses_orders_by_status_and_prints_the_counts(orders):
    output = reprocess_orders("--status", "failed", "--status", "running", "--from", "failed")

    assert output == "Reprocessed 2 orders; skipped 1 (pending, running, waiting or completed)."
    assert Order.objects.get(order_id="A-1").current_step == "ship"
    assert StepLog.objects.filter(kind="reprocess", actor="command").count() == 2


def test_reprocesses_orders_by_id_from_the_start_skipping_completed_ones(orders):
    output = reprocess_orders("A-1", "A-4", "--from", "start")

    assert output == "Reprocessed 1 orders; skipped 1 (pending, running, waiting or completed)."
    assert Order.objects.get(order_id="A-1").current_step == "charge"
    assert Order.objects.get(order_id="A-4").status == "completed"


def test_completed_orders_are_reprocessed_from_the_start_when_included(orders):
    output = reprocess_orders("A-1", "A-4", "--from", "start", "--include-completed")

    assert output == "Reprocessed 2 orders; skipped 0 (pending, running, waiting)."
    assert Order.objects.get(order_id="A-4").status == "pending"


def test_include_completed_does_not_apply_from_the_failed_step(orders):
    output = reprocess_orders("A-4", "--from", "failed", "--include-completed")

    assert output.startswith("Reprocessed 0 orders; skipped 1 ")
    assert Order.objects.get(order_id="A-4").status == "completed"


def test_ids_and_filters_narrow_each_other(orders):
    output = reprocess_orders("A-1", "A-4", "--status", "failed", "--from", "start")

    assert output.startswith("Reprocessed 1 orders; skipped 0 ")


def test_workflow_filter_and_latest_version(orders):
    output = reprocess_orders("--workflow", "shop", "--from", "start", "--version", "latest")

    assert output.startswith("Reprocessed 2 orders; skipped 2 ")


def test_refuses_to_run_without_a_selection(orders):
    with pytest.raises(CommandError, match="give ORDER_IDs or at least one filter"):
        reprocess_orders("--from", "start")

    assert Order.objects.filter(status="pending").count() == 0


def test_refuses_filters_that_narrow_nothing(orders):
    with pytest.raises(CommandError, match="give ORDER_IDs or at least one filter"):
        reprocess_orders("--search", "  ", "--from", "start")

    assert Order.objects.filter(status="pending").count() == 0


def test_from_is_required(orders):
    with pytest.raises(CommandError, match="--from"):
        reprocess_orders("A-1")


def test_refuses_a_bad_date(orders):
    with pytest.raises(CommandError, match="created_after"):
        reprocess_orders("--created-after", "soon", "--from", "start")
