"""What API calls and blueprints share in the database: the slug rule and the version rows."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

slug_validator = RegexValidator(
    r"^[A-Za-z0-9._-]+$", "Use only letters, digits, '.', '-' and '_'.", code="invalid_slug"
)


class DefinitionVersion(models.Model):
    """A read-only copy of a definition as saved; one row per save.

    A concrete version model adds the foreign key to its definition, named by `owner_field`.
    """

    owner_field = ""

    version = models.PositiveIntegerField()
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{getattr(self, self.owner_field).slug} v{self.version}"
