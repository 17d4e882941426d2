"""Editing an order on its page (support): its payload and data as JSON, with a reason,
checked by the same validator as the API's PATCH while you type (nothing is written by a
check), then saved as one edit."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse

from orders.edits import EDITABLE, EditInvalid, EditPlan, EditRefused, order_edit
from orders.models import Order


class OrderEditMixin:
    def get_urls(self):
        edit = self.admin_site.admin_view(self.edit_view)
        check = self.admin_site.admin_view(self.edit_check_view)
        return [
            path("<path:object_id>/edit/", edit, name="orders_order_edit"),
            path("<path:object_id>/edit/check/", check, name="orders_order_edit_check"),
            *super().get_urls(),
        ]

    def has_edit_permission(self, request) -> bool:
        return request.user.has_perm("orders.edit_order")

    def edit_context(self, request, order: Order) -> dict | None:
        """The edit form's values, or None when this user or this order's status allows none."""
        if not self.has_edit_permission(request) or order.status not in EDITABLE:
            return None
        schema = order.snapshot.definition.get("blueprint", {}).get("input_schema")
        return {
            "payload": json.dumps(order.payload, indent=2, ensure_ascii=False),
            "data": json.dumps(order.data, indent=2, ensure_ascii=False),
            "schema": json.dumps(schema, indent=2, ensure_ascii=False) if schema else "",
        }

    def edit_order_of(self, request, object_id) -> Order:
        if request.method != "POST":
            raise _NotPost
        order = self.get_object(request, object_id)
        if order is None:
            raise Http404
        if not self.has_edit_permission(request):
            raise PermissionDenied
        return order

    def edit_view(self, request, object_id):
        try:
            order = self.edit_order_of(request, object_id)
        except _NotPost:
            return HttpResponseNotAllowed(["POST"])
        page = reverse("admin:orders_order_change", args=[order.pk])
        try:
            order_edit(order=order, actor=request.user.get_username(), **_edit(request))
        except (EditInvalid, EditRefused) as exc:
            messages.error(request, f"The order was not edited: {exc}")
        else:
            messages.success(
                request,
                "The order was edited; reprocess it to run its steps with the new values.",
            )
        return HttpResponseRedirect(page)

    def edit_check_view(self, request, object_id):
        """What saving the form now would do: its problems, or the changes; writes nothing."""
        try:
            order = self.edit_order_of(request, object_id)
        except _NotPost:
            return HttpResponseNotAllowed(["POST"])
        problems = []
        try:
            edit = _edit(request)
            if not edit["reason"].strip():  # said, and the rest checked all the same
                problems.append("reason: say why the order is edited")
                edit["reason"] = "checking"
            plan = EditPlan(actor=request.user.get_username(), **edit)
            edited = plan.apply(Order.objects.select_related("snapshot").get(pk=order.pk))
        except EditInvalid as exc:
            problems = [*exc.errors, *problems]
        except EditRefused as exc:
            problems = [str(exc), *problems]
        if problems:
            return JsonResponse({"ok": False, "errors": problems})
        return JsonResponse({"ok": True, "changes": [c.as_json() for c in edited.changes]})


class _NotPost(Exception):
    pass


def _edit(request) -> dict:
    """The form's edit: whole payload and data as JSON texts, and the reason; a text that
    is not JSON is a problem at its field."""
    edit = {"reason": request.POST.get("reason", "")}
    problems = []
    for field in ("payload", "data"):
        text = request.POST.get(field)
        if text is None:
            continue
        try:
            edit[field] = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(f"{field}: not JSON ({exc.msg} at line {exc.lineno})")
        except RecursionError:
            problems.append(f"{field}: nested too deeply")
    if problems:
        raise EditInvalid(problems)
    return edit
