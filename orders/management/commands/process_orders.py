import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from orders.batch import run_batch


class Command(BaseCommand):
    help = (
        "Run a batch of due orders now, in this process (no qcluster needed), "
        "or with no --once, a batch every STATE_MANAGER_INTERVAL_SECONDS until stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run one batch and exit")

    def handle(self, *args, once: bool = False, **options):
        if once:
            self.stdout.write(self.describe(run_batch()))
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        interval = settings.STATE_MANAGER["INTERVAL_SECONDS"]
        self.stdout.write(f"Processing orders every {interval}s after each batch; Ctrl-C stops.")
        try:
            while not stopping:
                self.stdout.write(self.describe(run_batch()))
                deadline = time.monotonic() + interval
                while not stopping and time.monotonic() < deadline:
                    time.sleep(min(0.5, interval))
        except KeyboardInterrupt:
            pass
        self.stdout.write("Stopped.")

    def describe(self, report) -> str:
        if not report.claimed:
            return "No due orders."
        return f"Processed {report.summary()}."
