"""Which failed attempts are retried, and how long to wait before the next one.

>>> api_call = {"retry": {"max_attempts": 3, "backoff_seconds": 2}}
>>> policy = policy_for(api_call, {"retry": {"max_attempts": 5}})
>>> policy.max_attempts, policy.backoff_seconds, policy.backoff_rate
(5, 2.0, 2.0)
>>> 30.0 <= retry_delay(policy, 3, retry_after=30.0) <= 33.0
True
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

# A Retry-After is honoured up to a day; a longer one says the API is gone for good.
MAX_RETRY_AFTER_SECONDS = 86_400.0


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_backoff_seconds: float = 300.0


class AttemptResult(Protocol):
    status: int | None
    refused: bool


def policy_for(api_call: Mapping, step: Mapping) -> RetryPolicy:
    """The API call's `retry` with the step's keys laid over it, key by key."""
    merged = {**(api_call.get("retry") or {}), **(step.get("retry") or {})}
    return RetryPolicy(
        max_attempts=int(merged.get("max_attempts", 1)),
        backoff_seconds=float(merged.get("backoff_seconds", 1.0)),
        backoff_rate=float(merged.get("backoff_rate", 2.0)),
        max_backoff_seconds=float(merged.get("max_backoff_seconds", 300.0)),
    )


def is_retryable(result: AttemptResult) -> bool:
    """Timeouts, refused connections, 5xx and 429 are retried; other 4xx are not.

    A response outside 4xx that fails `success_when` (a 200 saying "not ready yet") is
    retried too. A call refused by the outbound allowlist, or whose URL (or a redirect's)
    cannot be sent, never is: it would only be refused again.
    """
    if result.refused:
        return False
    if result.status is None:
        return True
    return result.status == 429 or not 400 <= result.status < 500


def can_retry(policy: RetryPolicy, attempt: int, result: AttemptResult) -> bool:
    return attempt < policy.max_attempts and is_retryable(result)


def retry_after_seconds(
    status: int | None, value: str | None, *, now: float | None = None
) -> float | None:
    """The seconds a `Retry-After` on a 429 or 503 asks for, given as seconds or as an HTTP
    date (0 for a date past); None for another status, no header or one that is neither.
    The real run and the dry run read it here alike.

    >>> retry_after_seconds(503, "120"), retry_after_seconds(500, "120")
    (120.0, None)
    >>> retry_after_seconds(429, "Wed, 21 Oct 2015 07:28:00 GMT", now=1445412420.0)
    60.0
    >>> retry_after_seconds(429, "soon") is None, retry_after_seconds(429, "nan") is None
    (True, True)
    """
    if status not in (429, 503) or not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (now or time.time())
        except (TypeError, ValueError):
            return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def retry_delay(policy: RetryPolicy, attempt: int, *, retry_after: float | None = None) -> float:
    """Seconds before attempt `attempt + 1`, always with jitter, so that orders failing
    together do not retry together: the API's Retry-After when it gave one, plus up to a
    tenth more (half a second at least); else exponential backoff capped at
    `max_backoff_seconds`, half fixed and half random."""
    if retry_after is not None:
        asked = min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
        return asked + random.uniform(0, max(asked / 10, 0.5))
    backoff = policy.backoff_seconds * policy.backoff_rate ** (attempt - 1)
    capped = min(backoff, policy.max_backoff_seconds)
    return capped / 2 + random.uniform(0, capped / 2)
