import logging
import random
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from core.conf import conf
from expressions.secrets import mask
from orders.batch import run_batch
from orders.cadence import Notifier, follows_at_once, rest

logger = logging.getLogger(__name__)

# After a batch fails on the database, the loop waits this long, doubling up to the cap.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A batch of the loop claims more as its orders finish for at most this long (a lane's
# batch does so for its turn), so the log and /health/ see batches end while it drains.
TOP_UP_SECONDS = 60.0


class Command(BaseCommand):
    help = (
        "Run a batch of due orders now, in this process (no qcluster needed), "
        "or with no --once, batches as orders come due until stopped (a backlog drains at "
        "once; at rest, new work wakes the loop, and it looks at least every "
        "STATE_MANAGER_INTERVAL_SECONDS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="run one batch and exit")

    def handle(self, *args, once: bool = False, **options):
        if once:
            self.stdout.write(self.describe(run_batch()))
            return
        self.stopping = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        interval = conf().interval_seconds
        self.stdout.write(
            f"Processing orders as they come due (looking at least every {interval}s); "
            "Ctrl-C stops."
        )
        try:
            with Notifier():
                self.loop()
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write("Stopped.")

    def loop(self) -> None:
        """Batches as the cadence says (orders/cadence.py); a database outage is waited out
        with backoff, like qcluster does, instead of ending the loop."""
        backoff, failures = FIRST_BACKOFF_SECONDS, 0
        while not self.stopping.is_set():
            try:
                report = run_batch(top_up=self.draining_until(time.monotonic() + TOP_UP_SECONDS))
            except (OperationalError, InterfaceError) as exc:
                failures += 1
                logger.error(
                    "batch failed, database unavailable (%s); next try in %gs",
                    database_error(exc),
                    backoff,
                )
                close_connections()  # the next batch connects afresh
                self.pause(random.uniform(backoff / 2, backoff))  # workers do not reconnect as one
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            if failures:
                logger.warning("database available again after %d failed batches", failures)
                backoff, failures = FIRST_BACKOFF_SECONDS, 0
            if report.claimed:
                self.stdout.write(self.describe(report))
            if not follows_at_once(report, self.stopping):
                try:
                    rest(self.stopping)
                except (OperationalError, InterfaceError):
                    close_connections()  # the next batch meets the outage, and backs off
                    self.pause(backoff)

    def draining_until(self, until: float):
        """Whether a batch may claim more: until `until` (time.monotonic()) or a stop."""
        return lambda: not self.stopping.is_set() and time.monotonic() < until

    def pause(self, seconds: float) -> None:
        """Sleep, but stop at once on a SIGTERM."""
        self.stopping.wait(seconds)

    def describe(self, report) -> str:
        if not report.claimed:
            return "No due orders."
        return f"Processed {report.summary()}."


def database_error(exc: Exception) -> str:
    """The error's first line, without the database passwords: no traceback each time the
    loop tries again."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    passwords = [db["PASSWORD"] for db in settings.DATABASES.values() if db.get("PASSWORD")]
    return mask(lines[0][:500], passwords)


def close_connections() -> None:
    """Drop this thread's connections, so the next batch reconnects instead of failing on a
    dead socket. Closing a broken one may raise, but leaves it closed all the same."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except DatabaseError:
            pass
