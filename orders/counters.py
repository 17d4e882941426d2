"""The counts only a process knows (attempts and their durations, steps, holds, webhook
answers, notification deliveries), shared so that any web process answers `/metrics`
for the whole fleet.

Each process adds to a dict in memory (a lock and a dict update: well under a
microsecond beside a step's milliseconds) and flushes it to the shared store at most every
`FLUSH_SECONDS`, at the end of every batch, before a scrape and at exit: no write per
step. The store is Redis when REDIS_URL is set (one hash, `HINCRBYFLOAT` per key in one
pipeline), else the database (`MetricCount`, one `INSERT … ON CONFLICT DO UPDATE SET
value = value + excluded.value` per flush), which every process of the fleet shares
either way. A flush that fails keeps its counts for the next one; counts still in memory
when a process is killed are lost, as a crashed process's would be in Prometheus.

A key is a metric's name and labels as canonical JSON; a histogram is kept as its
`_bucket` counts (each observation counted once, in its own bucket: `read` makes them
cumulative), `_sum` and `_count`.

>>> key("call_duration_seconds_bucket", {"le": "0.5", "host": "api.example"})
'["call_duration_seconds_bucket", {"host": "api.example", "le": "0.5"}]'
"""

from __future__ import annotations

import atexit
import bisect
import json
import logging
import os
import threading
import time
from collections import defaultdict
from functools import cache

import redis
from django.conf import settings
from django.db import connection

from orders.models import MetricCount

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0
REDIS_KEY = "statemanager:metrics"
# Call durations, in seconds: from a fast local API to a slow partner's timeout.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BUCKET_NAMES = tuple(f"{le:g}" for le in BUCKETS) + ("+Inf",)

# In memory a key is (name, labels as a tuple of pairs): cheap to make; JSON at a flush.
_pending: dict[tuple[str, tuple], float] = defaultdict(float)
_lock = threading.Lock()
_last_flush = time.monotonic()


def key(name: str, labels: dict[str, str]) -> str:
    return json.dumps([name, labels], sort_keys=True, separators=(", ", ": "))


def add(name: str, amount: float = 1.0, **labels: str) -> None:
    """Add `amount` to the count `name` with `labels` (flushed now and then)."""
    with _lock:
        _pending[name, tuple(labels.items())] += amount
    _maybe_flush()


def observe(name: str, value: float, **labels: str) -> None:
    """One observation of the histogram `name`."""
    bucket = BUCKET_NAMES[bisect.bisect_left(BUCKETS, value)]
    pairs = tuple(labels.items())
    with _lock:
        _pending[f"{name}_bucket", (*pairs, ("le", bucket))] += 1
        _pending[f"{name}_sum", pairs] += value
        _pending[f"{name}_count", pairs] += 1
    _maybe_flush()


def _maybe_flush() -> None:
    if time.monotonic() - _last_flush >= FLUSH_SECONDS:
        flush()


def flush(*, quietly: bool = False) -> None:
    """Add this process's counts to the shared store (and keep them if that fails)."""
    global _last_flush
    with _lock:
        pending = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    if not pending:
        return
    try:
        _store_add({key(name, dict(pairs)): value for (name, pairs), value in pending.items()})
    except Exception as exc:
        if quietly:  # at exit: the log's streams and the database may be gone already
            return
        logger.warning("metrics: could not flush %d counts (%s); kept for later", len(pending), exc)
        with _lock:
            for series, value in pending.items():
                _pending[series] += value


def read() -> list[tuple[str, dict[str, str], float]]:
    """Every shared count as (name, labels, value), histogram buckets made cumulative."""
    flush()
    rows = []
    cumulative: dict[str, float] = defaultdict(float)
    for text, value in sorted(_store_read().items(), key=lambda item: _bucket_order(item[0])):
        name, labels = json.loads(text)
        if name.endswith("_bucket"):
            series = key(name, {k: v for k, v in labels.items() if k != "le"})
            cumulative[series] += value
            value = cumulative[series]
        rows.append((name, labels, value))
    return rows


def _bucket_order(text: str) -> tuple[str, int]:
    name, labels = json.loads(text)
    if not name.endswith("_bucket"):
        return (text, 0)
    series = key(name, {k: v for k, v in labels.items() if k != "le"})
    return (series, BUCKET_NAMES.index(labels["le"]))


def reset() -> None:
    """Forget the counts in memory (a test's start, a forked child's)."""
    with _lock:
        _pending.clear()


def _store_add(counts: dict[str, float]) -> None:
    if settings.REDIS_URL:
        pipe = _redis().pipeline(transaction=False)
        for name, value in counts.items():
            pipe.hincrbyfloat(REDIS_KEY, name, value)
        pipe.execute()
        return
    table = MetricCount._meta.db_table
    rows = ", ".join(["(%s, %s)"] * len(counts))
    params = [part for item in counts.items() for part in item]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key, value) VALUES {rows} "
            f"ON CONFLICT (key) DO UPDATE SET value = {table}.value + excluded.value",
            params,
        )


def _store_read() -> dict[str, float]:
    if settings.REDIS_URL:
        return {k.decode(): float(v) for k, v in _redis().hgetall(REDIS_KEY).items()}
    return dict(MetricCount.objects.values_list("key", "value"))


@cache
def _redis_for(url: str, pid: int) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _redis():
    return _redis_for(settings.REDIS_URL, os.getpid())


os.register_at_fork(after_in_child=reset)  # a forked worker does not count its parent's
atexit.register(flush, quietly=True)
