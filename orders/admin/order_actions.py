"""The bulk reprocess and cancel actions of support staff.

An action freezes the selection into a prepared job and shows what it would touch: the
first orders with their status and version, and how many of each status are acted on,
skipped, or need the "include completed" choice. Confirming starts exactly that job
(however the list changed meanwhile) and leads to the job's page, which follows its
progress; "No" discards it.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import path, reverse

from orders.admin.base import status_badge
from orders.jobs import (
    JobNotPrepared,
    job_discard,
    job_orders,
    job_prepare,
    job_start,
    job_status_counts,
)
from orders.models import BulkJob, Order

VERSIONS = (("pinned", "the version each order was created with"), ("latest", "the latest version"))
# The orders a confirmation and a job page name, oldest first.
SHOWN = 50
WHERE = {"failed": "the failed step", "start": "the start"}


def where(start_from: str) -> str:
    """Where a reprocess begins, in words: the failed step, the start, or step "x"."""
    return WHERE.get(start_from) or f'step "{start_from}"'


REFRESH_SECONDS = 2


def fate(job: BulkJob, status: str) -> str:
    """What the job does to an order in `status`, in the words of the confirmation."""
    if job.kind == BulkJob.Kind.CANCEL:
        if status in (Order.Status.COMPLETED, Order.Status.CANCELLED):
            return "skipped: already finished"
        if status == Order.Status.RUNNING:
            return "cancelled when its current step ends"
        return "cancelled now"
    if status in (Order.Status.FAILED, Order.Status.CANCELLED):
        return "reprocessed"
    if status == Order.Status.COMPLETED:
        if job.options.get("from") != "failed":
            return "only if you include completed orders"
        return "skipped: completed orders run again only from the start or a named step"
    if status == Order.Status.RUNNING:
        return "skipped: running"
    return "skipped: cancel it first"


def selection_text(job: BulkJob) -> str:
    """Where the job's orders came from, in a few words."""
    selection = job.selection
    if "admin_list" in selection:
        if not selection.get("all_matching"):
            return "the orders ticked on the list"
        filters = urlsplit(selection["admin_list"]).query
        return "all orders the list showed" + (f" for {unquote(filters)}" if filters else "")
    if selection.get("order_ids"):
        count = len(selection["order_ids"])
        return f"{count} order id{pluralize(count)}"
    return ", ".join(
        f"{name} {' or '.join(map(str, value)) if isinstance(value, list) else value}"
        for name, value in selection.items()
    )


def job_title(job: BulkJob) -> str:
    if job.kind == BulkJob.Kind.CANCEL:
        return "Cancel orders"
    return f"Reprocess orders from {where(job.options.get('from', 'failed'))}"


class OrderActionsMixin:
    """The bulk actions of OrderAdmin, and the pages of their jobs."""

    actions = ["reprocess_from_failed", "reprocess_from_start", "cancel_orders"]

    def has_reprocess_permission(self, request):
        return request.user.has_perm("orders.reprocess_order")

    def get_urls(self):
        job_page = self.admin_site.admin_view(self.job_view)
        from_step = self.admin_site.admin_view(self.reprocess_from_step_view)
        return [
            path("jobs/<int:job_id>/", job_page, name="orders_order_job"),
            path(
                "<path:object_id>/reprocess-from-step/",
                from_step,
                name="orders_order_reprocess_from_step",
            ),
            *super().get_urls(),
        ]

    def reprocess_from_step_view(self, request, object_id):
        """The order page's "Reprocess from this step": a job of this one order, asked
        for as the list's actions are."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        order = self.get_object(request, object_id)
        step = request.POST.get("from_step", "")
        if order is None or not step:
            raise Http404("no such order or step")
        queryset = Order.objects.filter(pk=order.pk)
        return self.prepare(request, queryset, BulkJob.Kind.REPROCESS, {"from": step})

    @admin.action(description="Reprocess from the failed step", permissions=["reprocess"])
    def reprocess_from_failed(self, request, queryset):
        return self.prepare(request, queryset, BulkJob.Kind.REPROCESS, {"from": "failed"})

    @admin.action(description="Reprocess from the start", permissions=["reprocess"])
    def reprocess_from_start(self, request, queryset):
        return self.prepare(request, queryset, BulkJob.Kind.REPROCESS, {"from": "start"})

    @admin.action(description="Cancel", permissions=["reprocess"])
    def cancel_orders(self, request, queryset):
        return self.prepare(request, queryset, BulkJob.Kind.CANCEL, {})

    def prepare(self, request, queryset, kind: str, options: dict):
        """Freeze the selection and ask; a post that confirms at once (`confirm=yes`)
        starts the job without asking."""
        across = request.POST.get("select_across") == "1"
        job = job_prepare(
            kind=kind,
            orders=queryset,
            selection={"admin_list": request.get_full_path(), "all_matching": across},
            options=options,
            actor=request.user.get_username(),
        )
        if request.POST.get("confirm") == "yes":
            return self.start(request, job)
        return self.confirmation(request, job)

    def job_view(self, request, job_id: int):
        if not self.has_reprocess_permission(request):
            raise PermissionDenied
        job = BulkJob.objects.filter(pk=job_id).first()
        if job is None:
            raise Http404(f"no job {job_id}")
        if request.method == "POST":
            if job.actor != request.user.get_username():
                raise PermissionDenied
            if "discard" in request.POST:
                job_discard(job)
                self.message_user(request, "Nothing was changed.", messages.INFO)
                return HttpResponseRedirect(self.list_url(job))
            return self.start(request, job)
        if job.status == BulkJob.Status.PREPARED:
            return self.confirmation(request, job)
        return self.job_page(request, job)

    def start(self, request, job: BulkJob):
        options = {}
        if job.kind == BulkJob.Kind.REPROCESS:
            version = request.POST.get("version", "pinned")
            options["version"] = version if version in dict(VERSIONS) else "pinned"
            options["include_completed"] = job.options["from"] != "failed" and (
                request.POST.get("include_completed") == "yes"
            )
        try:
            job = job_start(job, options=options)
        except JobNotPrepared:
            job.refresh_from_db()
            self.message_user(
                request,
                f"This job is {job.get_status_display().lower()}: it is not waiting for a "
                "confirmation.",
                messages.WARNING,
            )
        else:
            self.message_user(request, self.outcome(job), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:orders_order_job", args=[job.pk]))

    @staticmethod
    def outcome(job: BulkJob) -> str:
        if job.status != BulkJob.Status.DONE:
            doing = "Cancelling" if job.kind == BulkJob.Kind.CANCEL else "Reprocessing"
            return f"{doing} {job.total} order(s) in the background; this page shows the progress."
        if job.kind == BulkJob.Kind.CANCEL:
            return (
                f"Cancelled {job.done} order(s) (running ones stop when their current step "
                f"ends); {job.skipped} skipped (already completed or cancelled)."
            )
        included = job.options.get("include_completed")
        return (
            f"Reprocessing {job.done} order(s) from {where(job.options['from'])} on the "
            f"{job.options['version']} version; {job.skipped} skipped (not failed or cancelled"
            + (", completed ones included" if included else "")
            + ", or the latest version lacks their step)."
        )

    def confirmation(self, request, job: BulkJob) -> TemplateResponse:
        counts = job_status_counts(job)
        total = sum(counts.values())
        if job.kind == BulkJob.Kind.CANCEL:
            finished = counts[Order.Status.COMPLETED] + counts[Order.Status.CANCELLED]
            later = counts[Order.Status.RUNNING]
            numbers = {
                "touched": total - finished - later,
                "later": later,
                "untouched": finished,
                "untouched_reason": "already completed or cancelled",
                "completed": 0,
                "choose_version": False,
            }
        else:
            start = job.options["from"] != "failed"
            touched = counts[Order.Status.FAILED] + counts[Order.Status.CANCELLED]
            completed = counts[Order.Status.COMPLETED] if start else 0
            numbers = {
                "touched": touched,
                "later": 0,
                "untouched": total - touched - completed,
                "untouched_reason": "pending, running or waiting: cancel them first"
                + ("" if start else "; completed: only from the start or a named step"),
                "completed": completed,
                "choose_version": True,
            }
        by_status = [
            {"badge": status_badge(status), "count": count, "fate": fate(job, status)}
            for status, count in counts.items()
            if count
        ]
        context = {
            **self.job_context(request, job),
            "total": total,
            "by_status": by_status,
            "versions": VERSIONS,
            **numbers,
        }
        return TemplateResponse(request, "admin/orders/order/confirm_action.html", context)

    def job_page(self, request, job: BulkJob) -> TemplateResponse:
        processed = job.done + job.skipped
        running = job.status in (BulkJob.Status.QUEUED, BulkJob.Status.RUNNING)
        context = {
            **self.job_context(request, job),
            "processed": processed,
            "remaining": max(job.total - processed, 0),
            "percent": 100 if not job.total else min(100, round(100 * processed / job.total)),
            "refresh_seconds": REFRESH_SECONDS if running else None,
            "selection": selection_text(job),
        }
        return TemplateResponse(request, "admin/orders/order/bulk_job.html", context)

    def job_context(self, request, job: BulkJob) -> dict:
        orders = (
            job_orders(job)
            .select_related("snapshot")
            .only("order_id", "workflow", "status", "current_step", "snapshot__blueprint_version")
        )
        shown = [
            {
                "order": order,
                "url": reverse("admin:orders_order_change", args=[order.pk]),
                "badge": status_badge(order.status),
                "fate": fate(job, order.status),
            }
            for order in orders[:SHOWN]
        ]
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": job_title(job),
            "job": job,
            "shown": shown,
            "more": max(job.total - len(shown), 0),
            "list_url": self.list_url(job),
            "job_url": reverse("admin:orders_order_job", args=[job.pk]),
            "may_confirm": job.actor == request.user.get_username(),
        }

    @staticmethod
    def list_url(job: BulkJob) -> str:
        """The order list the job was chosen from, with its filters."""
        changelist = reverse("admin:orders_order_changelist")
        back = job.selection.get("admin_list", "")
        return back if back.startswith(changelist) else changelist
