from django.db import models

from definitions.models import DefinitionVersion, slug_validator


class ApiCall(models.Model):
    """An outbound HTTP API call, described once and used by blueprint steps.

    `definition` holds everything of the contract's API-call JSON but `slug` and `name`:
    method, url, headers, query, body, timeout_seconds, success_when, error_message, retry,
    save.
    """

    slug = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    definition = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = "API call"

    def __str__(self) -> str:
        return self.slug

    def as_definition(self) -> dict:
        """The contract's JSON for this API call."""
        return {"slug": self.slug, "name": self.name, **self.definition}


class ApiCallVersion(DefinitionVersion):
    """A read-only copy of an API call as saved; one row per save."""

    owner_field = "api_call"

    api_call = models.ForeignKey(ApiCall, on_delete=models.CASCADE, related_name="versions")

    class Meta:
        ordering = ["api_call", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["api_call", "version"], name="unique_api_call_version")
        ]
        verbose_name = "API call version"
