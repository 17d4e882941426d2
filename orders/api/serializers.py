from rest_framework import serializers

from definitions.storable import has_control_character
from orders.filters import OrderFilterSet, selection_is_narrowed
from orders.models import Order, StepLog


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
        fields = [
            "run",
            "step",
            "attempt",
            "kind",
            "started_at",
            "duration_ms",
            "request",
            "response",
            "outcome",
            "error",
            "actor",
        ]


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
    from_ = serializers.ChoiceField(
        choices=["failed", "start"],
        default="failed",
        help_text='"failed": resume at the failed step with the data saved before it; '
        '"start": a new run from the first step with empty data.',
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


class BulkReprocessSerializer(ReprocessSerializer):
    """Either `order_ids`, or at least one of the list's filters."""

    order_ids = serializers.ListField(child=OrderIdField(), required=False, allow_empty=False)
    status = serializers.ListField(
        child=serializers.ChoiceField(choices=Order.Status.choices), required=False
    )
    workflow = serializers.CharField(required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    search = serializers.CharField(required=False, help_text="Order id contains.")
    include_completed = serializers.BooleanField(
        default=False,
        help_text="With from=start, also reprocess the completed orders of the selection "
        "(their calls run again: charges, mails). Without it they are skipped.",
    )

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("status"), str):
            data = {**data, "status": [data["status"]]}
        return super().to_internal_value(data)

    def validate(self, attrs):
        filters = {name: attrs[name] for name in OrderFilterSet.SELECTING if name in attrs}
        if "order_ids" in attrs and filters:
            raise serializers.ValidationError("give either order_ids or filters, not both")
        if not selection_is_narrowed(filters, order_ids=attrs.get("order_ids")):
            raise serializers.ValidationError(
                "give order_ids or at least one filter (status, workflow, created_after, "
                "created_before, search); an empty selection would reprocess every order"
            )
        return attrs


class BulkResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Orders reprocessed.")
    skipped = serializers.IntegerField(
        help_text="Orders left as they were: pending, running or waiting; completed "
        "(unless from=start with include_completed); or (on the latest version) without "
        "their resume step."
    )


class CallbackSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["success", "failure"])
    data = serializers.DictField(
        required=False, default=dict, help_text="Seen by the step's save as callback.data."
    )


class CallbackAcceptedSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    status = serializers.CharField()
