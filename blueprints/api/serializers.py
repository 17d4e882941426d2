from rest_framework import serializers


class BlueprintSerializer(serializers.Serializer):
    """A workflow blueprint in the contract's JSON (section 3), exactly as it is exported.

    Writes are validated as a whole by the definitions' validation, not field by field.
    """

    slug = serializers.RegexField(r"^[A-Za-z0-9._-]+$", max_length=100)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False)
    input_schema = serializers.JSONField(
        required=False, help_text="A JSON Schema every order's payload must meet."
    )
    steps = serializers.ListField(
        child=serializers.DictField(),
        help_text="call, choice, parallel and end steps, each with a unique id.",
    )

    def to_representation(self, instance):
        return instance.as_definition()


class BlueprintPauseSerializer(BlueprintSerializer):
    """A blueprint as pause and resume answer: its contract JSON, and whether batches hold
    its orders, since when and by whom (operations, not part of the definition)."""

    paused = serializers.BooleanField(read_only=True)
    paused_at = serializers.DateTimeField(read_only=True, allow_null=True)
    paused_by = serializers.CharField(
        read_only=True, help_text='The user who paused it; "" while it runs.'
    )

    def to_representation(self, instance):
        return {
            **instance.as_definition(),
            "paused": instance.paused,
            "paused_at": serializers.DateTimeField().to_representation(instance.paused_at),
            "paused_by": instance.paused_by,
        }
