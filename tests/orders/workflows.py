"""Building blocks for engine tests: a pinned workflow, an order on it, one batch."""

from __future__ import annotations

import hashlib
import itertools
import json

from blueprints.models import WorkflowSnapshot
from orders.batch import run_batch
from orders.models import Order

_order_numbers = itertools.count(1)


def api_call(slug: str, url: str, **definition) -> dict:
    return {"slug": slug, "name": slug, "method": "POST", "url": url, **definition}


def make_order(
    steps: list[dict],
    api_calls: list[dict] = (),
    *,
    payload: dict | None = None,
    order_id: str | None = None,
) -> Order:
    """An order pinned to a snapshot of these steps and API calls, due now."""
    definition = {
        "blueprint": {"slug": "flow", "name": "Flow", "steps": steps},
        "api_calls": {call["slug"]: call for call in api_calls},
    }
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    snapshot, _ = WorkflowSnapshot.objects.get_or_create(
        digest=digest,
        defaults={"workflow": "flow", "blueprint_version": 1, "definition": definition},
    )
    return Order.objects.create(
        order_id=order_id or f"order-{next(_order_numbers)}",
        workflow="flow",
        snapshot=snapshot,
        payload=payload or {},
        current_step=steps[0]["id"],
    )


def process(order: Order) -> Order:
    """Run one batch (the engine's real entry point) and return the order as stored."""
    run_batch()
    order.refresh_from_db()
    return order


def attempts(order: Order, step: str | None = None) -> list:
    log = order.log.filter(kind="attempt").order_by("id")
    return list(log.filter(step=step) if step else log)
