"""Doorbells: work that arrives wakes whoever rests waiting for it, at once.

A producer rings a bell after the commit that makes the work due (`ring`); a batch lane
resting between batches, or the notifier, waits at its bell (`wait`). Rings only shorten
rests: a lost ring costs at most the rest's timeout, never an order.

- With REDIS_URL, a ring is an item pushed on a Redis list and a waiter takes one with a
  blocking pop (BLPOP): one ring wakes one resting waiter within milliseconds, on any
  machine. The list is trimmed to MAX_RINGS, so a burst of ten thousand new orders
  wakes a waiter or two, not ten thousand times: a woken lane that claims a full batch
  rings again, so the others join the drain one after another.
- Without Redis, a ring touches a file that the waiters of this machine watch (a stat
  every FILE_EVERY_SECONDS, no database read), which is all it takes on the embedded
  default (SQLite: one machine); and a waiter looks once a second with a cheap read its
  caller gives (`look`), which finds the work that other machines made due.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)

KEY_PREFIX = "statemanager:bell:"
# The bells: due orders for the batch lanes, status notifications for the notifiers.
ORDERS = "orders"
EVENTS = "events"
MAX_RINGS = 2
# A ring nobody took is dropped after this long (the rest it would shorten is over).
RING_TTL_SECONDS = 300
LOOK_EVERY_SECONDS = 1.0
# The longest single blocking pop, so that a waiter's `stop` is seen within a second.
POP_SECONDS = 1.0
FILE_EVERY_SECONDS = 0.05

_clients: dict[int, object] = {}
_redis_down = threading.Event()
# The last touch of each bell's file that this process saw.
_seen: dict[str, int] = {}
_clients_lock = threading.Lock()


def uses_redis() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


def ring(bell: str) -> None:
    """Wake a waiter at `bell` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: ring_now(bell))


def ring_now(bell: str) -> None:
    if not uses_redis():
        try:
            path = _bell_file(bell)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError as exc:
            logger.warning("could not ring %s (%s); waiters look once a second", bell, exc)
        return
    key = KEY_PREFIX + bell
    try:
        pipe = _client().pipeline(transaction=False)
        pipe.lpush(key, "1").ltrim(key, 0, MAX_RINGS - 1).expire(key, RING_TTL_SECONDS)
        pipe.execute()
    except Exception as exc:  # a ring lost costs at most a rest, never an order
        logger.warning("could not ring %s (%s); waiters look again at their timeout", bell, exc)


def wait(
    bell: str,
    timeout: float,
    *,
    look: Callable[[], bool],
    stop: threading.Event | None = None,
) -> bool:
    """Rest up to `timeout` seconds; True as soon as `bell` rings (with Redis) or `look`
    finds work (without; a `look` that fails counts as work, so that the caller meets
    the failure in its own next step), False when the time is up or `stop` is set."""
    stop = stop or threading.Event()
    deadline = time.monotonic() + max(0.0, timeout)
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if uses_redis():
            try:
                popped = _client().blpop([KEY_PREFIX + bell], timeout=min(left, POP_SECONDS))
            except Exception as exc:
                if not _redis_down.is_set():  # said once, until Redis answers again
                    _redis_down.set()
                    logger.warning("could not wait at %s (%s); looking instead", bell, exc)
            else:
                _redis_down.clear()
                if popped:
                    return True
                continue
        if _file_rang(bell, stop, min(left, LOOK_EVERY_SECONDS)):
            return True
        if stop.is_set() or time.monotonic() >= deadline:
            return False
        try:
            if look():
                return True
        except Exception:  # the database, say: the caller meets it in its own next step
            return True
    return False


def _bell_file(bell: str) -> Path:
    """This machine's file for `bell`, one per database (`settings.DATABASES`)."""
    database = settings.DATABASES["default"]
    name = f"{database.get('HOST', '')}:{database.get('PORT', '')}:{database['NAME']}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"statemanager-bells-{digest}" / bell


def _file_rang(bell: str, stop: threading.Event, seconds: float) -> bool:
    """Watch `bell`'s file for `seconds`: True once it was touched since this process
    last saw it ring."""
    path = _bell_file(bell)
    until = time.monotonic() + seconds
    while True:
        try:
            touched = path.stat().st_mtime_ns
        except OSError:
            touched = 0
        seen = _seen.setdefault(bell, touched)
        if touched != seen:
            _seen[bell] = touched
            return True
        left = until - time.monotonic()
        if left <= 0 or stop.wait(min(left, FILE_EVERY_SECONDS)):
            return False


def _client():
    """One Redis client per process (django-q2 forks its workers after start-up)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _clients_lock:
            client = _clients.setdefault(
                pid,
                redis.Redis.from_url(
                    settings.REDIS_URL,
                    socket_connect_timeout=5,
                    socket_timeout=POP_SECONDS + 5,
                    health_check_interval=30,
                ),
            )
    return client
