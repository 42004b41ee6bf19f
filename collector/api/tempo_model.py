"""Stored spans -> OTLP `TracesData` (Tempo's trace-by-id answer), and typed OTLP values for search results.

Spans are grouped back into ResourceSpans (by identical resource attributes) and ScopeSpans (by scope
name and version) in order of first appearance. Attribute values get back their OTLP type from the
stored type tag: bytes are decoded from base64, arrays and maps rebuilt from their JSON text.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status, TracesData

from collector.codecs.otlp_traces import SPAN_KINDS, STATUS_CODES
from collector.model import TYPE_ARRAY, TYPE_BOOL, TYPE_BYTES, TYPE_DOUBLE, TYPE_EMPTY, TYPE_INT, TYPE_KVLIST
from collector.store.trace_search import StoredSpan, TypedAttr


def _plain_any(value: Any) -> AnyValue:
    """An AnyValue from a JSON value (the elements of a stored array or map)."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    out = AnyValue()
    if isinstance(value, list):
        out.array_value.values.extend(_plain_any(v) for v in value)
    elif isinstance(value, dict):
        out.kvlist_value.values.extend(KeyValue(key=k, value=_plain_any(v)) for k, v in value.items())
    return out


def any_value(text: str, tag: str) -> AnyValue:
    if tag == TYPE_INT:
        return AnyValue(int_value=int(text))
    if tag == TYPE_DOUBLE:
        return AnyValue(double_value=float(text))  # float() reads NaN, +Inf and -Inf too
    if tag == TYPE_BOOL:
        return AnyValue(bool_value=text == "true")
    if tag == TYPE_BYTES:
        return AnyValue(bytes_value=base64.b64decode(text))
    if tag in (TYPE_ARRAY, TYPE_KVLIST):
        return _plain_any(json.loads(text))
    if tag == TYPE_EMPTY:
        return AnyValue()
    return AnyValue(string_value=text)


def key_values(attrs: list[TypedAttr]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(t, ty)) for k, t, ty in attrs]


def otlp_span(s: StoredSpan) -> Span:
    span = Span(
        trace_id=bytes.fromhex(s.trace_id),
        span_id=bytes.fromhex(s.span_id),
        parent_span_id=bytes.fromhex(s.parent_span_id),
        trace_state=s.trace_state,
        name=s.name,
        kind=SPAN_KINDS.index(s.kind) if s.kind in SPAN_KINDS else 0,  # type: ignore[arg-type]
        start_time_unix_nano=s.start_ns,
        end_time_unix_nano=s.end_ns,
        attributes=key_values(s.attributes),
        status=Status(
            code=STATUS_CODES.index(s.status_code) if s.status_code in STATUS_CODES else 0,  # type: ignore[arg-type]
            message=s.status_message,
        ),
    )
    for ev in s.events:
        span.events.add(time_unix_nano=ev.time_ns, name=ev.name, attributes=key_values(ev.attributes))
    for lk in s.links:
        span.links.add(
            trace_id=bytes.fromhex(lk.trace_id),
            span_id=bytes.fromhex(lk.span_id),
            trace_state=lk.trace_state,
            attributes=key_values(lk.attributes),
        )
    return span


def traces_data(spans: list[StoredSpan]) -> TracesData:
    data = TracesData()
    resources: dict[tuple[TypedAttr, ...], ResourceSpans] = {}
    scopes: dict[tuple[tuple[TypedAttr, ...], str, str], ScopeSpans] = {}
    for s in spans:
        rkey = tuple(s.resource)
        rs = resources.get(rkey)
        if rs is None:
            rs = resources[rkey] = data.resource_spans.add(resource=Resource(attributes=key_values(s.resource)))
        skey = (rkey, s.scope_name, s.scope_version)
        ss = scopes.get(skey)
        if ss is None:
            ss = scopes[skey] = rs.scope_spans.add(
                scope=InstrumentationScope(name=s.scope_name, version=s.scope_version)
            )
        ss.spans.append(otlp_span(s))
    return data


def trace_by_id_response(data: TracesData) -> bytes:
    """Tempo's v2 `TraceByIDResponse` {trace = 1} in protobuf. Its `Trace` has the same field 1
    (repeated ResourceSpans) as TracesData, so the TracesData bytes are that message as they are."""
    payload = data.SerializeToString()
    return b"\x0a" + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def traces_json(spans: list[StoredSpan]) -> dict[str, Any]:
    """Protobuf-JSON of TracesData, as Tempo answers without Accept: application/protobuf: camelCase
    names, base64 ids, enum names (SPAN_KIND_SERVER), 64-bit integers as strings."""
    return MessageToDict(traces_data(spans))


def otlp_json_kv(key: str, text: str, tag: str) -> dict[str, Any]:
    """One attribute in protobuf-JSON (`{"key", "value": {"stringValue": ...}}`), for search results."""
    return MessageToDict(KeyValue(key=key, value=any_value(text, tag)))
