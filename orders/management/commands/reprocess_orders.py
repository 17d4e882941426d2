from django.core.management.base import BaseCommand, CommandError

from orders import services
from orders.filters import (
    OrderFilterSet,
    SelectionInvalid,
    orders_matching,
    selection_is_narrowed,
    split_business_key,
)
from orders.models import Order
from orders.services import BulkResult, ReprocessInvalid, orders_reprocess


class Command(BaseCommand):
    help = (
        "Reprocess the failed and cancelled orders selected by ids and/or filters (completed "
        "ones only with --from start or a step and --include-completed; pending, running and "
        "waiting ones are skipped), as the admin action and the API do."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        # The contract's `--version pinned|latest` replaces Django's --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("order_ids", nargs="*", metavar="ORDER_ID", help="orders by id")
        parser.add_argument(
            "--status", action="append", choices=Order.Status.values, help="repeatable"
        )
        parser.add_argument("--workflow", help="blueprint slug")
        parser.add_argument("--created-after", help="ISO 8601 date-time")
        parser.add_argument("--created-before", help="ISO 8601 date-time")
        parser.add_argument("--search", help="order id contains")
        parser.add_argument(
            "--key",
            action="append",
            default=[],
            dest="business_keys",
            metavar="payload.PATH=VALUE",
            help="a business key, payload.<path>=<value> or data.<path>=<value>, matched "
            "exactly as text (repeatable: different keys must all match, one key repeated "
            "matches any of its values)",
        )
        parser.add_argument(
            "--from",
            dest="start_from",
            required=True,
            metavar="failed|start|STEP",
            help="resume at the failed step, a new run from the first step, or a new run "
            "from the named step with the data the latest run had there",
        )
        parser.add_argument(
            "--include-completed",
            action="store_true",
            help="with --from start, also run the completed orders of the selection again "
            "(their calls repeat: charges, mails); skipped otherwise",
        )
        parser.add_argument(
            "--version",
            default="pinned",
            choices=["pinned", "latest"],
            help="the blueprint the order was created with (default), or the latest",
        )

    def handle(
        self, *args, order_ids, start_from, version, include_completed, business_keys, **options
    ):
        filters = {name: options[name] for name in OrderFilterSet.SELECTING}
        for text in business_keys:
            try:
                name, value = split_business_key(text)
            except ValueError as exc:
                raise CommandError(f"--key: {exc}") from exc
            filters.setdefault(name, []).append(value)
        if not selection_is_narrowed(filters, order_ids=order_ids):
            raise CommandError(
                "Select orders: give ORDER_IDs or at least one filter (--status, --workflow, "
                "--created-after, --created-before, --search, --key). Refusing to reprocess "
                "every order."
            )
        try:
            orders = orders_matching(filters, order_ids=order_ids or None)
        except SelectionInvalid as exc:
            raise CommandError(str(exc)) from exc
        if order_ids:
            found = set(orders.values_list("order_id", flat=True))
            for missing in sorted(set(order_ids) - found):
                self.stderr.write(f'No order "{missing}" matches the selection.')
        try:
            result = orders_reprocess(
                orders=orders,
                start_from=start_from,
                version=version,
                include_completed=include_completed,
                actor="command",
                progress=self.progress,
            )
        except ReprocessInvalid as exc:
            raise CommandError(str(exc)) from exc
        why = "pending, running, waiting" + (
            "" if start_from != "failed" and include_completed else " or completed"
        )
        if start_from not in ("failed", "start"):
            why += f', or whose latest run never reached "{start_from}"'
        if version == "latest":
            why += ", or without their step now"
        self.stdout.write(f"Reprocessed {result.count} orders; skipped {result.skipped} ({why}).")

    def progress(self, result: BulkResult) -> None:
        """A line after each chunk from the first full one (a small selection prints only
        its counts)."""
        done = result.count + result.skipped
        if done >= services.CHUNK_SIZE:
            self.stdout.write(
                f"... {done} orders: {result.count} reprocessed, {result.skipped} skipped"
            )
