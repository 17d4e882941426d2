"""What the gate knows of the hosts: their rows, read once a second per process, and at
once after this process changed one."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from hosts.models import Host

RULES_SECONDS = 1.0


@dataclass(frozen=True)
class HostRule:
    host: str
    rate_per_second: float | None
    max_concurrent: int | None
    paused: bool
    breaker_state: str
    breaker_since: datetime | None

    @property
    def breaker_closed(self) -> bool:
        return self.breaker_state == Host.Breaker.CLOSED


class _Rules:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, HostRule] | None = None
        self._read_at = 0.0
        # Moved on by every `forget`: rows read before it are not kept after it.
        self._generation = 0

    def get(self) -> dict[str, HostRule]:
        with self._lock:
            fresh = time.monotonic() - self._read_at < RULES_SECONDS
            if self._rules is not None and fresh:
                return self._rules
            generation = self._generation
        rows = Host.objects.values_list(
            "host",
            "rate_per_second",
            "max_concurrent",
            "paused_at",
            "breaker_state",
            "breaker_since",
        )
        rules = {
            host: HostRule(host, rate, most, paused_at is not None, state, since)
            for host, rate, most, paused_at, state, since in rows
        }
        with self._lock:
            if generation == self._generation:
                self._rules, self._read_at = rules, time.monotonic()
        return rules

    def forget(self) -> None:
        with self._lock:
            self._rules = None
            self._generation += 1


_rules = _Rules()


def current_rules() -> dict[str, HostRule]:
    return _rules.get()


def forget_rules(**kwargs) -> None:
    """Read the rows again at the next call (connected to `Host`'s saves and deletes), and
    again once the change is committed, in case a read in between saw the rows before it."""
    _rules.forget()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_rules.forget)
