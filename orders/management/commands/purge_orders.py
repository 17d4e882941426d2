import sys

from django.core.management.base import BaseCommand, CommandError

from core.conf import conf
from orders.retention import PurgeResult, purge_count, purge_orders


class Command(BaseCommand):
    help = (
        "Delete finished orders (completed, failed, cancelled) and their logs older than "
        "--older-than DAYS (default STATE_MANAGER_RETENTION_DAYS), in small transactions; "
        "--export writes them to a JSON-lines file first, --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, metavar="DAYS", dest="days")
        parser.add_argument("--dry-run", action="store_true", help="count, delete nothing")
        parser.add_argument("--export", metavar="FILE.jsonl", help="'-' for standard output")

    def handle(self, *args, days, dry_run, export, **options):
        days = days if days is not None else conf().retention_days
        if days < 1:
            raise CommandError(
                "--older-than: give a number of days of at least 1 "
                "(or set STATE_MANAGER_RETENTION_DAYS)"
            )
        if dry_run:
            result = purge_count(older_than_days=days)
            self.stdout.write(f"would delete {self.counts(result)} (finished over {days} days ago)")
            return
        # With the export on standard output, the counts go to standard error.
        report = self.stderr if export == "-" else self.stdout
        try:
            if export == "-":
                result = self.purge(days, sys.stdout, report)
            elif export:
                with open(export, "a", encoding="utf-8") as out:
                    result = self.purge(days, out, report)
            else:
                result = self.purge(days, None, report)
        except OSError as exc:
            raise CommandError(f"--export: {exc}") from None
        report.write(f"deleted {self.counts(result)}")

    def purge(self, days: int, out, report) -> PurgeResult:
        return purge_orders(
            older_than_days=days,
            export=out,
            progress=lambda so_far: report.write(f"  ... {self.counts(so_far)}"),
        )

    @staticmethod
    def counts(result: PurgeResult) -> str:
        return f"{result.orders} orders and {result.log_entries} log entries"
