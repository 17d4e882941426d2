"""Outbound hosts in the admin: their limits, who paused them, their circuit breakers,
and the actions and buttons that pause, resume and close a breaker by hand."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import urlencode

from django import forms
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from core.admin import to_the_second
from hosts.admin_every import EveryHostPage
from hosts.breaker import BreakerSettings
from hosts.models import Host
from hosts.names import canonical_host
from hosts.services import (
    MAX_CONCURRENT,
    MAX_RATE_PER_SECOND,
    host_close_breaker,
    host_delete,
    host_pause,
    host_resume,
    host_save,
)


class HostForm(forms.ModelForm):
    rate_per_second = forms.FloatField(
        required=False,
        min_value=0.001,
        max_value=MAX_RATE_PER_SECOND,
        label="Rate per second",
        help_text="At most this many requests a second to this host, from all workers "
        "together; 0.5 is one request every two seconds. Empty: no limit.",
    )
    max_concurrent = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_CONCURRENT,
        label="Max concurrent",
        help_text="At most this many requests to this host at the same time, from all "
        "workers together. Empty: no limit.",
    )

    class Meta:
        model = Host
        fields = ("host", "rate_per_second", "max_concurrent")
        help_texts = {
            "host": "The host name in the API calls' URLs, without http:// and without a port, "
            "for example api.partner.example. Its limits hold for every API call to it.",
        }

    def clean_host(self) -> str:
        return canonical_host(self.cleaned_data["host"])


class PausedFilter(admin.SimpleListFilter):
    title = "paused"
    parameter_name = "paused"

    def lookups(self, request, model_admin):
        return [("yes", "Paused"), ("no", "Not paused")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(paused_at__isnull=self.value() == "no")
        return queryset


class BreakerFilter(admin.SimpleListFilter):
    title = "circuit breaker"
    parameter_name = "breaker"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("half_open", "Half open"), ("closed", "Closed")]

    def queryset(self, request, queryset):
        if self.value() in Host.Breaker.values:
            return queryset.filter(breaker_state=self.value())
        return queryset


def breaker_badge(host: Host) -> str:
    """The breaker's state, red while open and amber while half open; plain when closed."""
    if host.breaker_state == Host.Breaker.CLOSED:
        return mark_safe('<span class="sm-breaker-closed">closed</span>')
    return format_html(
        '<span class="sm-badge sm-breaker-{}">{}</span>',
        host.breaker_state,
        host.get_breaker_state_display(),
    )


NO_LIMIT = mark_safe('<span class="sm-nowrap sm-muted">no limit</span>')


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.0f}%"


class HostAdmin(EveryHostPage, admin.ModelAdmin):
    """Registered by the admin site's setup (statemanager/admin.py), which gives it
    `count_held_orders` as a registration option."""

    form = HostForm
    list_display = (
        "host",
        "rate",
        "concurrent",
        "pause_state",
        "breaker_state_since",
        "failure_rate",
    )
    list_filter = (PausedFilter, BreakerFilter)
    search_fields = ("host",)
    actions = ["pause_hosts", "resume_hosts", "close_breakers"]
    readonly_fields = ("pause_info", "breaker", "breaker_since_shown", "failure_rate", "held")
    # How many orders the gate of each host holds (the page shows "—" without it): the
    # hosts lie below the orders and cannot count them, so the site's setup hands in the
    # orders' count when it registers this admin.
    count_held_orders: Callable[[Iterable[str]], dict[str, int]] | None = None

    def get_fieldsets(self, request, obj=None):
        settings = (None, {"fields": ("host", "rate_per_second", "max_concurrent")})
        if obj is None:
            return [settings]
        return [
            settings,
            ("Pause and held orders", {"fields": ("pause_info", "held")}),
            (
                "Circuit breaker",
                {
                    "fields": ("breaker", "breaker_since_shown", "failure_rate"),
                    "description": breaker_rule(),
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "host") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        host_save(host=obj, actor=request.user.get_username())

    def delete_model(self, request, obj):
        host_delete(host=obj, actor=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for host in queryset:
            host_delete(host=host, actor=request.user.get_username())

    def changelist_view(self, request, extra_context=None):
        """The list without the navigation sidebar: its columns need the width; a link to
        every host (EveryHostPage)."""
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def render_change_form(self, request, context, *args, **kwargs):
        context["may_pause"] = self.has_pause_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)

    def has_pause_permission(self, request) -> bool:
        return request.user.has_perm("hosts.pause_host")

    @admin.action(description="Pause: hold the orders that call them", permissions=["pause"])
    def pause_hosts(self, request, queryset):
        for host in queryset:
            host_pause(host=host, actor=request.user.get_username())
        return self.done(request, queryset, "Paused")

    @admin.action(description="Resume: their held orders go now", permissions=["pause"])
    def resume_hosts(self, request, queryset):
        for host in queryset:
            host_resume(host=host, actor=request.user.get_username())
        return self.done(request, queryset, "Resumed")

    @admin.action(description="Close circuit breaker", permissions=["pause"])
    def close_breakers(self, request, queryset):
        for host in queryset:
            host_close_breaker(host=host, actor=request.user.get_username())
        return self.done(request, queryset, "Circuit breaker closed")

    def done(self, request, queryset, what: str):
        """Say what was done; back to the host's page when its button was used."""
        self.message_user(request, f"{what}: {', '.join(host.host for host in queryset)}.")
        if request.POST.get("from_page") and len(queryset) == 1:
            return HttpResponseRedirect(reverse("admin:hosts_host_change", args=[queryset[0].pk]))
        return None

    @admin.display(description="rate", ordering="rate_per_second")
    def rate(self, obj):
        if obj.rate_per_second is None:
            return NO_LIMIT
        return format_html('<span class="sm-nowrap">{}/s</span>', f"{obj.rate_per_second:g}")

    @admin.display(description="max concurrent", ordering="max_concurrent")
    def concurrent(self, obj):
        return NO_LIMIT if obj.max_concurrent is None else obj.max_concurrent

    @admin.display(description="paused", ordering="paused_at")
    def pause_state(self, obj):
        if not obj.paused:
            return "—"
        return format_html(
            '<span class="sm-badge sm-host-paused">paused</span> by {}'
            '<br><span class="sm-muted sm-nowrap">since {}</span>',
            obj.paused_by or "?",
            to_the_second(obj.paused_at),
        )

    @admin.display(description="circuit breaker", ordering="breaker_state")
    def breaker_state_since(self, obj):
        if obj.breaker_state == Host.Breaker.CLOSED:
            return breaker_badge(obj)
        return format_html(
            '{}<br><span class="sm-muted sm-nowrap">since {}</span>',
            breaker_badge(obj),
            to_the_second(obj.breaker_since, "?"),
        )

    @admin.display(description="paused")
    def pause_info(self, obj):
        if not obj.paused:
            return "No: orders call this host as its limits allow."
        return format_html(
            "Since {} by {}: every order that would call this host waits until it is resumed.",
            to_the_second(obj.paused_at, "—"),
            obj.paused_by or "?",
        )

    @admin.display(description="orders held")
    def held(self, obj):
        if self.count_held_orders is None:
            return "—"
        count = self.count_held_orders([obj.host])[obj.host]
        url = f"{reverse('admin:orders_order_changelist')}?{urlencode({'held_by': obj.host})}"
        return format_html(
            '<a href="{}">{} waiting</a> for this host (paused, breaker open or over a limit)',
            url,
            f"{count:,}",
        )

    @admin.display(description="circuit breaker", ordering="breaker_state")
    def breaker(self, obj):
        return breaker_badge(obj)

    @admin.display(description="breaker since", ordering="breaker_since")
    def breaker_since_shown(self, obj):
        return to_the_second(obj.breaker_since, "—")

    @admin.display(description="failure rate", ordering="breaker_failure_rate")
    def failure_rate(self, obj):
        return percent(obj.breaker_failure_rate)


def breaker_rule() -> str:
    """The breaker's settings in words, for the host's page."""
    config = BreakerSettings.current()
    if not config.enabled:
        return "The circuit breaker is off (STATE_MANAGER_BREAKER_MIN_CALLS is 0)."
    return (
        f"It opens when {config.failure_rate * 100:.0f}% or more of at least "
        f"{config.min_calls} calls in the last {config.window_seconds} s failed (no answer, "
        f"a 5xx or a 429). While open, orders that would call this host wait. After "
        f"{config.cooldown_seconds:g} s it lets {config.probes} trial calls through and "
        "closes when they succeed. The failure rate is that of the last window."
    )
