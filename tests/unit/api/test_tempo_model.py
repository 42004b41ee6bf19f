"""Stored spans -> OTLP TracesData (types, grouping, round trip through bytes), and Tempo's logfmt tags."""

from __future__ import annotations

import base64
import math

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status, TracesData

from collector.api.tempo import search_result
from collector.api.tempo_model import any_value, trace_by_id_response, traces_data, traces_json
from collector.api.tempo_params import parse_logfmt, seconds_ns, tags_filter
from collector.errors import PermanentError
from collector.query.traceql.ast import Field
from collector.query.traceql.evaluate import SpanFacts, matches
from collector.query.traceql.search import TraceMatch
from collector.store.trace_search import SpanEvent, SpanLink, StoredSpan

TRACE = "0af7651916cd43dd8448eb211c80319c"


def stored(span_id: str, service: str, scope: str = "lib", **kw: object) -> StoredSpan:
    base: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": span_id,
        "parent_span_id": "",
        "trace_state": "",
        "name": "op",
        "kind": "Client",
        "service": service,
        "start_ns": 1_000,
        "duration_ns": 500,
        "resource": [("service.name", service, "")],
        "scope_name": scope,
        "scope_version": "1",
        "attributes": [],
        "status_code": "Error",
        "status_message": "bad",
    }
    base.update(kw)
    return StoredSpan(**base)  # type: ignore[arg-type]


VALUES = [
    (("s", ""), AnyValue(string_value="s")),
    (("-7", "int"), AnyValue(int_value=-7)),
    (("2.5", "double"), AnyValue(double_value=2.5)),
    (("true", "bool"), AnyValue(bool_value=True)),
    (("AQL/", "bytes"), AnyValue(bytes_value=b"\x01\x02\xff")),
    (("", "empty"), AnyValue()),
]


@pytest.mark.parametrize(("stored_value", "expected"), VALUES)
def test_any_values(stored_value: tuple[str, str], expected: AnyValue) -> None:
    assert any_value(*stored_value) == expected


def test_arrays_maps_and_specials() -> None:
    arr = any_value('["a",1,2.5,true,[1]]', "array")
    assert [v.WhichOneof("value") for v in arr.array_value.values] == [
        "string_value",
        "int_value",
        "double_value",
        "bool_value",
        "array_value",
    ]
    kv = any_value('{"k":"v","n":{"x":1}}', "kvlist")
    assert [(p.key, p.value.WhichOneof("value")) for p in kv.kvlist_value.values] == [
        ("k", "string_value"),
        ("n", "kvlist_value"),
    ]
    assert math.isnan(any_value("NaN", "double").double_value)
    assert any_value("-Inf", "double").double_value == -math.inf


def test_grouping_and_round_trip() -> None:
    spans = [
        stored(
            "00f067aa0ba902b7",
            "a",
            attributes=[("n", "3", "int")],
            events=[SpanEvent(1_200, "ev", [("k", "v", "")])],
            links=[SpanLink("1" * 32, "2" * 16, "x=y", [("l", "true", "bool")])],
        ),
        stored("00f067aa0ba902b8", "b", parent_span_id="00f067aa0ba902b7", kind="Server", status_code="Ok"),
        stored("00f067aa0ba902b9", "a", scope="other"),
        stored("00f067aa0ba902ba", "a"),
    ]
    data = TracesData.FromString(traces_data(spans).SerializeToString())
    layout = [
        (rs.resource.attributes[0].value.string_value, ss.scope.name, [sp.span_id.hex() for sp in ss.spans])
        for rs in data.resource_spans
        for ss in rs.scope_spans
    ]
    assert layout == [
        ("a", "lib", ["00f067aa0ba902b7", "00f067aa0ba902ba"]),
        ("a", "other", ["00f067aa0ba902b9"]),
        ("b", "lib", ["00f067aa0ba902b8"]),
    ]
    first = data.resource_spans[0].scope_spans[0].spans[0]
    assert first.trace_id.hex() == TRACE and first.kind == Span.SPAN_KIND_CLIENT
    assert (first.start_time_unix_nano, first.end_time_unix_nano) == (1_000, 1_500)
    assert first.status == Status(code=Status.STATUS_CODE_ERROR, message="bad")
    assert first.attributes[0].value.int_value == 3
    assert (first.events[0].time_unix_nano, first.events[0].name) == (1_200, "ev")
    assert (first.links[0].trace_id.hex(), first.links[0].trace_state) == ("1" * 32, "x=y")
    assert first.links[0].attributes[0].value.bool_value is True
    child = data.resource_spans[1].scope_spans[0].spans[0]
    assert child.parent_span_id.hex() == "00f067aa0ba902b7" and child.kind == Span.SPAN_KIND_SERVER
    # Protobuf-JSON: base64 ids, enum names, 64-bit integers as strings.
    js = traces_json(spans)
    sp = js["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert (
        sp["spanId"] == base64.b64encode(bytes.fromhex("00f067aa0ba902b7")).decode()
        and sp["kind"] == "SPAN_KIND_CLIENT"
        and sp["startTimeUnixNano"] == "1000"
    )
    assert js == MessageToDict(data)


def test_v2_protobuf_wraps_the_trace_as_field_1() -> None:
    data = traces_data([stored("00f067aa0ba902b7", "a", attributes=[("big", "x" * 300, "")])])
    payload = data.SerializeToString()
    assert len(payload) > 127  # a two-byte length
    wrapped = trace_by_id_response(data)
    assert wrapped[0] == 0x0A and wrapped.endswith(payload)
    n = (wrapped[1] & 0x7F) | (wrapped[2] << 7)
    assert n == len(payload) and len(wrapped) == 3 + n


def test_search_result_shape() -> None:
    s = stored("00f067aa0ba902b7", "a", attributes=[("http.status_code", "500", "int"), ("other", "x", "")])
    t = TraceMatch(TRACE, "a", "op", 1_000, 2_500_000, [s, s])
    got = search_result(t, [Field("span", "http.status_code"), Field("intrinsic", "name")], 1)
    spanset = {
        "spans": [
            {
                "spanID": "00f067aa0ba902b7",
                "name": "op",
                "startTimeUnixNano": "1000",
                "durationNanos": "500",
                "attributes": [
                    {"key": "service.name", "value": {"stringValue": "a"}},
                    {"key": "http.status_code", "value": {"intValue": "500"}},
                ],
            }
        ],
        "matched": 2,
    }
    assert got == {
        "traceID": TRACE,
        "rootServiceName": "a",
        "rootTraceName": "op",
        "startTimeUnixNano": "1000",
        "durationMs": 2,
        "spanSet": spanset,
        "spanSets": [spanset],
    }


def test_logfmt() -> None:
    assert parse_logfmt('service.name=api  http.status_code=500 msg="a \\"b\\" c" empty=') == [
        ("service.name", "api"),
        ("http.status_code", "500"),
        ("msg", 'a "b" c'),
        ("empty", ""),
    ]
    with pytest.raises(PermanentError):
        parse_logfmt("novalue")


def facts(**kw: object) -> SpanFacts:
    base: dict[str, object] = {
        "name": "GET /",
        "status": "error",
        "kind": "server",
        "duration_ns": 1,
        "root_service": "",
        "root_name": "",
        "trace_duration_ns": 1,
        "span_attributes": {"code": 500, "flag": True, "text": "500"},
        "resource_attributes": {"service.name": "api"},
    }
    base.update(kw)
    return SpanFacts(**base)  # type: ignore[arg-type]


TAGS = [
    ("", True),
    ("service.name=api", True),
    ("service.name=web", False),
    ("code=500", True),  # an int attribute matches its text
    ("text=500", True),  # and a string attribute too
    ("flag=true", True),
    ('name="GET /"', True),
    ("status.code=error", True),
    ("error=true", True),
    ("service.name=api code=404", False),
]


@pytest.mark.parametrize(("tags", "expected"), TAGS)
def test_tags_filter(tags: str, expected: bool) -> None:
    assert matches(tags_filter(tags), facts()) is expected


def test_seconds() -> None:
    assert (seconds_ns("", "start"), seconds_ns("12", "start"), seconds_ns("1.5", "end")) == (
        0,
        12 * 10**9,
        1_500_000_000,
    )
    with pytest.raises(PermanentError):
        seconds_ns("now", "start")
