"""Claim a capped batch of due orders and run it with bounded concurrency.

A batch holds at most `batch_size` orders in memory at a time, whatever the backlog. A
driver that drains a backlog (a lane's turn, the `process_orders` loop) lets the batch
top itself up: when every order it holds has started and a full claim said more may be
due, it claims as many as it has room for, so its threads do not idle behind a batch's
slowest last orders. Without that (`process_orders --once`) a batch is one claim.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import close_old_connections, connections
from django.utils import timezone

from core import doorbell
from core.conf import conf
from hosts import gate
from orders import counters, transitions
from orders.claims import Claim, claim_due_orders, renew_leases
from orders.engine.config import EngineConfig
from orders.engine.runner import advance_order
from orders.models import BatchRun

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 10.0


@dataclass
class BatchReport:
    claimed: int = 0
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> str:
        if not self.claimed:
            return "no due orders"
        parts = ", ".join(f"{count} {status}" for status, count in sorted(self.statuses.items()))
        return f"{self.claimed} orders in {self.seconds:.1f}s: {parts}"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_batch(
    *,
    batch_size: int | None = None,
    concurrency: int | None = None,
    lease_seconds: float | None = None,
    top_up: Callable[[], bool] | None = None,
) -> BatchReport:
    """Claim at most `batch_size` due orders and advance each, `concurrency` at a time.

    `top_up`, asked before each further claim, says whether the batch may claim more as
    its orders finish (never more than `batch_size` held at once); without it, or with
    STATE_MANAGER_BATCH_PAUSE_SECONDS set, the batch is its first claim."""
    config = conf()
    batch_size = batch_size or config.batch_size
    concurrency = concurrency or config.concurrency
    lease_seconds = lease_seconds or config.lease_seconds
    engine_config = EngineConfig.from_settings()

    started, started_at = time.monotonic(), timezone.now()
    claims = claim_due_orders(limit=batch_size, lease_seconds=lease_seconds)
    report = BatchReport(claimed=len(claims))
    if not claims:  # an idle batch writes nothing: an idle fleet costs one claim query
        return report
    if len(claims) >= batch_size:
        doorbell.ring_now(doorbell.ORDERS)  # more may be due: a resting lane drains beside
    batch = BatchRun.objects.create(worker=worker_name(), started_at=started_at)
    logger.info("batch %s: claimed %d orders", batch.pk, len(claims))
    with LeaseKeeper(claims, lease_seconds=lease_seconds) as keeper:
        source = ClaimSource(
            claims,
            batch_size=batch_size,
            lease_seconds=lease_seconds,
            keeper=keeper,
            report=report,
            # A pause after every batch (the fixed cadence) means a batch is one claim.
            top_up=top_up if len(claims) >= batch_size and not config.batch_pause_seconds else None,
        )
        run_claims(source, concurrency, engine_config)
    flush_counts()
    report.seconds = time.monotonic() - started
    BatchRun.objects.filter(pk=batch.pk).update(ended_at=timezone.now(), orders=report.claimed)
    logger.info("batch %s: %s", batch.pk, report.summary())
    return report


def flush_counts() -> None:
    gate.flush()  # the batch's calls count for the breakers now, not at the next call
    counters.flush()  # and its counts are in the fleet's metrics


class ClaimSource:
    """The claims of one batch, handed to its threads one at a time, topped up while the
    driver allows and a full claim said more may be due."""

    def __init__(
        self,
        claims: list[Claim],
        *,
        batch_size: int,
        lease_seconds: float,
        keeper: LeaseKeeper,
        report: BatchReport,
        top_up: Callable[[], bool] | None,
    ):
        self.todo: deque[Claim] = deque(claims)
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.keeper = keeper
        self.report = report
        self.top_up = top_up
        self.done = 0
        self.lock = threading.Lock()

    def take(self) -> Claim | None:
        """The next claim, or None when the batch has no more for this thread."""
        with self.lock:
            if not self.todo and self.top_up is not None:
                self.claim_more()
            return self.todo.popleft() if self.todo else None

    def claim_more(self) -> None:
        room = self.batch_size - self.keeper.count()
        if room <= 0 or not self.top_up():
            return
        flush_counts()
        claims = claim_due_orders(limit=room, lease_seconds=self.lease_seconds)
        if len(claims) < room:
            self.top_up = None  # a short claim: nothing more was due (or only taken keys)
        else:
            doorbell.ring_now(doorbell.ORDERS)
        if claims:
            self.keeper.add(claims)
            self.todo.extend(claims)
            self.report.claimed += len(claims)
            logger.info("batch topped up with %d orders", len(claims))

    def finished(self, claim: Claim, status: str) -> None:
        self.keeper.release(claim)
        with self.lock:
            self.report.statuses[status] += 1
            self.done += 1


def run_claims(source: ClaimSource, concurrency: int, engine_config: EngineConfig) -> None:
    """Advance the claims on `concurrency` threads, each taking the next claim when free.

    A thread keeps its database connection (and its HTTP session) from one order to the
    next and closes it when the batch has no more claims for it, so a batch opens at
    most `concurrency` connections instead of one per order.
    """

    def work() -> None:
        try:
            while (claim := source.take()) is not None:
                status = "error"
                try:
                    status = advance_in_thread(claim, engine_config)
                except Exception:  # the thread must go on to the next claim whatever happens
                    logger.exception("order %s: could not be released", claim.order_pk)
                finally:
                    source.finished(claim, status)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=work, name=f"order-{number}", daemon=True)
        for number in range(min(concurrency, len(source.todo)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(PROGRESS_EVERY_SECONDS)
            if thread.is_alive():
                logger.info(
                    "batch progress: %d of %d orders done", source.done, source.report.claimed
                )


def advance_in_thread(claim: Claim, engine_config: EngineConfig) -> str:
    """Advance one order on a batch thread, never leaving it claimed after an error."""
    try:
        return advance_order(claim.order_pk, claim.token, engine_config)
    except Exception as exc:
        logger.exception("order %s: internal error", claim.order_pk)
        connections.close_all()  # the error may have been the connection's
        try:
            release_after_error(claim, exc, engine_config)
        finally:
            connections.close_all()  # the next order starts on a fresh connection
        return "error"


def release_after_error(claim: Claim, exc: Exception, engine_config: EngineConfig) -> None:
    """Log the error at the order's step and release it (see `transitions`)."""
    close_old_connections()
    transitions.release_after_error(
        order_pk=claim.order_pk,
        claim_token=claim.token,
        exc=exc,
        secret_values=engine_config.secret_values,
    )


class Heartbeat:
    """Calls `beat` every `interval` seconds from a background thread until stopped."""

    def __init__(self, beat, *, interval: float, name: str):
        self.beat = beat
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        self.thread.join()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    self.beat()
                except Exception:
                    logger.exception("%s: heartbeat failed", self.thread.name)
        finally:
            connections.close_all()


class LeaseKeeper(Heartbeat):
    """Renews the leases of the orders still in their turn."""

    def __init__(self, claims: list[Claim], *, lease_seconds: float):
        super().__init__(self.renew, interval=max(0.5, lease_seconds / 3), name="lease-keeper")
        self.held = {claim.order_pk: claim for claim in claims}
        self.lease_seconds = lease_seconds
        self.lock = threading.Lock()

    def release(self, claim: Claim) -> None:
        with self.lock:
            self.held.pop(claim.order_pk, None)

    def add(self, claims: list[Claim]) -> None:
        with self.lock:
            self.held.update((claim.order_pk, claim) for claim in claims)

    def count(self) -> int:
        with self.lock:
            return len(self.held)

    def renew(self) -> None:
        with self.lock:
            claims = list(self.held.values())
        renew_leases(claims, lease_seconds=self.lease_seconds)
