"""The engine's CPU per step with OpenTelemetry tracing off and on, in one run.

The orders of `bench/throughput.py` (N x 3 call steps, a local server at a fixed
latency) go through `orders.batch.run_batch` in alternating rounds: tracing off (no SDK,
as while OTEL_EXPORTER_OTLP_ENDPOINT is unset), then on (the SDK's TracerProvider with
its BatchSpanProcessor, as `core.tracing.configure` sets it up, exporting to an exporter
that drops the spans: the network export is left out, its thread's CPU is not). Each
round's process CPU is divided by its steps; the spans exported are counted.

    .venv/bin/python -m bench.tracing_cost [--orders 200] [--rounds 2] [--latency-ms 5]
"""

from __future__ import annotations

import argparse
import os
import statistics

from bench.common import STEPS, LatencyServer, machine, scratch_database
from bench.throughput import run_engine


class Dropped:
    """A span exporter that counts the spans and sends nothing."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    steps = args.orders * STEPS

    with (
        LatencyServer(args.latency_ms / 1000) as server,
        scratch_database(os.environ.get("DATABASE_URL"), suffix="tracing") as url,
    ):
        from django.db import connection
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from core import tracing
        from orders.models import Order

        print(f"machine: {machine()}")
        print(f"database: {connection.vendor} (scratch: {url.rsplit('/', 1)[-1]})")
        print(f"workload: {args.orders} orders x {STEPS} steps a round, {args.latency_ms:g} ms")
        exporter = Dropped()
        processor = BatchSpanProcessor(exporter)
        provider = TracerProvider()
        provider.add_span_processor(processor)
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                tracing.use(provider if mode == "on" else None)
                Order.objects.all().delete()
                run = run_engine(args.orders, server.url, batch_size=args.orders, concurrency=10)
                cpu[mode].append(run["cpu"] * 1000 / steps)
                print(f"tracing {mode:3}: {cpu[mode][-1]:.3f} ms CPU/step ({run['wall']:.2f} s)")
        tracing.use(None)
        processor.force_flush()
        off, on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
        print(
            f"median CPU/step: off {off:.3f} ms, on {on:.3f} ms "
            f"({on - off:+.3f} ms, {on / off - 1:+.0%})"
        )
        print(
            f"spans exported: {exporter.spans} (expected {args.rounds * args.orders * (1 + STEPS)})"
        )


if __name__ == "__main__":
    main()
