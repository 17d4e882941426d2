from rest_framework import serializers

from connections.models import Connection
from connections.validation import (
    COMMON_FIELDS,
    KIND_FIELDS,
    NAME_MAX_LENGTH,
    Field,
)

SHAPE_HELP = {
    "template": "May hold {{ secrets.NAME }} expressions.",
    "credential": "Exactly one {{ secrets.NAME }} expression; a literal credential is refused.",
    "header": "A header name.",
    "text": "Plain text.",
}


def kinds_of(name: str) -> str:
    kinds = [kind for kind, fields in KIND_FIELDS.items() if name in fields]
    return "Any kind." if not kinds else "Kind " + ", ".join(kinds) + "."


def described(name: str, field: Field) -> serializers.Field:
    """The serializer field that documents a key of the connection's contract JSON; the
    validation, kind by kind, is `connection_save`'s."""
    help_text = f"{kinds_of(name)} {SHAPE_HELP.get(field.shape, '')}".strip()
    if field.shape == "choice":
        return serializers.ChoiceField(choices=field.choices, required=False, help_text=help_text)
    if field.shape == "certificate":
        return CertificateSerializer(required=False, allow_null=True, help_text=help_text)
    return serializers.CharField(required=False, allow_null=not field.required, help_text=help_text)


class CertificateSerializer(serializers.Serializer):
    """A client certificate for mutual TLS, both parts PEM."""

    cert = serializers.CharField(help_text=SHAPE_HELP["template"])
    key = serializers.CharField(help_text=SHAPE_HELP["credential"])


class ConnectionSerializer(serializers.Serializer):
    """A connection in the contract's JSON (section 10), exactly as it is exported: `name`,
    `kind` and the keys of that kind, plus `client_certificate` and `ca_bundle` for any.

    Writes are validated as a whole by the connections' validation, not field by field.
    """

    name = serializers.RegexField(r"^[A-Za-z0-9._-]+$", max_length=NAME_MAX_LENGTH)
    kind = serializers.ChoiceField(choices=Connection.Kind.choices)

    def get_fields(self):
        fields = super().get_fields()
        keys = {name: field for kind in KIND_FIELDS.values() for name, field in kind.items()}
        for name, field in {**keys, **COMMON_FIELDS}.items():
            fields[name] = described(name, field)
        return fields

    def to_representation(self, instance):
        return instance.as_definition()


class TestOutcomeSerializer(serializers.Serializer):
    """What a test of the connection found, masked."""

    __test__ = False  # not a pytest test class, whatever its name

    ok = serializers.BooleanField()
    summary = serializers.CharField()
    details = serializers.DictField()
