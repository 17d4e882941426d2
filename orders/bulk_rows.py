"""Set-based INSERT … SELECT statements, a thousand orders as cheap as one: the status
events of orders that notify (`insert_events`), and the `requested` log entries of a
reprocess or a cancel (`insert_requested_logs`). The orders' rows are not read into
Python; `orders.transitions` calls these in the transactions that change the orders."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

from blueprints.models import WorkflowSnapshot
from core import doorbell
from orders.models import Order, OrderEvent, StepLog


def insert_events(
    pks: list[int],
    *,
    now: Any,
    status: str | None = None,
    previous: str | None = None,
    where_status: tuple[str, ...] = (),
) -> list[uuid.UUID]:
    """An `OrderEvent` for each order of `pks` whose snapshot names a `notify_url` (and,
    given `where_status`, whose status is one of them), in one `INSERT … SELECT`: orders
    that notify nobody cost nothing more than the statement. `status` and `previous` as
    given, else the order's own status: read before the change for `previous`, after it
    for `status`; its step and error as they are. Returns the ids of the events inserted
    (read back only when some of the orders got none)."""
    if not pks:
        return []
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    field = OrderEvent._meta.get_field
    ids = {pk: uuid.uuid4() for pk in pks}

    def typed(name: str) -> str:
        return f"CAST(%s AS {field(name).cast_db_type(db)})"

    def column(name: str) -> str:
        return f"o.{quote(name)}"

    if db.vendor == "postgresql":
        notifies = f"(s.{quote('definition')} -> 'blueprint' ->> 'notify_url') <> ''"
    else:
        notifies = f"json_extract(s.{quote('definition')}, '$.blueprint.notify_url') <> ''"
    columns = ["event_id", "order_id", "status", "previous_status", "step", "error"]
    columns += ["occurred_at", "url", "receiver", "state", "attempts", "next_attempt_at"]
    columns += ["last_error"]
    whens = " ".join([f"WHEN %s THEN {typed('event_id')}"] * len(ids))
    values = [f"CASE {column('id')} {whens} END", column("id")]
    values += [f"COALESCE({typed('status')}, {column('status')})"]
    values += [f"COALESCE({typed('previous_status')}, {column('status')})"]
    values += [column("current_step"), column("error"), typed("occurred_at"), "''", "''"]
    values += [typed("state"), "0", typed("next_attempt_at"), "''"]
    conditions = [f"{column('id')} IN ({', '.join(['%s'] * len(ids))})", notifies]
    if where_status:
        conditions.append(f"{column('status')} IN ({', '.join(['%s'] * len(where_status))})")
    sql = (
        f"INSERT INTO {quote(OrderEvent._meta.db_table)} ({', '.join(map(quote, columns))}) "
        f"SELECT {', '.join(values)} FROM {quote(Order._meta.db_table)} o "
        f"JOIN {quote(WorkflowSnapshot._meta.db_table)} s ON s.{quote('id')} = "
        f"{column('snapshot_id')} WHERE {' AND '.join(conditions)} ORDER BY {column('id')}"
    )
    params: list = []
    for pk, event_id in ids.items():
        params += [pk, field("event_id").get_db_prep_value(event_id, db)]
    when = field("occurred_at").get_db_prep_value(now, db)
    params += [status, previous, when, OrderEvent.State.PENDING.value, when]
    params += [*ids, *where_status]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.rowcount
    if inserted:
        doorbell.ring(doorbell.EVENTS)
    if inserted == len(ids):
        return list(ids.values())
    if not inserted:
        return []
    return list(
        OrderEvent.objects.filter(event_id__in=ids.values())
        .order_by("order_id")
        .values_list("event_id", flat=True)
    )


def insert_requested_logs(
    pks: list[int],
    *,
    kind: str,
    actor: str,
    now: Any,
    request: Any = None,
    with_data: bool = False,
) -> None:
    """One `requested` entry per order, at its run and current step as they are now, in one
    `INSERT … SELECT` (the orders' rows are not read into Python); `with_data` keeps each
    order's data as it is now in the entry's `saved` (the data a new run starts with)."""
    if not pks:
        return
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    field = StepLog._meta.get_field

    def typed(name: str) -> str:
        return f"CAST(%s AS {field(name).cast_db_type(db)})"

    columns = ["order_id", "run", "step", "attempt", "kind", "started_at"]
    columns += ["request", "outcome", "error", "actor", "saved"]
    values = [*map(quote, ["id", "run", "current_step"]), "0", typed("kind"), typed("started_at")]
    values += [typed("request"), typed("outcome"), typed("error"), typed("actor")]
    values.append(quote("data") if with_data else "NULL")
    placeholders = ", ".join(["%s"] * len(pks))
    sql = (
        f"INSERT INTO {quote(StepLog._meta.db_table)} ({', '.join(map(quote, columns))}) "
        f"SELECT {', '.join(values)} FROM {quote(Order._meta.db_table)} "
        f"WHERE {quote('id')} IN ({placeholders}) ORDER BY {quote('id')}"
    )
    params = [
        kind,
        field("started_at").get_db_prep_save(now, db),
        None if request is None else json.dumps(request),
        StepLog.Outcome.REQUESTED.value,
        "",
        actor,
        *pks,
    ]
    with db.cursor() as cursor:
        cursor.execute(sql, params)


def update_orders(values: list[dict[str, Any]], *, fields: tuple[str, ...]) -> None:
    """Set `fields` of many orders to values of their own (each dict holds "pk" and the
    fields): on PostgreSQL one `UPDATE … FROM (VALUES …)`, elsewhere one `UPDATE … WHERE id`
    per order in an `executemany`. No CASE over a thousand rows for Django to build (its
    bulk_update spends seconds on that)."""
    if not values:
        return
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    model_fields = [Order._meta.get_field(name) for name in fields]
    table = quote(Order._meta.db_table)
    params = [
        [field.get_db_prep_save(row[field.name], db) for field in model_fields] + [row["pk"]]
        for row in values
    ]
    with db.cursor() as cursor:
        if db.vendor != "postgresql":
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in model_fields)
            sql = f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s"
            cursor.executemany(sql, params)
            return
        types = [field.db_type(db) for field in model_fields] + ["bigint"]
        row = "(" + ", ".join(f"CAST(%s AS {kind})" for kind in types) + ")"
        names = [f"f{index}" for index in range(len(model_fields))]
        assignments = ", ".join(
            f"{quote(field.column)} = v.{name}"
            for field, name in zip(model_fields, names, strict=True)
        )
        sql = (
            f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row] * len(params))}) "
            f"AS v({', '.join([*names, 'pk'])}) WHERE {table}.{quote('id')} = v.pk"
        )
        cursor.execute(sql, [value for values_of_row in params for value in values_of_row])
