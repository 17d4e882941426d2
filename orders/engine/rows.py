"""The engine's per-step writes: one transaction helper and SQL built once.

The ORM compiles each statement afresh, which costs more CPU than a step's HTTP call
itself; the statements a step makes are the same every time, so their SQL is built
once per table and set of columns and run with each step's values, which the model
fields convert for the database exactly as the ORM would.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

from orders.models import StepLog

FINISHED_ATTEMPT_FIELDS = ["outcome", "error", "duration_ms", "response"]

# SQLite lets one connection write at a time, and a writer that finds the database
# locked sleeps in SQLite's busy handler (1 ms, then 2, 5, ... up to 100 ms) before it
# tries again. The order threads of one process wait for each other on a lock instead,
# and each goes on the moment the previous write ends.
_sqlite_writes = threading.RLock()


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction for the engine's writes, queued in-process on SQLite."""
    if connections[DEFAULT_DB_ALIAS].vendor != "sqlite":
        with transaction.atomic():
            yield
        return
    with _sqlite_writes, transaction.atomic():
        yield


@functools.cache
def _update_sql(vendor: str, table: str, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    conditions = " AND ".join(f"{quote(column)} = %s" for column in where)
    return f"UPDATE {quote(table)} SET {assignments} WHERE {conditions}"


@functools.cache
def _insert_sql(vendor: str, table: str, columns: tuple[str, ...], returning: str | None) -> str:
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    names = ", ".join(quote(column) for column in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {quote(table)} ({names}) VALUES ({placeholders})"
    return f"{sql} RETURNING {quote(returning)}" if returning else sql


def update_rows(model: type[models.Model], *, where: dict[str, Any], values: dict[str, Any]) -> int:
    """`model.objects.filter(**where).update(**values)` for equality filters; rows updated."""
    db = connections[DEFAULT_DB_ALIAS]  # looked up once: each use of the proxy costs a lookup
    meta = model._meta
    set_fields = [meta.get_field(name) for name in values]
    where_fields = [meta.pk if name == "pk" else meta.get_field(name) for name in where]
    params = [
        f.get_db_prep_save(value, db) for f, value in zip(set_fields, values.values(), strict=True)
    ]
    params += [
        f.get_db_prep_value(value, db, prepared=False)
        for f, value in zip(where_fields, where.values(), strict=True)
    ]
    sql = _update_sql(
        db.vendor,
        meta.db_table,
        tuple(f.column for f in set_fields),
        tuple(f.column for f in where_fields),
    )
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_row(instance: models.Model) -> None:
    """`instance.save(force_insert=True)` for a model with an auto-increment key."""
    db = connections[DEFAULT_DB_ALIAS]
    meta = instance._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    params = [f.get_db_prep_save(f.pre_save(instance, True), db) for f in fields]
    returning = meta.pk.column if db.features.can_return_columns_from_insert else None
    sql = _insert_sql(db.vendor, meta.db_table, tuple(f.column for f in fields), returning)
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        if returning:
            instance.pk = cursor.fetchone()[0]
        else:
            instance.pk = db.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    instance._state.adding = False


def save_finished_attempt(entry: StepLog) -> None:
    update_rows(
        StepLog,
        where={"pk": entry.pk},
        values={name: getattr(entry, name) for name in FINISHED_ATTEMPT_FIELDS},
    )
