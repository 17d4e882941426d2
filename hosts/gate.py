"""The gate every outbound call passes: the host's pause, circuit breaker, concurrency
and rate, in that order (contract section 9).

`enter` gives a `Permit` (the call may go; `leave` must follow it) or a `Hold` (the
order must wait, and when to look again). Hosts without a `Host` row pass at the cost
of a dictionary lookup (the rows are read once a second per process, at once after a
save in this process); the limits' counters are only touched for hosts with limits.
Every call, to any host, is counted in this process for the circuit breaker, which
holds for every host; the counts are flushed to the database about once a second.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone

from core.conf import conf
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
    slot up to that far ahead is taken, and waited for by `wait_for_slot`. Whatever goes
    wrong in here holds the order (and gives back what it took) rather than failing it."""
    probe = False
    try:
        rule = current_rules().get(host)
        if rule is None:
            return Permit(host)
        if rule.paused:
            return Hold(host, "paused", f"host {host} is paused", backoff(30.0, 300.0, held_before))
        if not rule.breaker_closed:
            admission = _through_breaker(rule, held_before)
            if isinstance(admission, Hold):
                return admission
            probe = admission
        if not rule.max_concurrent and not rule.rate_per_second:
            return Permit(host, probe=probe)
        max_wait = float(conf().host_max_wait_seconds)
        passage = _take_limits(rule, timeout, max_wait, held_before, sleep, probe)
    except Exception as exc:  # the database or Redis is down: hold rather than overrun
        logger.warning("the gate of host %s could not be checked: %s", host, exc)
        reason = f"the limits of host {host} could not be checked: {type(exc).__name__}"
        passage = Hold(host, "limits", reason, backoff(5.0, 60.0, held_before))
    if probe and isinstance(passage, Hold):
        _give_back_probe(host)
    return passage


def _through_breaker(rule: HostRule, held_before: int) -> bool | Hold:
    """A breaker that is not closed: whether this call goes as a probe, or the hold. While
    the cached rule shows the cool-down running, the host's row is not even locked."""
    config = breaker.BreakerSettings.current()
    host, wait = rule.host, 0.0
    if rule.breaker_since is not None and rule.breaker_state == "open":
        wait = config.cooldown_seconds - (timezone.now() - rule.breaker_since).total_seconds()
    if wait <= 0:
        admission = breaker.admit(host, config)
        if admission.allowed:
            return admission.probe
        wait = admission.wait
    state = "half open, its trial calls out" if rule.breaker_state == "half_open" else "open"
    reason = f"the circuit breaker of {host} is {state}; it lets trial calls through in {wait:.0f}s"
    # Back to the host after the cool-down, spread over one (more for orders held again).
    spread = min(max(config.cooldown_seconds, 1.0) * 2 ** min(held_before, 8), 600.0)
    return Hold(host, "breaker", reason, wait + random.uniform(0, spread))


def _give_back_probe(host: str) -> None:
    try:
        breaker.probe_returned(host)
    except Exception as exc:  # the stuck-probe recovery frees it after a cool-down
        logger.warning("probe of host %s not given back: %s", host, exc)


def _take_limits(
    rule: HostRule,
    timeout: float,
    max_wait: float,
    held_before: int,
    sleep: Callable[[float], None],
    probe: bool,
) -> Permit | Hold:
    """A lease when the host has `max_concurrent`, then a rate slot when it has a rate; a
    lease taken is given back when no slot is (or the store fails in between)."""
    store, host = limits(), rule.host
    lease = None
    if rule.max_concurrent:
        lease = _lease(store, rule, timeout + max_wait + LEASE_MARGIN_SECONDS, max_wait, sleep)
        if lease is None:
            reason = (
                f"host {host} already has {rule.max_concurrent} calls in flight "
                "(its max_concurrent)"
            )
            return Hold(host, "concurrency", reason, backoff(1.0, 30.0, held_before))
    if not rule.rate_per_second:
        return Permit(host, lease=lease, probe=probe)
    try:
        slot = store.reserve(host, rule.rate_per_second, max_wait=max_wait)
    except Exception:
        if lease is not None:
            store.release(host, lease)
        raise
    if not slot.granted:
        if lease is not None:
            store.release(host, lease)
        reason = f"host {host} is at its rate of {rule.rate_per_second:g} requests per second"
        return Hold(host, "rate", reason, slot.wait + random.uniform(0, max(1.0, slot.wait / 10)))
    # Slept by the caller just before sending (`wait_for_slot`), after what it writes
    # first, so that write's time does not push the call past its slot.
    return Permit(host, lease=lease, probe=probe, ready_at=time.monotonic() + slot.wait)


def _lease(store, rule: HostRule, ttl: float, max_wait: float, sleep) -> str | None:
    """A lease, asked for again with growing pauses until `max_wait` has passed."""
    deadline, pause = time.monotonic() + max_wait, 0.02
    while (lease := store.acquire(rule.host, rule.max_concurrent, ttl=ttl)) is None:
        if time.monotonic() >= deadline:
            return None
        sleep(pause)
        pause = min(pause * 2, 0.25)
    return lease


def wait_for_slot(permit: Permit, sleep: Callable[[float], None] = time.sleep) -> None:
    """Sleep until the permit's rate slot (at once when it has none)."""
    wait = permit.ready_at - time.monotonic()
    if wait > 0:
        sleep(wait)


def leave(permit: Permit, *, sent: bool, status: int | None = None, refused: bool = False) -> None:
    """The call is over: free its lease, and count its result for the breaker. A call not
    sent, or refused by the outbound allowlist, says nothing of the host's health: a probe
    that was not sent is given back for another call to make."""
    if permit.lease:
        try:
            limits().release(permit.host, permit.lease)
        except Exception as exc:  # the lease expires by itself
            logger.warning("lease on host %s not released: %s", permit.host, exc)
    try:
        if not sent or refused:
            if permit.probe:
                breaker.probe_returned(permit.host)
            return
        failed = breaker.host_failed(status, refused=False)
        if permit.probe:
            breaker.probe_finished(permit.host, failed=failed)
        else:
            breaker.tally.add(permit.host, failed=failed)
    except Exception as exc:  # the breaker's bookkeeping must not cost the call's result
        logger.warning("result of a call to %s not counted for its breaker: %s", permit.host, exc)


def flush() -> None:
    """Add this process's counts to the shared window now (a batch calls it at its end)."""
    try:
        breaker.tally.flush()
    except Exception as exc:
        logger.warning("breaker counts not added to the shared window: %s", exc)
