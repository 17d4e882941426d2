from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

slug_validator = RegexValidator(
    r"^[A-Za-z0-9._-]+$", "Use only letters, digits, '.', '-' and '_'.", code="invalid_slug"
)


class ApiCall(models.Model):
    """An outbound HTTP API call, described once and used by blueprint steps.

    `definition` holds everything of the contract's API-call JSON but `slug` and `name`:
    method, url, headers, query, body, timeout_seconds, success_when, retry, save.
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


class ApiCallVersion(models.Model):
    """A read-only copy of an API call as saved; one row per save."""

    api_call = models.ForeignKey(ApiCall, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["api_call", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["api_call", "version"], name="unique_api_call_version")
        ]
        verbose_name = "API call version"

    def __str__(self) -> str:
        return f"{self.api_call.slug} v{self.version}"
