"""Tracing with OpenTelemetry, on only while OTEL_EXPORTER_OTLP_ENDPOINT is set.

`configure` (called once per process by statemanager's AppConfig) then sets up the SDK:
a `TracerProvider` exporting in batches over OTLP/HTTP (the exporter reads the standard
OTEL_EXPORTER_OTLP_* variables itself; OTEL_SERVICE_NAME defaults to `state-manager`)
and Django's instrumentation, a server span for every request. Unset, no SDK is loaded
and every function here returns at its first line (`_tracer is None`): no span object,
no context, no header.

The spans State Manager makes (contract §12): `webhook` (the order posted, a child of the
request's `traceparent`), `order turn` (each turn of an order, a child of the `traceparent`
kept on the order at intake, so a trace spans batches and workers) and `attempt` (each
call sent, a CLIENT span whose context goes out as the request's W3C `traceparent`).

>>> enabled(), start_span("attempt", attributes={}), traceparent_of(None)
(False, None, '')
>>> valid_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
True
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE_NAME = "state-manager"
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

_propagator = TraceContextTextMapPropagator()
_tracer: trace.Tracer | None = None

CLIENT, SERVER = SpanKind.CLIENT, SpanKind.SERVER


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Set the SDK up when the OTLP endpoint is set; True when tracing is on."""
    environ = os.environ if environ is None else environ
    if not environ.get(ENDPOINT, "").strip() or _tracer is not None:
        return _tracer is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    # The SDK's batch processor starts its export thread again in a forked child
    # (django-q2 forks its workers), so each worker exports its own spans.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(tracer_provider=provider)
    use(provider)
    return True


def use(provider: trace.TracerProvider | None) -> None:
    """Trace to `provider` (a test's, with an in-memory exporter), or stop with None."""
    global _tracer
    _tracer = None if provider is None else provider.get_tracer("statemanager")


def enabled() -> bool:
    return _tracer is not None


def valid_traceparent(text: str) -> bool:
    return bool(TRACEPARENT.match(text)) and not text.startswith("ff")


def _parent(traceparent: str, parent: Span | None) -> otel_context.Context | None:
    """A span's parent: `parent`, else the span current in this thread (a request's
    server span), else the `traceparent` given (None: a new trace)."""
    if parent is not None:
        return trace.set_span_in_context(parent)
    if trace.get_current_span().get_span_context().is_valid:
        return None
    if traceparent and valid_traceparent(traceparent):
        return _propagator.extract({"traceparent": traceparent})
    return None


def start_span(
    name: str,
    *,
    attributes: Mapping[str, Any],
    traceparent: str = "",
    parent: Span | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Span | None:
    """A started span (end it with `end`), or None while tracing is off."""
    if _tracer is None:
        return None
    context = _parent(traceparent, parent)
    return _tracer.start_span(name, context=context, kind=kind, attributes=dict(attributes))


def end(span: Span | None, error: str = "", **attributes: Any) -> None:
    if span is None:
        return
    for name, value in attributes.items():
        if value is not None:
            span.set_attribute(name.replace("__", "."), value)
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()


@contextmanager
def span(name: str, **options: Any) -> Iterator[Span | None]:
    """`start_span` as the current span of the block (None while tracing is off)."""
    started = start_span(name, **options)
    if started is None:
        yield None
        return
    with trace.use_span(started, end_on_exit=True):
        yield started


@contextmanager
def current(span: Span | None) -> Iterator[None]:
    """`span` is the current span inside the block (what `outbound_headers` sends)."""
    if span is None:
        yield
        return
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        otel_context.detach(token)


def traceparent_of(span: Span | None) -> str:
    if span is None:
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def outbound_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` with the current span's W3C `traceparent` (as they are while off)."""
    if _tracer is None:
        return headers
    carrier = dict(headers)
    _propagator.inject(carrier)
    return carrier


def kept_traceparent(incoming: str, span: Span | None) -> str:
    """What an order keeps of the request that posted it: the webhook span's
    `traceparent` while tracing, else the request's own (valid) one, for the workers."""
    if span is not None:
        return traceparent_of(span)
    return incoming if valid_traceparent(incoming) else ""
