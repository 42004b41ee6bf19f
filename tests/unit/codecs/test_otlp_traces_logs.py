"""OTLP trace and log codecs: flattening, typed attributes, per-item checks with their locations."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from collector.codecs.otlp_logs import decode_logs
from collector.codecs.otlp_traces import decode_traces
from collector.codecs.otlp_values import TimeWindow, any_value_text
from collector.codecs.otlp_wire import JSON, PROTOBUF, parse_request
from collector.errors import PermanentError
from collector.store.readers import typed_value
from tests.conftest import SHARED

TID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SID = bytes.fromhex("eee19b7ec3c1b174")


def _request(**span_fields: object) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name", value=AnyValue(string_value="api"))
    span = rs.scope_spans.add().spans.add()
    fields = {"trace_id": TID, "span_id": SID, "name": "op", "start_time_unix_nano": 10, "end_time_unix_nano": 25}
    fields.update(span_fields)
    for key, value in fields.items():
        setattr(span, key, value)
    return req


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trace_id": TID[:15]}, "trace_id is 15 bytes, must be 16"),
        ({"trace_id": bytes(16)}, "trace_id is all zeros"),
        ({"trace_id": b""}, "trace_id is 0 bytes, must be 16"),
        ({"span_id": SID + b"\x00"}, "span_id is 9 bytes, must be 8"),
        ({"span_id": bytes(8)}, "span_id is all zeros"),
        ({"parent_span_id": b"\x01\x02"}, "parent_span_id is 2 bytes, must be 8"),
        ({"start_time_unix_nano": 0}, "start_time_unix_nano is missing"),
        ({"end_time_unix_nano": 5}, "end_time_unix_nano 5 is before start_time_unix_nano 10"),
    ],
)
def test_invalid_span_is_rejected_with_location(fields: dict[str, object], message: str) -> None:
    batch, rejected = decode_traces(_request(**fields), TimeWindow())
    assert len(batch) == 0
    assert rejected.count == 1
    assert rejected.messages == [f"resource_spans[0].scope_spans[0].spans[0]: {message}"]


def test_time_window_rejects_old_and_future_spans() -> None:
    window = TimeWindow(min_ns=100, max_ns=1000)
    assert decode_traces(_request(start_time_unix_nano=99, end_time_unix_nano=200), window)[1].count == 1
    assert decode_traces(_request(start_time_unix_nano=1001, end_time_unix_nano=2000), window)[1].count == 1
    assert len(decode_traces(_request(start_time_unix_nano=100, end_time_unix_nano=200), window)[0]) == 1


def test_span_columns() -> None:
    req = _request(parent_span_id=b"\x01" * 8, kind=3, trace_state="a=b")
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.status.code = 2
    span.status.message = "bad"
    ev = span.events.add(time_unix_nano=12, name="retry")
    ev.attributes.add(key="attempt", value=AnyValue(int_value=2))
    link = span.links.add(trace_id=TID, span_id=b"\x02" * 8)
    link.attributes.add(key="why", value=AnyValue(string_value="batch"))
    batch, rejected = decode_traces(req, TimeWindow())
    assert rejected.count == 0
    row = batch.to_arrow().to_pylist()[0]
    assert row["TraceId"] == TID.hex() and row["SpanId"] == SID.hex() and row["ParentSpanId"] == "01" * 8
    assert row["SpanKind"] == "Client" and row["StatusCode"] == "Error" and row["StatusMessage"] == "bad"
    assert row["Duration"] == 15 and row["ServiceName"] == "api" and row["TraceState"] == "a=b"
    assert row["Events.Name"] == ["retry"] and row["Events.Attributes"] == [[("attempt", "2")]]
    assert row["Events.AttributeTypes"] == [[("attempt", "int")]]
    assert row["Links.SpanId"] == ["02" * 8] and row["Links.Attributes"] == [[("why", "batch")]]


def test_upper_case_hex_ids_in_json_are_accepted() -> None:
    body = (SHARED / "otlp-examples" / "trace.json").read_bytes()
    batch, rejected = decode_traces(parse_request("traces", body, JSON), TimeWindow())  # type: ignore[arg-type]
    assert rejected.count == 0
    assert batch.trace_id == ["5b8efff798038103d269b633813fc60c"]
    assert batch.parent_span_id == ["eee19b7ec3c1b173"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"resourceSpans": [', "malformed JSON at line 1 column 20"),
        (b"[]", "OTLP/JSON body must be a JSON object"),
        (
            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}',
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: 'zz' is not a hex id",
        ),
        (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"soon"}]}]}]}', "invalid OTLP/JSON"),
        (b'{"resourceSpans": "\xff"}', "body is not valid UTF-8 at byte offset 19"),
    ],
)
def test_bad_json_says_where(body: bytes, message: str) -> None:
    with pytest.raises(PermanentError) as err:
        parse_request("traces", body, JSON)
    assert message in err.value.message
    assert err.value.status == 400


def test_bad_protobuf_says_where() -> None:
    good = _request().SerializeToString()
    with pytest.raises(PermanentError) as err:
        parse_request("traces", good[:-3], PROTOBUF)
    assert "resource_spans[0]" in err.value.message and "byte offset" in err.value.message
    # A span name with invalid UTF-8: the field path and offset of the bad byte.
    bad = good.replace(b"*\x02op", b"*\x02o\xff")  # field 5 (name), length 2
    with pytest.raises(PermanentError) as err:
        parse_request("traces", bad, PROTOBUF)
    assert "resource_spans[0].scope_spans[0].spans[0].name: invalid UTF-8" in err.value.message


@given(st.binary(max_size=200))
def test_protobuf_garbage_never_crashes(data: bytes) -> None:
    try:
        parse_request("traces", data, PROTOBUF)
    except PermanentError as exc:
        assert exc.status == 400


@pytest.mark.parametrize(
    ("value", "text", "tag", "back"),
    [
        (AnyValue(string_value="x"), "x", None, "x"),
        (AnyValue(int_value=-7), "-7", "int", -7),
        (AnyValue(double_value=0.1), "0.1", "double", 0.1),
        (AnyValue(double_value=float("inf")), "+Inf", "double", "+Inf"),
        (AnyValue(bool_value=False), "false", "bool", False),
        (AnyValue(bytes_value=b"\x00\x01"), "AAE=", "bytes", "AAE="),
        (
            AnyValue(array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(string_value="a")])),
            '[1,"a"]',
            "array",
            [1, "a"],
        ),
        (
            AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="k", value=AnyValue(bool_value=True))])),
            '{"k":true}',
            "kvlist",
            {"k": True},
        ),
        (AnyValue(), "", "empty", None),
    ],
)
def test_any_value_round_trip(value: AnyValue, text: str, tag: str | None, back: object) -> None:
    assert any_value_text(value) == (text, tag)
    assert typed_value(text, tag) == back


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_doubles_round_trip_exactly(x: float) -> None:
    text, tag = any_value_text(AnyValue(double_value=x))
    assert typed_value(text, tag) == x


def test_logs_columns_and_checks() -> None:
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.add(key="service.name", value=AnyValue(string_value="pay"))
    sl = rl.scope_logs.add()
    ok = sl.log_records.add(observed_time_unix_nano=50, severity_number=17, severity_text="ERROR")
    ok.body.string_value = "failed"
    ok.trace_id, ok.span_id = TID, SID
    sl.log_records.add(time_unix_nano=60, trace_id=bytes(16), span_id=bytes(8))  # zeros: no trace
    sl.log_records.add(time_unix_nano=70, trace_id=b"\x01" * 3)
    sl.log_records.add()
    batch, rejected = decode_logs(req, TimeWindow())
    assert batch.timestamp == [50, 60]  # time falls back to observed time
    assert batch.trace_id == [TID.hex(), ""]
    assert batch.service_name == ["pay", "pay"]
    assert rejected.messages == [
        "resource_logs[0].scope_logs[0].log_records[2]: trace_id is 3 bytes, must be 16",
        "resource_logs[0].scope_logs[0].log_records[3]: neither time_unix_nano nor observed_time_unix_nano is set",
    ]


def test_event_example_keeps_body_type_and_event_name() -> None:
    body = (SHARED / "otlp-examples" / "events.json").read_bytes()
    batch, _ = decode_logs(parse_request("logs", body, JSON), TimeWindow())  # type: ignore[arg-type]
    assert batch.event_name == ["browser.page_view"]
    assert batch.body_type == ["kvlist"]
    assert json.loads(batch.body[0])["type"] == 0
