"""Claim a capped batch of due orders and run it with bounded concurrency.

A batch waits until every order it claimed is released before it returns, so the
next claim never starts while this one is in flight and memory stays bounded
whatever the backlog.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from django.db import close_old_connections, connections
from django.utils import timezone

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
) -> BatchReport:
    """Claim at most `batch_size` due orders and advance each, `concurrency` at a time."""
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
    batch = BatchRun.objects.create(worker=worker_name(), started_at=started_at)
    logger.info("batch %s: claimed %d orders", batch.pk, len(claims))
    with LeaseKeeper(claims, lease_seconds=lease_seconds) as keeper:
        run_claims(claims, concurrency, engine_config, keeper, report)
    gate.flush()  # this batch's calls count for the breakers now, not at the next call
    counters.flush()  # and its counts are in the fleet's metrics
    report.seconds = time.monotonic() - started
    BatchRun.objects.filter(pk=batch.pk).update(ended_at=timezone.now(), orders=len(claims))
    logger.info("batch %s: %s", batch.pk, report.summary())
    return report


def run_claims(
    claims: list[Claim],
    concurrency: int,
    engine_config: EngineConfig,
    keeper: LeaseKeeper,
    report: BatchReport,
) -> None:
    """Advance the claims on `concurrency` threads, each taking the next claim when free.

    A thread keeps its database connection (and its HTTP session) from one order to the
    next and closes it when the batch has no more claims for it, so a batch opens at
    most `concurrency` connections instead of one per order.
    """
    todo: queue.SimpleQueue[Claim] = queue.SimpleQueue()
    for claim in claims:
        todo.put(claim)
    results: queue.SimpleQueue[tuple[Claim, str]] = queue.SimpleQueue()

    def work() -> None:
        try:
            while True:
                try:
                    claim = todo.get_nowait()
                except queue.Empty:
                    return
                status = "error"
                try:
                    status = advance_in_thread(claim, engine_config)
                except Exception:  # the thread must go on to the next claim whatever happens
                    logger.exception("order %s: could not be released", claim.order_pk)
                finally:
                    results.put((claim, status))
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=work, name=f"order-{number}", daemon=True)
        for number in range(min(concurrency, len(claims)))
    ]
    for thread in threads:
        thread.start()
    last_progress = time.monotonic()
    for done in range(1, len(claims) + 1):
        claim, status = results.get()
        keeper.release(claim)
        report.statuses[status] += 1
        if time.monotonic() - last_progress >= PROGRESS_EVERY_SECONDS:
            last_progress = time.monotonic()
            logger.info("batch progress: %d of %d orders done", done, len(claims))
    for thread in threads:
        thread.join()


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

    def renew(self) -> None:
        with self.lock:
            claims = list(self.held.values())
        renew_leases(claims, lease_seconds=self.lease_seconds)
