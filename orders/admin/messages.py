"""Messages from partners in the admin: what each waiting order waits for, the recent
messages with whether and by which orders they were taken (and the kept ones with their
expiry), and the message sources with their "send a test message" page."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.admin import json_block, to_the_second
from core.errors import ServiceError
from orders.admin.base import ReadOnlyAdmin
from orders.message_sources import signed_headers, source_check, source_errors, source_save
from orders.models import Message, MessageSource, MessageWait

SAMPLE_BODY = {
    "id": "evt_test",
    "type": "payment_intent.succeeded",
    "data": {"object": {"id": "pi_test"}},
}


def order_link(order) -> str:
    url = reverse("admin:orders_order_change", args=[order.pk])
    return format_html('<a href="{}">{}</a>', url, order.order_id)


@admin.register(MessageWait)
class MessageWaitAdmin(ReadOnlyAdmin):
    """What each order's message step waits (or waited) for: name, key, since, until."""

    list_display = ("order_shown", "step", "name", "key", "status", "since_", "until_", "taken")
    list_filter = ("status",)
    search_fields = ("key", "name", "order__order_id")
    show_full_result_count = False
    list_select_related = ("order", "message")
    fields = ("order_shown", "run", "step", "name", "key", "status", "since_", "until_", "taken")
    fields += ("actor", "data_json")
    readonly_fields = fields

    def get_changelist_instance(self, request):
        if "status__exact" not in request.GET and not request.GET.get("q"):
            request.GET = request.GET.copy()  # the waits that wait, unless asked otherwise
            request.GET["status__exact"] = MessageWait.Status.WAITING
        return super().get_changelist_instance(request)

    @admin.display(description="order", ordering="order__order_id")
    def order_shown(self, obj):
        return order_link(obj.order)

    @admin.display(description="since", ordering="since")
    def since_(self, obj):
        return to_the_second(obj.since)

    @admin.display(description="until", ordering="until")
    def until_(self, obj):
        return to_the_second(obj.until)

    @admin.display(description="message taken")
    def taken(self, obj):
        if obj.actor:
            return f"resolved by hand by {obj.actor}"
        if obj.message is None:
            return "-"
        url = reverse("admin:orders_message_change", args=[obj.message.pk])
        return format_html('<a href="{}">{}</a>', url, obj.message.sender_id or obj.message.pk)

    @admin.display(description="the message as the step saw it")
    def data_json(self, obj):
        return json_block(obj.data)


class KeptFilter(admin.SimpleListFilter):
    title = "kept"
    parameter_name = "kept"

    def lookups(self, request, model_admin):
        return [("yes", "kept for orders that start waiting"), ("no", "not kept")]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(kept_until__gt=now)
        if self.value() == "no":
            return queryset.exclude(kept_until__gt=now)
        return queryset


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    """The recent messages: whether they were taken and by which orders; the kept ones
    with their expiry."""

    list_display = ("name", "key", "source_", "sender_id", "received", "kept", "taken_by")
    list_filter = (KeptFilter, "source", "received_at")
    search_fields = ("key", "name", "sender_id")
    show_full_result_count = False
    fields = ("name", "key", "source_", "sender_id", "received", "kept", "taken_by", "data_json")
    readonly_fields = fields

    def get_queryset(self, request):
        waits = MessageWait.objects.select_related("order").order_by("id")
        return super().get_queryset(request).prefetch_related(Prefetch("waits", queryset=waits))

    @admin.display(description="source", ordering="source")
    def source_(self, obj):
        return obj.source or "POST /api/messages/"

    @admin.display(description="received", ordering="received_at")
    def received(self, obj):
        return to_the_second(obj.received_at)

    @admin.display(description="kept until")
    def kept(self, obj):
        if obj.kept_until is None:
            return "-"
        if obj.kept_until <= timezone.now():
            return f"expired {to_the_second(obj.kept_until)}"
        return to_the_second(obj.kept_until)

    @admin.display(description="taken by")
    def taken_by(self, obj):
        waits = list(obj.waits.all())
        if not waits:
            return "no order yet"
        return format_html_join(", ", "{}", ((order_link(wait.order),) for wait in waits))

    @admin.display(description="data")
    def data_json(self, obj):
        return json_block(obj.data)


class MessageSourceForm(forms.ModelForm):
    class Meta:
        model = MessageSource
        fields = [
            "name",
            "secret",
            "signature_header",
            "scheme",
            "message_name",
            "key",
            "sender_id",
            "tolerance_seconds",
        ]
        labels = {"sender_id": "Id", "signature_header": "Signature header"}
        help_texts = {
            "secret": "Exactly one {{ secrets.NAME }} expression; a literal secret is refused.",
            "message_name": "An expression over body and headers, e.g. {{ body.type }}.",
            "key": "The correlation key, e.g. {{ body.data.object.id }}.",
            "sender_id": "The partner's event id (a replay is a 200), e.g. {{ body.id }}.",
        }

    # The form's fields by the contract's keys (signature is split in two).
    PLACES = {"signature.header": "signature_header", "signature.scheme": "scheme"}
    PLACES.update({"id": "sender_id"})

    def clean(self):
        values = super().clean()
        self.definition = MessageSource(**values).as_definition()
        for error in source_errors(self.definition):
            place, _, reason = error.partition(": ")
            field = self.PLACES.get(place, place)
            self.add_error(field if field in self.fields else None, reason or error)
        return values


@admin.register(MessageSource)
class MessageSourceAdmin(admin.ModelAdmin):
    """Where partners post their own webhooks, and a test of one that stores nothing."""

    form = MessageSourceForm
    list_display = ("name", "scheme", "message_name", "key", "url", "test_link")
    search_fields = ("name",)
    change_form_template = "admin/orders/messagesource/change_form.html"

    def save_model(self, request, obj, form, change):
        saved = source_save(definition=form.definition, user=request.user)
        obj.pk = saved.pk

    @admin.display(description="URL partners post to")
    def url(self, obj):
        return format_html("<code>/api/messages/{}/</code>", obj.name)

    @admin.display(description="")
    def test_link(self, obj):
        link = reverse("admin:orders_messagesource_test", args=[obj.pk])
        return format_html('<a href="{}">send a test message</a>', link)

    def get_urls(self):
        view = self.admin_site.admin_view(self.test_view)
        name = "orders_messagesource_test"
        return [path("<int:object_id>/test/", view, name=name), *super().get_urls()]

    def test_view(self, request, object_id):
        """Verify a webhook body (signed here with the source's secret, or with the
        signature pasted from the partner's request) and show the message it gives;
        nothing is stored and no order resumes."""
        source = self.get_object(request, str(object_id))
        if source is None:
            raise PermissionDenied
        if not self.has_view_permission(request, source):
            raise PermissionDenied
        body = json.dumps(SAMPLE_BODY, indent=2)
        signature, outcome = "", None
        if request.method == "POST":
            body = request.POST.get("body", "")
            signature = request.POST.get("signature", "").strip()
            outcome = test_outcome(source, body, signature)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Send a test message to {source.name}",
            "source": source,
            "opts": self.model._meta,
            "original": source,
            "body": body,
            "signature": signature,
            "outcome": outcome,
        }
        return TemplateResponse(request, "admin/orders/messagesource/test.html", context)


def test_outcome(source: MessageSource, body: str, signature: str) -> dict:
    """What the test of a body came to: accepted (with the message found) or why not."""
    raw = body.encode("utf-8", "replace")
    headers = {source.signature_header: signature} if signature else signed_headers(source, raw)
    try:
        verdict, found = source_check(source, headers=headers, body=raw)
    except ServiceError as exc:
        return {"accepted": False, "reason": "; ".join(exc.reasons)}
    signed = "the signature you pasted" if signature else "signed here with the source's secret"
    if not verdict.accepted:
        return {"accepted": False, "reason": verdict.reason, "signed": signed}
    message = {key: found[key] for key in ("name", "key", "sender_id")}
    return {"accepted": True, "signed": signed, "message": message}
