"""The engine's per-step reads and writes: SQL built once, few round trips.

The ORM compiles each statement afresh, which costs more CPU than a step's HTTP call
itself; the statements a step makes are the same every time, so their SQL is built
once per table and set of columns and run with each step's values, which the model
fields convert for the database exactly as the ORM would (and back, on reads).

Each round trip also waits for the server, and each commit for its disk. On PostgreSQL
a step's outcome (the order's update and its log rows) and the next call's attempt row
are one statement in autocommit (`write_order`): one round trip and one commit per step,
where two transactions took seven round trips. The engine's statements bind their
parameters on the server; the ORM keeps Django's client-side binding.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction

from orders.models import Order, StepLog

FINISHED_ATTEMPT_FIELDS = ["outcome", "error", "duration_ms", "response"]

# SQLite lets one connection write at a time, and a writer that finds the database
# locked sleeps in SQLite's busy handler (1 ms, then 2, 5, ... up to 100 ms) before it
# tries again. The order threads of one process wait for each other on a lock instead,
# and each goes on the moment the previous write ends.
_sqlite_writes = threading.RLock()


@contextmanager
def write_lock() -> Iterator[None]:
    """Around one write statement: queued in-process on SQLite, nothing elsewhere."""
    if connections[DEFAULT_DB_ALIAS].vendor != "sqlite":
        yield
        return
    with _sqlite_writes:
        yield


@contextmanager
def write_transaction() -> Iterator[None]:
    """A transaction for the engine's writes, queued in-process on SQLite.

    Nested in another, it joins it (no savepoint: an error ends the whole turn anyway).
    """
    with write_lock(), transaction.atomic(savepoint=False):
        yield


def _cursor(db):
    """Django's cursor; on PostgreSQL one that binds parameters on the server, so psycopg
    sends them apart from the SQL, converted in C, instead of quoting each into the text
    in Python."""
    if db.vendor != "postgresql":
        return db.cursor()
    db.close_if_health_check_failed()  # as `db.cursor()` does
    db.ensure_connection()
    db.validate_thread_sharing()
    cursor = psycopg.Cursor(db.connection)
    return db.make_debug_cursor(cursor) if db.queries_logged else db.make_cursor(cursor)


def _quote(name: str) -> str:
    return connections[DEFAULT_DB_ALIAS].ops.quote_name(name)


@functools.cache
def _update_sql(vendor: str, table: str, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    assignments = ", ".join(f"{_quote(column)} = %s" for column in columns)
    conditions = " AND ".join(f"{_quote(column)} = %s" for column in where)
    return f"UPDATE {_quote(table)} SET {assignments} WHERE {conditions}"


@functools.cache
def _insert_sql(vendor: str, table: str, columns: tuple[str, ...], returning: str | None) -> str:
    names = ", ".join(_quote(column) for column in columns)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {_quote(table)} ({names}) VALUES ({placeholders})"
    return f"{sql} RETURNING {_quote(returning)}" if returning else sql


@functools.cache
def _select_sql(vendor: str, table: str, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    names = ", ".join(_quote(column) for column in columns)
    conditions = " AND ".join(f"{_quote(column)} = %s" for column in where)
    return f"SELECT {names} FROM {_quote(table)} WHERE {conditions}"


def _fields(model: type[models.Model], names) -> list[models.Field]:
    meta = model._meta
    return [meta.pk if name == "pk" else meta.get_field(name) for name in names]


def _save_params(fields: list[models.Field], values, db) -> list:
    return [f.get_db_prep_save(value, db) for f, value in zip(fields, values, strict=True)]


def _where_params(fields: list[models.Field], values, db) -> list:
    return [
        f.get_db_prep_value(value, db, prepared=False)
        for f, value in zip(fields, values, strict=True)
    ]


def _insert_fields(instance: models.Model) -> list[models.Field]:
    meta = instance._meta
    return [f for f in meta.concrete_fields if f is not meta.pk]


def _insert_params(instance: models.Model, db) -> list:
    return [f.get_db_prep_save(f.pre_save(instance, True), db) for f in _insert_fields(instance)]


def update_rows(model: type[models.Model], *, where: dict[str, Any], values: dict[str, Any]) -> int:
    """`model.objects.filter(**where).update(**values)` for equality filters; rows updated."""
    db = connections[DEFAULT_DB_ALIAS]  # looked up once: each use of the proxy costs a lookup
    set_fields, where_fields = _fields(model, values), _fields(model, where)
    params = _save_params(set_fields, values.values(), db)
    params += _where_params(where_fields, where.values(), db)
    sql = _update_sql(
        db.vendor,
        model._meta.db_table,
        tuple(f.column for f in set_fields),
        tuple(f.column for f in where_fields),
    )
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def insert_row(instance: models.Model) -> None:
    """`instance.save(force_insert=True)` for a model with an auto-increment key."""
    db = connections[DEFAULT_DB_ALIAS]
    meta = instance._meta
    params = _insert_params(instance, db)
    returning = meta.pk.column if db.features.can_return_columns_from_insert else None
    columns = tuple(f.column for f in _insert_fields(instance))
    sql = _insert_sql(db.vendor, meta.db_table, columns, returning)
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        if returning:
            instance.pk = cursor.fetchone()[0]
        else:
            instance.pk = db.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    instance._state.adding = False


def insert_log_while_claimed(entry: StepLog, *, order_pk: int, claim_token: Any) -> bool:
    """`insert_row(entry)` while the order's claim token is `claim_token` and no cancel
    was asked for, as one `INSERT … SELECT … FROM order WHERE id = … AND claim_token = …
    AND cancel_requested = false`: the same round trip as the plain insert. False,
    inserting nothing, once the claim is another's or a cancel was asked for."""
    db = connections[DEFAULT_DB_ALIAS]
    where_fields = _fields(Order, ["pk", "claim_token", "cancel_requested"])
    params = _insert_params(entry, db)
    params += _where_params(where_fields, [order_pk, claim_token, False], db)
    returning = db.features.can_return_columns_from_insert
    sql = _insert_while_sql(db.vendor, tuple(f.column for f in where_fields), returning)
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        if returning:
            row = cursor.fetchone()
            if row is None:
                return False
            entry.pk = row[0]
        else:
            if not cursor.rowcount:
                return False
            entry.pk = db.ops.last_insert_id(cursor, StepLog._meta.db_table, "id")
    entry._state.adding = False
    return True


@functools.cache
def _insert_while_sql(vendor: str, where: tuple[str, ...], returning: bool) -> str:
    """The values are cast to their columns' types on PostgreSQL, which would take an
    untyped parameter in a SELECT list for text (as in `_write_order_sql`)."""
    db = connections[DEFAULT_DB_ALIAS]
    log_fields = _insert_fields(StepLog())
    names = ", ".join(_quote(f.column) for f in log_fields)
    if vendor == "postgresql":
        values = ", ".join(f"%s::{f.cast_db_type(db)}" for f in log_fields)
    else:
        values = ", ".join(["%s"] * len(log_fields))
    conditions = " AND ".join(f"{_quote(column)} = %s" for column in where)
    sql = (
        f"INSERT INTO {_quote(StepLog._meta.db_table)} ({names}) SELECT {values} "
        f"FROM {_quote(Order._meta.db_table)} WHERE {conditions}"
    )
    return f"{sql} RETURNING {_quote('id')}" if returning else sql


def read_order(
    *, pk: int, claim_token: Any, names: list[str], interrupted: dict[str, Any]
) -> dict[str, Any] | None:
    """The order's `names` while `claim_token` holds it (None once it does not), its
    attempts still in flight (their worker stopped during the call) updated with
    `interrupted`: one statement on PostgreSQL, a read and an update elsewhere."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = _fields(Order, names)
    where_fields = _fields(Order, ["pk", "claim_token"])
    params = _where_params(where_fields, [pk, claim_token], db)
    in_flight = {"order": pk, "outcome": StepLog.Outcome.IN_FLIGHT}
    columns = tuple(f.column for f in fields)
    where = tuple(f.column for f in where_fields)
    select = _select_sql(db.vendor, Order._meta.db_table, columns, where)
    if db.vendor == "postgresql":
        set_fields, fix_fields = _fields(StepLog, interrupted), _fields(StepLog, in_flight)
        params += _save_params(set_fields, interrupted.values(), db)
        params += _where_params(fix_fields, in_flight.values(), db)
        select = _read_order_sql(
            select, tuple(f.column for f in set_fields), tuple(f.column for f in fix_fields)
        )
    with _cursor(db) as cursor:
        cursor.execute(select, params)
        row = cursor.fetchone()
    if row is None:
        return None
    if db.vendor != "postgresql":
        with write_lock():
            update_rows(StepLog, where=in_flight, values=interrupted)
    values = {}
    for f, value in zip(fields, row, strict=True):
        column = _column(f)
        for convert in db.ops.get_db_converters(column) + f.get_db_converters(db):
            value = convert(value, column, db)
        values[f.name if f.name in names else f.attname] = value
    return values


@functools.cache
def _column(f: models.Field) -> models.expressions.Col:
    """The column expression the database's converters are asked about, made once."""
    return f.get_col(f.model._meta.db_table)


@functools.cache
def _read_order_sql(select: str, columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    """`WITH held AS (SELECT … FROM order WHERE …), fix AS (UPDATE log … FROM held …)
    SELECT * FROM held`: the log is updated only while the claim holds."""
    log_table = _quote(StepLog._meta.db_table)
    assignments = ", ".join(f"{_quote(column)} = %s" for column in columns)
    conditions = " AND ".join(f"{log_table}.{_quote(column)} = %s" for column in where)
    fix = f"UPDATE {log_table} SET {assignments} FROM held WHERE {conditions}"
    return f"WITH held AS ({select}), fix AS ({fix}) SELECT * FROM held"


def write_log(entry: StepLog) -> None:
    """A log row: inserted when new, else the finished attempt's changed columns."""
    if entry.pk is None:
        insert_row(entry)
    else:
        update_rows(
            StepLog,
            where={"pk": entry.pk},
            values={name: getattr(entry, name) for name in FINISHED_ATTEMPT_FIELDS},
        )


def write_order(
    *,
    where: dict[str, Any],
    values: dict[str, Any],
    logs: list[StepLog],
    then_insert: StepLog | None = None,
) -> bool:
    """Update the order `where` matches and, only when it matched, write `logs` and insert
    `then_insert` (setting its pk); False, writing nothing, when it did not match.

    PostgreSQL: one statement in autocommit, its log writes in data-modifying CTEs that
    read the order's `RETURNING`. Elsewhere: a transaction.
    """
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor != "postgresql":
        with write_transaction():
            if not update_rows(Order, where=where, values=values):
                return False
            for entry in logs:
                write_log(entry)
            if then_insert is not None:
                insert_row(then_insert)
        return True

    set_fields, where_fields = _fields(Order, values), _fields(Order, where)
    params = _save_params(set_fields, values.values(), db)
    params += _where_params(where_fields, where.values(), db)
    finished = _fields(StepLog, FINISHED_ATTEMPT_FIELDS)
    for entry in logs:
        if entry.pk is None:
            params += _insert_params(entry, db)
        else:
            params += _save_params(finished, (getattr(entry, f.name) for f in finished), db)
            params.append(entry.pk)
    if then_insert is not None:
        params += _insert_params(then_insert, db)
    sql = _write_order_sql(
        tuple(f.column for f in set_fields),
        tuple(f.column for f in where_fields),
        tuple(entry.pk is None for entry in logs),
        then_insert is not None,
    )
    with _cursor(db) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if then_insert is not None:
        if row is None:
            return False
        then_insert.pk = row[0]
        then_insert._state.adding = False
        return True
    return row[0] == 1


@functools.lru_cache(maxsize=256)
def _write_order_sql(
    columns: tuple[str, ...], where: tuple[str, ...], inserts: tuple[bool, ...], then_insert: bool
) -> str:
    """`WITH held AS (UPDATE order … RETURNING id), log0 AS (INSERT … SELECT … FROM held
    RETURNING id), log1 AS (INSERT … SELECT … FROM log0 …), …`.

    Each insert reads the one before it, so the log rows get their ids in order (CTEs
    nothing reads would run last); a finished attempt's update reads `held` alone. The
    inserted values are cast to their columns' types: in a SELECT list PostgreSQL would
    take an untyped parameter for text.
    """
    db = connections[DEFAULT_DB_ALIAS]
    log_table, id_ = _quote(StepLog._meta.db_table), _quote("id")
    log_fields = _insert_fields(StepLog())
    names = ", ".join(_quote(f.column) for f in log_fields)
    values = ", ".join(f"%s::{f.cast_db_type(db)}" for f in log_fields)
    finished = ", ".join(
        f"{_quote(f.column)} = %s" for f in _fields(StepLog, FINISHED_ATTEMPT_FIELDS)
    )
    order_update = _update_sql(db.vendor, Order._meta.db_table, columns, where)
    parts, last = [f"held AS ({order_update} RETURNING {id_})"], "held"
    for number, new in enumerate(inserts):
        if new:
            insert = f"INSERT INTO {log_table} ({names}) SELECT {values} FROM {last}"
            parts.append(f"log{number} AS ({insert} RETURNING {id_})")
            last = f"log{number}"
        else:
            update = f"UPDATE {log_table} SET {finished} FROM held WHERE {log_table}.{id_} = %s"
            parts.append(f"log{number} AS ({update})")
    if then_insert:
        main = f"INSERT INTO {log_table} ({names}) SELECT {values} FROM {last} RETURNING {id_}"
    else:
        main = f"SELECT count(*) FROM {last}"
    return f"WITH {', '.join(parts)} {main}"
