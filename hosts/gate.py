"""The gate every outbound call passes: the host's pause, circuit breaker, concurrency
and rate, in that order (contract section 9).

`enter` gives a `Permit` (the call may go; `leave` must follow it) or a `Hold` (the
order must wait, and when to look again). Hosts without a `Host` row pass at the cost
of a dictionary lookup: the rows are read once a second per process (at once after a
save in this process), and the counters are only touched for hosts with limits.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from hosts import breaker
from hosts.limits import limits
from hosts.rules import HostRule, current_rules

logger = logging.getLogger(__name__)

# A lease outlives its call by this much, so it is freed if its worker dies.
LEASE_MARGIN_SECONDS = 30.0


@dataclass(frozen=True)
class Permit:
    """The call may go to `host`, not before `ready_at` (time.monotonic()); `leave` must
    follow it."""

    host: str
    lease: str | None = None
    probe: bool = False
    ready_at: float = 0.0


@dataclass(frozen=True)
class Hold:
    """The order waits for `delay` seconds: `kind` is paused, breaker, concurrency or rate."""

    host: str
    kind: str
    reason: str
    delay: float


def jittered(seconds: float) -> float:
    """Half fixed, half random, so orders held together do not come back together."""
    return seconds / 2 + random.uniform(0, seconds / 2)


def backoff(first: float, cap: float, held_before: int) -> float:
    return jittered(min(first * 2 ** min(held_before, 16), cap))


def enter(
    host: str,
    *,
    timeout: float,
    held_before: int = 0,
    sleep: Callable[[float], None] = time.sleep,
) -> Permit | Hold:
    """May a call go to `host`? Waits up to HOST_MAX_WAIT_SECONDS for a free lease; a rate
    slot up to that far ahead is taken, and waited for by `wait_for_slot`."""
    rule = current_rules().get(host)
    if rule is None:
        return Permit(host)
    if rule.paused:
        return Hold(host, "paused", f"host {host} is paused", backoff(30.0, 300.0, held_before))
    probe = False
    if not rule.breaker_closed:
        config = breaker.BreakerSettings.current()
        admission = breaker.admit(host, config)
        if not admission.allowed:
            reason = (
                f"the circuit breaker of {host} is open; "
                f"it lets probes through in {admission.wait:.0f}s"
            )
            delay = admission.wait + random.uniform(0, max(config.cooldown_seconds, 1.0))
            return Hold(host, "breaker", reason, delay)
        probe = admission.probe
    if not rule.max_concurrent and not rule.rate_per_second:
        return Permit(host, probe=probe)
    max_wait = float(settings.STATE_MANAGER["HOST_MAX_WAIT_SECONDS"])
    try:
        return _take_limits(rule, timeout, max_wait, held_before, sleep, probe)
    except Exception as exc:  # the limits store is down: hold rather than overrun the partner
        logger.warning("limits of host %s could not be checked: %s", host, exc)
        reason = f"the limits of host {host} could not be checked: {type(exc).__name__}"
        return Hold(host, "limits", reason, backoff(5.0, 60.0, held_before))


def _take_limits(
    rule: HostRule,
    timeout: float,
    max_wait: float,
    held_before: int,
    sleep: Callable[[float], None],
    probe: bool,
) -> Permit | Hold:
    store = limits()
    host, lease = rule.host, None
    if rule.max_concurrent:
        ttl = timeout + max_wait + LEASE_MARGIN_SECONDS
        waited, pause = 0.0, 0.02
        while (lease := store.acquire(host, rule.max_concurrent, ttl=ttl)) is None:
            if waited >= max_wait:
                reason = (
                    f"host {host} already has {rule.max_concurrent} calls in flight "
                    "(its max_concurrent)"
                )
                return Hold(host, "concurrency", reason, backoff(1.0, 30.0, held_before))
            sleep(pause)
            waited, pause = waited + pause, min(pause * 2, 0.25)
    if rule.rate_per_second:
        slot = store.reserve(host, rule.rate_per_second, max_wait=max_wait)
        if not slot.granted:
            if lease is not None:
                store.release(host, lease)
            reason = f"host {host} is at its rate of {rule.rate_per_second:g} requests per second"
            return Hold(
                host, "rate", reason, slot.wait + random.uniform(0, max(1.0, slot.wait / 10))
            )
        # Slept by the caller just before sending (`wait_for_slot`), after what it writes
        # first, so that write's time does not push the call past its slot.
        return Permit(host, lease=lease, probe=probe, ready_at=time.monotonic() + slot.wait)
    return Permit(host, lease=lease, probe=probe)


def wait_for_slot(permit: Permit, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep until the permit's rate slot (at once when it has none)."""
    wait = permit.ready_at - time.monotonic()
    if wait > 0:
        sleep(wait)


def leave(permit: Permit, *, status: int | None, refused: bool) -> None:
    """The call is over: free its lease, and count its result for the breaker."""
    if permit.lease:
        try:
            limits().release(permit.host, permit.lease)
        except Exception as exc:  # the lease expires by itself
            logger.warning("lease on host %s not released: %s", permit.host, exc)
    failed = breaker.host_failed(status, refused=refused)
    if permit.probe:
        breaker.probe_finished(permit.host, failed=failed)
    elif not refused:
        breaker.tally.add(permit.host, failed=failed)


def flush() -> None:
    """Add this process's counts to the shared window now (a batch calls it at its end)."""
    breaker.tally.flush()
