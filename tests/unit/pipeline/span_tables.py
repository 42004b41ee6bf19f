"""Spans for the derived-metrics tests: recorded by the OpenTelemetry SDK, encoded as OTLP and flattened by
the collector's own decoder, so the tables are exactly what the ingest path hands the metrics generator.

A span is described by a `SpanDef`; parents are named by key, and every span of one `spans()` call that
has no parent starts a trace of its own unless `trace` names another span's trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector.codecs.otlp_wire import PROTOBUF
from collector.pipeline.decoding import decode_otlp

MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000
KINDS = {
    "internal": SpanKind.INTERNAL,
    "server": SpanKind.SERVER,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}
STATUSES = {"unset": StatusCode.UNSET, "ok": StatusCode.OK, "error": StatusCode.ERROR}


@dataclass(frozen=True)
class SpanDef:
    key: str
    service: str
    name: str
    kind: str = "internal"
    duration_ms: float = 1.0
    parent: str | None = None
    status: str = "unset"
    attributes: Mapping[str, Any] = field(default_factory=dict)
    resource: Mapping[str, Any] = field(default_factory=dict)


def spans(defs: Sequence[SpanDef]) -> dict[str, ReadableSpan]:
    """Record `defs` (parents before children) and return the finished spans by key."""
    recorded = InMemorySpanExporter()
    providers: dict[tuple[str, tuple[tuple[str, Any], ...]], TracerProvider] = {}
    live: dict[str, trace.Span] = {}
    for d in defs:
        res_key = (d.service, tuple(sorted(d.resource.items())))
        provider = providers.get(res_key)
        if provider is None:
            attrs = {"service.name": d.service, **d.resource} if d.service else dict(d.resource)
            provider = providers[res_key] = TracerProvider(resource=Resource(attrs))
            provider.add_span_processor(SimpleSpanProcessor(recorded))
        ctx = trace.set_span_in_context(live[d.parent]) if d.parent else None
        span = provider.get_tracer("tests").start_span(
            d.name, context=ctx, kind=KINDS[d.kind], start_time=T0, attributes=dict(d.attributes)
        )
        if d.status != "unset":
            span.set_status(Status(STATUSES[d.status]))
        live[d.key] = span
    for d in reversed(defs):
        live[d.key].end(end_time=T0 + int(d.duration_ms * MS))
    by_id = {_context(s).span_id: s for s in recorded.get_finished_spans()}
    return {d.key: by_id[live[d.key].get_span_context().span_id] for d in defs}


def table(recorded: Sequence[ReadableSpan]) -> pa.Table:
    """The otel_traces Arrow table the ingest path makes of an OTLP request holding `recorded`."""
    body = encode_spans(list(recorded)).SerializeToString()
    decoded = decode_otlp("traces", body, PROTOBUF, 0.0, 0.0)
    assert decoded.accepted == len(recorded)
    result: pa.Table = decoded.payload
    return result


def _context(span: ReadableSpan) -> trace.SpanContext:
    ctx = span.get_span_context()
    assert ctx is not None
    return ctx


def trace_id(span: ReadableSpan) -> str:
    return f"{_context(span).trace_id:032x}"


def span_id(span: ReadableSpan) -> str:
    return f"{_context(span).span_id:016x}"
