"""How requests to a partner authenticate (contract section 10): one connection per
partner credential, named by API calls. Connections are operations, not versioned
definitions: an order uses a connection as it is when the call is sent."""

from __future__ import annotations

from django.db import models

from definitions.models import slug_validator


class Connection(models.Model):
    class Kind(models.TextChoices):
        API_KEY = "api_key", "API key"
        BASIC = "basic", "Basic"
        BEARER = "bearer", "Bearer token"
        OAUTH2_CLIENT_CREDENTIALS = "oauth2_client_credentials", "OAuth2 client credentials"
        HMAC = "hmac", "HMAC signature"
        AWS_SIGV4 = "aws_sigv4", "AWS Signature Version 4"

    name = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Every field of the contract's JSON but `name` and `kind`; credentials only as
    # `{{ secrets.NAME }}` expressions, never their values.
    settings = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("test_connection", "Can test a connection (sends a request)")]

    def __str__(self) -> str:
        return self.name

    def as_definition(self) -> dict:
        """The contract's JSON for this connection."""
        return {"name": self.name, "kind": self.kind, **self.settings}
