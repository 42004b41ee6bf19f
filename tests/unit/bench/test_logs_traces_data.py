"""The logs-and-traces benchmark's generated bodies decode to what it counts on: item counts, windows, trace shapes."""

from __future__ import annotations

from collections import Counter

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.logs_traces_data import (
    LEVELS,
    SERVICES,
    chunk_window,
    logs_request,
    loki_push_body,
    spans_request,
)
from collector.codecs.loki_push import decode_protobuf

END_NS = 1_795_000_000 * 10**9


@pytest.mark.parametrize(("chunk", "chunks", "lines"), [(0, 10, 500), (9, 10, 500), (3, 2000, 1000)])
def test_logs_request_holds_every_line_in_its_window(chunk: int, chunks: int, lines: int) -> None:
    req = ExportLogsServiceRequest.FromString(logs_request(7, chunk, chunks, lines, END_NS))
    lo, hi = chunk_window(chunk, chunks, END_NS)
    records = [r for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    assert len(records) == lines
    assert all(lo <= r.time_unix_nano < hi for r in records)
    assert {r.severity_text for r in records} <= {text for text, _, _ in LEVELS}
    services = {
        a.value.string_value for rl in req.resource_logs for a in rl.resource.attributes if a.key == "service.name"
    }
    assert services == set(SERVICES)


@pytest.mark.parametrize(("chunk", "spans"), [(0, 5000), (1, 1000), (2, 37)])
def test_spans_request_sends_whole_traces_of_the_sizes_it_reports(chunk: int, spans: int) -> None:
    body, traces = spans_request(7, chunk, 100, spans, END_NS)
    req = ExportTraceServiceRequest.FromString(body)
    sent = [s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(sent) == spans
    assert Counter(s.trace_id.hex() for s in sent) == dict(traces)
    assert all(5 <= size <= 30 for _, size in traces[:-1])
    ids = {(s.trace_id, s.span_id) for s in sent}
    assert all((s.trace_id, s.parent_span_id) in ids for s in sent if s.parent_span_id)
    assert sum(1 for s in sent if not s.parent_span_id) == len(traces)


def test_loki_push_body_decodes_with_the_collectors_codec() -> None:
    _, entries = decode_protobuf(loki_push_body(7, 0, 10, 800, END_NS), 20 * 1024 * 1024)
    assert entries == 800
