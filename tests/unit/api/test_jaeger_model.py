"""Stored spans -> the Jaeger JSON model, and Jaeger search parameters -> a span filter."""

from __future__ import annotations

import json

import pytest

from collector.api.jaeger import parse_lookback_ns, search_tags, span_filter
from collector.api.jaeger_model import jaeger_kv, jaeger_trace
from collector.api.trace_params import normalize_trace_id
from collector.errors import PermanentError
from collector.store.trace_search import SpanEvent, SpanLink, StoredSpan

TRACE = "0af7651916cd43dd8448eb211c80319c"
RESOURCE = [("service.name", "orders", ""), ("host.cpus", "4", "int"), ("canary", "true", "bool")]


def stored(span_id: str, parent: str = "", **kw: object) -> StoredSpan:
    base: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": parent,
        "trace_state": "",
        "name": "op",
        "kind": "Server",
        "service": "orders",
        "start_ns": 1_700_000_000_123_456_789,
        "duration_ns": 2_500_999,
        "resource": RESOURCE,
        "scope_name": "lib",
        "scope_version": "1.0",
        "attributes": [],
        "status_code": "Unset",
        "status_message": "",
    }
    base.update(kw)
    return StoredSpan(**base)  # type: ignore[arg-type]


KVS = [
    (("s", "text", ""), {"key": "s", "type": "string", "value": "text"}),
    (("i", "-42", "int"), {"key": "i", "type": "int64", "value": -42}),
    (("d", "2.5", "double"), {"key": "d", "type": "float64", "value": 2.5}),
    (("d", "NaN", "double"), {"key": "d", "type": "string", "value": "NaN"}),
    (("d", "+Inf", "double"), {"key": "d", "type": "string", "value": "+Inf"}),
    (("b", "true", "bool"), {"key": "b", "type": "bool", "value": True}),
    (("b", "false", "bool"), {"key": "b", "type": "bool", "value": False}),
    (("x", "AQL/", "bytes"), {"key": "x", "type": "binary", "value": "AQL/"}),
    (("a", '["a","b"]', "array"), {"key": "a", "type": "string", "value": '["a","b"]'}),
    (("m", '{"k":1}', "kvlist"), {"key": "m", "type": "string", "value": '{"k":1}'}),
]


@pytest.mark.parametrize(("attr", "kv"), KVS)
def test_tag_types(attr: tuple[str, str, str], kv: dict[str, object]) -> None:
    assert jaeger_kv(*attr) == kv


def test_trace_model_exactly() -> None:
    root = stored(
        "00f067aa0ba902b7",
        attributes=[("http.status_code", "500", "int")],
        status_code="Error",
        status_message="boom",
        events=[SpanEvent(1_700_000_000_124_000_000, "exception", [("exception.type", "IOError", "")])],
        links=[SpanLink("1" * 32, "2" * 16, "", [])],
        trace_state="k=v",
    )
    child = stored(
        "b7ad6b7169203331",
        parent="00f067aa0ba902b7",
        kind="Client",
        status_code="Ok",
        service="payments",
        resource=[("service.name", "payments", "")],
    )
    internal = stored("c7ad6b7169203331", parent="00f067aa0ba902b7", kind="Unspecified")
    got = jaeger_trace([root, child, internal])
    scope = [
        {"key": "otel.scope.name", "type": "string", "value": "lib"},
        {"key": "otel.scope.version", "type": "string", "value": "1.0"},
    ]
    assert got == {
        "traceID": TRACE,
        "processes": {
            "p1": {
                "serviceName": "orders",
                "tags": [
                    {"key": "host.cpus", "type": "int64", "value": 4},
                    {"key": "canary", "type": "bool", "value": True},
                ],
            },
            "p2": {"serviceName": "payments", "tags": []},
        },
        "warnings": [],
        "spans": [
            {
                "traceID": TRACE,
                "spanID": "00f067aa0ba902b7",
                "flags": 1,
                "operationName": "op",
                "references": [{"refType": "FOLLOWS_FROM", "traceID": "1" * 32, "spanID": "2" * 16}],
                "startTime": 1_700_000_000_123_456,
                "duration": 2_500,
                "tags": [
                    {"key": "http.status_code", "type": "int64", "value": 500},
                    *scope,
                    {"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "otel.status_code", "type": "string", "value": "ERROR"},
                    {"key": "error", "type": "bool", "value": True},
                    {"key": "otel.status_description", "type": "string", "value": "boom"},
                    {"key": "w3c.tracestate", "type": "string", "value": "k=v"},
                ],
                "logs": [
                    {
                        "timestamp": 1_700_000_000_124_000,
                        "fields": [
                            {"key": "event", "type": "string", "value": "exception"},
                            {"key": "exception.type", "type": "string", "value": "IOError"},
                        ],
                    }
                ],
                "processID": "p1",
                "warnings": [],
            },
            {
                "traceID": TRACE,
                "spanID": "b7ad6b7169203331",
                "flags": 1,
                "operationName": "op",
                "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": "00f067aa0ba902b7"}],
                "startTime": 1_700_000_000_123_456,
                "duration": 2_500,
                "tags": [
                    *scope,
                    {"key": "span.kind", "type": "string", "value": "client"},
                    {"key": "otel.status_code", "type": "string", "value": "OK"},
                ],
                "logs": [],
                "processID": "p2",
                "warnings": [],
            },
            {
                "traceID": TRACE,
                "spanID": "c7ad6b7169203331",
                "flags": 1,
                "operationName": "op",
                "references": [{"refType": "CHILD_OF", "traceID": TRACE, "spanID": "00f067aa0ba902b7"}],
                "startTime": 1_700_000_000_123_456,
                "duration": 2_500,
                "tags": scope,  # an unspecified kind gets no span.kind tag
                "logs": [],
                "processID": "p1",
                "warnings": [],
            },
        ],
    }


def test_search_tags_json_and_repeated() -> None:
    assert search_tags(json.dumps({"http.status_code": "500", "n": 3}), ["a:b:c", "k:"]) == [
        ("http.status_code", "500"),
        ("n", "3"),
        ("a", "b:c"),
        ("k", ""),
    ]
    for tags_json, tag in (("[1]", []), ("{bad", []), ("", ["nocolon"]), ("", [":v"])):
        with pytest.raises(PermanentError):
            search_tags(tags_json, tag)


NOW = 1_700_000_000 * 10**9


def test_span_filter_maps_derived_tags_to_fields() -> None:
    tags = [("span.kind", "server"), ("otel.status_code", "ERROR"), ("http.method", "GET"), ("error", "true")]
    f = span_filter("svc", "op", tags, "1000", "2000", "", "1.2s", "1m", "5", NOW)
    assert (f.service, f.operation, f.kind, f.status) == ("svc", "op", "Server", "Error")
    assert f.attributes == [("http.method", "GET")]
    assert (f.start_ns, f.end_ns) == (1_000_000, 2_000_000)
    assert (f.min_duration_ns, f.max_duration_ns, f.limit) == (1_200_000_000, 60 * 10**9, 5)


def test_span_filter_defaults() -> None:
    f = span_filter("svc", "", [], "", "", "", "", "", "", NOW)
    assert (f.end_ns, f.start_ns, f.limit) == (NOW, NOW - 2 * 86400 * 10**9, 100)
    f = span_filter("svc", "", [], "", "", "1h", "", "", "0", NOW)
    assert (f.start_ns, f.limit) == (NOW - 3600 * 10**9, 100)
    with pytest.raises(PermanentError):
        span_filter("svc", "", [], "soon", "", "", "", "", "", NOW)


@pytest.mark.parametrize(
    ("text", "ns"),
    [("", 2 * 86400 * 10**9), ("custom", 2 * 86400 * 10**9), ("2d", 2 * 86400 * 10**9), ("15m", 900 * 10**9)],
)
def test_lookback(text: str, ns: int) -> None:
    assert parse_lookback_ns(text) == ns


@pytest.mark.parametrize(("text", "tid"), [("ABCDEF", "0" * 26 + "abcdef"), (TRACE.upper(), TRACE)])
def test_trace_ids(text: str, tid: str) -> None:
    assert normalize_trace_id(text) == tid


@pytest.mark.parametrize("text", ["", "xyz", "1" * 33])
def test_trace_ids_rejected(text: str) -> None:
    with pytest.raises(PermanentError):
        normalize_trace_id(text)
