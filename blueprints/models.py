from django.db import models

from definitions.models import DefinitionVersion, slug_validator


class Blueprint(models.Model):
    """A workflow: an ordered list of steps, and the schema every order's payload must meet."""

    slug = models.CharField(max_length=100, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    input_schema = models.JSONField(null=True, blank=True)
    steps = models.JSONField(default=list)
    notify_url = models.CharField(
        max_length=2000,
        blank=True,
        help_text="Where each status change of an order is posted: a URL, or an expression "
        "over input and order; empty for none.",
    )
    concurrency_key = models.CharField(
        max_length=500,
        blank=True,
        help_text="An expression over input and order, e.g. {{ input.customer_id }}: at most "
        "one order per value runs at once, the others stay due; empty for no limit.",
    )
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Operations, not the definition: neither in the contract's JSON nor in its versions.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_by = models.CharField(max_length=150, blank=True, editable=False)

    class Meta:
        ordering = ["slug"]
        permissions = [("pause_blueprint", "Can pause and resume blueprint")]

    def __str__(self) -> str:
        return self.slug

    @property
    def paused(self) -> bool:
        """Batches leave this blueprint's orders due while it is paused."""
        return self.paused_at is not None

    def as_definition(self) -> dict:
        """The contract's JSON for this blueprint."""
        definition = {"slug": self.slug, "name": self.name}
        if self.description:
            definition["description"] = self.description
        if self.input_schema is not None:
            definition["input_schema"] = self.input_schema
        definition["steps"] = self.steps
        if self.notify_url:
            definition["notify_url"] = self.notify_url
        if self.concurrency_key:
            definition["concurrency_key"] = self.concurrency_key
        return definition


class BlueprintVersion(DefinitionVersion):
    """A read-only copy of a blueprint as saved; one row per save."""

    owner_field = "blueprint"

    blueprint = models.ForeignKey(Blueprint, on_delete=models.CASCADE, related_name="versions")

    class Meta:
        ordering = ["blueprint", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["blueprint", "version"], name="unique_blueprint_version"
            )
        ]


class WorkflowSnapshot(models.Model):
    """The blueprint and the API calls it uses, frozen as they were when orders were created.

    Content-addressed by `digest`, so any number of orders created between two edits
    share one row. `definition` is `{"blueprint": {...}, "api_calls": {slug: {...}}}`.
    """

    digest = models.CharField(max_length=64, unique=True)
    workflow = models.CharField(max_length=100)
    blueprint_version = models.PositiveIntegerField()
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.workflow} v{self.blueprint_version} ({self.digest[:8]})"
