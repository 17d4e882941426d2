"""Alert rules in the admin: support says which failed orders to watch and where to send the
alert, sees how many failed orders each rule counts now and when it last alerted, and
sends a test alert from the rule's page or for the rules ticked on the list."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from blueprints.models import Blueprint
from core.admin import to_the_second
from orders.admin.order_failures import clipped
from orders.alerts import AlertNotSent, failed_in_window, orders_path, send_test_alert
from orders.models import AlertRule


class AlertRuleForm(forms.ModelForm):
    # A URL typed without a scheme is taken as https (Django 6's default, said already).
    webhook_url = forms.URLField(
        required=False,
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"size": 80}),
        help_text=AlertRule._meta.get_field("webhook_url").help_text,
    )

    class Meta:
        model = AlertRule
        fields = [
            "name",
            "enabled",
            "workflow",
            "step",
            "error_contains",
            "threshold",
            "window_minutes",
            "channel",
            "email_to",
            "webhook_url",
        ]
        widgets = {
            "email_to": forms.Textarea(attrs={"rows": 3, "cols": 60}),
            "error_contains": forms.TextInput(attrs={"size": 40}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "workflow" not in self.fields:
            return  # read only, for who may only view
        slugs = list(Blueprint.objects.order_by("slug").values_list("slug", flat=True))
        current = self.initial.get("workflow") or ""
        if current and current not in slugs:
            slugs.append(current)  # a blueprint deleted since: kept while the rule keeps it
        self.fields["workflow"].widget = forms.Select(
            choices=[("", "any blueprint"), *((slug, slug) for slug in slugs)]
        )


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    form = AlertRuleForm
    list_display = (
        "name",
        "enabled",
        "scope",
        "threshold_in_window",
        "channel_target",
        "failed_now",
        "last_sent",
        "last_error_line",
    )
    list_filter = ("enabled", "channel")
    search_fields = ("name", "workflow", "step", "error_contains")
    actions = ["send_test_alerts"]
    readonly_fields = ("failed_now", "last_sent_at", "last_count", "last_error")
    fieldsets = (
        (None, {"fields": ("name", "enabled")}),
        (
            "Which failed orders",
            {
                "fields": ("workflow", "step", "error_contains"),
                "description": "Orders that failed within the window and match all of these.",
            },
        ),
        ("When", {"fields": ("threshold", "window_minutes")}),
        ("Where to", {"fields": ("channel", "email_to", "webhook_url")}),
        (
            "Now and the last alert",
            {"fields": ("failed_now", ("last_sent_at", "last_count"), "last_error")},
        ),
    )

    def changelist_view(self, request, extra_context=None):
        """Without the navigation sidebar: the list's columns need the width."""
        context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def get_fieldsets(self, request, obj=None):
        """A new rule has no count and no alert yet."""
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:-1]

    def save_model(self, request, obj, form, change):
        """An edit writes only the form's fields, never the alerts' bookkeeping, which a
        worker may write at the same moment (a lost `last_sent_at` would alert twice)."""
        if change:
            obj.save(update_fields=[*form.fields, "updated_at"])
        else:
            obj.save()

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["may_send_test"] = obj is not None and self.has_change_permission(request, obj)
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    @admin.action(description="Send a test alert", permissions=["change"])
    def send_test_alerts(self, request, queryset):
        """Send each rule's alert now, marked as a test; say for each where it went or why
        it did not. Back to the rule's page when its button was used."""
        rules = list(queryset)
        for rule in rules:
            try:
                where = send_test_alert(rule)
            except AlertNotSent as exc:
                self.message_user(
                    request, f'Test alert of "{rule.name}" not sent: {exc}', messages.ERROR
                )
            else:
                self.message_user(
                    request, f'Test alert of "{rule.name}" sent to {where}.', messages.SUCCESS
                )
        if request.POST.get("from_page") and len(rules) == 1:
            return HttpResponseRedirect(
                reverse("admin:orders_alertrule_change", args=[rules[0].pk])
            )
        return None

    @admin.display(description="scope")
    def scope(self, obj):
        parts = [
            ("blueprint", obj.workflow),
            ("step", obj.step),
            ("error contains", obj.error_contains),
        ]
        shown = [f"{name} {value}" for name, value in parts if value]
        return "; ".join(shown) if shown else "any failed order"

    @admin.display(description="threshold")
    def threshold_in_window(self, obj):
        return f"{obj.threshold} in {obj.window_minutes} min"

    @admin.display(description="sent to")
    def channel_target(self, obj):
        if obj.channel == AlertRule.Channel.WEBHOOK:
            return clipped(f"webhook to {urlsplit(obj.webhook_url).hostname or '?'}")
        return clipped(f"e-mail to {', '.join(obj.recipients)}")

    @admin.display(description="failed now")
    def failed_now(self, obj):
        """The failed orders the rule counts now, linked to the order list showing them."""
        if obj is None or obj.pk is None:
            return None
        now = timezone.now()
        count = failed_in_window(obj, now).count()
        return format_html(
            '<a href="{}" class="sm-alert-count{}" title="{}">{}</a>',
            orders_path(obj, now),
            " sm-alert-reached" if count >= obj.threshold else "",
            f"threshold {obj.threshold}",
            count,
        )

    @admin.display(description="last alert", ordering="last_sent_at")
    def last_sent(self, obj):
        if obj.last_sent_at is None:
            return "never"
        return f"{to_the_second(obj.last_sent_at)} ({obj.last_count} orders)"

    @admin.display(description="last error")
    def last_error_line(self, obj):
        if not obj.last_error:
            return None
        return format_html(
            '<span class="sm-clip-lines sm-alert-error" title="{}">{}</span>',
            obj.last_error,
            obj.last_error,
        )
