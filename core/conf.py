"""Every knob of State Manager in one typed object, read from the environment once.

`statemanager/settings.py` sets `STATE_MANAGER = Conf.from_environ()`; code reads
`conf()` (Django's `settings.STATE_MANAGER`, so a test's `settings` fixture can swap it:
`settings.STATE_MANAGER = replace(settings.STATE_MANAGER, batch_size=5)`). Each field is
the environment variable `STATE_MANAGER_<FIELD>` (upper case), with the default a new
deployment gets.

>>> conf = Conf.from_environ({"STATE_MANAGER_BATCH_SIZE": "5", "STATE_MANAGER_OUTBOUND_ALLOW": "a"})
>>> conf.batch_size, conf.concurrency, conf.outbound_allow
(5, 10, ('a',))
>>> Conf.from_environ({"STATE_MANAGER_BATCH_SIZE": "many"})
Traceback (most recent call last):
ValueError: STATE_MANAGER_BATCH_SIZE: 'many' is not a number
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings

PREFIX = "STATE_MANAGER_"


@dataclass(frozen=True)
class Conf:
    # Where this deployment is reached from outside (callback URLs, links in alerts).
    public_url: str = "http://127.0.0.1:8000"
    # The longest a resting batch lane waits before it looks for due orders again (work
    # that arrives, and orders that come due, wake it sooner).
    interval_seconds: int = 60
    # A pause after every batch that claimed orders; 0: a backlog drains at once.
    batch_pause_seconds: float = 0
    batch_size: int = 100
    concurrency: int = 10
    # Batch lanes running at once across the fleet; 0: as many as the django-q2 workers.
    max_parallel_batches: int = 0
    lease_seconds: int = 60
    max_steps_per_run: int = 1000
    # The most items a map step runs over; a longer list fails the step.
    max_map_items: int = 1000
    max_request_bytes: int = 1024 * 1024
    # JSON nested deeper than this is refused at every door (the webhook, callbacks,
    # definitions), well before Python's recursion limit.
    max_json_depth: int = 64
    # Host names, addresses and CIDR ranges the engine may call besides public addresses.
    outbound_allow: tuple[str, ...] = ()
    log_body_bytes: int = 4096
    # The shared secret status notifications are signed with; unset, none are sent.
    notify_secret: str = field(default="", repr=False)
    # A retry wait up to this long is slept inside the order's turn; a longer one
    # releases the order as `waiting` until it is due.
    max_inline_wait_seconds: float = 5
    # Finished orders older than this many days are deleted daily; 0 keeps them for ever.
    retention_days: int = 0
    # The longest a call waits inside its order's turn for a slot at a host with limits;
    # past it, the order is left waiting (due again when its host has room).
    host_max_wait_seconds: float = 2.0
    # A partner's message that no order waits for yet is kept this long, for the orders
    # that start waiting for its name and key in the meantime.
    message_ttl_seconds: int = 86400
    # The circuit breaker of every outbound host (hosts/breaker.py): it opens when at least
    # MIN_CALLS attempts were made in the last WINDOW_SECONDS and FAILURE_RATE of them failed
    # (no answer, 5xx, 429); after COOLDOWN_SECONDS it lets PROBES calls through, and closes
    # when they succeed. BREAKER_MIN_CALLS=0 turns it off.
    breaker_window_seconds: int = 60
    breaker_failure_rate: float = 0.5
    breaker_min_calls: int = 20
    breaker_cooldown_seconds: float = 30.0
    breaker_probes: int = 3
    # The longest a batch may run before django-q2 gives up on it.
    batch_timeout_seconds: int = 3600
    # The bearer token `GET /metrics` wants; unset, /metrics is a 404.
    metrics_token: str = field(default="", repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Conf:
        """The settings from `STATE_MANAGER_*` variables; an empty one takes the default."""
        environ = os.environ if environ is None else environ
        values = {}
        for known in dataclasses.fields(cls):
            name = PREFIX + known.name.upper()
            text = environ.get(name, "")
            if text.strip():  # a text setting (a secret) is taken as written
                values[known.name] = _parse(known.type, text, name)
        conf = cls(**values)
        return dataclasses.replace(conf, public_url=conf.public_url.rstrip("/"))


def conf() -> Conf:
    """The settings in force."""
    return settings.STATE_MANAGER


def _parse(kind: str, text: str, name: str) -> object:
    try:
        if kind == "int":
            return int(text.strip())
        if kind == "float":
            return float(text.strip())
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a number") from None
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text
