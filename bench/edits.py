"""Fix and reprocess at scale: a bulk edit of `--orders` failed orders (default 100,000) as
the job a worker runs, its preview first, and an impact preview over `--impact` recorded
orders (default 1,000), on a scratch database (SQLite without DATABASE_URL).

The orders are inserted in bulk: one blueprint with an input schema (quote -> choice ->
charge | review), each order failed at `charge` with a recorded answer for `quote` and
`charge` in its log. Each phase prints its wall time, its SQL statements and the sum of
their times (Django's debug cursor: database time with the round trips).
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

from bench.common import machine, scratch_database

FILL_CHUNK = 5000


@contextmanager
def timed(name: str):
    from django.db import connection

    connection.force_debug_cursor = True
    connection.queries_log.clear()
    started = time.perf_counter()
    yield
    wall = time.perf_counter() - started
    queries = list(connection.queries_log)
    database = sum(float(query["time"]) for query in queries)
    connection.force_debug_cursor = False
    print(f"{name}: {wall:.2f} s wall, {len(queries)} statements, {database:.2f} s in them")


def blueprint(threshold: int) -> dict:
    return {
        "slug": "shop",
        "name": "Shop",
        "input_schema": {
            "type": "object",
            "required": ["sku", "qty"],
            "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
        },
        "steps": [
            {"id": "quote", "call": "quote", "save": {"total": "{{ response.body.total }}"}},
            {
                "id": "route",
                "choice": [{"when": f"{{{{ data.total > {threshold} }}}}", "next": "review"}],
                "default": "charge",
            },
            {"id": "charge", "call": "charge", "end": "completed"},
            {"id": "review", "call": "review", "end": "completed"},
        ],
    }


def fill(count: int, *, status: str) -> None:
    from apicalls.services import api_call_save
    from blueprints.models import Blueprint
    from blueprints.services import blueprint_save, workflow_snapshot
    from orders.models import Order, StepLog

    if not Blueprint.objects.filter(slug="shop").exists():
        for name in ("quote", "charge", "review"):
            api_call_save(
                definition={
                    "slug": name,
                    "name": name,
                    "method": "POST",
                    "url": "http://127.0.0.1:9/",
                }
            )
        blueprint_save(definition=blueprint(1000))
    snapshot = workflow_snapshot(blueprint=Blueprint.objects.get(slug="shop"))
    start = Order.objects.count()
    for first in range(start, start + count, FILL_CHUNK):
        numbers = range(first, min(first + FILL_CHUNK, start + count))
        orders = Order.objects.bulk_create(
            Order(
                order_id=f"{status[0].upper()}-{n}",
                workflow="shop",
                snapshot=snapshot,
                payload={"sku": "TEE", "qty": 1 + n % 150},
                data={"total": (1 + n % 150) * 10},
                status=status,
                current_step="charge" if status == "failed" else "charge",
                failed_step="charge" if status == "failed" else "",
            )
            for n in numbers
        )
        log = []
        for order in orders:
            total = order.payload["qty"] * 10
            log.append(_attempt(order, "quote", 200, {"total": total}))
            log.append(_step(order, "quote", {"total": total}))
            answer = (402, {"error": "declined"}) if status == "failed" else (201, {"id": "ch"})
            log.append(_attempt(order, "charge", *answer))
        StepLog.objects.bulk_create(log)


def _attempt(order, step: str, status: int, body: dict):
    from orders.models import StepLog

    outcome = "succeeded" if status < 400 else "failed"
    return StepLog(
        order=order, run=1, step=step, attempt=1, kind="attempt", outcome=outcome,
        request={"method": "POST", "url": "http://127.0.0.1:9/"},
        response={"status": status, "headers": {}, "body": body},
    )  # fmt: skip


def _step(order, step: str, saved: dict):
    from orders.models import StepLog

    return StepLog(
        order=order, run=1, step=step, kind="step", outcome="succeeded",
        response={"saved": saved}, saved=saved,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--impact", type=int, default=1_000)
    args = parser.parse_args()
    import os

    with scratch_database(os.environ.get("DATABASE_URL"), suffix="edits"):
        from django.db import connection

        from orders.edits import EditPlan, edit_preview
        from orders.impact import blueprint_impact
        from orders.jobs import job_prepare, job_run, job_start
        from orders.models import BulkJob, Order

        print(machine(), f"{connection.vendor}")
        started = time.perf_counter()
        fill(args.orders, status="failed")
        print(f"filled {args.orders:,} failed orders in {time.perf_counter() - started:.1f} s")
        failed = Order.objects.filter(status="failed")
        edit = {"set": {"payload.sku": "TEE-2"}, "reason": "bench"}
        plan = EditPlan(actor="bench", set_paths=edit["set"], reason="bench")
        with timed(f"edit preview of {args.orders:,} orders"):
            preview = edit_preview(failed, plan=plan)
        with timed(f"bulk edit job of {args.orders:,} orders (prepare, start, the worker's run)"):
            job = job_prepare(
                kind=BulkJob.Kind.EDIT, orders=failed, selection={}, options=edit, actor="bench"
            )
            job = job_start(job)
            job = job_run(job)
        assert (job.done, preview["change"]) == (args.orders, args.orders), (job.done, preview)
        print(f"  {job.done:,} edited, {args.orders / max(1e-9, _job_seconds(job)):,.0f} orders/s")
        fill(args.impact, status="completed")
        from blueprints.models import Blueprint

        shop = Blueprint.objects.get(slug="shop")
        with timed(f"impact preview of {args.impact:,} recorded orders"):
            impact = blueprint_impact(
                blueprint=shop,
                version=blueprint(500),
                orders=Order.objects.filter(status="completed"),
                limit=args.impact,
            )
        print(
            f"  {impact['total']} orders: {impact['same']} same, {impact['different']} "
            f"different, {impact['unanswered']} unanswered"
        )


def _job_seconds(job) -> float:
    return (job.finished_at - job.started_at).total_seconds()


if __name__ == "__main__":
    main()
