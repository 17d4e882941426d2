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
