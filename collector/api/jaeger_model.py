"""Stored spans -> the Jaeger query API's JSON model, as Jaeger's OTLP translation spells it.

Resource attributes other than service.name become process tags; span kind, status and scope become
the tags `span.kind`, `otel.status_code`, `error`, `otel.status_description`, `otel.scope.name` and
`otel.scope.version`; the parent becomes a CHILD_OF reference and links FOLLOWS_FROM references;
events become logs whose first field is `event`. Times are microseconds since the epoch.
"""

from __future__ import annotations

import math
from typing import Any

from collector.model import TYPE_BOOL, TYPE_BYTES, TYPE_DOUBLE, TYPE_INT
from collector.store.trace_search import StoredSpan, TypedAttr

_KIND_TAGS = {
    "Internal": "internal",
    "Server": "server",
    "Client": "client",
    "Producer": "producer",
    "Consumer": "consumer",
}
_STATUS_TAGS = {"Ok": "OK", "Error": "ERROR"}


def jaeger_kv(key: str, text: str, tag: str) -> dict[str, Any]:
    """One Jaeger KeyValue. Arrays and maps stay their JSON text, as Jaeger's translation writes them."""
    if tag == TYPE_INT:
        return {"key": key, "type": "int64", "value": int(text)}
    if tag == TYPE_DOUBLE:
        value = float(text)
        # JSON has no NaN or infinities: those stay the text the store spells them with.
        if math.isfinite(value):
            return {"key": key, "type": "float64", "value": value}
        return {"key": key, "type": "string", "value": text}
    if tag == TYPE_BOOL:
        return {"key": key, "type": "bool", "value": text == "true"}
    if tag == TYPE_BYTES:
        return {"key": key, "type": "binary", "value": text}  # base64, as the JSON model encodes binary
    return {"key": key, "type": "string", "value": text}


def _kvs(attrs: list[TypedAttr]) -> list[dict[str, Any]]:
    return [jaeger_kv(k, t, ty) for k, t, ty in attrs]


def _str(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


def span_tags(span: StoredSpan) -> list[dict[str, Any]]:
    tags = _kvs(span.attributes)
    if span.scope_name:
        tags.append(_str("otel.scope.name", span.scope_name))
    if span.scope_version:
        tags.append(_str("otel.scope.version", span.scope_version))
    if span.kind in _KIND_TAGS:
        tags.append(_str("span.kind", _KIND_TAGS[span.kind]))
    if span.status_code in _STATUS_TAGS:
        tags.append(_str("otel.status_code", _STATUS_TAGS[span.status_code]))
    if span.status_code == "Error":
        tags.append({"key": "error", "type": "bool", "value": True})
    if span.status_message:
        tags.append(_str("otel.status_description", span.status_message))
    if span.trace_state:
        tags.append(_str("w3c.tracestate", span.trace_state))
    return tags


def _process(span: StoredSpan) -> dict[str, Any]:
    return {"serviceName": span.service, "tags": _kvs([a for a in span.resource if a[0] != "service.name"])}


def jaeger_trace(spans: list[StoredSpan]) -> dict[str, Any]:
    """One trace: its spans in the given order, processes numbered p1, p2... in order of first use."""
    processes: dict[str, dict[str, Any]] = {}
    keys: dict[tuple[str, tuple[TypedAttr, ...]], str] = {}
    out = []
    for span in spans:
        identity = (span.service, tuple(span.resource))
        pid = keys.get(identity)
        if pid is None:
            pid = keys[identity] = f"p{len(keys) + 1}"
            processes[pid] = _process(span)
        refs = []
        if span.parent_span_id:
            refs.append({"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id})
        refs.extend({"refType": "FOLLOWS_FROM", "traceID": lk.trace_id, "spanID": lk.span_id} for lk in span.links)
        out.append(
            {
                "traceID": span.trace_id,
                "spanID": span.span_id,
                "flags": 1,
                "operationName": span.name,
                "references": refs,
                "startTime": span.start_ns // 1000,
                "duration": span.duration_ns // 1000,
                "tags": span_tags(span),
                "logs": [
                    {"timestamp": ev.time_ns // 1000, "fields": [_str("event", ev.name), *_kvs(ev.attributes)]}
                    for ev in span.events
                ],
                "processID": pid,
                "warnings": [],
            }
        )
    return {"traceID": spans[0].trace_id if spans else "", "spans": out, "processes": processes, "warnings": []}
