"""The outbound hosts the engine calls, with the limits people set on them (contract
section 9) and the state the fleet keeps for them: the circuit breaker and, without
Redis, the rate limiter's clock and the concurrency leases."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from hosts.names import canonical_host, host_problem


def validate_host(value: str) -> None:
    problem = host_problem(value)
    if problem:
        raise ValidationError(problem)


class Host(models.Model):
    class Breaker(models.TextChoices):
        CLOSED = "closed"
        OPEN = "open"
        HALF_OPEN = "half_open", "half open"

    host = models.CharField(
        max_length=253,
        unique=True,
        validators=[validate_host],
        help_text="The host name (or address) in the rendered URL, without scheme or port.",
    )
    rate_per_second = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001)],
        help_text="Requests per second to this host, across the whole fleet. Empty: no limit.",
    )
    max_concurrent = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Requests in flight to this host at once, across the whole fleet. "
        "Empty: no limit.",
    )
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_by = models.CharField(max_length=150, blank=True, editable=False)

    # Kept by the fleet (hosts.breaker), never by a form.
    breaker_state = models.CharField(
        max_length=16, choices=Breaker.choices, default=Breaker.CLOSED, editable=False
    )
    breaker_since = models.DateTimeField(null=True, blank=True, editable=False)
    breaker_failure_rate = models.FloatField(null=True, blank=True, editable=False)
    breaker_probes = models.PositiveIntegerField(default=0, editable=False)
    breaker_successes = models.PositiveIntegerField(default=0, editable=False)
    # The database rate limiter's clocks, in Unix seconds (hosts.limits.DatabaseLimits).
    rate_tat = models.FloatField(default=0.0, editable=False)
    queue_tat = models.FloatField(default=0.0, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # What a save of an existing host writes: what people set, never the fleet's state.
    SETTINGS_FIELDS = ("host", "rate_per_second", "max_concurrent", "paused_at", "paused_by")

    class Meta:
        ordering = ["host"]
        permissions = [("pause_host", "Can pause and resume an outbound host")]

    def __str__(self) -> str:
        return self.host

    def save(self, *args, **kwargs):
        """A save from the admin or the API writes the settings only, so it cannot put back
        a breaker state or a limiter clock the fleet changed since the host was read."""
        if self.pk and not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [*self.SETTINGS_FIELDS, "updated_at"]
        self.host = canonical_host(self.host)
        super().save(*args, **kwargs)

    @property
    def paused(self) -> bool:
        return self.paused_at is not None


class HostLease(models.Model):
    """A request in flight to a host with `max_concurrent`, when the database holds the
    limits (no REDIS_URL). A lease that outlives its expiry (a worker that died) is free."""

    host = models.CharField(max_length=253)
    token = models.UUIDField(unique=True)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["host", "expires_at"], name="host_lease_expiry")]

    def __str__(self) -> str:
        return f"{self.host} until {self.expires_at:%H:%M:%S}"


class HostWindow(models.Model):
    """Attempts and failures at one host in one slice of time, summed by every worker;
    the breaker reads the slices of its window."""

    host = models.CharField(max_length=253)
    slice_start = models.BigIntegerField(help_text="Unix seconds at which the slice starts.")
    attempts = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "slice_start"], name="host_window_slice")
        ]

    def __str__(self) -> str:
        return f"{self.host} at {self.slice_start}: {self.failures}/{self.attempts} failed"


class SeenHost(models.Model):
    """A host the engine called, and when it last did (to the minute or so: each worker
    writes what it called when it adds its counts to the breaker's window); support's
    list of every host shows those seen in the last day."""

    host = models.CharField(max_length=253, unique=True)
    last_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.host} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
