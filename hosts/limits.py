"""The fleet-wide counters behind a host's `rate_per_second` and `max_concurrent`: in
Redis when REDIS_URL is set (one Lua script a call, on Redis's clock), else in the
database (one short transaction on the host's row, on the database's clock), so that
machines whose clocks differ a little still share one clock.

The rate is a GCRA (a virtual clock per host, moved on by 1/rate for each request): a
request may go when the clock is not ahead of now, so requests leave evenly spaced and
never as a burst, whoever sends them. A request whose slot is a little ahead may take it
and sleep until then (`max_wait`). One whose slot is further off takes nothing, and is
told when to come back by a second, advisory clock that queues the orders told to wait,
one slot apart, so a backlog comes back at the rate instead of all at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction

from hosts.models import Host, HostLease

KEY_PREFIX = "statemanager:host:"


@dataclass(frozen=True)
class Slot:
    """A rate decision: go after `wait` seconds (`granted`), or come back after `wait`."""

    granted: bool
    wait: float


class Limits:
    def reserve(self, host: str, rate: float, *, max_wait: float) -> Slot:
        raise NotImplementedError

    def acquire(self, host: str, max_concurrent: int, *, ttl: float) -> str | None:
        """A lease token when fewer than `max_concurrent` requests are in flight, else None
        (also, in Redis, for a lease's `ttl` after a restart that lost the leases)."""
        raise NotImplementedError

    def release(self, host: str, token: str) -> None:
        raise NotImplementedError

    def reset(self, host: str) -> None:
        """Forget a host's rate clocks (its limits changed). Leases stay: the calls that
        hold them are still in flight."""
        raise NotImplementedError


RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local ttl = math.ceil(interval * 4 + max_wait + 60)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local start = math.max(tat, now)
if start - now <= max_wait then
  redis.call('SET', KEYS[1], string.format('%.6f', start + interval), 'EX', ttl)
  return {1, tostring(start - now)}
end
local queued = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), start)
local queue_ttl = math.ceil(queued - now + ttl)
redis.call('SET', KEYS[2], string.format('%.6f', queued + interval), 'EX', queue_ttl)
return {0, tostring(queued - now)}
"""

# KEYS[2] holds when the server started (an upper bound: INFO gives whole seconds), written
# by the first acquire for the host after the start. A server that lost its data in a
# restart forgot the leases of calls still in flight, which may live a lease's ttl past
# the restart: none is given before then. Persisted (AOF, RDB), the key and the leases
# come back together, and the leases count as they are. Read on every call: one GET.
ACQUIRE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local started = tonumber(redis.call('GET', KEYS[2]) or '')
if not started then
  local info = redis.call('INFO', 'server')
  started = now - tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) + 1
  redis.call('SET', KEYS[2], string.format('%.6f', started))
end
if now < started + tonumber(ARGV[3]) then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(last[2]) - now) + 60)
  return 1
end
return 0
"""


class RedisLimits(Limits):
    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._reserve = self.client.register_script(RESERVE)
        self._acquire = self.client.register_script(ACQUIRE)

    @staticmethod
    def _keys(host: str) -> tuple[str, str, str, str]:
        base = f"{KEY_PREFIX}{{{host}}}:"  # one hash slot per host, for Redis Cluster
        return base + "rate", base + "queue", base + "inflight", base + "started"

    def reserve(self, host: str, rate: float, *, max_wait: float) -> Slot:
        rate_key, queue_key, *_ = self._keys(host)
        granted, wait = self._reserve(keys=[rate_key, queue_key], args=[1.0 / rate, max_wait])
        return Slot(bool(int(granted)), float(wait))

    def acquire(self, host: str, max_concurrent: int, *, ttl: float) -> str | None:
        token = uuid.uuid4().hex
        _, _, inflight, started = self._keys(host)
        taken = self._acquire(keys=[inflight, started], args=[token, max_concurrent, ttl])
        return token if int(taken) else None

    def release(self, host: str, token: str) -> None:
        self.client.zrem(self._keys(host)[2], token)

    def reset(self, host: str) -> None:
        self.client.delete(*self._keys(host)[:2])


class DatabaseLimits(Limits):
    """The same counters on the host's row and in `HostLease`, each decision one
    transaction holding the host's row (SQLite's writes are serial anyway)."""

    def reserve(self, host: str, rate: float, *, max_wait: float) -> Slot:
        interval = 1.0 / rate
        with transaction.atomic():
            row = (
                Host.objects.select_for_update()
                .filter(host=host)
                .values("pk", "rate_tat", "queue_tat")
                .first()
            )
            if row is None:
                return Slot(True, 0.0)
            now = database_time()
            start = max(row["rate_tat"], now)
            if start - now <= max_wait:
                Host.objects.filter(pk=row["pk"]).update(rate_tat=start + interval)
                return Slot(True, start - now)
            queued = max(row["queue_tat"], start)
            Host.objects.filter(pk=row["pk"]).update(queue_tat=queued + interval)
            return Slot(False, queued - now)

    def acquire(self, host: str, max_concurrent: int, *, ttl: float) -> str | None:
        with transaction.atomic():
            if not Host.objects.select_for_update().filter(host=host).exists():
                return ""  # the host (and its limit) is gone: nothing to hold
            now = datetime.fromtimestamp(database_time(), UTC)
            leases = HostLease.objects.filter(host=host)
            leases.filter(expires_at__lte=now).delete()
            if leases.count() >= max_concurrent:
                return None
            token = uuid.uuid4()
            HostLease.objects.create(
                host=host, token=token, expires_at=now + timedelta(seconds=ttl)
            )
            return token.hex

    def release(self, host: str, token: str) -> None:
        if token:
            HostLease.objects.filter(token=uuid.UUID(token)).delete()

    def reset(self, host: str) -> None:
        Host.objects.filter(host=host).update(rate_tat=0.0, queue_tat=0.0)


def database_time() -> float:
    """Now, in Unix seconds, on the database's clock: every worker of the fleet reads the
    same one, as with Redis's TIME. SQLite's database is on this machine, so its clock."""
    if connection.vendor != "postgresql":
        return time.time()
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXTRACT(EPOCH FROM clock_timestamp())")
        return float(cursor.fetchone()[0])


@cache
def _redis_limits(url: str) -> RedisLimits:
    return RedisLimits(url)


def limits() -> Limits:
    """Redis when the project has one (REDIS_URL), else the database."""
    url = settings.REDIS_URL
    return _redis_limits(url) if url else DatabaseLimits()
