"""Support's list of every host: those the API calls' URLs name, those called in the last
day and those with settings, each with its pause and the orders it holds, and a button
that pauses or resumes it, whether or not an editor has set limits on it."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.errors import ServiceError
from hosts.models import Host
from hosts.selectors import SEEN_WITHIN, every_host
from hosts.services import host_pause_named, host_resume


class EveryHostPage:
    """The host admin's page `every/`, linked from the hosts list."""

    def get_urls(self):
        every = self.admin_site.admin_view(self.every_host_view)
        return [path("every/", every, name="hosts_host_every"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        context = {"every_host_url": reverse("admin:hosts_host_every"), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def every_host_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            return self.pause_or_resume(request)
        hosts, per_order = every_host()
        held = self.count_held_orders([h.host for h in hosts]) if self.count_held_orders else {}
        context = {
            **self.admin_site.each_context(request),
            "title": "Every outbound host",
            "opts": self.model._meta,
            "hosts": [
                {
                    "known": known,
                    "held": held.get(known.host),
                    "url": reverse("admin:hosts_host_change", args=[known.row.pk])
                    if known.row
                    else None,
                }
                for known in hosts
            ],
            "per_order": per_order,
            "seen_hours": int(SEEN_WITHIN.total_seconds() // 3600),
            "may_pause": self.has_pause_permission(request),
        }
        return TemplateResponse(request, "admin/hosts/host/every.html", context)

    def pause_or_resume(self, request):
        if not self.has_pause_permission(request):
            raise PermissionDenied
        name, action = request.POST.get("host", ""), request.POST.get("do", "")
        actor = request.user.get_username()
        try:
            if action == "pause":
                host = host_pause_named(name=name, actor=actor)
                messages.success(request, f"Paused: {host.host}. Orders that call it wait.")
            elif action == "resume":
                host = Host.objects.filter(host=name).first()
                if host is not None:
                    host_resume(host=host, actor=actor)
                messages.success(request, f"Resumed: {name}. The orders it held go now.")
            else:
                messages.error(request, f'Nothing done: no action "{action}".')
        except ServiceError as exc:
            messages.error(request, f"Nothing done: {exc}.")
        return HttpResponseRedirect(reverse("admin:hosts_host_every"))
