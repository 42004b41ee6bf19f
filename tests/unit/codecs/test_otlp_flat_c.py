"""The C span flattener gives exactly the Arrow table the Python flattener gives, and survives garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue

from collector.codecs.otlp_traces import c_flattener_available, decode_traces, flatten_traces_c
from collector.codecs.otlp_values import TimeWindow

pytestmark = pytest.mark.skipif(
    not c_flattener_available(), reason="C flattener not built: run `make venv` (needs gcc and Python headers)"
)

scalar = st.one_of(
    st.text(max_size=12).map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats().map(lambda d: AnyValue(double_value=d)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=7).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
attrs = st.lists(st.tuples(st.text(max_size=6), scalar), max_size=4)
ids16 = st.binary(min_size=16, max_size=16).filter(any)
ids8 = st.binary(min_size=8, max_size=8).filter(any)


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 2))):
        rs = req.resource_spans.add()
        for key, value in draw(attrs):
            rs.resource.attributes.add(key=key, value=value)
        if draw(st.booleans()):
            rs.resource.attributes.add(key="service.name", value=AnyValue(string_value=draw(st.text(max_size=8))))
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            ss.scope.name, ss.scope.version = draw(st.text(max_size=5)), draw(st.text(max_size=5))
            for _ in range(draw(st.integers(0, 3))):
                start = draw(st.integers(1, 2**62))
                span = ss.spans.add(
                    trace_id=draw(ids16),
                    span_id=draw(ids8),
                    parent_span_id=draw(st.one_of(st.just(b""), ids8)),
                    name=draw(st.text(max_size=10)),
                    kind=draw(st.integers(0, 7)),
                    trace_state=draw(st.text(max_size=4)),
                    start_time_unix_nano=start,
                    end_time_unix_nano=start + draw(st.integers(0, 10**12)),
                )
                for key, value in draw(attrs):
                    span.attributes.add(key=key, value=value)
                span.status.code = draw(st.integers(0, 3))  # type: ignore[assignment]
                span.status.message = draw(st.text(max_size=5))
                for _ in range(draw(st.integers(0, 2))):
                    ev = span.events.add(time_unix_nano=draw(st.integers(0, 2**62)), name=draw(st.text(max_size=5)))
                    for key, value in draw(attrs):
                        ev.attributes.add(key=key, value=value)
                for _ in range(draw(st.integers(0, 2))):
                    link = span.links.add(
                        trace_id=draw(ids16), span_id=draw(ids8), trace_state=draw(st.text(max_size=4))
                    )
                    for key, value in draw(attrs):
                        link.attributes.add(key=key, value=value)
    return req


@settings(max_examples=300, deadline=None)
@given(requests())
def test_c_and_python_flatteners_agree(req: ExportTraceServiceRequest) -> None:
    want, rejected = decode_traces(req, TimeWindow())
    assert rejected.count == 0
    got = flatten_traces_c(req.SerializeToString())
    assert got is not None
    assert got.schema.equals(want.to_arrow().schema)
    assert got.to_pylist() == want.to_arrow().to_pylist() or _same_with_nan(
        got.to_pylist(), want.to_arrow().to_pylist()
    )


def _same_with_nan(a: object, b: object) -> bool:
    return repr(a) == repr(b)  # NaN != NaN, but both spell it "NaN"


def test_arrays_are_left_to_python() -> None:
    req = ExportTraceServiceRequest()
    span = (
        req.resource_spans.add()
        .scope_spans.add()
        .spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=1, end_time_unix_nano=2)
    )
    span.attributes.add(key="tags", value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a")])))
    assert flatten_traces_c(req.SerializeToString()) is None


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_never_crashes(data: bytes) -> None:
    try:
        flatten_traces_c(data)
    except ValueError as exc:
        assert "malformed OTLP protobuf" in str(exc)


@settings(max_examples=200, deadline=None)
@given(requests(), st.data())
def test_truncated_and_corrupted_requests_never_crash(req: ExportTraceServiceRequest, data: st.DataObject) -> None:
    body = bytearray(req.SerializeToString())
    if body:
        cut = data.draw(st.integers(0, len(body)))
        body = body[:cut]
        for _ in range(data.draw(st.integers(0, 3))):
            if body:
                body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ValueError):
        flatten_traces_c(bytes(body))
