"""OTLP traces: ExportTraceServiceRequest -> SpanBatch in the otel_traces layout, checking every span."""

from __future__ import annotations

import functools

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.codecs.otlp_values import (
    Rejections,
    TimeWindow,
    add_attributes,
    check_span_id,
    check_trace_id,
)
from collector.model import MapColumn, SpanBatch

# The OpenTelemetry Collector's ClickHouse exporter spells kinds and status codes this way.
SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")


def span_problem(span: Span, window: TimeWindow) -> str | None:
    """Why a span cannot be stored, or None. Ids must be valid and the times inside the window."""
    problem = (
        check_trace_id(span.trace_id)
        or check_span_id(span.span_id)
        or check_span_id(span.parent_span_id, "parent_span_id", optional=True)
    )
    if problem:
        return problem
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    if start == 0:
        return "start_time_unix_nano is missing"
    if end < start:
        return f"end_time_unix_nano {end} is before start_time_unix_nano {start}"
    if end >= 2**63 or any(ev.time_unix_nano >= 2**63 for ev in span.events):
        return "a timestamp is beyond the largest signed 64-bit nanosecond"
    return window.check(start)


def decode_traces(request: ExportTraceServiceRequest, window: TimeWindow) -> tuple[SpanBatch, Rejections]:
    """Flatten a request into columns. Invalid spans are left out and counted with their location."""
    batch = SpanBatch()
    rejected = Rejections()
    b = batch
    for ri, rs in enumerate(request.resource_spans):
        # Computed once per resource, copied onto each span; duplicate keys are kept as sent.
        res, res_types = MapColumn(), MapColumn()
        add_attributes(rs.resource.attributes, res, res_types)
        service = ""
        for key, value in zip(res.keys, res.values, strict=True):
            if key == "service.name":
                service = value
        for si, ss in enumerate(rs.scope_spans):
            scope_name = ss.scope.name
            scope_version = ss.scope.version
            for pi, span in enumerate(ss.spans):
                problem = span_problem(span, window)
                if problem:
                    rejected.add(f"resource_spans[{ri}].scope_spans[{si}].spans[{pi}]", problem)
                    continue
                start = span.start_time_unix_nano
                b.timestamp.append(start)
                b.trace_id.append(span.trace_id.hex())
                b.span_id.append(span.span_id.hex())
                b.parent_span_id.append(span.parent_span_id.hex())
                b.trace_state.append(span.trace_state)
                b.span_name.append(span.name)
                kind = span.kind
                b.span_kind.append(SPAN_KINDS[kind] if 0 <= kind < 6 else str(kind))
                b.service_name.append(service)
                b.resource_attributes.add_pairs(res.keys, res.values)
                b.resource_attribute_types.add_pairs(res_types.keys, res_types.values)
                b.scope_name.append(scope_name)
                b.scope_version.append(scope_version)
                add_attributes(span.attributes, b.span_attributes, b.span_attribute_types)
                b.duration.append(span.end_time_unix_nano - start)
                code = span.status.code
                b.status_code.append(STATUS_CODES[code] if 0 <= code < 3 else str(code))
                b.status_message.append(span.status.message)
                if span.events:
                    for ev in span.events:
                        b.events_timestamp.append(ev.time_unix_nano)
                        b.events_name.append(ev.name)
                        add_attributes(ev.attributes, b.events_attributes, b.events_attribute_types)
                b.events_outer.append(len(b.events_name))
                if span.links:
                    for link in span.links:
                        b.links_trace_id.append(link.trace_id.hex())
                        b.links_span_id.append(link.span_id.hex())
                        b.links_trace_state.append(link.trace_state)
                        add_attributes(link.attributes, b.links_attributes, b.links_attribute_types)
                b.links_outer.append(len(b.links_trace_id))
    return batch, rejected


def check_traces(request: ExportTraceServiceRequest, window: TimeWindow) -> tuple[int, Rejections]:
    """Check every span's ids and times without flattening; invalid spans are removed from `request`.

    Returns (accepted spans, rejections). This is the cheap half of decode_traces (five fields a span,
    not the attributes), for when the C flattener does the rest.
    """
    accepted = 0
    rejected = Rejections()
    for ri, rs in enumerate(request.resource_spans):
        for si, ss in enumerate(rs.scope_spans):
            bad: list[int] = []
            for pi, span in enumerate(ss.spans):
                problem = span_problem(span, window)
                if problem:
                    rejected.add(f"resource_spans[{ri}].scope_spans[{si}].spans[{pi}]", problem)
                    bad.append(pi)
                else:
                    accepted += 1
            for pi in reversed(bad):
                del ss.spans[pi]
    return accepted, rejected


# Buffers returned by _otlp_flat.flatten_traces after the row count, in this order. A string column
# is 2 buffers (int32 offsets, bytes), a map 5 (row offsets, key offsets, key bytes, value offsets,
# value bytes), a list of rows 1 (offsets).
COLUMN_BUFFERS: tuple[tuple[str, str], ...] = (
    ("Timestamp", "ts"),
    ("Duration", "u64"),
    ("TraceId", "str"),
    ("SpanId", "str"),
    ("ParentSpanId", "str"),
    ("TraceState", "str"),
    ("SpanName", "str"),
    ("SpanKind", "str"),
    ("ServiceName", "str"),
    ("ScopeName", "str"),
    ("ScopeVersion", "str"),
    ("StatusCode", "str"),
    ("StatusMessage", "str"),
    ("ResourceAttributes", "map"),
    ("ResourceAttributeTypes", "map"),
    ("SpanAttributes", "map"),
    ("SpanAttributeTypes", "map"),
    ("Events", "list"),
    ("Events.Timestamp", "ts"),
    ("Events.Name", "str"),
    ("Events.Attributes", "map"),
    ("Events.AttributeTypes", "map"),
    ("Links", "list"),
    ("Links.TraceId", "str"),
    ("Links.SpanId", "str"),
    ("Links.TraceState", "str"),
    ("Links.Attributes", "map"),
    ("Links.AttributeTypes", "map"),
)
_TS = pa.timestamp("ns", tz="UTC")

try:
    from collector.codecs import _otlp_flat  # type: ignore[attr-defined]
except ImportError:  # built by setup.py when a C compiler is there; Python flattens otherwise
    _otlp_flat = None


def c_flattener_available() -> bool:
    return _otlp_flat is not None


def flatten_traces_c(body: bytes) -> pa.Table | None:
    """The rows decode_traces makes, from a checked request's bytes, by the C flattener.

    None when the C flattener is not built or leaves the request to Python (array and key-value-list
    attribute values). The request must have passed check_traces: no span is checked here.
    """
    if _otlp_flat is None:
        return None
    out = _otlp_flat.flatten_traces(body)
    if out is None:
        return None
    rows, bufs = out[0], iter(out[1:])
    arrays: dict[str, pa.Array] = {}
    lists: dict[str, pa.Array] = {}
    for name, kind in COLUMN_BUFFERS:
        if kind == "list":
            lists[name] = _offsets(next(bufs))
            continue
        if kind == "map":
            row_offsets = _offsets(next(bufs))
            keys, values = _strings(next(bufs), next(bufs)), _strings(next(bufs), next(bufs))
            column: pa.Array = pa.MapArray.from_arrays(row_offsets, keys, values)
        elif kind == "str":
            column = _strings(next(bufs), next(bufs))
        else:
            data = next(bufs)
            column = pa.Array.from_buffers(
                _TS if kind == "ts" else pa.uint64(), len(data) // 8, [None, pa.py_buffer(data)]
            )
        prefix = name.split(".", 1)[0]
        if prefix in lists:
            column = pa.ListArray.from_arrays(lists[prefix], column)
        arrays[name] = column
    # Same columns, same order as the Python flattener (SpanBatch.to_arrow), so tables concatenate.
    table = pa.table({name: arrays[name] for name in _column_order()})
    assert table.num_rows == rows
    return table


@functools.cache
def _column_order() -> tuple[str, ...]:
    return tuple(SpanBatch().to_arrow().column_names)


def _offsets(data: bytes) -> pa.Array:
    return pa.Array.from_buffers(pa.int32(), len(data) // 4, [None, pa.py_buffer(data)])


def _strings(offsets: bytes, data: bytes) -> pa.Array:
    return pa.Array.from_buffers(pa.string(), len(offsets) // 4 - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
