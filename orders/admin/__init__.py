"""Orders in the admin: a list that stays fast on millions of rows, a read-only order page
with its flow and step log, the bulk reprocess and cancel actions of support staff, and
the batches, the alert rules, and the messages from partners. Importing the package
registers them."""

from orders.admin import blueprint_pages  # noqa: F401 (adds a blueprint's Dry run and Impact pages)
from orders.admin.alerts import AlertRuleAdmin
from orders.admin.batches import BatchRunAdmin
from orders.admin.messages import MessageAdmin, MessageSourceAdmin, MessageWaitAdmin
from orders.admin.orders import OrderAdmin

__all__ = [
    "AlertRuleAdmin",
    "BatchRunAdmin",
    "MessageAdmin",
    "MessageSourceAdmin",
    "MessageWaitAdmin",
    "OrderAdmin",
]
