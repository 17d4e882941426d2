from rest_framework import serializers


class ApiCallSerializer(serializers.Serializer):
    """An API call in the contract's JSON (section 2), exactly as it is exported.

    Writes are validated as a whole by the definitions' validation, not field by field.
    """

    slug = serializers.RegexField(r"^[A-Za-z0-9._-]+$", max_length=100)
    name = serializers.CharField(max_length=200)
    method = serializers.ChoiceField(choices=["GET", "POST", "PUT", "PATCH", "DELETE"])
    url = serializers.CharField(help_text="May hold {{ }} expressions.")
    connection = serializers.RegexField(
        r"^[A-Za-z0-9._-]+$",
        max_length=100,
        required=False,
        help_text="The name of a connection (/api/connections/) whose credentials "
        "authenticate or sign every request of this call.",
    )
    headers = serializers.DictField(child=serializers.CharField(), required=False)
    query = serializers.DictField(required=False)
    body = serializers.JSONField(required=False)
    body_type = serializers.ChoiceField(
        choices=["json", "form", "multipart", "text"],
        required=False,
        help_text="How body is sent (default json): form is urlencoded in bracket notation, "
        "multipart takes fields and file parts, text is one string template.",
    )
    timeout_seconds = serializers.FloatField(required=False)
    success_when = serializers.CharField(required=False, help_text="Defaults to a 2xx status.")
    error_message = serializers.CharField(
        required=False,
        help_text="An expression giving the partner's reason for a failed attempt, shown "
        "after its status (HTTP 402: card declined). Defaults to the response body's error, "
        "error.message, message, detail or title.",
    )
    retry = serializers.DictField(
        required=False,
        help_text="max_attempts, backoff_seconds, backoff_rate, max_backoff_seconds",
    )
    save = serializers.DictField(required=False, help_text="data key -> expression")

    def to_representation(self, instance):
        return instance.as_definition()
