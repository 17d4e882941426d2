"""What the engine is given: the settings it needs, read once at the edge, and the
workflows (snapshots) it walks, parsed once per batch."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings

from blueprints.models import WorkflowSnapshot
from core.conf import conf
from expressions.secrets import load_secrets
from orders.engine import auth


@dataclass(frozen=True)
class Workflow:
    """A snapshot's definition, as the runner walks it."""

    steps: dict[str, dict]
    step_order: list[str]
    api_calls: dict[str, dict]
    # Where the order's status changes are posted (`orders.notifications`); "" for nowhere.
    notify_url: str = ""

    @classmethod
    def load(cls, snapshot_pk: int) -> Workflow:
        definition = WorkflowSnapshot.objects.values_list("definition", flat=True).get(
            pk=snapshot_pk
        )
        steps = definition["blueprint"]["steps"]
        return cls(
            steps={step["id"]: step for step in steps},
            step_order=[step["id"] for step in steps],
            api_calls=definition["api_calls"],
            notify_url=definition["blueprint"].get("notify_url", ""),
        )


@dataclass(frozen=True)
class EngineConfig:
    """The settings the engine needs, read once at the edge."""

    max_steps_per_run: int
    outbound_allow: list[str]
    max_inline_wait_seconds: float
    public_url: str
    log_body_bytes: int
    token_key: bytes
    secrets: dict[str, str] = field(default_factory=dict)
    max_map_items: int = 1000
    # The map items a batch runs at once across its orders (STATE_MANAGER_CONCURRENCY, as
    # its orders): each item thread holds a database connection. None: no limit.
    map_item_slots: threading.Semaphore | None = field(default=None, compare=False, repr=False)
    # Snapshots never change: each is read once by a batch (whose config this is), not
    # once per order. Its threads share the parsed definitions and never change them.
    workflows: dict[int, Workflow] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def environment_secret_values(self) -> list[str]:
        return [value for value in self.secrets.values() if value]

    @property
    def secret_values(self) -> list[str]:
        """The values masked in everything stored: the secrets, and what connections
        made from them (tokens, Basic headers)."""
        return [*self.environment_secret_values, *auth.derived_secrets()]

    def workflow(self, snapshot_pk: int) -> Workflow:
        workflow = self.workflows.get(snapshot_pk)
        if workflow is None:
            workflow = self.workflows[snapshot_pk] = Workflow.load(snapshot_pk)
        return workflow

    @classmethod
    def from_settings(cls) -> EngineConfig:
        config = conf()
        return cls(
            max_steps_per_run=config.max_steps_per_run,
            outbound_allow=list(config.outbound_allow),
            max_inline_wait_seconds=float(config.max_inline_wait_seconds),
            public_url=config.public_url,
            log_body_bytes=config.log_body_bytes,
            token_key=settings.SECRET_KEY.encode(),
            secrets=load_secrets(),
            max_map_items=config.max_map_items,
            map_item_slots=threading.BoundedSemaphore(max(1, config.concurrency)),
        )
