"""What a reprocess does to an order (contract section 5): the statuses it applies to, the
snapshot its new run uses and the step and data it starts from, from the failed step,
from the start, or from a named step with the data the latest run had there.
"""

from __future__ import annotations

import re

from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from blueprints.models import Blueprint, WorkflowSnapshot
from blueprints.services import workflow_snapshot
from core.errors import ServiceError
from orders.models import Order
from orders.step_data import UNKNOWN, data_at_steps
from orders.transitions import begin_new_runs

START_FROM = ("failed", "start")
STEP_ID = re.compile(r"[^\s]{1,100}")  # "failed", "start", or a step's id
VERSIONS = ("pinned", "latest")


class ReprocessRefused(ServiceError):
    """The order is not one this reprocess applies to (running, pending, waiting, or
    completed when resuming from the failed step)."""

    status_code = 409


class OrderRunning(ReprocessRefused):
    pass


class ReprocessInvalid(ServiceError):
    """A bad `from` or `version`, or a resume step the latest blueprint no longer has."""


class StepNotReached(ReprocessRefused):
    """A reprocess from a named step the order's latest run never reached, or that the
    chosen version lacks (a 409 naming it)."""


REPROCESSABLE = (Order.Status.FAILED, Order.Status.CANCELLED)


def reprocessable_statuses(*, start_from: str, include_completed: bool) -> tuple[str, ...]:
    """The statuses a reprocess `from` start or failed applies to.

    >>> [str(s) for s in reprocessable_statuses(start_from="failed", include_completed=True)]
    ['failed', 'cancelled']
    >>> [str(s) for s in reprocessable_statuses(start_from="start", include_completed=True)]
    ['failed', 'cancelled', 'completed']
    """
    if start_from != "failed" and include_completed:
        return (*REPROCESSABLE, Order.Status.COMPLETED)
    return REPROCESSABLE


class ReprocessPlan:
    """What a reprocess does to an order: the snapshot its new run uses and the step it
    starts from. Caches the snapshots a bulk reprocess needs."""

    def __init__(self, *, start_from: str, version: str, include_completed: bool, actor: str):
        _check_options(start_from, version)
        self.start_from = start_from
        self.version = version
        self.actor = actor
        self.statuses = reprocessable_statuses(
            start_from=start_from, include_completed=include_completed
        )
        self.step_ids: dict[int, list[str]] = {}
        self.latest: dict[str, WorkflowSnapshot | None] = {}

    def rows(self, orders: QuerySet) -> list[tuple]:
        """(pk, workflow, snapshot, current step, resume step, run, order id) of the orders
        it applies to."""
        return list(
            orders.filter(status__in=self.statuses).values_list(
                "pk",
                "workflow",
                "snapshot_id",
                "current_step",
                KT("resume_point__step"),
                "run",
                "order_id",
            )
        )

    @property
    def named_step(self) -> str | None:
        return None if self.start_from in START_FROM else self.start_from

    def begin(self, rows: list[tuple], *, strict: bool = False) -> int:
        """Begin the new runs of `rows`; returns how many. An order the latest version
        cannot run (its workflow or its resume step is gone) is skipped, or with `strict`
        refused with ReprocessInvalid."""
        start = self.start_from == "start"
        named = self.named_step
        latest = self.version == "latest"
        if (start or named) and not latest:
            self.load_snapshots({row[2] for row in rows})
        reached = self.data_at_named_step(rows) if named else {}
        pks, snapshots, first_steps, start_at = [], {}, {}, {}
        for pk, workflow, snapshot_id, current_step, resume_step, _run, order_id in rows:
            try:
                target = self.target(workflow, snapshot_id)
                step = resume_step or current_step
                if named:
                    start_at[pk] = (named, self.named_start(order_id, target, reached, pk))
                elif latest and not start and step not in self.step_ids[target]:
                    raise ReprocessInvalid(
                        f'step "{step}" is not in the latest version of "{workflow}"; '
                        "reprocess from the start"
                    )
            except (ReprocessInvalid, StepNotReached):
                if strict:
                    raise
                continue
            pks.append(pk)
            snapshots[workflow] = target
            if start:
                first_steps[target] = self.step_ids[target][0]
        begin_new_runs(
            pks,
            snapshots=snapshots if latest else None,
            first_steps=first_steps if start else None,
            start_at=start_at or None,
            actor=self.actor,
            request={"from": self.start_from, "version": self.version},
            now=timezone.now(),
        )
        return len(pks)

    def data_at_named_step(self, rows: list[tuple]) -> dict[int, dict | None]:
        """Each order's data when its latest run reached the named step (None: never)."""
        return data_at_steps([(row[0], row[5]) for row in rows], self.start_from)

    def named_start(self, order_id: str, target: int, reached: dict, pk: int) -> dict:
        """The data the new run starts with at the named step; raises StepNotReached."""
        step = self.start_from
        if step not in self.step_ids[target]:
            which = "latest" if self.version == "latest" else "pinned"
            raise StepNotReached(f'step "{step}" is not in the {which} version of this order')
        data = reached.get(pk)
        if data is None:
            raise StepNotReached(
                f'step "{step}": the latest run of order "{order_id}" never reached it'
            )
        if data is UNKNOWN:
            raise StepNotReached(
                f'step "{step}": the log of order "{order_id}" predates reprocessing from a '
                "named step; reprocess it from the failed step or from the start"
            )
        return data

    def load_snapshots(self, snapshot_ids: set[int]) -> None:
        """Read the step ids of the pinned snapshots a chunk needs, in one query."""
        missing = snapshot_ids - self.step_ids.keys()
        for snapshot in WorkflowSnapshot.objects.filter(pk__in=missing):
            self.step_ids[snapshot.pk] = _step_ids(snapshot)

    def target(self, workflow: str, snapshot_id: int) -> int:
        """The snapshot the new run of an order uses."""
        if self.version != "latest":
            return snapshot_id
        if workflow not in self.latest:
            blueprint = Blueprint.objects.filter(slug=workflow).first()
            snapshot = workflow_snapshot(blueprint=blueprint) if blueprint else None
            if snapshot is not None:
                self.step_ids[snapshot.pk] = _step_ids(snapshot)
            self.latest[workflow] = snapshot
        if self.latest[workflow] is None:
            raise ReprocessInvalid(f'workflow "{workflow}" no longer exists')
        return self.latest[workflow].pk


def _check_options(start_from: str, version: str) -> None:
    if not isinstance(start_from, str) or not STEP_ID.fullmatch(start_from):
        raise ReprocessInvalid(f'from: must be "failed", "start" or a step id, not "{start_from}"')
    if version not in VERSIONS:
        raise ReprocessInvalid(f'version: must be "pinned" or "latest", not "{version}"')


def _step_ids(snapshot: WorkflowSnapshot) -> list[str]:
    return [step["id"] for step in snapshot.definition["blueprint"]["steps"]]
