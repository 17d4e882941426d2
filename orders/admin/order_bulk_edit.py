"""The list's "Edit…" action (support): one edit over the ticked orders (or all the list
shows), previewed first (what would change, what would not and why, the first diffs),
then run as a frozen bulk job whose page follows its progress."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from orders.edits import EditInvalid, EditPlan, edit_preview
from orders.jobs import edit_arguments, job_prepare, job_start
from orders.models import BulkJob

EXAMPLE_SET = '{"payload.address.postcode": "10115"}'


class OrderBulkEditMixin:
    """Of OrderAdmin: `has_edit_permission` is OrderEditMixin's, `outcome` the actions'."""

    @admin.action(description="Edit…", permissions=["edit"])
    def edit_orders(self, request, queryset):
        given = {
            "set": request.POST.get("edit_set", "").strip(),
            "unset": request.POST.get("edit_unset", "").strip(),
            "reason": request.POST.get("edit_reason", "").strip(),
        }
        step = request.POST.get("edit_step", "")
        problems, options, preview = [], None, None
        if step:
            try:
                options = _options(given)
                plan = EditPlan(actor=request.user.get_username(), **edit_arguments(options))
            except EditInvalid as exc:
                problems = exc.errors
            else:
                if step == "confirm":
                    return self.start_edit(request, queryset, options)
                preview = edit_preview(queryset, plan=plan)
                preview["rows"] = [
                    {
                        "order_id": diff["order_id"],
                        "path": change["path"],
                        "before": json.dumps(change["before"]) if "before" in change else None,
                        "after": json.dumps(change["after"]) if "after" in change else None,
                    }
                    for diff in preview["diffs"]
                    for change in diff["changes"]
                ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Edit orders",
            "given": given,
            "example_set": EXAMPLE_SET,
            "problems": problems,
            "preview": preview,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "list_url": request.get_full_path(),
        }
        return TemplateResponse(request, "admin/orders/order/bulk_edit.html", context)

    def start_edit(self, request, queryset, options: dict):
        across = request.POST.get("select_across") == "1"
        job = job_prepare(
            kind=BulkJob.Kind.EDIT,
            orders=queryset,
            selection={"admin_list": request.get_full_path(), "all_matching": across},
            options=options,
            actor=request.user.get_username(),
        )
        job = job_start(job)
        self.message_user(request, self.outcome(job))
        return HttpResponseRedirect(reverse("admin:orders_order_job", args=[job.pk]))


def _options(given: dict) -> dict:
    """The form's texts as an edit's options; a text that is not JSON of the right shape is
    a problem at its field."""
    options, problems = {"reason": given["reason"]}, []
    for field, shape, kind in (("set", dict, "an object"), ("unset", list, "a list")):
        if not given[field]:
            continue
        try:
            value = json.loads(given[field])
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.append(f"{field}: not JSON ({exc})")
            continue
        if not isinstance(value, shape):
            problems.append(f"{field}: must be {kind}")
            continue
        options[field] = value
    if problems:
        raise EditInvalid(problems)
    return options
