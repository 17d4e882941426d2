"""The circuit breaker of each outbound host, shared by the fleet.

Every sent attempt is counted per host, as an attempt and, when the host failed it (no
answer, a timeout, a 5xx or a 429), as a failure. Workers add their counts to the
database's one-second slices (`HostWindow`) at most once a second, and then look at the
window: when at least BREAKER_MIN_CALLS attempts were made in the last
BREAKER_WINDOW_SECONDS and the share of failures reaches BREAKER_FAILURE_RATE, the
breaker opens. An open breaker holds the orders that would call the host (they stay
due, nothing is failed) until BREAKER_COOLDOWN_SECONDS have passed; then it is half
open and lets BREAKER_PROBES calls through. When they all succeed it closes, and its
window starts afresh; when one fails it opens again for another cool-down.

A host the breaker opens for gets a `Host` row if it had none, so that it is listed,
can be paused, and shows on the dashboard and in /health/.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from core.conf import conf
from hosts.models import Host, HostWindow
from hosts.rules import forget_rules
from hosts.seen import record_seen

logger = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 1.0


@dataclass(frozen=True)
class BreakerSettings:
    window_seconds: int
    failure_rate: float
    min_calls: int
    cooldown_seconds: float
    probes: int

    @classmethod
    def current(cls) -> BreakerSettings:
        config = conf()
        return cls(
            window_seconds=config.breaker_window_seconds,
            failure_rate=config.breaker_failure_rate,
            min_calls=config.breaker_min_calls,
            cooldown_seconds=config.breaker_cooldown_seconds,
            probes=config.breaker_probes,
        )

    @property
    def enabled(self) -> bool:
        return self.min_calls > 0 and 0 < self.failure_rate <= 1


def host_failed(status: int | None, *, refused: bool) -> bool:
    """Whether an attempt's result counts against its host: it did not answer, or said it
    could not (5xx, 429). A 4xx is an answer about the request, not the host's health.

    >>> host_failed(None, refused=False), host_failed(503, refused=False)
    (True, True)
    >>> host_failed(404, refused=False), host_failed(None, refused=True)
    (False, False)
    """
    if refused:
        return False
    return status is None or status >= 500 or status == 429


class Tally:
    """This process's attempts and failures per host since its last flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter = Counter()
        self._flushed_at = time.monotonic()

    def add(self, host: str, *, failed: bool) -> None:
        with self._lock:
            self._counts[(host, "attempts")] += 1
            if failed:
                self._counts[(host, "failures")] += 1
            due = time.monotonic() - self._flushed_at >= FLUSH_EVERY_SECONDS
        if due:
            self.flush()

    def take(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._flushed_at = time.monotonic()
        hosts = {host for host, _ in counts}
        return {host: (counts[(host, "attempts")], counts[(host, "failures")]) for host in hosts}

    def flush(self) -> None:
        """Note the hosts called, add the counts to the shared window and open the breakers
        they call for."""
        taken = self.take()
        if not taken:
            return
        record_seen(taken)
        config = BreakerSettings.current()
        if not config.enabled:
            return
        slice_start = int(time.time())
        for host, (attempts, failures) in taken.items():
            add_to_window(host, slice_start, attempts, failures)
            judge(host, config)

    def clear(self) -> None:
        self.take()


tally = Tally()


def add_to_window(host: str, slice_start: int, attempts: int, failures: int) -> None:
    table = connection.ops.quote_name(HostWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (host, slice_start, attempts, failures) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (host, slice_start) DO UPDATE SET "
            f"attempts = {table}.attempts + excluded.attempts, "
            f"failures = {table}.failures + excluded.failures",
            [host, slice_start, attempts, failures],
        )


def failure_rate(host: str, config: BreakerSettings) -> tuple[int, float]:
    """Attempts in the window, and the share of them that failed."""
    since = int(time.time()) - config.window_seconds
    HostWindow.objects.filter(host=host, slice_start__lt=since).delete()
    sums = HostWindow.objects.filter(host=host).aggregate(a=Sum("attempts"), f=Sum("failures"))
    attempts, failures = sums["a"] or 0, sums["f"] or 0
    return attempts, (failures / attempts if attempts else 0.0)


def judge(host: str, config: BreakerSettings) -> None:
    attempts, rate = failure_rate(host, config)
    rounded = round(rate, 4)
    Host.objects.filter(host=host).exclude(breaker_failure_rate=rounded).update(
        breaker_failure_rate=rounded
    )
    if attempts >= config.min_calls and rate >= config.failure_rate:
        open_breaker(host, rate, attempts)


def open_breaker(host: str, rate: float, attempts: int) -> None:
    now = timezone.now()
    Host.objects.get_or_create(host=host)
    opened = Host.objects.filter(host=host, breaker_state=Host.Breaker.CLOSED).update(
        breaker_state=Host.Breaker.OPEN,
        breaker_since=now,
        breaker_failure_rate=round(rate, 4),
        breaker_probes=0,
        breaker_successes=0,
    )
    if opened:
        forget_rules()
        logger.warning(
            "circuit breaker of %s opened: %.0f%% of %d attempts failed", host, rate * 100, attempts
        )


@dataclass(frozen=True)
class Admission:
    """Whether a call may go to a host whose breaker is not closed, and as what."""

    allowed: bool
    probe: bool = False
    wait: float = 0.0
    since: object = None


def admit(host: str, config: BreakerSettings | None = None) -> Admission:
    """Let a call through a breaker that is not closed: as a probe once the cool-down is
    over and fewer than BREAKER_PROBES probes are out, else not, with the time to wait."""
    config = config or BreakerSettings.current()
    now = timezone.now()
    cooldown = timedelta(seconds=config.cooldown_seconds)
    with transaction.atomic():
        row = Host.objects.select_for_update().filter(host=host).first()
        if row is None or row.breaker_state == Host.Breaker.CLOSED:
            return Admission(True)
        since = row.breaker_since or now
        over = since + cooldown
        if row.breaker_state == Host.Breaker.OPEN:
            if now < over:
                return Admission(False, wait=(over - now).total_seconds(), since=since)
            _set_breaker(row, Host.Breaker.HALF_OPEN, since=now, probes=1)
            logger.info("circuit breaker of %s half open: probing", host)
            return Admission(True, probe=True)
        if row.breaker_probes < config.probes:
            _set_breaker(row, Host.Breaker.HALF_OPEN, probes=row.breaker_probes + 1)
            return Admission(True, probe=True)
        if now >= over:  # the probes sent never reported back (their workers died)
            _set_breaker(row, Host.Breaker.HALF_OPEN, since=now, probes=1, successes=0)
            return Admission(True, probe=True)
        return Admission(False, wait=(over - now).total_seconds(), since=since)


def probe_returned(host: str) -> None:
    """A probe admitted but not sent (the order was held, cancelled, or the allowlist
    refused it): its place goes to the next call."""
    Host.objects.filter(
        host=host, breaker_state=Host.Breaker.HALF_OPEN, breaker_probes__gt=0
    ).update(breaker_probes=F("breaker_probes") - 1)


def probe_finished(host: str, *, failed: bool, config: BreakerSettings | None = None) -> None:
    """A probe's result: one failure opens the breaker again; all probes succeeding close it."""
    config = config or BreakerSettings.current()
    with transaction.atomic():
        row = Host.objects.select_for_update().filter(host=host).first()
        if row is None or row.breaker_state != Host.Breaker.HALF_OPEN:
            return
        if failed:
            _set_breaker(row, Host.Breaker.OPEN, since=timezone.now(), probes=0, successes=0)
            logger.warning("circuit breaker of %s opened again: a probe failed", host)
            return
        successes = row.breaker_successes + 1
        if successes < config.probes:
            _set_breaker(row, Host.Breaker.HALF_OPEN, successes=successes)
            return
        close_breaker(host)
        logger.info("circuit breaker of %s closed: %d probes succeeded", host, successes)


def _set_breaker(row: Host, state: str, *, since=None, probes=None, successes=None) -> None:
    values = {"breaker_state": state}
    if since is not None:
        values["breaker_since"] = since
    if probes is not None:
        values["breaker_probes"] = probes
    if successes is not None:
        values["breaker_successes"] = successes
    Host.objects.filter(pk=row.pk).update(**values)
    forget_rules()


def close_breaker(host: str) -> int:
    """Close a host's breaker, forgetting its window; a closed one is left as it is."""
    HostWindow.objects.filter(host=host).delete()
    forget_rules()
    return (
        Host.objects.filter(host=host)
        .exclude(breaker_state=Host.Breaker.CLOSED)
        .update(
            breaker_state=Host.Breaker.CLOSED,
            breaker_since=timezone.now(),
            breaker_failure_rate=0.0,
            breaker_probes=0,
            breaker_successes=0,
        )
    )
