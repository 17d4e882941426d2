"""Bulk reprocess and cancel as jobs, with 1,000,000 orders, on PostgreSQL.

Fills a database of its own, `sm_bench_bulk` on the server `DATABASE_URL` names (default
postgres://postgres@127.0.0.1:5432/statemanager), with the orders of bench/pages.py
(130,000 of them failed, 40,000 waiting), then:

1. the job path alone: `job_prepare` freezes `--orders` failed orders, `job_start`
   queues the job on django-q2, and the queued task runs in this process as a worker
   runs it; then the same orders (now pending) are cancelled the same way;
2. after filling again, the admin as support staff use it: "Reprocess from the failed
   step" on all 130,000 failed orders of the filtered list (the confirmation page), the
   confirmation (which queues the job), and the job run by the worker;
3. the API: `POST /api/orders/cancel/` of the 40,000 waiting orders, and its job.

For each it prints the time, the statements and the sum of their times (measured around
each statement as Django's debug cursor does: the database time, round trips included)
and orders a second.

    .venv/bin/python -m bench.bulk [--orders 100000] [--fill 1000000] [--chunk 1000]
"""

from __future__ import annotations

import argparse
import os
import pydoc
import time

from bench.pages import USERNAME, clients, fill, open_database

DEFAULT_DATABASE = "sm_bench_bulk"


def run_queued(job, chunk_size: int) -> dict:
    """Take the job's task off the broker and run it here; its wall time and statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_q.brokers import get_broker
    from django_q.signing import SignedPackage

    from orders import jobs

    jobs.CHUNK_SIZE = chunk_size
    broker = get_broker()
    tasks = [SignedPackage.loads(package) for _, package in broker.dequeue() or []]
    (task,) = [task for task in tasks if task["args"] == (job.pk,)]
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = pydoc.locate(task["func"])(*task["args"])
        wall = time.perf_counter() - started
    statements = queries.captured_queries
    return {
        "result": result,
        "wall": wall,
        "statements": len(statements),
        "database": sum(float(query["time"]) for query in statements),
    }


def timed(label: str, call):
    """`call()`'s answer, printing its time and its statements'."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        answer = call()
        wall = time.perf_counter() - started
    statements = queries.captured_queries
    database = sum(float(query["time"]) for query in statements)
    print(f"{label}: {wall:.2f} s, {len(statements)} statements taking {database:.2f} s")
    return answer


def worker_runs(label: str, job, chunk_size: int) -> None:
    run = run_queued(job, chunk_size)
    job.refresh_from_db()
    print(
        f"{label}: {run['result']}\n"
        f"    wall {run['wall']:.2f} s, {run['statements']} statements taking "
        f"{run['database']:.2f} s, {job.total / run['wall']:,.0f} orders/s "
        f"({job.total / run['database']:,.0f} per second of database time)",
        flush=True,
    )
    if job.status != "done" or job.done + job.skipped != job.total:
        raise SystemExit(f"{label}: the job ended {job.status} with {job.done} of {job.total}")


def from_the_admin(chunk_size: int) -> None:
    """Support staff reprocess all the failed orders from the filtered list."""
    from django.urls import reverse

    from orders.models import BulkJob, Order

    admin, _ = clients()
    changelist = reverse("admin:orders_order_changelist") + "?status__exact=failed"
    one = Order.objects.filter(status="failed").values_list("pk", flat=True)[:1]
    action = {
        "action": "reprocess_from_failed",
        "select_across": "1",
        "index": "0",
        "_selected_action": list(one),
    }
    page = timed("admin: confirmation page", lambda: admin.post(changelist, action))
    job = BulkJob.objects.latest("pk")
    if page.status_code != 200 or f"The first 50 of {job.total} orders" not in page.text:
        raise SystemExit(f"admin: the confirmation answered {page.status_code}")
    print(f"    names the first 50 of {job.total} orders frozen")
    url = reverse("admin:orders_order_job", args=[job.pk])
    answer = timed("admin: confirmed (queues the job)", lambda: admin.post(url, {}))
    if answer.status_code != 302:
        raise SystemExit(f"admin: the confirmation answered {answer.status_code}")
    worker_runs("admin: worker", BulkJob.objects.get(pk=job.pk), chunk_size)


def from_the_api(chunk_size: int) -> None:
    """A support script cancels every waiting order through the API."""
    from orders.models import BulkJob

    _, api = clients()
    answer = timed(
        "api: POST /api/orders/cancel/ (queues the job)",
        lambda: api.post(
            "/api/orders/cancel/", {"status": "waiting"}, content_type="application/json"
        ),
    )
    body = answer.json()
    print(f"    {answer.status_code} {body['count']} orders, job {body['job']['status']}")
    worker_runs("api: worker", BulkJob.objects.get(pk=body["job"]["id"]), chunk_size)


def bulk(kind: str, orders, options: dict, chunk_size: int) -> None:
    """The job path alone: freeze and queue, then the worker's run."""
    from orders.jobs import job_prepare, job_start

    def prepare_and_start():
        job = job_prepare(
            kind=kind, orders=orders, selection={"bench": True}, options=options, actor="bench"
        )
        return job_start(job)

    job = timed(f"{kind}: froze the orders and queued the job", prepare_and_start)
    print(f"    {job.total} orders")
    worker_runs(f"{kind}: worker", job, chunk_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="failed orders to act on")
    parser.add_argument("--fill", type=int, default=1_000_000, help="orders in the table")
    parser.add_argument("--chunk", type=int, default=1000, help="orders per chunk")
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    os.environ.pop("REDIS_URL", None)  # the ORM broker, in this database
    open_database(args.database, "bulk")
    from django.db import connection

    from orders.models import BulkJob, Order

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE orders_bulkjob, orders_bulkjoborder, django_q_ormq")
    print(f"filling {args.fill} orders ...", flush=True)
    print(f"filled in {fill(args.fill):.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM orders_order GROUP BY 1 ORDER BY 1")
        print(", ".join(f"{count} {status}" for status, count in cursor.fetchall()))

    chosen = Order.objects.filter(status="failed").order_by("pk")[: args.orders]
    bulk(BulkJob.Kind.REPROCESS, chosen, {"from": "failed", "version": "pinned"}, args.chunk)
    reprocessed = BulkJob.objects.get(kind=BulkJob.Kind.REPROCESS)
    again = Order.objects.filter(pk__in=reprocessed.entries.values("order_id"))
    bulk(BulkJob.Kind.CANCEL, again, {}, args.chunk)
    log_entries("bench")

    print(f"filling {args.fill} orders again ...", flush=True)
    print(f"filled in {fill(args.fill):.1f} s")
    from_the_admin(args.chunk)
    from_the_api(args.chunk)
    log_entries(USERNAME)


def log_entries(actor: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT kind, count(*) FROM orders_steplog WHERE actor = %s GROUP BY 1 ORDER BY 1",
            [actor],
        )
        print("log entries: " + ", ".join(f"{n} {kind}" for kind, n in cursor.fetchall()))


if __name__ == "__main__":
    main()
