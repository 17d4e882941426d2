import json

from django.urls import reverse
from rest_framework import serializers

from core.storable import has_control_character
from orders.filters import OrderFilterSet, is_business_key, selection_is_narrowed
from orders.models import BulkJob, Order, OrderEvent, StepLog
from orders.notifications import EVENT_TYPE


class OrderIdField(serializers.CharField):
    """An order id: one URL segment (`/api/orders/{order_id}/`), so no `/`, and no control
    characters, which no one can type or see."""

    def __init__(self, **kwargs):
        super().__init__(max_length=200, **kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if "/" in value:
            raise serializers.ValidationError('must not contain "/"')
        if has_control_character(value):
            raise serializers.ValidationError("must not contain control characters")
        return value


class OrderCreateSerializer(serializers.Serializer):
    """The webhook's body."""

    order_id = OrderIdField()
    workflow = serializers.CharField(max_length=100)
    payload = serializers.JSONField(
        help_text="The order's input; must meet the workflow's input_schema."
    )


class LogRequestSerializer(serializers.Serializer):
    method = serializers.CharField()
    url = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())
    body = serializers.JSONField(allow_null=True)


class LogResponseSerializer(serializers.Serializer):
    status = serializers.IntegerField(allow_null=True)
    headers = serializers.DictField(child=serializers.CharField())
    body = serializers.JSONField(allow_null=True)


class StepLogSerializer(serializers.ModelSerializer):
    """One log entry: an attempt, a step without a call, a callback, a reprocess or a cancel.

    `request` and `response` are stored with secrets masked and bodies truncated; entries
    that are not attempts may have either as null or in their own shape.
    """

    request = serializers.JSONField(allow_null=True, help_text="method, url, headers, body")
    response = serializers.JSONField(allow_null=True, help_text="status, headers, body")
    actor = serializers.CharField(help_text="Who asked, for reprocess and cancel entries.")

    class Meta:
        model = StepLog
        fields = StepLog.REPORTED_FIELDS


class OrderSerializer(serializers.ModelSerializer):
    """An order as listed."""

    blueprint_version = serializers.IntegerField(
        source="snapshot.blueprint_version",
        read_only=True,
        help_text="The version of the blueprint this order runs on (pinned at creation).",
    )

    class Meta:
        model = Order
        fields = [
            "order_id",
            "workflow",
            "blueprint_version",
            "status",
            "current_step",
            "run",
            "error",
            "cancel_requested",
            "due_at",
            "created_at",
            "updated_at",
            "finished_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    """An order with its input, saved data and whole log, oldest entry first."""

    payload = serializers.JSONField(read_only=True)
    data = serializers.JSONField(read_only=True)
    log = StepLogSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "payload", "data", "log"]
        read_only_fields = fields


class NewOrderSerializer(OrderDetailSerializer):
    """An order just created, as OrderDetailSerializer shows it, from the order in memory:
    its log is empty, so it is not read."""

    class Meta(OrderDetailSerializer.Meta):
        fields = [name for name in OrderDetailSerializer.Meta.fields if name != "log"]
        read_only_fields = fields

    def to_representation(self, instance):
        return {**super().to_representation(instance), "log": []}


class ReprocessSerializer(serializers.Serializer):
    from_ = serializers.RegexField(
        r"^\S{1,100}$",
        default="failed",
        help_text='"failed": resume at the failed step with the data saved before it; '
        '"start": a new run from the first step with empty data; a step id: a new run '
        "from that step with the data the latest run had when it reached it.",
    )
    version = serializers.ChoiceField(
        choices=["pinned", "latest"],
        default="pinned",
        help_text='"pinned": the blueprint and API calls the order was created with; '
        '"latest": as they are now.',
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class OrderEditSerializer(serializers.Serializer):
    """An edit: `payload` and `data` replace those objects whole; `set` and `unset` change
    dotted paths in them (`payload.address.zip`, `data.quote`); `reason` is required."""

    payload = serializers.JSONField(required=False, help_text="The whole new payload.")
    data = serializers.JSONField(required=False, help_text="The whole new saved data.")
    set_ = serializers.DictField(
        required=False,
        help_text='Dotted path -> new value, e.g. {"payload.address.zip": "10115"}.',
    )
    unset = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text='Dotted paths, e.g. ["data.quote"].',
    )
    reason = serializers.CharField(max_length=1000, help_text="Why: logged with the edit.")

    def get_fields(self):
        fields = super().get_fields()
        fields["set"] = fields.pop("set_")
        return fields


def key_text(value) -> str:
    """A business key's value in a JSON body as the text the list's filter takes."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    raise serializers.ValidationError("must be text, a number, true, false or null")


class TimeTextField(serializers.DateTimeField):
    """A time checked as DRF checks one, kept as the text given: the selection reads it as
    every door does (`orders_matching`, which also refuses an impossible UTC offset), and a
    job keeps its selection as given."""

    def to_internal_value(self, value):
        super().to_internal_value(value)
        return value


class BulkReprocessSerializer(ReprocessSerializer):
    """Either `order_ids`, or at least one of the list's filters, business keys included
    (`"payload.customer.id": "C-42"`: keys of the body whose names are not fixed)."""

    order_ids = serializers.ListField(child=OrderIdField(), required=False, allow_empty=False)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=Order.Status.choices), required=False
    )
    workflow = serializers.CharField(required=False)
    created_after = TimeTextField(required=False)
    created_before = TimeTextField(required=False)
    search = serializers.CharField(required=False, help_text="Order id contains.")
    include_completed = serializers.BooleanField(
        default=False,
        help_text="With from=start, also reprocess the completed orders of the selection "
        "(their calls run again: charges, mails). Without it they are skipped.",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            data = {**data, "status": [data["status"]]}
        attrs = super().to_internal_value(data)
        attrs["keys"] = self.business_keys(data)
        return attrs

    @staticmethod
    def business_keys(data) -> dict[str, list[str]]:
        """The body's business keys, each value (or list of values) as text."""
        keys, errors = {}, {}
        for name, value in data.items():
            if not is_business_key(name):
                continue
            try:
                values = value if isinstance(value, list) else [value]
                keys[name] = [key_text(item) for item in values]
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return keys

    def validate(self, attrs):
        filters = {name: attrs[name] for name in OrderFilterSet.SELECTING if name in attrs}
        filters.update(attrs["keys"])
        if "order_ids" in attrs and filters:
            raise serializers.ValidationError("give either order_ids or filters, not both")
        if not selection_is_narrowed(filters, order_ids=attrs.get("order_ids")):
            raise serializers.ValidationError(
                "give order_ids or at least one filter (status, workflow, created_after, "
                "created_before, search, payload.<path>, data.<path>); an empty selection "
                "would reprocess every order"
            )
        return attrs


class BulkCancelSerializer(BulkReprocessSerializer):
    """The selection of a bulk cancel: the bulk reprocess's, without its options."""

    def get_fields(self):
        fields = super().get_fields()
        for name in ("from", "version", "include_completed"):
            del fields[name]
        return fields


class ThenReprocessSerializer(ReprocessSerializer):
    """The reprocess that follows a bulk edit, of the orders it edited."""


class BulkEditSerializer(BulkCancelSerializer):
    """A bulk edit: the bulk cancel's selection, and one edit (as PATCH of one order takes
    it), optionally followed by a reprocess of the orders it changed."""

    payload = serializers.JSONField(required=False, help_text="The whole new payload.")
    data = serializers.JSONField(required=False, help_text="The whole new saved data.")
    set_ = serializers.DictField(
        required=False, help_text='Dotted path -> new value, e.g. {"payload.address.zip": "10115"}.'
    )
    unset = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text='Dotted paths, e.g. ["data.quote"].',
    )
    reason = serializers.CharField(max_length=1000, help_text="Why: logged with each edit.")
    then_reprocess = ThenReprocessSerializer(
        required=False, help_text="Reprocess the edited orders after the edit (from, version)."
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["set"] = fields.pop("set_")
        return fields

    def edit_options(self, request_data) -> dict:
        """The edit as the job keeps it: only the keys given."""
        given = self.validated_data
        options = {key: given[key] for key in ("set", "unset", "reason") if key in given}
        options.update({key: given[key] for key in ("payload", "data") if key in request_data})
        if "then_reprocess" in given:
            options["then_reprocess"] = dict(given["then_reprocess"])
        return options


class EditPreviewSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Orders selected.")
    change = serializers.IntegerField(help_text="Orders the edit would change.")
    refused = serializers.IntegerField(help_text="Orders it would leave as they are.")
    causes = serializers.ListField(
        child=serializers.DictField(),
        help_text="Why orders would be left alone, most first: {cause, count, first} with the "
        "first order ids of each.",
    )
    diffs = serializers.ListField(
        child=serializers.DictField(),
        help_text="The first 50 orders it would change: {order_id, changes}, each change "
        "{path, before, after} (secrets masked).",
    )


class BulkJobSerializer(serializers.ModelSerializer):
    """A bulk reprocess or cancel with its progress: `done` orders acted on and `skipped`
    orders left as they were, of `total` frozen when it was asked for."""

    # Text, not a choice: the schema has one enum named "status" already, the orders'.
    status = serializers.CharField(
        read_only=True,
        help_text="queued, running, done or failed (prepared and discarded: an admin "
        "confirmation that was not confirmed).",
    )
    url = serializers.SerializerMethodField(help_text="Where to GET the job's state.")
    options = serializers.SerializerMethodField(
        help_text="A reprocess's `from`, `version` and `include_completed`."
    )
    selection = serializers.JSONField(
        read_only=True, help_text="The order ids or filters as given."
    )

    class Meta:
        model = BulkJob
        fields = [
            "id",
            "kind",
            "status",
            "url",
            "total",
            "done",
            "skipped",
            "error",
            "options",
            "selection",
            "actor",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_url(self, job: BulkJob) -> str:
        url = reverse("order-job", kwargs={"job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url

    def get_options(self, job: BulkJob) -> dict:
        names = ("from", "version", "include_completed", "set", "unset", "reason")
        names += ("payload", "data", "then_reprocess")
        return {name: job.options[name] for name in names if name in job.options}


class BulkResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        help_text="Orders reprocessed (or cancelled); while the job runs in the background, "
        "the orders selected."
    )
    skipped = serializers.IntegerField(
        help_text="Orders left as they were: pending, running or waiting; completed "
        "(unless from=start with include_completed); or (on the latest version) without "
        "their resume step. For a cancel: completed and cancelled ones. 0 while the job "
        "runs in the background."
    )
    job = BulkJobSerializer()


class CallbackSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["success", "failure"])
    data = serializers.DictField(
        required=False, default=dict, help_text="Seen by the step's save as callback.data."
    )


class CallbackAcceptedSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    status = serializers.CharField()


class EventDeliverySerializer(serializers.ModelSerializer):
    """Where an event stands at its receiver."""

    # Text, not a choice: the schema's enum named "state" would clash with others.
    state = serializers.CharField(
        read_only=True, help_text="pending (still being sent), delivered or failed (given up)."
    )

    class Meta:
        model = OrderEvent
        fields = [
            "state",
            "url",
            "attempts",
            "next_attempt_at",
            "last_status",
            "last_error",
            "delivered_at",
        ]
        read_only_fields = fields


class OrderEventSerializer(serializers.ModelSerializer):
    """A status change as it is posted to the blueprint's `notify_url`, with its delivery."""

    id = serializers.UUIDField(source="event_id", read_only=True)
    type = serializers.SerializerMethodField()
    order_id = serializers.CharField(source="order.order_id", read_only=True)
    workflow = serializers.CharField(source="order.workflow", read_only=True)
    status = serializers.CharField(read_only=True)
    previous_status = serializers.CharField(read_only=True)
    delivery = EventDeliverySerializer(source="*", read_only=True)

    class Meta:
        model = OrderEvent
        fields = [
            "id",
            "type",
            "order_id",
            "workflow",
            "status",
            "previous_status",
            "step",
            "error",
            "occurred_at",
            "delivery",
        ]
        read_only_fields = fields

    def get_type(self, event: OrderEvent) -> str:
        return EVENT_TYPE
