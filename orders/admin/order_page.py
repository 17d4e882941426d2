"""The order page: input and saved data, the flow diagram with the path taken and the
step that failed, the step log as a timeline of steps grouped by run with the data
before and after each, and a waiting callback or message wait that support may resolve by hand."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.safestring import mark_safe

from blueprints.diagram import blueprint_svg
from blueprints.models import Blueprint
from core.admin import json_block, json_text
from core.errors import ServiceError
from orders.admin.base import status_badge
from orders.admin.timeline import timeline_runs, visits_of
from orders.callbacks import CallbackError, callback_resolve_by_hand, waiting_callback
from orders.messages import wait_resolve_by_hand, waiting_wait
from orders.models import Order
from orders.selectors import attempts_made
from orders.step_data import AT_STEP

# The most log entries the order page shows; the API has them all.
TIMELINE_LIMIT = 500
# A step's data before or after it is shown up to this many characters of JSON.
DATA_SHOWN_MAX = 20_000
# The page of an order the engine may move any moment reloads itself this often.
REFRESH_SECONDS = 5
LIVE_STATUSES = (Order.Status.PENDING, Order.Status.RUNNING, Order.Status.WAITING)
ENDS = {Order.Status.COMPLETED: "completed", Order.Status.FAILED: "failed"}


class OrderPageMixin:
    """The order page side of OrderAdmin."""

    @admin.display(description="input")
    def input_json(self, obj):
        return json_block(obj.payload)

    @admin.display(description="saved data")
    def data_json(self, obj):
        return json_block(obj.data)

    @admin.display(description="cancel requested")
    def cancel_request(self, obj):
        return "Yes: the order stops when its current step ends" if obj.cancel_requested else "No"

    @admin.display(description="attempts")
    def attempts_shown(self, obj):
        """As the list counts them, from the log: the attempts this run made at the step
        that failed, or else at the current step (the order's own `attempt` starts again
        on an `on_failed` path)."""
        made = attempts_made([obj]).get(obj.pk, 0)
        step = obj.failed_step or obj.current_step
        return f"{made} at {step}" if made and step else str(made)

    @admin.display(description="failed attempt")
    def failure(self, obj):
        """The reason the step that failed gave, beside `error`, the text the order ended
        with."""
        if not obj.failed_reason:
            return "-"
        return f'step "{obj.failed_step}": {obj.failed_reason}'

    @admin.display(description="blueprint version")
    def pinned_version(self, obj):
        snapshot = obj.snapshot
        return f"v{snapshot.blueprint_version} ({snapshot.digest[:8]})"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("snapshot")

    def get_object(self, request, object_id, from_field=None):
        """The order by its row number, as the admin's links give it, or else by its order
        id: `/admin/orders/order/shop-1/change/` opens order "shop-1"."""
        order = super().get_object(request, object_id, from_field)
        if order is None and from_field is None:
            order = self.get_queryset(request).filter(order_id=unquote(object_id)).first()
        return order

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if order is not None:
            context.update(self.order_page_context(request, order))
        return super().change_view(request, object_id, form_url, extra_context=context)

    def order_page_context(self, request, order: Order) -> dict:
        entries = list(order.log.order_by("-id")[:TIMELINE_LIMIT])
        entries.reverse()
        for entry in entries:
            entry.request_json = json_text(entry.request) if entry.request else ""
            entry.response_json = json_text(entry.response) if entry.response else ""
        truncated = len(entries) == TIMELINE_LIMIT
        runs = timeline_runs(entries, order, cut_off=truncated)
        for run in runs:
            for visit in visits_of(run):
                visit.before_json = _data_text(visit.data_before)
                visit.after_json = _data_text(visit.data_after)
        taken = {entry.step for entry in entries if entry.run == order.run and entry.step}
        current = None if order.status == Order.Status.COMPLETED else order.current_step
        blueprint = order.snapshot.definition.get("blueprint", {})
        diagram = blueprint_svg(
            blueprint,
            taken=taken,
            current=current,
            failed=order.failed_step or None,
            ended=ENDS.get(order.status),
        )
        return {
            "timeline_runs": runs,
            "timeline_truncated": truncated,
            "diagram": mark_safe(diagram),
            "may_reprocess": self.has_reprocess_permission(request),
            "steps_passed": steps_passed(order, blueprint),
            "edit": self.edit_context(request, order),
            "status_badge": status_badge(order.status),
            "waiting": self.waiting_context(order),
            "refresh_seconds": REFRESH_SECONDS if order.status in LIVE_STATUSES else None,
        }

    def waiting_context(self, order: Order) -> dict | None:
        """What an order that is not finished waits for: its paused blueprint (who paused
        it, since when, a link to it), and for a waiting one its host (held by the host's
        gate: why, and a link to the host), its callback (URL as stored, masked; due time;
        whether it can still be resolved) or its next retry."""
        paused = None
        if order.status in (Order.Status.PENDING, Order.Status.WAITING):
            paused = Blueprint.objects.filter(slug=order.workflow, paused_at__isnull=False).first()
        held_by = {"paused_blueprint": paused} if paused is not None else {}
        if paused is not None:
            held_by["blueprint_url"] = reverse(
                "admin:blueprints_blueprint_change", args=[paused.pk]
            )
        if order.status != Order.Status.WAITING:
            return held_by or None
        return {**held_by, "step_waits": True, **self.step_wait(order)}

    def step_wait(self, order: Order) -> dict:
        state = order.step_state if isinstance(order.step_state, dict) else {}
        held = state.get("held")
        if isinstance(held, dict) and held.get("host"):
            return {"held": held, "hosts_url": hosts_url(str(held["host"]))}
        if isinstance(state.get("message"), dict):
            return {"message": waiting_wait(order)}
        callback = state.get("callback")
        if not isinstance(callback, dict):
            return {"retry": True}
        return {"callback_url": callback.get("url", ""), "open": waiting_callback(order)}

    # Resolving a callback by hand.

    def get_urls(self):
        resolve = self.admin_site.admin_view(self.resolve_callback_view)
        name = "orders_order_resolve_callback"
        by_hand = self.admin_site.admin_view(self.resolve_message_view)
        return [
            path("<path:object_id>/resolve-callback/", resolve, name=name),
            path("<path:object_id>/resolve-message/", by_hand, name="orders_order_resolve_message"),
            *super().get_urls(),
        ]

    def resolve_message_view(self, request, object_id):
        """Resolve the message wait of the order's step as if the message had come with
        the form's data, with the reason it asks for; logged with who did it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        order = self.get_object(request, object_id)
        if order is None or not self.has_view_permission(request, order):
            raise Http404
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        try:
            wait_resolve_by_hand(
                order=order,
                data=json.loads(request.POST.get("data", "").strip() or "{}"),
                reason=request.POST.get("reason", ""),
                actor=request.user.get_username(),
            )
        except (json.JSONDecodeError, RecursionError):
            messages.error(request, "The wait was not resolved: the data is not a JSON object.")
        except (ServiceError, ValueError) as exc:
            messages.error(request, f"The wait was not resolved: {exc}.")
        else:
            messages.success(
                request,
                f'The message wait of step "{order.current_step}" was resolved by hand; '
                "the order goes on in the next batch.",
            )
        return redirect(reverse("admin:orders_order_change", args=[order.pk]))

    def resolve_callback_view(self, request, object_id):
        """Resolve the callback the order's step waits for as a success or a failure, with
        the reason the form asks for; logged with who did it."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        order = self.get_object(request, object_id)
        if order is None or not self.has_view_permission(request, order):
            raise Http404
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        outcome = request.POST.get("outcome", "")
        try:
            data = json.loads(request.POST.get("data", "").strip() or "{}")
            callback_resolve_by_hand(
                order=order,
                outcome=outcome,
                reason=request.POST.get("reason", ""),
                actor=request.user.get_username(),
                data=data,
            )
        except json.JSONDecodeError as exc:
            messages.error(request, f"The callback was not resolved: the data is not JSON ({exc}).")
        except RecursionError:
            messages.error(request, "The callback was not resolved: the data is nested too deeply.")
        except (CallbackError, ValueError) as exc:
            messages.error(request, f"The callback was not resolved: {exc}.")
        else:
            messages.success(
                request,
                f'The callback of step "{order.current_step}" was resolved as a {outcome}; '
                "the order goes on in the next batch.",
            )
        return redirect(reverse("admin:orders_order_change", args=[order.pk]))


def _data_text(data: dict | None) -> str:
    if data is None:
        return ""
    text = json_text(data)
    if len(text) <= DATA_SHOWN_MAX:
        return text
    return text[:DATA_SHOWN_MAX] + f"\n… (cut: {len(text):,} characters in all)"


def hosts_url(host: str) -> str:
    """The admin's hosts list, searched for the host that holds an order."""
    return f"{reverse('admin:hosts_host_changelist')}?{urlencode({'q': host})}"


def steps_passed(order: Order, blueprint: dict) -> list[str]:
    """The blueprint's steps the order's latest run reached, in the blueprint's order: where
    a reprocess from a named step may begin."""
    reached = set(order.log.filter(run=order.run, kind__in=AT_STEP).values_list("step", flat=True))
    reached |= {step.split(".", 1)[0].split("[", 1)[0] for step in reached}  # branches, items
    return [step["id"] for step in blueprint.get("steps", []) if step.get("id") in reached]
