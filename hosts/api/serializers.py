import math

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from core.storable import text_problem
from hosts.models import Host
from hosts.names import canonical_host, host_problem
from hosts.services import MAX_CONCURRENT, MAX_RATE_PER_SECOND

LEAST_RATE_PER_SECOND = 0.001  # the model's least: one request in about 17 minutes


class NumberField(serializers.FloatField):
    """A JSON number: `true` is not 1, and NaN or Infinity are not numbers."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


class HostBreakerSerializer(serializers.Serializer):
    """The host's circuit breaker, as the fleet keeps it (read-only)."""

    state = serializers.ChoiceField(
        source="breaker_state",
        choices=Host.Breaker.values,
        read_only=True,
        help_text="closed: calls go; open: orders calling the host wait; half_open: a few "
        "probe calls go, and close it when they succeed.",
    )
    since = serializers.DateTimeField(
        source="breaker_since",
        read_only=True,
        allow_null=True,
        help_text="When it last changed state; null if it never did.",
    )
    failure_rate = serializers.FloatField(
        source="breaker_failure_rate",
        read_only=True,
        allow_null=True,
        help_text="The share of the attempts in the breaker's window that failed, 0 to 1.",
    )


HOST_HELP = (
    "The host name (or IP address) of the URLs it holds for, without scheme or port; stored "
    "in lower case. Cannot be changed once created."
)
RATE_HELP = (
    f"Requests per second to the host, from {LEAST_RATE_PER_SECOND:g} to "
    f"{MAX_RATE_PER_SECOND:,.0f}; null: no limit."
)
CONCURRENT_HELP = (
    f"Requests in flight to the host at once, from 1 to {MAX_CONCURRENT:,}; null: no limit."
)
PAUSED_HELP = "A paused host holds every order that would call it."


class HostSerializer(serializers.Serializer):
    """An outbound host in the contract's JSON (section 9): its limits, across the whole
    fleet, whether it is paused, and its circuit breaker."""

    host = serializers.CharField(help_text=HOST_HELP)
    rate_per_second = serializers.FloatField(allow_null=True, help_text=RATE_HELP)
    max_concurrent = serializers.IntegerField(allow_null=True, help_text=CONCURRENT_HELP)
    paused = serializers.BooleanField(help_text=PAUSED_HELP)
    breaker = HostBreakerSerializer(source="*", read_only=True)


@extend_schema_serializer(component_name="Host")  # the request body: "HostRequest"
class HostWriteSerializer(HostSerializer):
    """A host as it is written: a limit left out of a create or a PUT is null, and the
    pause is left as it is unless `paused` is given."""

    host = serializers.CharField(max_length=253, help_text=HOST_HELP)
    rate_per_second = NumberField(
        allow_null=True, default=None, help_text=f"{RATE_HELP} Left out of a PUT: null."
    )
    max_concurrent = serializers.IntegerField(
        allow_null=True, default=None, help_text=f"{CONCURRENT_HELP} Left out of a PUT: null."
    )
    paused = serializers.BooleanField(
        required=False,
        help_text=f"{PAUSED_HELP} Changing it needs the permission hosts.pause_host; left "
        "out, the pause stays as it is.",
    )

    def validate_host(self, value: str) -> str:
        problem = text_problem(value) or host_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return canonical_host(value)

    def validate_rate_per_second(self, value: float | None) -> float | None:
        if value is not None and not (
            LEAST_RATE_PER_SECOND <= value <= MAX_RATE_PER_SECOND and math.isfinite(value)
        ):
            raise serializers.ValidationError(
                f"must be from {LEAST_RATE_PER_SECOND:g} to {MAX_RATE_PER_SECOND:,.0f} "
                "requests per second, or null for no limit"
            )
        return value

    def validate_max_concurrent(self, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= MAX_CONCURRENT:
            raise serializers.ValidationError(
                f"must be from 1 to {MAX_CONCURRENT:,} requests at once, or null for no limit"
            )
        return value
